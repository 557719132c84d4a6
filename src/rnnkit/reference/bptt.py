"""Backpropagation through time for any cell of `cells.py`, and a finite-difference check.

Shapes: T time, B batch, I input size, H hidden size.

Forward, for t = 0 .. T-1, with valid_t = (t < lengths) per row:

    x_t      = xs[t] where valid_t else 0                  (padding never reaches a cell)
    new, _   = step_forward(x_t, state_t, params)
    state_t+1 = new where valid_t else state_t               (rows past their end carry the state)
    out_t    = h(new) where valid_t else 0

so the final state is each row's state after its last valid step (the initial state for a row of
length 0). Backward walks the same loop from t = T-1 down to 0; the state gradient takes the path the
state took (into the cell on valid rows, straight past it on the others), and the gradients of the
weights, which every step shares, are summed over the steps.
"""
from __future__ import annotations

import numpy as np

from .cells import get_cell


def _tmap(fn, *states):
    """Apply fn to a state h, or to each part of a state (h, c)."""
    if isinstance(states[0], tuple):
        return tuple(fn(*parts) for parts in zip(*states))
    return fn(*states)


def _hidden(state):
    return state[0] if isinstance(state, tuple) else state


def _add_to_hidden(d_state, dh):
    return (d_state[0] + dh,) + d_state[1:] if isinstance(d_state, tuple) else d_state + dh


def bptt_forward(cell, xs, state0, params, lengths=None):
    """Run `cell` (a Cell or its name) over xs (T, B, I) from state0.

    Returns outputs (T, B, H) (zero past each row's length), the final state, and the caches that
    bptt_backward needs. lengths: ints (B,) in [0, T], or None for all T.
    """
    cell = get_cell(cell)
    T, B = xs.shape[:2]
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    if lengths.shape != (B,) or np.any(lengths < 0) or np.any(lengths > T):
        raise ValueError(f"lengths must be (B,) = ({B},) integers in [0, {T}], got {lengths!r}")
    state, outputs, caches = state0, [], []
    for t in range(T):
        valid = (t < lengths)[:, None]                                   # (B, 1)
        x = np.where(valid, xs[t], 0.0)                                  # (B, I)
        new, cache = cell.step_forward(x, state, params)
        state = _tmap(lambda n, s: np.where(valid, n, s), new, state)
        outputs.append(np.where(valid, _hidden(new), 0.0))               # (B, H)
        caches.append((cache, valid))
    return np.stack(outputs), state, caches                              # (T, B, H)


def bptt_backward(cell, d_outputs, d_final_state, caches):
    """Gradients of a loss, given dLoss/d(outputs) (T, B, H) and dLoss/d(final state).

    Returns dxs (T, B, I) (zero at padding), dLoss/d(state0), and dparams summed over time.
    """
    cell = get_cell(cell)
    d_state, dparams, dxs = d_final_state, {}, [None] * len(caches)
    for t in reversed(range(len(caches))):
        cache, valid = caches[t]
        # what reaches the cell's new state: the carried-state gradient plus the output's
        d_new = _tmap(lambda d: np.where(valid, d, 0.0), d_state)
        d_new = _add_to_hidden(d_new, np.where(valid, d_outputs[t], 0.0))
        dx, d_prev, dp = cell.step_backward(d_new, cache)
        dxs[t] = np.where(valid, dx, 0.0)                                # (B, I)
        d_state = _tmap(lambda dc, ds: np.where(valid, dc, ds), d_prev, d_state)
        for name, g in dp.items():                                       # shared weights: sum
            dparams[name] = dparams[name] + g if name in dparams else g
    return np.stack(dxs), d_state, dparams


def finite_difference_gradients(f, params, eps=1e-6, richardson=False):
    """Centred differences D(eps) = (f(p + eps) - f(p - eps)) / (2 eps) for every entry of every array.

    f(params) -> float takes a dict of arrays (parameters, inputs, initial states, ...); it is
    called on float64 copies, so the caller's arrays are never changed. Returns a dict of gradients.

    D(eps) has a truncation error ~eps^2 and a round-off error ~1e-16 |f| / eps, so in float64 it is
    never better than about 1e-10 in absolute terms. With richardson=True the result is
    (4 D(eps) - D(2 eps)) / 3, the five-point centred stencil: the eps^2 term cancels, and a larger
    eps (1e-4) then gives about 1e-11. (Near a kink, e.g. relu at 0, any eps can straddle it.)
    """
    params = {name: np.array(p, dtype=np.float64) for name, p in params.items()}

    def centred(p, idx, e):
        orig = p[idx]
        p[idx] = orig + e
        f_plus = f(params)
        p[idx] = orig - e
        f_minus = f(params)
        p[idx] = orig
        return (f_plus - f_minus) / (2.0 * e)

    grads = {}
    for name, p in params.items():
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            g[idx] = centred(p, idx, eps)
            if richardson:
                g[idx] = (4.0 * g[idx] - centred(p, idx, 2.0 * eps)) / 3.0
        grads[name] = g
    return grads
