"""A recurrent language model: embedding → stacked RNN → output projection over the vocabulary.

Shapes: B batch, T time, V vocabulary, E embedding size, H hidden size, L layers.

The lectures' character model (char-rnn): each step reads one symbol and predicts a distribution over
the next one; trained with truncated BPTT on contiguous streams; sampled one symbol at a time, feeding
each sample back in while the recurrent state is carried (the prefix is never re-run).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterator, Optional

import torch
from torch import Tensor, nn

from ..layers import GRU, LSTM, RNN, dropout
from ..sampling import sample_next
from ..unroll import State

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


@dataclass(frozen=True)
class LanguageModelConfig:
    vocab_size: int
    cell: str = "lstm"                 # rnn | lstm | gru
    embed: int = 64                    # E
    hidden: int = 256                  # H
    layers: int = 2                    # L
    dropout: float = 0.0               # between layers and before the output projection
    peephole: bool = False             # LSTM only
    layer_norm: bool = False           # LSTM, GRU
    forget_bias: float = 0.0           # LSTM only
    reset_after: bool = True           # GRU only (False: Cho et al. 2014)
    nonlinearity: str = "tanh"         # RNN only
    recurrent_dropout: float = 0.0
    zoneout: float = 0.0

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {self.cell!r}")
        for name in ("vocab_size", "embed", "hidden", "layers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    def to_json(self) -> dict:
        return asdict(self)


def _recurrent_layer(cfg: LanguageModelConfig) -> nn.Module:
    common = dict(num_layers=cfg.layers, batch_first=True,
                  dropout=cfg.dropout if cfg.layers > 1 else 0.0,
                  recurrent_dropout=cfg.recurrent_dropout, zoneout=cfg.zoneout)
    if cfg.cell == "lstm":
        return LSTM(cfg.embed, cfg.hidden, peephole=cfg.peephole, layer_norm=cfg.layer_norm,
                    forget_bias=cfg.forget_bias, **common)
    if cfg.cell == "gru":
        return GRU(cfg.embed, cfg.hidden, reset_after=cfg.reset_after, layer_norm=cfg.layer_norm,
                   **common)
    return RNN(cfg.embed, cfg.hidden, nonlinearity=cfg.nonlinearity, **common)


class LanguageModel(nn.Module):
    def __init__(self, config: LanguageModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embed)
        self.rnn = _recurrent_layer(config)
        # One dense layer applied to all B·T hidden states at once (one GEMM), not per step.
        self.output = nn.Linear(config.hidden, config.vocab_size)

    def forward(self, tokens: Tensor, state: Optional[State] = None) -> tuple[Tensor, State]:
        """tokens (B, T) → logits (B, T, V) and the state after the last step."""
        x = self.embedding(tokens)                                       # (B, T, E)
        h, state = self.rnn(x, state)                                    # (B, T, H)
        if self.training and self.config.dropout:
            h = dropout(h, self.config.dropout)
        return self.output(h), state                                     # (B, T, V)

    @torch.no_grad()
    def activations(self, tokens: Tensor, state: Optional[State] = None
                    ) -> tuple[Tensor, State, list[dict]]:
        """forward() through the readable loop, also returning every unit of every layer at every
        step: ``(logits (B, T, V), state, records)``, records as :meth:`LSTM.activations` gives them
        (``h`` (B, T, H) and each gate per layer). Used by the neuron viewer and the playground."""
        records, state = self.rnn.activations(self.embedding(tokens), state)
        return self.output(records[-1]["h"]), state, records

    @torch.no_grad()
    def generate(self, prime: list[int], length: int, temperature: float = 1.0,
                 top_k: Optional[int] = None, top_p: Optional[float] = None,
                 generator: Optional[torch.Generator] = None, *, record: bool = False
                 ) -> Iterator:
        """Yield ``length`` sampled ids, one at a time, after reading ``prime`` once.

        With ``record`` it yields, for each prime id and then each generated id, a dict
        ``{"id", "prime": bool, "units": [{"layer", "direction", "h", gates…} (H,) each]}``: every
        unit's value just after the model read that id (the readable loop, step by step).
        """
        if not prime:
            raise ValueError("generation needs a non-empty prime")
        self.eval()
        device = self.embedding.weight.device
        # one step per call: the layer's lean path (C++ kernels); recording reads every gate instead
        step = None if record else self.rnn.stepper()

        def read(tokens: Tensor, state=None):                 # (1, T) -> logits (1, T, V), state
            if record:
                return self.activations(tokens, state)
            if state is None or tokens.shape[1] != 1:
                return (*self(tokens, state), None)
            h, state = step(self.embedding(tokens[:, 0]), state)             # (1, H)
            return self.output(h).unsqueeze(1), state, None

        def at(records, t):                       # (1, T, H) per record -> step t's (H,) values
            return [{k: (v[0, t] if isinstance(v, Tensor) else v) for k, v in r.items()}
                    for r in records]

        logits, state, records = read(torch.tensor([prime], device=device))    # (1, P, V)
        if record:
            for t, token in enumerate(prime):
                yield {"id": token, "prime": True, "units": at(records, t)}
        logits = logits[:, -1]                                           # (1, V)
        for _ in range(length):
            token = sample_next(logits, temperature, top_k, top_p, generator)   # (1,)
            if not record:
                yield int(token)
            logits, state, records = read(token.view(1, 1), state)
            logits = logits[:, -1]
            if record:
                yield {"id": int(token), "prime": False, "units": at(records, 0)}
