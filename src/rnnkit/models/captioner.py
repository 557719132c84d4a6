"""An image captioner: a small CNN reads the image, an LSTM writes the sentence (the lectures'
vector-to-sequence network; with attention, "Show, attend and tell", Xu et al. 2015).

Shapes: B batch, S image side in pixels, G attention grid side (G² regions), D CNN channels,
H hidden size, L layers, T caption length, V vocabulary.

    image (B, 3, S, S) ─► [conv 3×3, batch norm, ReLU, max-pool 2] × n ─► (B, D, S/2ⁿ, S/2ⁿ)
                       ─► average-pooled to a G × G grid ─► regions (B, G², D) ─dense─► memory (B, G², H)
                                                  └─ mean over regions ─► f (B, D)
    f ─► tanh(W f) ─► the decoder's first state (L, B, H), for h and (LSTM) for c
    <go> w_1 … w_{T-1} ─► decoder (decoder.py: embedding, LSTM, attention over the G² regions)
                       ─► logits (B, T, V)

The CNN is trained from scratch with the decoder (the data sets here are small and unlike
photographs). Greedy and beam decoding are sampling.py's, through the decoder's step, exactly as
for translation; the attention weights over the G² regions show where the model looked for each
word.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attention import ATTENTION
from ..decoder import CELLS, Decoder, DecoderState


@dataclass(frozen=True)
class CaptionerConfig:
    vocab: int                         # V
    image_size: int = 32               # S
    channels: tuple = (32, 64, 128)    # D of each conv block; each block halves the side
    grid: int = 4                      # G
    embed: int = 64
    hidden: int = 256                  # H
    layers: int = 1
    cell: str = "lstm"
    attention: str = "none"            # none | additive | dot
    dropout: float = 0.0
    pad_id: int = 0
    go_id: int = 2
    eos_id: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {self.cell!r}")
        if self.attention not in ATTENTION:
            raise ValueError(f"attention must be one of {ATTENTION}, got {self.attention!r}")
        if not self.channels:
            raise ValueError("the CNN needs at least one block (channels)")
        side = self.image_size >> len(self.channels)
        if side < self.grid:
            raise ValueError(f"{len(self.channels)} blocks leave a {side}×{side} map of a "
                             f"{self.image_size}-pixel image: fewer cells than a {self.grid}×"
                             f"{self.grid} grid (use larger images or fewer blocks)")
        for name in ("vocab", "embed", "hidden", "layers", "grid"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    def to_json(self) -> dict:
        return asdict(self)


class ImageEncoder(nn.Module):
    def __init__(self, channels: tuple, grid: int, hidden: int) -> None:
        super().__init__()
        blocks, previous = [], 3
        for d in channels:
            blocks += [nn.Conv2d(previous, d, 3, padding=1), nn.BatchNorm2d(d), nn.ReLU(),
                       nn.MaxPool2d(2)]
            previous = d
        self.cnn = nn.Sequential(*blocks)
        self.grid = grid
        self.to_memory = nn.Linear(previous, hidden)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """images (B, 3, S, S) in [0, 1] → regions (B, G², H) and the image vector f (B, D)."""
        maps = F.adaptive_avg_pool2d(self.cnn(images * 2 - 1), self.grid)   # (B, D, G, G)
        regions = maps.flatten(2).transpose(1, 2)                             # (B, G², D)
        return torch.tanh(self.to_memory(regions)), regions.mean(1)


class Captioner(nn.Module):
    def __init__(self, config: CaptionerConfig) -> None:
        super().__init__()
        self.config = c = config
        self.encoder = ImageEncoder(c.channels, c.grid, c.hidden)
        states = 2 if c.cell == "lstm" else 1                                 # (h, c) or h
        self.init_state = nn.Linear(c.channels[-1], states * c.layers * c.hidden)
        self.decoder = Decoder(c.vocab, c.embed, c.hidden, c.layers, c.cell, c.attention,
                               c.dropout, c.pad_id, c.go_id, c.eos_id)

    def encode(self, images: Tensor) -> DecoderState:
        """images (B, 3, S, S) → the decoder's starting state (memory: the G² regions)."""
        c = self.config
        memory, f = self.encoder(images)
        B = images.shape[0]
        init = torch.tanh(self.init_state(f)).view(B, -1, c.layers, c.hidden).permute(1, 2, 0, 3)
        state = (init[0].contiguous(), init[1].contiguous()) if c.cell == "lstm" else \
            init[0].contiguous()                                              # (L, B, H) each
        mask = torch.ones(B, memory.shape[1], dtype=torch.bool, device=images.device)
        return self.decoder.start(memory, mask, state)

    def forward(self, images: Tensor, target_inputs: Tensor, sampling_rate: float = 0.0
                ) -> tuple[Tensor, Optional[Tensor]]:
        """Teacher forcing: <go> w_1 … w_{T-1} (B, T) → logits (B, T, V) and attention (B, T, G²)."""
        return self.decoder.teacher_forced(target_inputs, self.encode(images), sampling_rate)
