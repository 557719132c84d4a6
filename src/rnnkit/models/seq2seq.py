"""The encoder–decoder (sequence-to-sequence) network of the lectures, with optional attention.

Shapes: B batch, S source length, T target length, E embedding size, H hidden size, L layers,
V_s / V_t source / target vocabulary.

    source (B, S) ─embed─► encoder RNN ─► outputs (B, S, H) ·····························(memory)
                                     └──► final state (L, B, H) ─┐                            :
    <go> y_1 … y_{T-1} (B, T) ─embed─► decoder RNN, started here ─┴─► h_t (B, T, H) ─► attention
                                                                                        │
                                       logits (B, T, V_t) ◄─ dense ◄─ tanh(W_c [c_t; h_t])

* Training is *teacher forcing*: the decoder reads the true previous word (``<go>`` first), so the
  whole target is one RNN call; ``sampling_rate`` > 0 mixes in the model's own words (scheduled
  sampling). The decoder, its attention and its step for greedy and beam search are ``decoder.py``,
  shared with the image captioner.
* The source may be read reversed (Sutskever et al. 2014: the first source words then sit next to
  the first target words), and by a bidirectional encoder (H/2 per direction, concatenated, so the
  decoder and the attention see H either way). Outputs are returned in the source's own order.
* Without attention the final encoder state is all the decoder learns of the source.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from ..attention import ATTENTION
from ..decoder import CELLS, Decoder, DecoderState
from ..unroll import map_state, reverse_within_lengths


@dataclass(frozen=True)
class Seq2SeqConfig:
    source_vocab: int                  # V_s
    target_vocab: int                  # V_t
    cell: str = "lstm"                 # rnn | lstm | gru (encoder and decoder)
    embed: int = 128                   # E
    hidden: int = 256                  # H
    layers: int = 1                    # L, in the encoder and in the decoder
    bidirectional: bool = False        # encoder only
    reverse_source: bool = False       # read the source backwards
    attention: str = "none"            # none | additive | dot
    dropout: float = 0.0               # on embeddings, between layers, before the output layer
    pad_id: int = 0
    go_id: int = 2
    eos_id: int = 3

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {self.cell!r}")
        if self.attention not in ATTENTION:
            raise ValueError(f"attention must be one of {ATTENTION}, got {self.attention!r}")
        for name in ("source_vocab", "target_vocab", "embed", "hidden", "layers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.bidirectional and self.hidden % 2:
            raise ValueError(f"a bidirectional encoder splits hidden between its two directions: "
                             f"hidden must be even, got {self.hidden}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_json(self) -> dict:
        return asdict(self)


class Seq2Seq(nn.Module):
    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = c = config
        self.source_embedding = nn.Embedding(c.source_vocab, c.embed, padding_idx=c.pad_id)
        self.encoder = CELLS[c.cell](c.embed, c.hidden // 2 if c.bidirectional else c.hidden,
                                     c.layers, dropout=c.dropout, bidirectional=c.bidirectional,
                                     batch_first=True)
        self.drop = nn.Dropout(c.dropout)
        self.decoder = Decoder(c.target_vocab, c.embed, c.hidden, c.layers, c.cell, c.attention,
                               c.dropout, c.pad_id, c.go_id, c.eos_id)

    # ---- encoder ------------------------------------------------------------------------------

    def encode(self, source: Tensor, lengths: Tensor) -> DecoderState:
        """source (B, S) ids, lengths (B,) ≥ 1 → the decoder's starting state."""
        c = self.config
        if c.reverse_source:                       # within each row's length; padding stays last
            source = reverse_within_lengths(source.t(), lengths).t()
        outputs, state = self.encoder(self.drop(self.source_embedding(source)), lengths=lengths)
        if c.reverse_source:                       # back to source order, for attention plots
            outputs = reverse_within_lengths(outputs.transpose(0, 1), lengths).transpose(0, 1)
        if c.bidirectional:                        # (2L, B, H/2) → (L, B, H): [forward; backward]
            state = map_state(lambda t: t.view(c.layers, 2, *t.shape[1:]).transpose(1, 2)
                              .reshape(c.layers, t.shape[1], c.hidden), state)
        mask = torch.arange(source.shape[1], device=source.device) < lengths.unsqueeze(1)
        return self.decoder.start(outputs, mask, state)

    def forward(self, source: Tensor, source_lengths: Tensor, target_inputs: Tensor,
                sampling_rate: float = 0.0) -> tuple[Tensor, Optional[Tensor]]:
        """Teacher forcing: target_inputs (B, T) = <go> y_1 … y_{T-1} → logits (B, T, V_t) for
        y_1 … y_T, and the attention weights (B, T, S) (None without attention)."""
        return self.decoder.teacher_forced(target_inputs, self.encode(source, source_lengths),
                                           sampling_rate)
