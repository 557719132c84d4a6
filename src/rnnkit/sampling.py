"""Choosing the next symbol from a model's logits: temperature, top-k and nucleus (top-p) sampling.

Shapes: B batch, V vocabulary.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def check_sampling(temperature: float, top_k: Optional[int] = None,
                   top_p: Optional[float] = None) -> None:
    """Raise ValueError naming the bad setting; shared by the CLI and the library."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top-k must be at least 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top-p must be in (0, 1], got {top_p}")


def filter_logits(logits: Tensor, top_k: Optional[int] = None,
                  top_p: Optional[float] = None) -> Tensor:
    """Set to -inf every logit outside the top-k and outside the smallest set of mass ≥ top-p."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]                # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)      # (B, V)
        probs = sorted_logits.softmax(-1)
        # Drop a symbol when the mass *before* it already reaches top_p; the first always stays.
        drop_sorted = probs.cumsum(-1) - probs >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(logits: Tensor, temperature: float = 1.0, top_k: Optional[int] = None,
                top_p: Optional[float] = None,
                generator: Optional[torch.Generator] = None) -> Tensor:
    """logits (B, V) → sampled ids (B,)."""
    check_sampling(temperature, top_k, top_p)
    logits = filter_logits(logits.float() / temperature, top_k, top_p)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
