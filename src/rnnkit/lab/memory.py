"""The long-range memory tasks of the RNN literature, and one small model to try every cell on them.

Shapes: B batch, T time (the task's length), H hidden size, K classes.

* adding (Hochreiter & Schmidhuber 1997, in the form of Le et al. 2015): T steps of (value, marker);
  values are U(0, 1), exactly two markers are 1, one in each half; the target is the sum of the two
  marked values. Predicting the mean sum, 1.0, scores var(a + b) = 2/12 = 0.167: that is the
  trivial baseline, and MSE < 0.01 counts as solved.
* copy (Arjovsky et al. 2016): 10 symbols from 1..8, then T - 1 blanks (0), the delimiter 9, and 10
  more blanks; at every step the target is blank except at the last 10, which must repeat the
  first 10. Length T + 20. Outputting blanks and then guessing scores 10·ln 8 / (T + 20) nats per
  step; solved means 99 % of the sequences recalled exactly, all 10 symbols.
* parity: T random bits; the target is whether the count of ones is odd. Guessing scores 50 %;
  solved means 99 % accuracy.

Every batch is fresh (the tasks are generated), so an "epoch" here is 100 batches. Runs go through
the shared trainer (run directory, checkpoints, resume, ``--log-grad-norms``) and stop as soon as an
evaluation reaches the task's target.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import GRU, LSTM, RNN
from ..tasks.common import UsageError, add_training_arguments, new_run_dir, read_json, \
    resolve_device, resume_device, train_config, write_json
from ..train.checkpoint import load_checkpoint
from ..train.trainer import TrainConfig, Trainer

TASKS = ("adding", "copy", "parity")
CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
STEPS_PER_EPOCH = 100
COPY_SYMBOLS, COPY_LENGTH, BLANK, DELIMITER = 8, 10, 0, 9
VALID_SIZE = 1000
TARGET = {"adding": ("val_mse", "<", 0.01), "copy": ("val_exact_recall", ">=", 0.99),
          "parity": ("val_accuracy", ">=", 0.99)}


# ---- the generators ----------------------------------------------------------------------------------

def adding_batch(n: int, T: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """x (n, T, 2): values and markers; y (n,): the sum of the two marked values."""
    if T < 2:
        raise ValueError(f"the adding problem needs T >= 2, got {T}")
    values = torch.rand(n, T, generator=generator)
    half = T // 2
    first = torch.randint(0, half, (n,), generator=generator)
    second = torch.randint(half, T, (n,), generator=generator)
    markers = torch.zeros(n, T)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    return torch.stack([values, markers], dim=-1), values[rows, first] + values[rows, second]


def copy_batch(n: int, T: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """x, y (n, T + 20) symbol ids: 10 symbols, T - 1 blanks, the delimiter, 10 blanks; y is blank
    but for its last 10, the first 10 of x."""
    if T < 1:
        raise ValueError(f"the copy task needs T >= 1, got {T}")
    symbols = torch.randint(1, COPY_SYMBOLS + 1, (n, COPY_LENGTH), generator=generator)
    x = torch.full((n, T + 2 * COPY_LENGTH), BLANK, dtype=torch.long)
    y = torch.full_like(x, BLANK)
    x[:, :COPY_LENGTH] = symbols
    x[:, COPY_LENGTH + T - 1] = DELIMITER
    y[:, -COPY_LENGTH:] = symbols
    return x, y


def parity_batch(n: int, T: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """x (n, T, 1) bits; y (n,) 1 where the number of ones is odd."""
    if T < 1:
        raise ValueError(f"the parity task needs T >= 1, got {T}")
    bits = torch.randint(0, 2, (n, T), generator=generator)
    return bits.unsqueeze(-1).float(), bits.sum(1) % 2


GENERATORS = {"adding": adding_batch, "copy": copy_batch, "parity": parity_batch}


def copy_baseline(T: int) -> float:
    """Cross-entropy per step of blanks and then uniform guesses: 10·ln 8 / (T + 20)."""
    return COPY_LENGTH * math.log(COPY_SYMBOLS) / (T + 2 * COPY_LENGTH)


# ---- the model -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemoryModelConfig:
    task: str
    cell: str = "lstm"
    hidden: int = 64
    layers: int = 1
    forget_bias: float = 1.0          # LSTM only: start remembering (Gers et al. 2000)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {self.cell!r}")


class MemoryModel(nn.Module):
    """A recurrent layer and a linear read-out: of the last step (adding, parity) or of every step
    (copy, whose symbols enter one-hot)."""

    def __init__(self, config: MemoryModelConfig) -> None:
        super().__init__()
        self.config = config
        inputs = {"adding": 2, "copy": COPY_SYMBOLS + 2, "parity": 1}[config.task]
        outputs = {"adding": 1, "copy": COPY_SYMBOLS + 1, "parity": 2}[config.task]
        extra = {"forget_bias": config.forget_bias} if config.cell == "lstm" else {}
        self.rnn = CELLS[config.cell](inputs, config.hidden, config.layers, batch_first=True, **extra)
        self.readout = nn.Linear(config.hidden, outputs)

    def inputs(self, x: Tensor) -> Tensor:
        """The recurrent layer's input: copy symbols one-hot, (B, T, 10); others as they are."""
        return F.one_hot(x, COPY_SYMBOLS + 2).float() if self.config.task == "copy" else x

    def forward(self, x: Tensor) -> Tensor:
        """adding (B,), parity (B, 2) logits, copy (B, T, 9) logits."""
        h, _ = self.rnn(self.inputs(x))                                  # (B, T, H)
        if self.config.task == "copy":
            return self.readout(h)
        out = self.readout(h[:, -1])                                     # (B, K)
        return out.squeeze(-1) if self.config.task == "adding" else out


def task_loss(task: str, out: Tensor, y: Tensor) -> Tensor:
    if task == "adding":
        return F.mse_loss(out, y)
    return F.cross_entropy(out.flatten(0, -2) if task == "copy" else out, y.flatten())


@torch.no_grad()
def task_metrics(task: str, out: Tensor, y: Tensor) -> dict[str, float]:
    metrics = {"val_loss": task_loss(task, out, y).item()}
    if task == "adding":
        metrics["val_mse"] = metrics["val_loss"]
    elif task == "copy":
        hit = out[:, -COPY_LENGTH:].argmax(-1) == y[:, -COPY_LENGTH:]   # (B, 10)
        metrics["val_symbol_accuracy"] = hit.float().mean().item()
        metrics["val_exact_recall"] = hit.all(1).float().mean().item()
    else:
        metrics["val_accuracy"] = (out.argmax(-1) == y).float().mean().item()
    name, op, bound = TARGET[task]
    metrics["target_reached"] = metrics[name] < bound if op == "<" else metrics[name] >= bound
    return metrics


class MemoryTask:
    """Trainer hooks: a fresh batch every step from a seeded generator (its state is the data
    position a resume restores), and a fixed validation set."""

    unit = "sequences"

    def __init__(self, task: str, length: int, batch_size: int, seed: int, device: torch.device):
        self.task, self.length, self.batch_size, self.device = task, length, batch_size, device
        self.generator = torch.Generator().manual_seed(seed)
        self.batches_drawn = 0
        valid = torch.Generator().manual_seed(seed + 1_000_003)
        self.valid = [t.to(device) for t in GENERATORS[task](VALID_SIZE, length, valid)]

    def steps_per_epoch(self) -> int:
        return STEPS_PER_EPOCH

    def epochs_done(self) -> float:
        return self.batches_drawn / STEPS_PER_EPOCH

    def train_step(self, model: nn.Module) -> tuple[Tensor, int]:
        x, y = GENERATORS[self.task](self.batch_size, self.length, self.generator)
        self.batches_drawn += 1
        return task_loss(self.task, model(x.to(self.device)), y.to(self.device)), self.batch_size

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict:
        model.eval()
        return task_metrics(self.task, model(self.valid[0]), self.valid[1])

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "batches_drawn": self.batches_drawn}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.batches_drawn = state["batches_drawn"]


# ---- runs --------------------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", choices=TASKS, default="adding")
    p.add_argument("--length", type=int, nargs="+", default=[100], metavar="T",
                   help="sequence length(s) T; several make a table")
    p.add_argument("--cell", choices=sorted(CELLS), nargs="+", default=["rnn", "lstm", "gru"],
                   help="cell(s) to try (default all three)")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--forget-bias", type=float, default=1.0, help="LSTM forget-gate bias at start")
    p.add_argument("--steps", type=int, default=4000,
                   help="training budget in batches (stops early once the target is reached)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    add_training_arguments(p, lr=3e-3, batch_size=32, clip=1.0, eval_every=200)
    p.set_defaults(schedule="constant")    # a decaying rate stalls the escape from the plateau


def check_single_process(args: argparse.Namespace) -> None:
    """The lab's runs are small: one process each (the shared flags include --nproc)."""
    if args.nproc != 1:
        raise UsageError("rnnkit lab runs in one process: leave out --nproc")


def run_dir_name(task: str, cell: str, length: int) -> str:
    return f"{task}-{cell}-T{length}"


def train_run(run: Path, task: str, cell: str, length: int, args: argparse.Namespace,
              device: torch.device) -> dict:
    """Train one cell on one task into ``run``; returns the summary with the task's figures."""
    model_cfg = MemoryModelConfig(task, cell, args.hidden, args.layers, args.forget_bias)
    cfg = train_config(args, device)
    config = {"task": "memory", "model": asdict(model_cfg), "train": asdict(cfg),
              "data": {"task": task, "length": length}, "batch_size": args.batch_size,
              "device": str(device)}
    write_json(run / "config.json", config)
    return _fit(run, config, device, resume=False)


def _fit(run: Path, config: dict, device: torch.device, resume: bool) -> dict:
    train = TrainConfig(**config["train"])
    torch.manual_seed(train.seed)
    model = MemoryModel(MemoryModelConfig(**config["model"])).to(device)
    task = MemoryTask(config["data"]["task"], config["data"]["length"], config["batch_size"],
                      train.seed, device)
    meta = {"task": "memory", "config": config}
    return Trainer(model, task, train, run, meta, device, resume=resume).fit()


def load_run(run: Path, device: torch.device) -> tuple[MemoryModel, dict]:
    weights, meta, _ = load_checkpoint(Path(run) / "last.safetensors", device)
    model = MemoryModel(MemoryModelConfig(**meta["config"]["model"])).to(device)
    model.load_state_dict(weights)
    return model.eval(), meta["config"]


def memory(args: argparse.Namespace) -> dict:
    """``rnnkit lab memory``: every (cell, length) asked, one run directory each, and a table."""
    check_single_process(args)
    if args.resume:
        config = read_json(args.resume / "config.json")
        if config.get("task") != "memory":
            raise UsageError(f"{args.resume} is not a `lab memory` run")
        device = resume_device(args, config)
        _fit(args.resume, config, device, resume=True)
        return {"runs": [_result(args.resume, config)]}
    if any(t < 2 for t in args.length):
        raise UsageError(f"--length must be at least 2, got {min(args.length)}")
    if args.steps <= 0:
        raise UsageError(f"--steps must be positive, got {args.steps}")
    if args.epochs is None and args.minutes is None:
        args.epochs = args.steps / STEPS_PER_EPOCH
    device = resolve_device(args.device)
    out = new_run_dir(args.out, f"memory-{args.task}")
    results = []
    for length in args.length:
        for cell in args.cell:
            run = out / run_dir_name(args.task, cell, length)
            run.mkdir()
            print(f"{args.task} T={length} {cell}: {run}", file=sys.stderr)
            train_run(run, args.task, cell, length, args, device)
            results.append(_result(run, read_json(run / "config.json")))
    table = {"task": args.task, "steps_budget": int(args.epochs * STEPS_PER_EPOCH),
             "hidden": args.hidden, "runs": results}
    write_json(out / "results.json", table)
    return table


def _result(run: Path, config: dict) -> dict:
    summary = read_json(run / "summary.json")
    task = config["data"]["task"]
    name = TARGET[task][0]
    row = {"cell": config["model"]["cell"], "length": config["data"]["length"], "run": str(run),
           "solved": bool(summary["final_target_reached"]), "steps": summary["steps"],
           "seconds": summary["seconds"], name: summary[f"final_{name}"],
           "best_" + name: summary[f"best_{name}"]}
    if task == "copy":
        row["val_loss"] = summary["final_val_loss"]
        row["baseline_loss"] = copy_baseline(row["length"])
    return row


def format_table(table: dict) -> str:
    """Markdown: one row per length, one column per cell: ✓ solved at step N, or the figure reached."""
    name = TARGET[table["task"]][0]
    cells = list(dict.fromkeys(r["cell"] for r in table["runs"]))
    lines = [f"| T | " + " | ".join(cells) + " |", "|---|" + "---|" * len(cells)]
    for length in dict.fromkeys(r["length"] for r in table["runs"]):
        row = {r["cell"]: r for r in table["runs"] if r["length"] == length}
        text = [f"solved at step {r['steps']} ({_figures(r, name)})" if r["solved"] else
                f"not solved ({_figures(r, name)} after {r['steps']})" for r in
                (row[c] for c in cells)]
        lines.append(f"| {length} | " + " | ".join(text) + " |")
    return "\n".join(lines)


def _figures(row: dict, name: str) -> str:
    """The task's figure; for copy also the loss against the memoryless baseline."""
    text = f"{name[4:].replace('_', ' ')} {row[name]:.3g}"
    if "baseline_loss" in row:
        text += f", loss {row['val_loss']:.4f} vs baseline {row['baseline_loss']:.4f}"
    return text
