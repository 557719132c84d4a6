"""Data augmentation for images read as sequences of rows (MNIST row by row).

Shapes: B batch, H rows (= time steps), W pixels per row (= features).

A digit shifted by a pixel or turned a few degrees is still the same digit; showing the model such
variants each epoch is the classic cure for a row-by-row RNN memorising the exact pixel positions of
its training set. The transform is an exact integer translation combined with a small rotation,
resampled bilinearly with zero (background) fill. Random draws use torch's global generator, which
the trainer checkpoints, so a resumed run sees the same augmented batches.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def random_affine(images: Tensor, max_shift: int = 2, max_degrees: float = 8.0) -> Tensor:
    """images (B, H, W) → the same images, each shifted by up to ``max_shift`` whole pixels in x and
    y and rotated by up to ``max_degrees`` about its centre."""
    B, H, W = images.shape
    angle = (torch.rand(B, device=images.device) * 2 - 1) * math.radians(max_degrees)
    shift = torch.randint(-max_shift, max_shift + 1, (B, 2), device=images.device).to(images.dtype)
    theta = torch.zeros(B, 2, 3, device=images.device, dtype=images.dtype)   # output → input coords
    theta[:, 0, 0], theta[:, 0, 1] = angle.cos(), -angle.sin()
    theta[:, 1, 0], theta[:, 1, 1] = angle.sin(), angle.cos()
    theta[:, 0, 2] = shift[:, 0] * 2 / W          # affine_grid's coordinates span [-1, 1]
    theta[:, 1, 2] = shift[:, 1] * 2 / H
    grid = F.affine_grid(theta, (B, 1, H, W), align_corners=False)
    return F.grid_sample(images.unsqueeze(1), grid, align_corners=False,
                         padding_mode="zeros").squeeze(1)                     # (B, H, W)
