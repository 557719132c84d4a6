"""A many-to-one recurrent classifier: one sequence in, one class distribution out.

Shapes: B batch, T time (padded), F input features, V vocabulary, E embedding size, H hidden size,
D directions (1 or 2), C classes.

    tokens (B, T) ──embedding──┐
                               ├─► (B, T, E) ─► stacked (bi)RNN ─► (B, T, D·H) ─► pool ─► (B, D·H)
    features (B, T, F) ─scale──┘                                                      │
                                                                      dropout, dense ─► logits (B, C)

The input is either token ids (text, through an embedding) or real-valued feature vectors (images as
rows of pixels, sensor or clinical measurements), standardised with the training set's per-feature
mean and standard deviation, which the model keeps as buffers so a checkpoint alone can classify.

Pooling turns the sequence into one vector, always over each row's own length (padding never counts):
``last`` is the lecture classifier's final state (for a bidirectional RNN: the forward direction's
state at the last valid step beside the backward direction's state at the first), ``mean`` and
``max`` pool the outputs over the valid steps. Softmax is left to the loss (cross-entropy on logits).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from ..layers import GRU, LSTM, RNN

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
POOLINGS = ("last", "mean", "max")


@dataclass(frozen=True)
class ClassifierConfig:
    num_classes: int                   # C
    vocab_size: int = 0                # V: token input (text); 0 for feature input
    input_size: int = 0                # F: feature input (series, images); 0 for token input
    embed: int = 128                   # E (token input only)
    cell: str = "lstm"                 # rnn | lstm | gru
    hidden: int = 128                  # H
    layers: int = 1
    bidirectional: bool = False
    pooling: str = "last"              # last | mean | max
    dropout: float = 0.0               # on the embedded input, between layers, before the dense layer
    recurrent_dropout: float = 0.0     # variational dropout on h (a mask per sequence)
    padding_idx: int = 0               # the <pad> token id (its embedding is kept at zero)

    def __post_init__(self) -> None:
        if (self.vocab_size > 0) == (self.input_size > 0):
            raise ValueError("give exactly one of vocab_size (token input) and input_size "
                             f"(feature input), got {self.vocab_size} and {self.input_size}")
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {self.cell!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {self.num_classes}")
        for name in ("embed", "hidden", "layers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_json(self) -> dict:
        return asdict(self)


class SequenceClassifier(nn.Module):
    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = c = config
        if c.vocab_size:
            self.embedding = nn.Embedding(c.vocab_size, c.embed, padding_idx=c.padding_idx)
            with torch.no_grad():  # small random vectors, U(-0.25, 0.25), as Kim (2014): N(0, 1)
                self.embedding.weight.uniform_(-0.25, 0.25)     # would saturate the gates
                self.embedding.weight[c.padding_idx] = 0.0
            rnn_input = c.embed
        else:
            self.embedding = None
            self.register_buffer("input_mean", torch.zeros(c.input_size))
            self.register_buffer("input_std", torch.ones(c.input_size))
            rnn_input = c.input_size
        self.rnn = CELLS[c.cell](rnn_input, c.hidden, num_layers=c.layers, batch_first=True,
                                 bidirectional=c.bidirectional,
                                 dropout=c.dropout if c.layers > 1 else 0.0,
                                 recurrent_dropout=c.recurrent_dropout)
        self.dropout = nn.Dropout(c.dropout)
        self.output = nn.Linear(c.hidden * (2 if c.bidirectional else 1), c.num_classes)

    def set_input_scaling(self, mean: Tensor, std: Tensor) -> None:
        """Per-feature standardisation fitted on the training set (feature input only)."""
        self.input_mean.copy_(mean)
        self.input_std.copy_(std.clamp(min=1e-6))

    def forward(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        """inputs (B, T) token ids or (B, T, F) features, lengths (B,) → logits (B, C)."""
        if self.embedding is not None:
            x = self.embedding(inputs)                                   # (B, T, E)
        else:
            x = (inputs - self.input_mean) / self.input_std              # (B, T, F)
        out, state = self.rnn(self.dropout(x), lengths=lengths)          # (B, T, D·H)
        return self.output(self.dropout(self.pool(out, state, lengths)))  # (B, C)

    def pool(self, out: Tensor, state, lengths: Tensor) -> Tensor:
        """(B, T, D·H) outputs and the final state → one (B, D·H) vector per sequence."""
        c = self.config
        if c.pooling == "last":
            h_n = state[0] if isinstance(state, tuple) else state        # (L·D, B, H)
            last_layer = h_n[-2:] if c.bidirectional else h_n[-1:]       # (D, B, H)
            return torch.cat(tuple(last_layer), dim=-1)                  # (B, D·H)
        valid = (torch.arange(out.shape[1], device=out.device) <
                 lengths.to(out.device).unsqueeze(1)).unsqueeze(-1)      # (B, T, 1)
        if c.pooling == "mean":
            return (out * valid).sum(1) / lengths.clamp(min=1).to(out).unsqueeze(1)
        # (B, D·H); a zero-length row (only the padding) gets -1e4 rather than -inf
        return out.masked_fill(~valid, float("-inf")).amax(1).clamp(min=-1e4)
