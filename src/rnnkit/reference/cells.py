"""One time step of each cell, forward and hand-written backward, in NumPy.

Shapes: B batch, I input size, H hidden size.

Every cell has the same two functions:

    *_step_forward(x, state, params) -> (new_state, cache)
    *_step_backward(d_new_state, cache) -> (dx, d_state, dparams)

x is (B, I); state is h (B, H) for RNN/GRU and (h, c) for LSTM; params is a dict with torch's
names: weight_ih, weight_hh, bias_ih, bias_hh (+ weight_ci, weight_cf, weight_co for a peephole
LSTM). The cache keeps what the backward step needs; d_new_state is dLoss/d(new_state), and the
backward step returns dLoss/dx, dLoss/d(state) and dLoss/d(params) for this one step.
Gates are stacked in torch's order: LSTM i, f, g, o; GRU r, z, n. Matrices act on row vectors,
so "W x" of the lectures is `x @ W.T` here.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _linear_grads(da, x, h):
    """Gradients of a = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh, given da (B, G)."""
    return {"weight_ih": da.T @ x, "weight_hh": da.T @ h,  # (G, I), (G, H)
            "bias_ih": da.sum(0), "bias_hh": da.sum(0)}    # (G,)


# --------------------------------------------------------------------------------------------
# Elman RNN:  a = W_ih x + b_ih + W_hh h + b_hh,  h' = act(a),  act = tanh or relu
# --------------------------------------------------------------------------------------------

def rnn_step_forward(x, h, params, nonlinearity="tanh"):
    a = x @ params["weight_ih"].T + params["bias_ih"] + h @ params["weight_hh"].T + params["bias_hh"]
    if nonlinearity == "tanh":
        h_new = np.tanh(a)                                   # (B, H)
    elif nonlinearity == "relu":
        h_new = np.maximum(a, 0.0)
    else:
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return h_new, (x, h, h_new, params, nonlinearity)


def rnn_step_backward(dh_new, cache):
    x, h, h_new, params, nonlinearity = cache
    if nonlinearity == "tanh":
        da = dh_new * (1.0 - h_new ** 2)                     # tanh' = 1 - tanh^2
    else:
        da = dh_new * (h_new > 0)                            # relu' = [a > 0]
    dx = da @ params["weight_ih"]                            # (B, I)
    dh = da @ params["weight_hh"]                            # (B, H)
    return dx, dh, _linear_grads(da, x, h)


# --------------------------------------------------------------------------------------------
# LSTM:  a = W_ih x + b_ih + W_hh h + b_hh = [a_i, a_f, a_g, a_o]  (each (B, H))
#   i = σ(a_i + w_ci*c),  f = σ(a_f + w_cf*c),  g = tanh(a_g),  c' = f*c + i*g,
#   o = σ(a_o + w_co*c'),  h' = o * tanh(c')          (peephole terms w_c* only if given)
# --------------------------------------------------------------------------------------------

def lstm_step_forward(x, state, params):
    h, c = state
    peep = "weight_ci" in params
    a = x @ params["weight_ih"].T + params["bias_ih"] + h @ params["weight_hh"].T + params["bias_hh"]
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)             # 4 x (B, H)
    if peep:
        a_i = a_i + params["weight_ci"] * c
        a_f = a_f + params["weight_cf"] * c
    i, f, g = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g)
    c_new = f * c + i * g                                    # (B, H)
    if peep:
        a_o = a_o + params["weight_co"] * c_new             # the output gate peeks at c', not c
    o = sigmoid(a_o)
    tc = np.tanh(c_new)
    h_new = o * tc                                           # (B, H)
    return (h_new, c_new), (x, h, c, i, f, g, o, c_new, tc, params)


def lstm_step_backward(d_new_state, cache):
    dh_new, dc_new = d_new_state
    x, h, c, i, f, g, o, c_new, tc, params = cache
    peep = "weight_ci" in params
    do = dh_new * tc
    da_o = do * o * (1.0 - o)                                # σ' = σ(1 - σ)
    dc_new = dc_new + dh_new * o * (1.0 - tc ** 2)           # c' reaches h' through tanh(c')
    if peep:
        dc_new = dc_new + da_o * params["weight_co"]         # ... and the output gate
    di, dg, df = dc_new * g, dc_new * i, dc_new * c
    dc = dc_new * f
    da_i = di * i * (1.0 - i)
    da_f = df * f * (1.0 - f)
    da_g = dg * (1.0 - g ** 2)
    dparams = {}
    if peep:
        dc = dc + da_i * params["weight_ci"] + da_f * params["weight_cf"]
        dparams = {"weight_ci": (da_i * c).sum(0), "weight_cf": (da_f * c).sum(0),
                   "weight_co": (da_o * c_new).sum(0)}                          # (H,)
    da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)   # (B, 4H)
    dx = da @ params["weight_ih"]                            # (B, I)
    dh = da @ params["weight_hh"]                            # (B, H)
    dparams.update(_linear_grads(da, x, h))
    return dx, (dh, dc), dparams


# --------------------------------------------------------------------------------------------
# GRU:  W_ih x + b_ih = [i_r, i_z, i_n],  W_hh h + b_hh = [h_r, h_z, h_n]  (each (B, H))
#   r = σ(i_r + h_r),  z = σ(i_z + h_z),  h' = (1 - z)*n + z*h,  with
#   reset_after=True  (torch):           n = tanh(i_n + r*(W_hn h + b_hn))
#   reset_after=False (Cho et al. 2014): n = tanh(i_n + W_hn (r*h) + b_hn)
# --------------------------------------------------------------------------------------------

def gru_step_forward(x, h, params, reset_after=True):
    H = h.shape[1]
    W_hh, b_hh = params["weight_hh"], params["bias_hh"]
    gi = x @ params["weight_ih"].T + params["bias_ih"]       # (B, 3H)
    i_r, i_z, i_n = np.split(gi, 3, axis=1)
    gh_rz = h @ W_hh[:2 * H].T + b_hh[:2 * H]                # (B, 2H)
    r = sigmoid(i_r + gh_rz[:, :H])
    z = sigmoid(i_z + gh_rz[:, H:])
    # s is what the hidden side feeds n: h itself (reset after the matmul) or r*h (before)
    s = h if reset_after else r * h                          # (B, H)
    h_n = s @ W_hh[2 * H:].T + b_hh[2 * H:]                  # (B, H)
    n = np.tanh(i_n + r * h_n) if reset_after else np.tanh(i_n + h_n)
    h_new = (1.0 - z) * n + z * h
    return h_new, (x, h, r, z, n, s, h_n, params, reset_after)


def gru_step_backward(dh_new, cache):
    x, h, r, z, n, s, h_n, params, reset_after = cache
    H = h.shape[1]
    W_hh = params["weight_hh"]
    dn = dh_new * (1.0 - z)
    dz = dh_new * (h - n)
    dh = dh_new * z                                          # direct path h -> h'
    da_n = dn * (1.0 - n ** 2)                               # grad of tanh's argument
    if reset_after:
        dh_n = da_n * r
        dr = da_n * h_n
    else:
        dh_n = da_n
        ds = dh_n @ W_hh[2 * H:]                             # s = r*h
        dr = ds * h
        dh = dh + ds * r
    da_r = dr * r * (1.0 - r)
    da_z = dz * z * (1.0 - z)
    dgi = np.concatenate([da_r, da_z, da_n], axis=1)         # (B, 3H) grad of W_ih x + b_ih
    dgh_rz = np.concatenate([da_r, da_z], axis=1)            # (B, 2H) grad of the r,z rows
    dx = dgi @ params["weight_ih"]                           # (B, I)
    dh = dh + dgh_rz @ W_hh[:2 * H]
    if reset_after:
        dh = dh + dh_n @ W_hh[2 * H:]
    dparams = {
        "weight_ih": dgi.T @ x,
        "weight_hh": np.concatenate([dgh_rz.T @ h, dh_n.T @ s], axis=0),   # (3H, H)
        "bias_ih": dgi.sum(0),
        "bias_hh": np.concatenate([dgh_rz.sum(0), dh_n.sum(0)]),
    }
    return dx, dh, dparams


# --------------------------------------------------------------------------------------------
# The cells by name, and torch-style initial parameters
# --------------------------------------------------------------------------------------------

class Cell(NamedTuple):
    name: str
    step_forward: Callable    # (x, state, params) -> (new_state, cache)
    step_backward: Callable   # (d_new_state, cache) -> (dx, d_state, dparams)
    gates: int                # blocks of H rows in weight_ih: 1 RNN, 4 LSTM, 3 GRU
    peephole: bool = False


CELLS = {
    "rnn-tanh": Cell("rnn-tanh", lambda x, s, p: rnn_step_forward(x, s, p, "tanh"), rnn_step_backward, 1),
    "rnn-relu": Cell("rnn-relu", lambda x, s, p: rnn_step_forward(x, s, p, "relu"), rnn_step_backward, 1),
    "lstm": Cell("lstm", lstm_step_forward, lstm_step_backward, 4),
    "lstm-peephole": Cell("lstm-peephole", lstm_step_forward, lstm_step_backward, 4, peephole=True),
    "gru": Cell("gru", lambda x, s, p: gru_step_forward(x, s, p, True), gru_step_backward, 3),
    "gru-cho": Cell("gru-cho", lambda x, s, p: gru_step_forward(x, s, p, False), gru_step_backward, 3),
}


def get_cell(cell):
    """A Cell, given one or its name in CELLS."""
    if isinstance(cell, Cell):
        return cell
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; choose from {sorted(CELLS)}")
    return CELLS[cell]


def init_params(cell, input_size, hidden_size, rng, scale=None):
    """Parameters drawn like torch's: uniform(-k, k), k = 1/sqrt(H) unless `scale` is given."""
    cell = get_cell(cell)
    G, I, H = cell.gates * hidden_size, input_size, hidden_size
    k = 1.0 / np.sqrt(H) if scale is None else scale
    shapes = {"weight_ih": (G, I), "weight_hh": (G, H), "bias_ih": (G,), "bias_hh": (G,)}
    if cell.peephole:
        shapes.update(weight_ci=(H,), weight_cf=(H,), weight_co=(H,))
    return {name: rng.uniform(-k, k, size=shape) for name, shape in shapes.items()}


def init_state(cell, batch_size, hidden_size, rng=None):
    """Zero state, or a random one (normal, std 0.5) when `rng` is given: h, or (h, c) for LSTM."""
    cell = get_cell(cell)

    def one():
        shape = (batch_size, hidden_size)
        return np.zeros(shape) if rng is None else rng.normal(0.0, 0.5, size=shape)
    return (one(), one()) if cell.gates == 4 else one()
