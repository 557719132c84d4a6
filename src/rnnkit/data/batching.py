"""Batching: contiguous streams for truncated BPTT, padded batches with lengths, length buckets.

Shapes: N corpus length, B batch (= number of streams), T chunk length.

Data-parallel training (``train/distributed.py``) gives each process a :class:`Shard`: the
iterators build the same global batches everywhere and hand each process only its rows.

Truncated BPTT the char-rnn way: the corpus is cut into B contiguous streams of equal length (one per
batch row); chunk k is columns [kT, (k+1)T) of every stream, so row b of chunk k+1 continues row b of
chunk k exactly, and the model carries its hidden state from one chunk to the next (detached, so
gradients flow through T steps only). Targets are the inputs shifted by one character.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

import torch
import torch.distributed
from torch import Tensor

from .errors import DataError


@dataclass(frozen=True)
class Shard:
    """This process's place among ``world`` data-parallel processes (rank 0 of 1 when alone)."""

    rank: int = 0
    world: int = 1

    @classmethod
    def current(cls) -> "Shard":
        """This process's shard: from torch.distributed's process group when one is running."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return cls(torch.distributed.get_rank(), torch.distributed.get_world_size())
        return cls()

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes files and logs."""
        return self.rank == 0

    def split(self, n: int, what: str) -> slice:
        """The contiguous share of ``n`` rows (e.g. TBPTT streams) that this rank takes."""
        if n % self.world:
            raise ValueError(f"{what} ({n}) must be divisible by the number of processes "
                             f"({self.world})")
        per = n // self.world
        return slice(self.rank * per, (self.rank + 1) * per)


@dataclass
class StreamBatches:
    """Resumable iterator over (inputs (B, T), targets (B, T)) chunks of a token-id corpus.

    ``position`` = (epoch, chunk) fully determines what comes next, so a resumed run continues
    from the exact chunk where the checkpoint was taken. A new epoch restarts the streams (the
    carried state must be reset then: :attr:`starts_sequence` says so).
    """

    data: Tensor            # (N,) token ids
    batch_size: int         # B: the streams of all processes together
    seq_len: int
    shard: Shard = field(default_factory=Shard.current)   # this process: B / W contiguous streams
    epoch: int = 0
    chunk: int = 0

    def __post_init__(self) -> None:
        if self.batch_size <= 0 or self.seq_len <= 0:
            raise ValueError(f"batch size and sequence length must be positive, got "
                             f"{self.batch_size} and {self.seq_len}")
        per_stream = (len(self.data) - 1) // self.batch_size
        if per_stream < self.seq_len:
            need = self.batch_size * self.seq_len + 1
            raise DataError(f"the training text has {len(self.data)} symbols; batch size "
                             f"{self.batch_size} × sequence length {self.seq_len} needs at least "
                             f"{need}: use a smaller --batch-size or --seq-len, or more text")
        used = per_stream * self.batch_size
        rows = self.shard.split(self.batch_size, "--batch-size")
        self.inputs = self.data[:used].view(self.batch_size, per_stream)[rows]          # (B/W, N/B)
        self.targets = self.data[1:used + 1].view(self.batch_size, per_stream)[rows]    # (B/W, N/B)
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
                 pool: int = 50, shard: Optional[Shard] = None) -> None:
        self.shard = shard or Shard.current()       # data-parallel: this process's rows
        if batch_size < self.shard.world:
            raise ValueError(f"batch size must be at least the number of processes "
                             f"({self.shard.world}), got {batch_size}")
        self.lengths = torch.as_tensor(lengths, dtype=torch.long)
        if len(self.lengths) == 0:
            raise ValueError("no examples to batch")
        self.batch_size, self.seed, self.bucket, self.pool = batch_size, seed, bucket, pool
        self.epoch, self.batch = 0, 0
        self._order: list[Tensor] = self._epoch_batches(0)

    def __len__(self) -> int:
        """Batches per epoch (the same for every epoch)."""
        return len(self._order)

    def _epoch_batches(self, epoch: int) -> list[Tensor]:
        """The global batches of an epoch, each cut to this process's rows (every W-th)."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(len(self.lengths), generator=g)
        if not self.bucket:
            batches = list(perm.split(self.batch_size))
        else:
            batches = []
            for pool in perm.split(self.batch_size * self.pool):
                by_length = pool[torch.sort(self.lengths[pool], stable=True).indices]
                batches.extend(by_length.split(self.batch_size))
            batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
        rank, world = self.shard.rank, self.shard.world
        # A batch smaller than the number of processes would leave a process without rows.
        return [b[rank::world] for b in batches if len(b) >= world]

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
