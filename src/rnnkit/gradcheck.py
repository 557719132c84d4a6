"""`rnnkit gradcheck`: three independent gradients of one loss must agree, for every cell.

Shapes: T time, B batch, I input size, H hidden size.

For each cell on a small float64 problem with variable lengths (one full row, one partial row, one of
length 0) and the loss

    L = sum(w_out * outputs) + sum(w_h * h_T) (+ sum(w_c * c_T) for an LSTM)

we compare, over every parameter, input and initial-state gradient,
  (a) the NumPy reference's hand-written BPTT (rnnkit.reference),
  (b) centred finite differences of L computed by the reference's forward pass, and
  (c) torch autograd through rnnkit's own torch cells (rnnkit.cells) run by rnnkit.unroll,
with the element-wise relative error |a - b| / max(|a|, |b|, 1e-8), maximised over all entries.
"""
from __future__ import annotations

import numpy as np
import torch

from . import reference as ref
from .cells import gru_cell, lstm_cell, rnn_cell
from .unroll import unroll

__all__ = ["CONFIGS", "TOLERANCE", "make_problem", "loss_numpy", "gradients_numpy",
           "gradients_fd", "gradients_torch", "max_rel_err", "run_gradcheck", "format_gradcheck"]

CONFIGS = ("rnn-tanh", "rnn-relu", "lstm", "lstm-peephole", "gru", "gru-cho")
TOLERANCE = 1e-6
T, I, H = 5, 4, 3
LENGTHS = (5, 2, 0)          # B = 3: a full row, a partial row and an empty row
# Centred differences with Richardson extrapolation at eps = 1e-4: the plain (f(p+e) - f(p-e)) / 2e
# in float64 has an absolute error near 1e-10 at best (round-off / truncation), too coarse for the
# 1e-6 relative test on the smallest gradient entries; see reference.finite_difference_gradients.
# Even so, an entry below ~1e-6 can exceed 1e-6 relative error (measured: 2 of 900 cell x seed draws,
# entries of 1.8e-7 and 1.7e-6 off by ~2e-12): a limit of float64 differences, not a wrong gradient.
FD_EPS = 1e-4


def make_problem(cell: str, seed: int = 0, lengths=LENGTHS) -> dict:
    """Parameters, inputs, a random initial state and the loss weights, all float64 NumPy.

    B = len(lengths); every length must be in [0, T] with T = 5.
    """
    if cell not in CONFIGS:
        raise ValueError(f"unknown cell {cell!r}; choose from {', '.join(CONFIGS)}")
    rng = np.random.default_rng(seed)
    B = len(lengths)
    return {
        "cell": cell,
        "params": ref.init_params(cell, I, H, rng),
        "xs": rng.normal(size=(T, B, I)),                 # (T, B, I)
        "state0": ref.init_state(cell, B, H, rng),        # h or (h, c), each (B, H)
        "lengths": np.array(lengths),                     # (B,)
        "w_out": rng.normal(size=(T, B, H)),              # (T, B, H)
        "w_final": ref.init_state(cell, B, H, rng),       # like the state
    }


def _parts(state) -> tuple:
    return state if isinstance(state, tuple) else (state,)


def _pack(params: dict, dxs, d_state0) -> dict:
    """One flat dict of named arrays: parameters, 'input', 'h0' (and 'c0')."""
    out = dict(params, input=dxs)
    for name, s in zip(("h0", "c0"), _parts(d_state0)):
        out[name] = s
    return out


def _unpack(flat: dict):
    params = {k: v for k, v in flat.items() if k not in ("input", "h0", "c0")}
    state0 = (flat["h0"], flat["c0"]) if "c0" in flat else flat["h0"]
    return params, flat["input"], state0


def loss_numpy(problem: dict, params=None, xs=None, state0=None) -> float:
    """L by the reference's forward pass (any of params, xs, state0 may be replaced)."""
    p = problem
    outputs, final, _ = ref.bptt_forward(p["cell"], p["xs"] if xs is None else xs,
                                         p["state0"] if state0 is None else state0,
                                         p["params"] if params is None else params, p["lengths"])
    return float(np.sum(p["w_out"] * outputs)
                 + sum(np.sum(w * s) for w, s in zip(_parts(p["w_final"]), _parts(final))))


def gradients_numpy(problem: dict) -> dict:
    """(a) hand-written BPTT of the reference."""
    p = problem
    _, _, caches = ref.bptt_forward(p["cell"], p["xs"], p["state0"], p["params"], p["lengths"])
    dxs, d_state0, dparams = ref.bptt_backward(p["cell"], p["w_out"], p["w_final"], caches)
    return _pack(dparams, dxs, d_state0)


def gradients_fd(problem: dict, eps: float = FD_EPS, richardson: bool = True) -> dict:
    """(b) centred finite differences of the reference's loss."""
    flat = _pack(problem["params"], problem["xs"], problem["state0"])
    return ref.finite_difference_gradients(lambda f: loss_numpy(problem, *_unpack(f)), flat,
                                           eps=eps, richardson=richardson)


def _torch_step_fn(cell: str, w: dict):
    """step_fn(x_t, state) -> (y_t, new_state) built from rnnkit.cells."""
    args = (w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"])
    if cell.startswith("rnn"):
        nonlinearity = cell.split("-")[1]

        def step(x, h):
            h = rnn_cell(x, h, *args, nonlinearity=nonlinearity)
            return h, h
    elif cell.startswith("lstm"):
        peep = tuple(w.get(k) for k in ("weight_ci", "weight_cf", "weight_co"))

        def step(x, state):
            h, c = lstm_cell(x, state, *args, *peep)
            return h, (h, c)
    else:
        reset_after = cell == "gru"

        def step(x, h):
            h = gru_cell(x, h, *args, reset_after=reset_after)
            return h, h
    return step


def gradients_torch(problem: dict, xs=None, reverse: bool = False) -> dict:
    """(c) torch autograd through rnnkit.cells + rnnkit.unroll, float64; xs may replace the input,
    and reverse=True runs unroll's reverse direction (each row from its own last valid step)."""
    p = problem
    leaf = lambda a: torch.tensor(a, dtype=torch.float64, requires_grad=True)
    flat = {k: leaf(v) for k, v in _pack(p["params"], p["xs"] if xs is None else xs,
                                         p["state0"]).items()}
    params, inputs, state0 = _unpack(flat)
    outputs, final = unroll(_torch_step_fn(p["cell"], params), inputs, state0,
                            lengths=torch.as_tensor(p["lengths"], dtype=torch.long), reverse=reverse)
    loss = (torch.as_tensor(p["w_out"]) * outputs).sum()
    for w, s in zip(_parts(p["w_final"]), _parts(final)):
        loss = loss + (torch.as_tensor(w) * s).sum()
    names = list(flat)
    grads = torch.autograd.grad(loss, [flat[k] for k in names])
    return {k: g.numpy() for k, g in zip(names, grads)}


def max_rel_err(a: dict, b: dict) -> float:
    """max over all entries of |a - b| / max(|a|, |b|, 1e-8); the two dicts must have equal keys."""
    if a.keys() != b.keys():
        raise ValueError(f"gradient names differ: {sorted(a)} vs {sorted(b)}")
    worst = 0.0
    for k in a:
        x, y = np.asarray(a[k], dtype=np.float64), np.asarray(b[k], dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"{k}: shapes differ, {x.shape} vs {y.shape}")
        err = np.abs(x - y) / np.maximum(np.maximum(np.abs(x), np.abs(y)), 1e-8)
        if np.isnan(err).any():
            return float("nan")                                # NaN anywhere fails the check
        worst = max(worst, float(np.max(err, initial=0.0)))
    return worst


def run_gradcheck(seed: int = 0, tol: float = TOLERANCE) -> list[dict]:
    """One row per cell: {"cell", "max_rel_err_fd", "max_rel_err_torch", "ok"}."""
    rows = []
    for cell in CONFIGS:
        problem = make_problem(cell, seed)
        bptt = gradients_numpy(problem)
        err_fd = max_rel_err(bptt, gradients_fd(problem))
        err_torch = max_rel_err(bptt, gradients_torch(problem))
        ok = bool(err_fd <= tol and err_torch <= tol)        # False for NaN too
        rows.append({"cell": cell, "max_rel_err_fd": err_fd, "max_rel_err_torch": err_torch,
                     "ok": ok})
    return rows


def format_gradcheck(rows: list[dict]) -> str:
    """One line per cell, e.g. `lstm           fd 3.1e-10  torch 2.2e-16  ok`."""
    return "\n".join(f"{r['cell']:<14} fd {r['max_rel_err_fd']:.1e}  torch {r['max_rel_err_torch']:.1e}"
                     f"  {'ok' if r['ok'] else 'FAIL'}" for r in rows)
