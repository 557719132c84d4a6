"""Batching: contiguous streams for truncated BPTT, and padded batches with lengths.

Shapes: N corpus length, B batch (= number of streams), T chunk length.

Truncated BPTT the char-rnn way: the corpus is cut into B contiguous streams of equal length (one per
batch row); chunk k is columns [kT, (k+1)T) of every stream, so row b of chunk k+1 continues row b of
chunk k exactly, and the model carries its hidden state from one chunk to the next (detached, so
gradients flow through T steps only). Targets are the inputs shifted by one character.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import Tensor


@dataclass
class StreamBatches:
    """Resumable iterator over (inputs (B, T), targets (B, T)) chunks of a token-id corpus.

    ``position`` = (epoch, chunk) fully determines what comes next, so a resumed run continues
    from the exact chunk where the checkpoint was taken. A new epoch restarts the streams (the
    carried state must be reset then: :attr:`starts_sequence` says so).
    """

    data: Tensor            # (N,) token ids
    batch_size: int
    seq_len: int
    epoch: int = 0
    chunk: int = 0

    def __post_init__(self) -> None:
        if self.batch_size <= 0 or self.seq_len <= 0:
            raise ValueError(f"batch size and sequence length must be positive, got "
                             f"{self.batch_size} and {self.seq_len}")
        per_stream = (len(self.data) - 1) // self.batch_size
        if per_stream < self.seq_len:
            need = self.batch_size * self.seq_len + 1
            raise ValueError(f"the training text has {len(self.data)} symbols; batch size "
                             f"{self.batch_size} × sequence length {self.seq_len} needs at least "
                             f"{need}: use a smaller --batch-size or --seq-len, or more text")
        used = per_stream * self.batch_size
        self.inputs = self.data[:used].view(self.batch_size, per_stream)          # (B, N/B)
        self.targets = self.data[1:used + 1].view(self.batch_size, per_stream)    # (B, N/B)
        self.chunks_per_epoch = per_stream // self.seq_len

    @property
    def starts_sequence(self) -> bool:
        """True when the next chunk begins the streams (carried state must be reset)."""
        return self.chunk == 0

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self

    def __next__(self) -> tuple[Tensor, Tensor]:
        if self.chunk >= self.chunks_per_epoch:
            self.epoch, self.chunk = self.epoch + 1, 0
        cols = slice(self.chunk * self.seq_len, (self.chunk + 1) * self.seq_len)
        self.chunk += 1
        return self.inputs[:, cols], self.targets[:, cols]

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "chunk": self.chunk}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.chunk = int(state["epoch"]), int(state["chunk"])


def pad_sequences(seqs: Sequence[Sequence[int]], pad: int = 0) -> tuple[Tensor, Tensor]:
    """Right-pad id sequences into (B, T_max) with their lengths (B,)."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), int(lengths.max()) if len(seqs) else 0), pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
    return out, lengths
