"""How far back a loss reaches: ‖∂loss/∂h_t‖ and ‖∂loss/∂x_t‖ against the distance T - t.

Shapes: B batch, T time, I input size, H hidden size.

The lectures' argument, measured. In a plain RNN ∂h_T/∂h_t = Π_{k=t+1..T} diag(tanh'(a_k)) W_hh, a
product of T - t Jacobians whose norm shrinks (or grows) geometrically with the distance. The LSTM's
cell c_k = f_k ⊙ c_{k-1} + i_k ⊙ g_k has a path whose Jacobian is diag(f_k), close to the identity
when the forget gates are open; the GRU's h_k = z_k ⊙ h_{k-1} + (1 - z_k) ⊙ n_k has diag(z_k).

The loss is that of the adding problem (or parity), which sits at the last step only, so "distance
to the loss" is T - t. Everything runs in float64: float32 flushes what a plain RNN leaves of its
gradient after a few dozen steps (below 1e-38) to zero, and the point is to see how small it gets.
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch
from torch import Tensor

from ..tasks.common import UsageError, add_training_arguments, new_run_dir, resolve_device, \
    write_json
from ..viz.plots import plot_gradient_profiles
from .memory import CELLS, GENERATORS, STEPS_PER_EPOCH, MemoryModel, MemoryModelConfig, \
    check_single_process, load_run, run_dir_name, task_loss, train_run

PROFILE_TASKS = ("adding", "parity")       # tasks whose loss sits at the last step only


def gradient_profile(model: MemoryModel, x: Tensor, y: Tensor) -> dict[str, list[float]]:
    """Mean over the batch of ‖∂loss/∂h_t‖ (the last layer's state), of ‖∂loss/∂c_t‖ for an LSTM
    and of ‖∂loss/∂x_t‖, for t = 1..T (index t - 1), in float64.

    The layer runs one step at a time so that every h_t is a tensor of the graph that the next
    step reads; the read-out takes the final state, so each h_t reaches the loss only through the
    recurrence. One backward pass gives all T gradients.
    """
    task = model.config.task
    if task not in PROFILE_TASKS:
        raise ValueError(f"gradient profiles need a loss at the last step only: {PROFILE_TASKS}")
    model = copy.deepcopy(model).double()
    inputs = model.inputs(x).double().requires_grad_()                  # (B, T, I)
    state, hs, cs = None, [], []
    for x_t in inputs.unbind(1):
        _, state = model.rnn(x_t.unsqueeze(1), state)                   # state: (L, B, H) each
        h, c = (state, None) if isinstance(state, Tensor) else state
        hs.append(h)
        if c is not None:
            cs.append(c)
    out = model.readout(hs[-1][-1])                                      # (B, K)
    loss = task_loss(task, out.squeeze(-1) if task == "adding" else out, y)
    # c_T reaches nothing (the read-out takes h_T): its gradient is None, counted as 0.
    grads = torch.autograd.grad(loss, [inputs] + hs + cs, allow_unused=True)
    per_step = lambda g: 0.0 if g is None else g.norm(dim=-1).mean().item()   # ‖·‖ over H, mean over B
    T = inputs.shape[1]
    profile = {"h": [per_step(g[-1]) for g in grads[1: T + 1]],
               "x": [per_step(g) for g in grads[0].unbind(1)]}
    if cs:
        profile["c"] = [per_step(None if g is None else g[-1]) for g in grads[T + 1:]]
    return profile


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cell", choices=sorted(CELLS), nargs="+", default=["rnn", "lstm", "gru"])
    p.add_argument("--length", type=int, default=100, metavar="T")
    p.add_argument("--task", choices=PROFILE_TASKS, default="adding")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--forget-bias", type=float, default=1.0, help="LSTM forget-gate bias at start")
    p.add_argument("--train-steps", type=int, default=1000,
                   help="measure again after this many training steps on the task (0: only at "
                        "initialisation)")
    p.add_argument("--batch", type=int, default=256, help="sequences the norms are averaged over")
    p.add_argument("--json", action="store_true", help="print the profiles as one JSON object")
    add_training_arguments(p, lr=3e-3, batch_size=32, clip=1.0, eval_every=200)
    p.set_defaults(schedule="constant")    # a decaying rate stalls the escape from the plateau


def gradients(args: argparse.Namespace) -> dict:
    """``rnnkit lab gradients``: profiles per cell at initialisation and after training, written to
    OUT/gradients.json and OUT/gradients.png."""
    check_single_process(args)
    if args.length < 2:
        raise UsageError(f"--length must be at least 2, got {args.length}")
    if args.train_steps < 0:
        raise UsageError(f"--train-steps must be 0 or more, got {args.train_steps}")
    if args.resume:
        raise UsageError("lab gradients starts its runs afresh; --resume is for `lab memory` runs")
    device = resolve_device(args.device)
    out = new_run_dir(args.out, "gradients")
    x, y = GENERATORS[args.task](args.batch, args.length, torch.Generator().manual_seed(args.seed + 7))
    x, y = x.to(device), y.to(device).double()
    if args.task == "parity":
        y = y.long()
    args.epochs, args.minutes = args.train_steps / STEPS_PER_EPOCH, None
    result = {"task": args.task, "length": args.length, "hidden": args.hidden,
              "train_steps": args.train_steps, "profiles": {}}
    for cell in args.cell:
        torch.manual_seed(args.seed)        # the same initial weights the training run starts from
        model = MemoryModel(MemoryModelConfig(args.task, cell, args.hidden, args.layers,
                                              args.forget_bias)).to(device)
        profiles = {"init": gradient_profile(model, x, y)}
        if args.train_steps:
            run = out / run_dir_name(args.task, cell, args.length)
            run.mkdir()
            print(f"training {cell} on {args.task} T={args.length}: {run}", file=sys.stderr)
            summary = train_run(run, args.task, cell, args.length, args, device)
            trained, _ = load_run(run, device)
            profiles["trained"] = gradient_profile(trained, x, y)
            profiles["trained_val_loss"] = summary["final_val_loss"]
            profiles["trained_steps"] = summary["steps"]        # fewer when solved early
        result["profiles"][cell] = profiles
    write_json(out / "gradients.json", result)
    plot_gradient_profiles(out / "gradients.png", result)
    result["plot"] = str(out / "gradients.png")
    return result


def format_profiles(result: dict) -> str:
    """A short table: ‖∂loss/∂h_t‖ at a few distances from the loss, per cell and stage."""
    T = result["length"]
    distances = [d for d in (0, 10, 25, 50, 100, 200, 500) if d < T - 1] + [T - 1]
    lines = ["cell  stage    " + "".join(f"{'d=' + str(d):>11}" for d in distances)]
    for cell, profiles in result["profiles"].items():
        for stage in ("init", "trained"):
            if stage in profiles:
                h = profiles[stage]["h"]
                lines.append(f"{cell:<5} {stage:<8} " + "".join(f"{h[T - 1 - d]:>11.2e}"
                                                              for d in distances))
    return "\n".join(lines) + f"\n(‖∂loss/∂h_t‖ at distance d = T - t; plot: {result['plot']})"

