"""Data-parallel training on ``torch.distributed``: several processes, one model each, one batch split
between them, gradients summed across them after every backward pass.

Launching. ``torchrun --nproc-per-node N -m rnnkit train <task> ...`` on one machine, or with
torchrun's usual rendezvous flags on several (``--nnodes 2 --node-rank K --rdzv-backend c10d
--rdzv-endpoint HOST:PORT`` on each); ``rnnkit train <task> ... --nproc N`` starts torchrun's
launcher itself for one machine. The backend is gloo on CPU and NCCL on CUDA.

What each process (rank) does:

* it reads the data and builds the same global batch sequence as a single process would; the batch
  iterators then keep only its share of the rows (``Shard``): for truncated BPTT, B / W of the
  contiguous streams; for shuffled mini-batches, every W-th example of each batch;
* after backward it sends its gradients, each weighted by the units of its share, into one
  all-reduce, so every rank steps with the gradient of the mean loss over the whole global batch:
  a W-process step equals the single-process step on the concatenated batch (tested);
* every rank evaluates the same validation data with the same weights, so early stopping and the
  learning-rate schedule decide the same everywhere without talking;
* rank 0 alone writes the run directory (config, metrics, checkpoints, plots, test results). The
  other ranks keep, beside each ``last`` checkpoint, only what is theirs: their RNG state and the
  task's per-rank data state (e.g. the hidden state carried along their streams).

This is what ``DistributedDataParallel`` computes, written as one explicit all-reduce in the trainer
rather than a module wrapper: the tasks call their models' own methods (decoders, CRFs, samplers),
not only ``forward``, and the trainer stays model-agnostic.
"""
from __future__ import annotations

import os
import sys
from typing import Optional

import torch
import torch.distributed as dist

from ..data.batching import Shard


class WorkerDone(Exception):
    """A rank other than 0 has finished training; what follows (tests, reports) is rank 0's."""


def shard() -> Shard:
    """The current process's shard: (0, 1) unless a process group is running."""
    return Shard.current()


def launched() -> bool:
    """Whether torchrun (or an equivalent launcher) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device: torch.device) -> Shard:
    """Join the process group torchrun described in the environment (once)."""
    if launched() and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return shard()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def finish() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def launch(nproc: int, argv: list[str]) -> int:
    """``rnnkit train ... --nproc N``: run the same command in N processes on this machine through
    torchrun's launcher (a free port on loopback); the exit status is the workers'."""
    from torch.distributed.run import main as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    try:
        torchrun(["--nproc-per-node", str(nproc), "--standalone", "-m", "rnnkit", *argv])
    except ChildFailedError as e:
        failures = list(e.failures.values())
        print(f"rnnkit: error: {len(failures)} of {nproc} processes failed "
              f"(exit {failures[0].exitcode}); their messages are above", file=sys.stderr)
        return 2
    return 0


def without_nproc(argv: list[str]) -> list[str]:
    """The command line minus ``--nproc N`` / ``--nproc=N`` (the workers must not launch again)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


_reshard = False          # set from --reshard by the command line


def allow_reshard(allowed: bool) -> None:
    global _reshard
    _reshard = allowed


def reshard_allowed() -> bool:
    return _reshard


def broadcast(t: torch.Tensor) -> torch.Tensor:
    """Rank 0's ``t`` to every rank, in place (a no-op in one process)."""
    if dist.is_available() and dist.is_initialized():
        dist.broadcast(t, 0)
    return t


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over the ranks in place (a no-op in one process)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t)
    return t


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Rank 0's weights to every rank, so that all start from the same model."""
    if dist.is_available() and dist.is_initialized():
        for p in module.state_dict().values():
            dist.broadcast(p, 0)


def world_size_problem(saved: Optional[int], now: int) -> Optional[str]:
    """Why a run saved with ``saved`` processes cannot resume exactly with ``now`` (None if it can)."""
    saved = saved or 1
    if saved == now:
        return None
    return (f"it was trained by {saved} process(es) and this is {now}: the data shards and the "
            f"per-rank state would not line up. Resume with {saved} (--nproc {saved}), or pass "
            f"--reshard to continue with {now} (the batches continue, per-rank RNG and carried "
            f"states start afresh, so the loss curve is no longer the uninterrupted one)")
