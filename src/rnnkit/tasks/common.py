"""What every ``rnnkit train <task>`` shares: the training flags, the device, the run directory.

Run directory layout (written by every task):
    config.json     fully resolved configuration (task, model, training, data)
    vocab.json      the vocabulary, when the task has one
    metrics.jsonl   one JSON object per logged step and per evaluation
    summary.json    final and best metrics, steps, seconds
    loss.png        training and validation loss curves
    best.safetensors / last.safetensors   checkpoints (weights + JSON header), written atomically
    last-prev.safetensors   the checkpoint before ``last``: a resume falls back to it
    checksums.json  size and sha256 of each checkpoint, verified when one is loaded
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional

import torch

from ..data.batching import BucketBatches
from ..data.corpora import CORPORA, Corpus, load_corpus
from ..data.errors import data_from
from ..data.text import read_text, split_train_valid
from ..files import atomic_write_text
from ..train import distributed
from ..train.trainer import (MAX_CONSECUTIVE_SKIPS, ON_NONFINITE, OPTIMIZERS, SCHEDULES,
                             TrainConfig, native_bf16)


class UsageError(ValueError):
    """A bad command-line request; the CLI prints it as one line and exits with status 2."""


def add_training_arguments(p: argparse.ArgumentParser, *, lr: Optional[float],
                           batch_size: Optional[int],
                           clip: Optional[float] = 5.0, eval_every: Optional[int] = 200) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=float, help="passes over the training data")
    g.add_argument("--minutes", type=float, help="wall-clock training budget")
    g.add_argument("--lr", type=float, default=lr,
                   help=f"learning rate (default {lr if lr else 'per data set'})")
    g.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    g.add_argument("--weight-decay", type=float, default=0.0)
    g.add_argument("--schedule", choices=SCHEDULES, default="cosine",
                   help="cosine: decay over the planned steps of the budget (default)")
    g.add_argument("--warmup-steps", type=int, default=0)
    g.add_argument("--clip", type=float, default=clip, help="max gradient norm (0: off)")
    g.add_argument("--clip-value", type=float, help="clamp each gradient element (char-rnn style)")
    g.add_argument("--batch-size", type=int, default=batch_size,
                   help=f"(default {batch_size or 'per data set'})")
    g.add_argument("--eval-every", type=int, default=eval_every,
                   help=f"steps between validations (default {eval_every or 'once an epoch'})")
    g.add_argument("--log-every", type=int, default=50)
    g.add_argument("--patience", type=int, help="early stopping after N evaluations without gain")
    g.add_argument("--log-grad-norms", action="store_true",
                   help="write every step's gradient norm (before clipping) to grad_norms.jsonl "
                        "and plot it with the clipping events (grad_norms.png)")
    g.add_argument("--on-nonfinite", choices=ON_NONFINITE, default="stop",
                   help="a NaN/Inf loss or gradient: stop with a diagnostic (default), or skip "
                        f"that batch (stops anyway after {MAX_CONSECUTIVE_SKIPS} in a row)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--deterministic", action="store_true",
                   help="torch's deterministic algorithms: two runs with one --seed give identical "
                        "weights on a GPU too (slower there)")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    g.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="bf16: bfloat16 autocast for the forward pass; auto: bf16 where the "
                        "hardware does it natively (AMX / AVX512-BF16 CPUs, bf16 GPUs), else fp32")
    g.add_argument("--out", type=Path, help="run directory (default runs/<task>-<time>)")
    g.add_argument("--resume", type=Path, metavar="RUN_DIR",
                   help="continue an interrupted run exactly where its last checkpoint left it")
    g.add_argument("--nproc", type=int, default=1,
                   help="data-parallel processes on this machine (torch.distributed, through "
                        "torchrun; for several machines run torchrun yourself)")
    g.add_argument("--reshard", action="store_true",
                   help="--resume with a different number of processes than the run had")


def apply_recipe(args: argparse.Namespace, recipe: dict) -> None:
    """Fill every flag the user left unset (None) from a data set's recipe; the recipe's ``epochs``
    only when neither --epochs nor --minutes gave a budget."""
    if args.epochs is None and args.minutes is None:
        args.epochs = recipe["epochs"]
    for key, value in recipe.items():
        if key != "epochs" and getattr(args, key, None) is None:
            setattr(args, key, value)


class BatchedTask:
    """The trainer hooks of a task that draws its examples from ``self.batches`` (shuffled,
    length-bucketed mini-batches): progress through the epochs, and the data position a resume
    needs."""

    batches: BucketBatches

    def steps_per_epoch(self) -> int:
        return len(self.batches)

    def epochs_done(self) -> float:
        return self.batches.epoch + self.batches.batch / len(self.batches)

    def state_dict(self) -> dict:
        return {"batches": self.batches.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.batches.load_state_dict(state["batches"])


def train_config(args: argparse.Namespace, device: torch.device) -> TrainConfig:
    if args.batch_size is not None and args.batch_size <= 0:
        raise UsageError(f"--batch-size must be positive, got {args.batch_size}")
    precision = args.precision
    if precision == "auto":
        precision = "bf16" if native_bf16(device) else "fp32"
    return TrainConfig(precision=precision, epochs=args.epochs, minutes=args.minutes, lr=args.lr,
                       optimizer=args.optimizer, weight_decay=args.weight_decay,
                       schedule=args.schedule, warmup_steps=args.warmup_steps,
                       clip=args.clip or None, clip_value=args.clip_value,
                       eval_every=args.eval_every, log_every=args.log_every,
                       patience=args.patience, seed=args.seed,
                       log_grad_norms=args.log_grad_norms, on_nonfinite=args.on_nonfinite,
                       deterministic=args.deterministic)


def per_epoch_evaluation(cfg: TrainConfig, steps_per_epoch: int) -> TrainConfig:
    """Validate once an epoch unless --eval-every said otherwise."""
    return cfg if cfg.eval_every is not None else replace(cfg, eval_every=steps_per_epoch)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N") from None


def default_run_dir(task: str) -> Path:
    return Path("runs") / f"{task}-{time.strftime('%Y%m%d-%H%M%S')}"


def resume_device(args: argparse.Namespace, config: dict) -> torch.device:
    """The device a resumed run continues on: --device if given, else the one it was trained on."""
    return resolve_device(args.device if args.device != "auto" else config["device"])


def refuse_changed_test_split(run: Path, config: dict, fingerprint: str, what: str) -> None:
    """A run is resumed or evaluated only on the data it was trained on: the test split rebuilt
    now must have the fingerprint the run recorded."""
    if fingerprint != config["data"]["test_fingerprint"]:
        raise UsageError(f"{run}: {what} changed since this run was trained (its test split no "
                         f"longer matches)")


def new_run_dir(out: Optional[Path], task: str) -> Path:
    """Create a fresh run directory; an existing non-empty one is never touched. In data-parallel
    training rank 0 creates it and the other ranks only name it (they write nothing there)."""
    shard = distributed.shard()
    if out is None and shard.world > 1:
        raise UsageError("with several processes, name the run directory with --out")
    run = out or default_run_dir(task)
    if not shard.main:
        return run
    if run.exists() and (not run.is_dir() or any(run.iterdir())):
        raise UsageError(f"{run} already exists and is not empty: choose another --out, or "
                         f"continue it with --resume {run}")
    run.mkdir(parents=True, exist_ok=True)
    return run


def write_json(path: Path, obj: dict) -> None:
    """Write a run-directory file atomically (rank 0 only in data-parallel training)."""
    if distributed.shard().main:
        atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise UsageError(f"{path} is missing: is {path.parent} an rnnkit run directory?")
    return json.loads(path.read_text(encoding="utf-8"))


def read_run_config(run_dir: Path) -> dict:
    return read_json(Path(run_dir) / "config.json")


def resumable_config(run: Path, task: str, what: str) -> dict:
    """The config of a run ``--resume`` can continue: one of ``task`` with a ``last`` checkpoint."""
    config = read_run_config(run)
    if config.get("task") != task:
        raise UsageError(f"{run} is a {config.get('task')!r} run, not {what}")
    if not (Path(run) / "last.safetensors").is_file():
        raise UsageError(f"{run} has no last.safetensors to resume from")
    return config


def checkpoint_path(run_dir: Path) -> Path:
    """The checkpoint to use a trained run with: ``best``, else ``last``."""
    for name in ("best", "last"):
        path = Path(run_dir) / f"{name}.safetensors"
        if path.is_file():
            return path
    raise UsageError(f"{run_dir} has no checkpoint (best.safetensors or last.safetensors)")


# ---- text corpora (language models, the Markov baseline) --------------------------------------------

def add_text_arguments(p: argparse.ArgumentParser) -> None:
    d = p.add_argument_group("data")
    src = d.add_mutually_exclusive_group()
    src.add_argument("--dataset", choices=CORPORA, help="a bundled corpus")
    src.add_argument("--text", nargs="+", metavar="FILE", help="your own text file(s)")
    d.add_argument("--encoding", default="utf-8")
    d.add_argument("--level", choices=("char", "word"), default="char")
    d.add_argument("--min-count", type=int, default=2, help="word level: rarer words become <unk>")
    d.add_argument("--valid-fraction", type=float, default=0.05,
                   help="--text: the tail kept for validation")


def load_text_corpus(dataset: Optional[str], text_files: Optional[list[str]], encoding: str,
                     valid_fraction: float) -> Corpus:
    """A bundled corpus with its fixed split, or the user's files split at a line boundary."""
    if dataset:
        return load_corpus(dataset)
    if not text_files:
        raise UsageError("give the training text: --dataset NAME or --text FILE [FILE ...]")
    # split_train_valid rejects a bad fraction, and a text that leaves either part empty.
    text = read_text(text_files, encoding=encoding)
    with data_from(" ".join(str(f) for f in text_files)):
        train, valid = split_train_valid(text, valid_fraction)
    return Corpus("text", train, valid, " ".join(str(f) for f in text_files))


def corpus_fingerprint(corpus: Corpus) -> str:
    """sha256 of the training and validation text: a resume must see exactly the same data."""
    h = hashlib.sha256()
    for part in (corpus.train, "\0", corpus.valid):
        h.update(part.encode("utf-8", "surrogatepass"))
    return h.hexdigest()
