"""Batching: contiguous streams for truncated BPTT, padded batches with lengths, length buckets.

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


class BucketBatches:
    """Resumable shuffled mini-batches of example indices, grouped by length for speed.

    Each epoch draws a permutation from ``(seed, epoch)`` alone, so ``position`` = (epoch, batch)
    fully determines what comes next and a resumed run sees the same batches. With ``bucket``, the
    permutation is cut into pools of ``pool`` batches, each pool is sorted by length and cut into
    batches, and the batch order is shuffled: a batch holds sequences of similar length, so little
    time goes into padding, while which sequences meet in a batch still changes every epoch.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, bucket: bool = True,
                 pool: int = 50) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch size must be positive, got {batch_size}")
        self.lengths = torch.as_tensor(lengths, dtype=torch.long)
        if len(self.lengths) == 0:
            raise ValueError("no examples to batch")
        self.batch_size, self.seed, self.bucket, self.pool = batch_size, seed, bucket, pool
        self.epoch, self.batch = 0, 0
        self._order: list[Tensor] = self._epoch_batches(0)

    def __len__(self) -> int:
        """Batches per epoch."""
        return -(-len(self.lengths) // self.batch_size)

    def _epoch_batches(self, epoch: int) -> list[Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(len(self.lengths), generator=g)
        if not self.bucket:
            return list(perm.split(self.batch_size))
        batches = []
        for pool in perm.split(self.batch_size * self.pool):
            by_length = pool[torch.sort(self.lengths[pool], stable=True).indices]
            batches.extend(by_length.split(self.batch_size))
        return [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]

    def __iter__(self) -> Iterator[Tensor]:
        return self

    def __next__(self) -> Tensor:
        if self.batch >= len(self._order):
            self.epoch, self.batch = self.epoch + 1, 0
            self._order = self._epoch_batches(self.epoch)
        self.batch += 1
        return self._order[self.batch - 1]

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
        self._order = self._epoch_batches(self.epoch)
