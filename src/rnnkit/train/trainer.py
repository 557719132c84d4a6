"""The model-agnostic training loop every ``rnnkit train <task>`` shares.

A task supplies a :class:`TaskHooks` object (how to get the next batch, how to compute a loss, how to
evaluate); the trainer owns the rest: optimiser, learning-rate schedule, gradient clipping (by norm,
and by value as char-rnn does), a guard against non-finite losses and gradients, early stopping on the
validation loss, a wall-clock budget, progress output, ``metrics.jsonl``, ``summary.json``,
``loss.png`` and the ``best``/``last`` checkpoints.

Non-finite steps: a step whose loss or gradient norm is NaN/Inf never reaches the weights. With
``on_nonfinite="stop"`` (the default) the run stops with a `NonFiniteError` naming the step, the batch
(epoch and batch within it), the loss and the gradient norm; with ``"skip"`` the update is refused,
the line is logged and counted (``skipped_steps`` in summary.json), and training goes on, until
``MAX_CONSECUTIVE_SKIPS`` in a row stop it anyway (a NaN carried in the task's state, or diverged
weights, would only repeat). A skipped batch is not a step: ``step`` counts optimizer updates.

Data-parallel (``distributed.py``): each process trains on its rows of every global batch; after
backward one all-reduce sums the gradients, each weighted by its units, with the loss, so every
rank steps with the gradient of the global batch's mean loss and logs that loss; rank 0 evaluates
and tells the others the outcome, and writes every file; each other rank keeps its own RNG and task
state in ``last.rank<r>.safetensors`` beside ``last``.

Exact resume: the ``last`` checkpoint holds the model, optimiser, schedule, step, the task's data
position and carried state, and every RNG state (Python, NumPy, torch); a resumed run continues the
same loss curve. When ``last`` fails verification (a run killed between writing it and recording it,
a corrupted file), the resume falls back to ``last-prev`` with a warning (see checkpoint.py).
``deterministic`` also turns on torch's deterministic algorithms for the run, so two runs with the
same seed give identical weights on a GPU too (on a CPU they already do).
"""
from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from ..files import atomic_write, atomic_write_text, remove_stale_temps
from . import distributed
from .checkpoint import CheckpointError, load_checkpoint, load_latest, previous_path, \
    save_checkpoint
from .progress import Progress

OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
SCHEDULES = ("constant", "cosine", "plateau")
PRECISIONS = ("fp32", "bf16")
ON_NONFINITE = ("stop", "skip")
MAX_CONSECUTIVE_SKIPS = 10           # --on-nonfinite skip: this many non-finite steps in a row stop
GRAD_NORMS = "grad_norms.jsonl"      # with --log-grad-norms: {"step", "grad_norm", "clipped"} a line


class NonFiniteError(RuntimeError):
    """The loss or the gradient became NaN/Inf; nothing was saved from that step."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: Optional[float] = None       # stop after this many passes over the training data
    minutes: Optional[float] = None      # ... or after this wall-clock budget, whichever comes first
    lr: float = 2e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    schedule: str = "cosine"             # cosine: lr → lr·min_lr_ratio as the budget is spent
    warmup_steps: int = 0
    min_lr_ratio: float = 0.05
    clip: Optional[float] = 5.0          # max gradient norm (None: no clipping)
    clip_value: Optional[float] = None   # clamp each gradient element to ±clip_value (char-rnn)
    eval_every: int = 500                # steps between validations (and `last` checkpoints)
    log_every: int = 50
    patience: Optional[int] = None       # early stopping: evaluations without improvement
    seed: int = 0
    precision: str = "fp32"              # bf16: forward under bfloat16 autocast (weights stay fp32)
    log_grad_norms: bool = False         # every step's gradient norm (before clipping) to a file
    on_nonfinite: str = "stop"           # a NaN/Inf loss or gradient: stop, or skip the step
    deterministic: bool = False          # torch's deterministic algorithms (and cuBLAS workspace)

    def __post_init__(self) -> None:
        if self.epochs is None and self.minutes is None:
            raise ValueError("give a training budget: --epochs and/or --minutes")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.on_nonfinite not in ON_NONFINITE:
            raise ValueError(f"on_nonfinite must be one of {ON_NONFINITE}, got {self.on_nonfinite!r}")
        for name in ("epochs", "minutes", "clip", "clip_value"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {v}")
        if not self.lr > 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")


class TaskHooks(Protocol):
    """What a task gives the trainer. ``state_dict`` holds the data position and carried state."""

    unit: str                                   # what throughput counts: "chars", "examples", ...

    def steps_per_epoch(self) -> int: ...
    def epochs_done(self) -> float: ...
    def train_step(self, model: nn.Module) -> tuple[Tensor, int]:
        """Draw the next batch, return (mean loss to backpropagate, number of units in it)."""
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Validation metrics; must contain ``val_loss``."""
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


def rng_state() -> dict:
    kind, keys, position, has_gauss, cached_gauss = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss,
                       cached_gauss]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    if "numpy" in state:                 # checkpoints from before NumPy was seeded lack it
        kind, keys, position, has_gauss, cached_gauss = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss,
                             cached_gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def native_bf16(device: torch.device) -> bool:
    """Whether bfloat16 matrix work is native here: AMX/AVX512-BF16 via oneDNN, or a bf16 GPU."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.backends.mkldnn.is_available() and \
        torch.ops.mkldnn._is_mkldnn_bf16_supported()


def seed_everything(seed: int) -> None:
    """Python's, NumPy's and torch's generators (CPU and every GPU). rnnkit draws its batches in the
    training process itself, so there are no data-loader workers to seed."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def use_deterministic_algorithms(device: torch.device) -> None:
    """torch's deterministic kernels from here on (an op without one raises instead of varying);
    on CUDA, cuBLAS needs a fixed workspace for that, set before its first use in the process."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    params = list(params)
    # The fused kernels update all parameters in one pass (CPU and CUDA): several times faster
    # than the per-tensor loop when a large embedding is updated every step.
    fused = {"fused": True} if all(p.dtype.is_floating_point for p in params) else {}
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
    if cfg.optimizer == "rmsprop":   # char-rnn's choice (alpha 0.95)
        return torch.optim.RMSprop(params, lr=cfg.lr, alpha=0.95, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay, **fused)


class Trainer:
    """Runs training into ``run_dir``; ``fit()`` returns the summary dict (also in summary.json)."""

    def __init__(self, model: nn.Module, task: TaskHooks, cfg: TrainConfig, run_dir: Path,
                 meta: dict, device: torch.device, resume: bool = False):
        self.model, self.task, self.cfg, self.run_dir = model, task, cfg, Path(run_dir)
        self.meta, self.device = meta, device
        self.shard = distributed.shard()          # rank 0 of 1 unless data-parallel
        self.progress = Progress(total_seconds=cfg.minutes * 60 if cfg.minutes else None,
                                 total_steps=None, unit=task.unit, quiet=not self.shard.main)
        self.log = self.progress.message
        self.optimizer = make_optimizer(cfg, [p for p in model.parameters() if p.requires_grad])
        self.step, self.best_val, self.bad_evals = 0, math.inf, 0
        self.seconds_before = 0.0            # wall time of earlier (interrupted) segments
        self.plateau_scale = 1.0
        self.loss_sum, self.loss_n = 0.0, 0       # training losses since the last log line
        self.skipped_steps, self.consecutive_skips = 0, 0    # --on-nonfinite skip
        self.restored_eval: dict = {}
        if resume:
            self._restore()
        else:
            seed_everything(cfg.seed + self.shard.rank)      # dropout masks differ across ranks
            distributed.broadcast_parameters(model)           # all ranks start from rank 0's model

    # -- learning rate ------------------------------------------------------------------------------

    def budget_fraction(self, seconds: float) -> float:
        """How much of the budget is spent: steps of the --epochs budget, or time of --minutes
        (whichever is further). With --epochs alone this is a function of the step, so a resume
        replays the schedule exactly; a --minutes budget follows the clock."""
        fractions = []
        if self.cfg.epochs:
            fractions.append(self.step / (self.cfg.epochs * self.task.steps_per_epoch()))
        if self.cfg.minutes:
            fractions.append(seconds / (self.cfg.minutes * 60))
        return min(1.0, max(fractions))

    def lr_at(self, step: int, budget_fraction: float) -> float:
        cfg = self.cfg
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        if cfg.schedule == "cosine":   # from lr down to lr·min_lr_ratio when the budget is spent
            floor = cfg.min_lr_ratio
            return cfg.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * budget_fraction)))
        return cfg.lr * self.plateau_scale

    # -- checkpoints ----------------------------------------------------------------------------------

    def _training_state(self, elapsed: float) -> dict:
        return {"step": self.step, "best_val": self.best_val if math.isfinite(self.best_val) else None,
                "bad_evals": self.bad_evals, "plateau_scale": self.plateau_scale, "seconds": elapsed,
                "loss_window": [self.loss_sum, self.loss_n], "skipped_steps": self.skipped_steps,
                "optimizer": self.optimizer.state_dict(), "task": self.task.state_dict(),
                "rng": rng_state(), "world_size": self.shard.world}

    def _save(self, name: str, elapsed: float, metrics: dict) -> None:
        meta = dict(self.meta, step=self.step, metrics=metrics)
        if name == "last" and self.shard.world > 1:
            # Each other rank first keeps what is its own, one at a time (they share the
            # manifest); rank 0's `last` then records the step they all belong to.
            for turn in range(1, self.shard.world):
                if self.shard.rank == turn:
                    save_checkpoint(self._rank_state_path(), {}, {"step": self.step},
                                    {"task": self.task.state_dict(), "rng": rng_state()},
                                    keep_previous=True)
                distributed.barrier()
        if not self.shard.main:
            return
        state = self._training_state(elapsed) if name == "last" else None
        save_checkpoint(self.run_dir / f"{name}.safetensors", self.model.state_dict(), meta, state,
                        keep_previous=name == "last")

    def _rank_state_path(self) -> Path:
        return self.run_dir / f"last.rank{self.shard.rank}.safetensors"

    def _rank_state(self) -> dict:
        """This rank's task and RNG state for the step of the ``last`` being resumed: in its file
        or, when a run was killed between the two saves, in the previous one."""
        path = self._rank_state_path()
        for candidate in (path, previous_path(path)):
            try:
                _, meta, state = load_checkpoint(candidate)
            except CheckpointError:
                continue
            if meta["step"] == self.step:
                return state
        raise CheckpointError(f"{path}: no state of rank {self.shard.rank} for step {self.step} "
                              f"(the step of the checkpoint being resumed)")

    def _restore(self) -> None:
        # Falls back to last-prev when last fails verification (killed before it was recorded).
        weights, meta, state, path = load_latest(self.run_dir / "last.safetensors", warn=self.log)
        self.restored_eval = meta.get("metrics") or {}    # a finished run is not evaluated again
        problem = distributed.world_size_problem(state.get("world_size"), self.shard.world)
        if problem and not distributed.reshard_allowed():
            raise CheckpointError(f"refusing to resume {self.run_dir}: {problem}")
        if self.shard.main:
            remove_stale_temps(self.run_dir)      # what a killed run's atomic writes left
        self.step = state["step"]
        if self.shard.rank and not problem:       # this rank's own data state and RNG
            state = dict(state, **self._rank_state())
        self.model.load_state_dict(weights)
        self.optimizer.load_state_dict(state["optimizer"])
        self.task.load_state_dict(state["task"])
        self.bad_evals = state["bad_evals"]
        self.best_val = math.inf if state["best_val"] is None else state["best_val"]
        self.plateau_scale = state["plateau_scale"]
        # The losses since the last log line: the resumed run logs the same mean as an unbroken one.
        self.loss_sum, self.loss_n = state.get("loss_window", (0.0, 0))
        self.skipped_steps = state.get("skipped_steps", 0)
        self.seconds_before = state["seconds"]
        set_rng_state(state["rng"])
        if problem:                               # --reshard: fresh per-rank random streams
            seed_everything(self.cfg.seed + self.shard.rank + 1_000_003 * self.step)
        if self.shard.main:
            truncate_metrics(self.run_dir / "metrics.jsonl", self.step)
            truncate_metrics(self.run_dir / GRAD_NORMS, self.step)
        self.log(f"resumed at step {self.step} from {path}"
                 + (f" with {self.shard.world} processes (--reshard)" if problem else ""))

    # -- the loop ---------------------------------------------------------------------------------------

    def fit(self) -> dict:
        cfg, model, task = self.cfg, self.model, self.task
        params = [p for p in model.parameters() if p.requires_grad]
        main = self.shard.main                    # the rank that writes files
        metrics_file = open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") if main else None
        # One row per step, so that every clipping event shows (the log rows are every 50 steps).
        norms_file = open(self.run_dir / GRAD_NORMS, "a", encoding="utf-8") \
            if cfg.log_grad_norms and main else None
        start = time.perf_counter()
        clock = lambda: self.seconds_before + time.perf_counter() - start
        # Data-parallel ranks must agree on the schedule and on when a --minutes budget is spent:
        # they all read the ranks' mean clock, which every step's all-reduce brings.
        self.synced_seconds = self.seconds_before
        elapsed = clock if self.shard.world == 1 else lambda: self.synced_seconds
        progress = self.progress
        if cfg.epochs:
            progress.total_steps = int(cfg.epochs * task.steps_per_epoch())
        units_since, time_since = 0, time.perf_counter()
        last_eval: dict[str, float] = self.restored_eval
        # Vanishing gradients end up as subnormal floats, which the CPU handles in microcode: the
        # backward pass of an RNN whose loss sits at the last step ran 4.7-11× slower here (torch.nn
        # too). Flushing them to zero changes nothing that float32 training could tell apart. The
        # flag is process-wide: it is put back (to torch's default, off) when fit() ends.
        torch.set_flush_denormal(True)
        stop_reason = "budget"
        deterministic_before = torch.are_deterministic_algorithms_enabled()
        if cfg.deterministic:
            use_deterministic_algorithms(self.device)

        try:
            while self.budget_fraction(elapsed()) < 1.0:
                lr = self.lr_at(self.step, self.budget_fraction(elapsed()))
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                model.train()
                batch_position = task.epochs_done()    # where this batch is drawn: for diagnostics
                # bf16 autocast runs the GEMMs and the fused RNN kernel in bfloat16 (AMX on recent
                # Xeons, tensor cores on GPUs) with fp32 master weights; backward runs outside it.
                with torch.autocast(self.device.type, dtype=torch.bfloat16,
                                    enabled=cfg.precision == "bf16"):
                    loss, units = task.train_step(model)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.shard.world > 1:
                    loss, units = self._all_reduce(params, loss.detach(), units, clock())
                if cfg.clip_value:
                    torch.nn.utils.clip_grad_value_(params, cfg.clip_value)
                grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.clip or math.inf)
                if not bool(torch.isfinite(loss) & torch.isfinite(grad_norm)):
                    self._refuse_step(loss, grad_norm, batch_position)     # or raise
                    continue
                self.consecutive_skips = 0
                if norms_file:
                    norms_file.write(json.dumps({"step": self.step + 1, "grad_norm": float(grad_norm),
                                                 "clipped": bool(cfg.clip and grad_norm > cfg.clip)})
                                     + "\n")
                self.optimizer.step()
                if hasattr(model, "constrain_weights"):    # e.g. Kim's max-norm on TextCNN's output
                    model.constrain_weights()
                self.step += 1
                self.loss_sum, self.loss_n = self.loss_sum + loss.item(), self.loss_n + 1
                units_since += units

                if self.step % cfg.log_every == 0:
                    now = time.perf_counter()
                    rate = units_since / max(now - time_since, 1e-9)     # all ranks' units
                    row = {"step": self.step, "train_loss": self.loss_sum / self.loss_n,
                           "grad_norm": float(grad_norm), "lr": lr,
                           f"{task.unit}_per_s": rate, "epoch": task.epochs_done(),
                           "seconds": elapsed()}
                    _write_row(metrics_file, row)
                    progress.update(self.step, elapsed(), row["train_loss"], rate)
                    units_since, time_since, self.loss_sum, self.loss_n = 0, now, 0.0, 0

                if self.step % cfg.eval_every == 0:
                    if norms_file:
                        norms_file.flush()        # before the checkpoint that a resume starts from
                    last_eval = self._evaluate_and_save(metrics_file, elapsed())
                    if cfg.patience and self.bad_evals >= cfg.patience:
                        stop_reason = "early_stopping"
                        break
                    if last_eval.get("target_reached"):    # e.g. a memory task solved
                        stop_reason = "target_reached"
                        break
            if not last_eval or last_eval.get("step") != self.step:
                last_eval = self._evaluate_and_save(metrics_file, elapsed())
        except KeyboardInterrupt:
            stop_reason = "interrupted"
            self.log("interrupted: the last complete checkpoint is kept; --resume continues from it")
            raise
        finally:
            torch.set_flush_denormal(False)
            torch.use_deterministic_algorithms(deterministic_before)
            progress.close()
            if metrics_file:
                metrics_file.close()
            if norms_file:
                norms_file.close()
        if not main:
            raise distributed.WorkerDone()

        summary = self._summary(last_eval, elapsed(), stop_reason)
        atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        plot_losses(self.run_dir / "metrics.jsonl", self.run_dir / "loss.png")
        if cfg.log_grad_norms:
            plot_grad_norms(self.run_dir / GRAD_NORMS, self.run_dir / "grad_norms.png", cfg.clip)
        return summary

    def _refuse_step(self, loss: Tensor, grad_norm: Tensor, batch_position: float) -> None:
        """A non-finite loss or gradient: no update. Raises `NonFiniteError` with the diagnostic
        (--on-nonfinite stop, or too many skips in a row); else logs and counts the skip."""
        self.optimizer.zero_grad(set_to_none=True)
        per_epoch = self.task.steps_per_epoch()
        epoch = int(batch_position)
        batch = min(round((batch_position - epoch) * per_epoch), per_epoch - 1)
        what = (f"loss is {loss.item():.6g} at step {self.step + 1} (epoch {epoch + 1}, batch "
                f"{batch + 1} of {per_epoch}), gradient norm {grad_norm.item():.6g}")
        if self.cfg.on_nonfinite == "stop":
            raise NonFiniteError(f"{what}: stopping without saving this step "
                                 f"(--on-nonfinite skip would skip it)")
        self.skipped_steps += 1
        self.consecutive_skips += 1
        if self.consecutive_skips >= MAX_CONSECUTIVE_SKIPS:
            raise NonFiniteError(f"{what}: the last {self.consecutive_skips} batches were all "
                                 f"non-finite; stopping without saving them")
        self.log(f"skipped: {what} ({self.skipped_steps} skipped so far)")

    def _all_reduce(self, params: list[Tensor], loss: Tensor, units: int, seconds: float
                    ) -> tuple[Tensor, int]:
        """Data-parallel: one all-reduce of every rank's gradients, loss and clock, each gradient
        and loss weighted by the rank's units; leaves in every ``p.grad`` the gradient of the mean
        loss over the global batch (what one process would compute on it) and returns that mean
        loss and the global units. A NaN on any rank reaches every rank, so all refuse the step."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads] +
                         [loss.reshape(1).to(grads[0].dtype), grads[0].new_ones(1)]) * units
        flat = torch.cat([flat, flat.new_tensor([seconds])])
        distributed.all_reduce_sum(flat)
        total = flat[-2]
        self.synced_seconds = float(flat[-1]) / self.shard.world
        offset = 0
        for p, g in zip(params, grads):
            p.grad = (flat[offset: offset + g.numel()] / total).view_as(g)
            offset += g.numel()
        return flat[-3] / total, int(total)

    def _evaluate_and_save(self, metrics_file, seconds: float) -> dict:
        metrics = self.task.evaluate(self.model) if self.shard.main else {}
        if self.shard.world > 1:                  # rank 0's verdict, so that all ranks decide alike
            verdict = torch.tensor([metrics.get("val_loss", 0.0),
                                    float(bool(metrics.get("target_reached")))],
                                   dtype=torch.float64, device=self.device)    # NCCL: on the GPU
            distributed.broadcast(verdict)
            metrics = metrics or {"val_loss": float(verdict[0]), "target_reached": bool(verdict[1])}
        val = metrics["val_loss"]
        if not math.isfinite(val):
            raise NonFiniteError(f"validation loss is {val} at step {self.step}; not saved")
        row = {"step": self.step, **metrics, "seconds": seconds}
        _write_row(metrics_file, row)
        improved = val < self.best_val
        if improved:
            self.best_val, self.bad_evals = val, 0
            self._save("best", seconds, row)
        else:
            self.bad_evals += 1
            if self.cfg.schedule == "plateau":
                self.plateau_scale *= 0.5
        self._save("last", seconds, row)
        self.log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in row.items()) + (" *" if improved else ""))
        return row

    def _summary(self, last_eval: dict, seconds: float, stop_reason: str) -> dict:
        """Steps, time, and every metric of the task as ``final_<name>`` and ``best_<name>`` (the
        evaluation with the lowest val_loss), e.g. final_val_loss, best_val_bpc."""
        best = None
        for line in (self.run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if "val_loss" in row and (best is None or row["val_loss"] < best["val_loss"]):
                best = row
        summary = {"task": self.meta.get("task"), "steps": self.step, "seconds": round(seconds, 2),
                   "stop_reason": stop_reason, "epochs": self.task.epochs_done(),
                   "best_step": best["step"], "skipped_steps": self.skipped_steps}
        for prefix, row in (("final", last_eval), ("best", best)):
            summary.update({f"{prefix}_{k}": v for k, v in row.items() if k not in ("step", "seconds")})
        return summary


def _write_row(f, row: dict) -> None:
    if f is None:                    # a data-parallel rank other than 0 writes no files
        return
    f.write(json.dumps(row) + "\n")
    f.flush()


def truncate_metrics(path: Path, step: int) -> None:
    """Drop rows logged after the checkpoint we resume from (the killed run got further), and a
    last line cut off by the kill."""
    if not path.exists():
        return
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if lines:
        try:
            json.loads(lines[-1])
        except json.JSONDecodeError:
            lines.pop()
    rows = [line for line in lines if json.loads(line)["step"] <= step]
    atomic_write_text(path, "".join(r + "\n" for r in rows))


def plot_losses(metrics_path: Path, png_path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_path.read_text(encoding="utf-8").splitlines()]
    train = [(r["step"], r["train_loss"]) for r in rows if "train_loss" in r]
    val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train), label="train", lw=1)
    if val:
        ax.plot(*zip(*val), "o-", label="validation", lw=1.5, ms=3)
    ax.set_ylabel("loss (nats per unit)")
    _finish(plt, fig, ax, png_path)


def plot_grad_norms(norms_path: Path, png_path: Path, clip: Optional[float]) -> None:
    """Every step's gradient norm (log scale), the clipping threshold, and the clipped steps."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in norms_path.read_text(encoding="utf-8").splitlines()]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot([r["step"] for r in rows], [r["grad_norm"] for r in rows], lw=0.6, label="gradient norm")
    clipped = [r for r in rows if r["clipped"]]
    if clip:
        ax.axhline(clip, color="C3", ls="--", lw=1, label=f"--clip {clip:g}")
    if clipped:
        ax.plot([r["step"] for r in clipped], [r["grad_norm"] for r in clipped], "x", color="C3",
                ms=4, label=f"clipped ({len(clipped)} of {len(rows)} steps)")
    ax.set_yscale("log")
    ax.set_ylabel("‖∇ loss‖ before clipping")
    _finish(plt, fig, ax, png_path)


def _finish(plt, fig, ax, png_path: Path) -> None:
    """A curve over training steps: axis label, grid, legend, then the PNG (atomically)."""
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_write(png_path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
