"""Attention over an encoder's outputs (the *memory*), with length masks.

Shapes: B batch, T query steps (decoder), S memory steps (source), H size of queries and memory,
A size of the additive score's hidden layer.

At each decoder step the query q_t scores every source position s, the scores become weights by a
softmax over the row's *real* positions, and the context is the weighted sum of the memory:

    additive (Bahdanau et al. 2015):  score(q_t, m_s) = v · tanh(W_q q_t + W_m m_s)
    dot      (Luong et al. 2015):     score(q_t, m_s) = q_t · m_s
    α_t = softmax_s(score(q_t, m_s))   over s < length      c_t = Σ_s α_ts m_s

Padding gets weight exactly 0 (its score is -inf before the softmax), so what the padding holds
never reaches the context. The memory-side half of the additive score, W_m m_s, does not depend on
t: `keys` computes it once per source sentence, and decoding one step at a time reuses it.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

ATTENTION = ("none", "additive", "dot")


class Attention(nn.Module):
    def __init__(self, kind: str, size: int) -> None:
        super().__init__()
        if kind not in ("additive", "dot"):
            raise ValueError(f"attention must be additive or dot, got {kind!r}")
        self.kind = kind
        if kind == "additive":
            self.query_proj = nn.Linear(size, size, bias=False)      # W_q
            self.memory_proj = nn.Linear(size, size)                 # W_m (and the bias)
            self.score = nn.Linear(size, 1, bias=False)              # v

    def keys(self, memory: Tensor) -> Tensor:
        """What the scores need from the memory (B, S, H), computed once per sentence."""
        return self.memory_proj(memory) if self.kind == "additive" else memory

    def forward(self, query: Tensor, memory: Tensor, mask: Tensor,
                keys: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """query (B, T, H), memory (B, S, H), mask (B, S) True on real positions →
        context (B, T, H), weights (B, T, S) that sum to 1 over each row's real positions."""
        keys = self.keys(memory) if keys is None else keys
        if self.kind == "additive":
            hidden = torch.tanh(self.query_proj(query).unsqueeze(2) + keys.unsqueeze(1))  # (B,T,S,A)
            scores = self.score(hidden).squeeze(-1)                                     # (B, T, S)
        else:
            scores = query @ keys.transpose(1, 2)                                       # (B, T, S)
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = scores.softmax(-1)
        return weights @ memory, weights                                                # (B, T, H)
