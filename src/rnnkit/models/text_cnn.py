"""The convolutional sentence classifier of Kim (2014), the baseline the lectures set beside the RNN.

Shapes: B batch, T time (padded), V vocabulary, E embedding size, K filter width, M feature maps per
width, C classes.

    tokens (B, T) ─► embedding (B, T, E) ─► for each width K: conv (B, M, T+K-1), ReLU,
                     max over the valid positions (B, M) ─► concat (B, M·#widths) ─► dropout ─► dense (B, C)

Each sentence is padded with K-1 zero vectors on both sides (a "wide" convolution), so a sentence
shorter than the widest filter still has windows. Max-over-time pooling only looks at the L+K-1
windows of a sentence of length L: the extra padding of a batch never changes a prediction. Kim
also caps the L2 norm of the output layer's weight rows at 3 (``max_norm``), applied after each
optimiser step by :meth:`constrain_weights` (the trainer calls it); dropout, as in the paper, only
acts on the pooled features.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class TextCNNConfig:
    vocab_size: int                    # V
    num_classes: int                   # C
    embed: int = 300                   # E (Kim: 300, as word2vec)
    widths: tuple[int, ...] = (3, 4, 5)
    maps: int = 100                    # M feature maps per width
    dropout: float = 0.5
    max_norm: float = 3.0              # cap on each output weight row's L2 norm (0: none)
    padding_idx: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(self.widths))    # JSON gives a list
        if not self.widths or min(self.widths) <= 0:
            raise ValueError(f"filter widths must be positive, got {self.widths}")
        for name in ("vocab_size", "embed", "maps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {self.num_classes}")

    def to_json(self) -> dict:
        return asdict(self)


class TextCNN(nn.Module):
    def __init__(self, config: TextCNNConfig) -> None:
        super().__init__()
        self.config = c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embed, padding_idx=c.padding_idx)
        with torch.no_grad():      # Kim's random init, U(-0.25, 0.25): about word2vec's variance
            self.embedding.weight.uniform_(-0.25, 0.25)
            self.embedding.weight[c.padding_idx] = 0.0
        self.convs = nn.ModuleList(nn.Conv1d(c.embed, c.maps, k, padding=k - 1) for k in c.widths)
        self.dropout = nn.Dropout(c.dropout)
        self.output = nn.Linear(c.maps * len(c.widths), c.num_classes)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """tokens (B, T), lengths (B,) → logits (B, C)."""
        T = tokens.shape[1]
        valid = torch.arange(T, device=tokens.device) < lengths.to(tokens.device).unsqueeze(1)
        x = self.embedding(tokens) * valid.unsqueeze(-1)            # (B, T, E), padding exactly 0
        x = x.transpose(1, 2)                                       # (B, E, T)
        pooled = []
        for conv, k in zip(self.convs, self.config.widths):
            h = F.relu(conv(x))                                     # (B, M, T+K-1)
            windows = torch.arange(T + k - 1, device=h.device)      # window j covers tokens j-K+1..j
            ok = windows < (lengths.to(h.device) + k - 1).unsqueeze(1)    # (B, T+K-1)
            pooled.append(h.masked_fill(~ok.unsqueeze(1), 0.0).amax(2))   # (B, M); ReLU ≥ 0
        return self.output(self.dropout(torch.cat(pooled, 1)))     # (B, C)

    @torch.no_grad()
    def constrain_weights(self) -> None:
        if self.config.max_norm > 0:
            w = self.output.weight                                  # (C, M·#widths)
            norms = w.norm(dim=1, keepdim=True)
            w.mul_(torch.clamp(self.config.max_norm / norms.clamp(min=1e-12), max=1.0))
