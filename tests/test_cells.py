"""Cells: parity with torch.nn cells, hand-written formulas for the extras, gradcheck, errors."""
from __future__ import annotations

import re

import pytest
import torch
from torch import nn
from torch.func import functional_call

import rnnkit
from rnnkit.cells import gru_step, lstm_step, rnn_step

I, H, B = 3, 4, 3
F32, F64 = torch.float32, torch.float64

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


CELLS = {
    "rnn_tanh": (nn.RNNCell, rnnkit.RNNCell, {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNNCell, rnnkit.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTMCell, rnnkit.LSTMCell, {}),
    "gru": (nn.GRUCell, rnnkit.GRUCell, {}),
}


def make_pair(kind, dtype, bias=True):
    ref_cls, our_cls, kw = CELLS[kind]
    ref = ref_cls(I, H, bias=bias, dtype=dtype, **kw)
    ours = our_cls(I, H, bias=bias, dtype=dtype, **kw)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def make_hx(kind, dtype, batch_shape):
    h = torch.randn(*batch_shape, H, dtype=dtype, requires_grad=True)
    if kind == "lstm":
        return (h, torch.randn(*batch_shape, H, dtype=dtype, requires_grad=True))
    return h


def hx_leaves(hx):
    if hx is None:
        return {}
    if isinstance(hx, tuple):
        return {"h0": hx[0], "c0": hx[1]}
    return {"h0": hx}


# ---- parity with torch.nn cells ------------------------------------------------------------------

@pytest.mark.parametrize("with_hx", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("kind", list(CELLS))
def test_cell_parity_with_torch(kind, dtype, batched, bias, with_hx, fwd_bwd, assert_results_close):
    ref, ours = make_pair(kind, dtype, bias)
    batch_shape = (B,) if batched else ()
    x = torch.randn(*batch_shape, I, dtype=dtype, requires_grad=True)
    hx = make_hx(kind, dtype, batch_shape) if with_hx else None
    leaves = {"x": x, **hx_leaves(hx)}

    def call(cell):
        def run():
            y = cell(x, hx)
            return (y[0], (y[1],)) if isinstance(y, tuple) else (y, ())
        return run

    expected = fwd_bwd(ref, call(ref), leaves)
    actual = fwd_bwd(ours, call(ours), leaves)
    assert actual["value0"].shape == expected["value0"].shape
    assert_results_close(actual, expected)


@pytest.mark.parametrize("kind", list(CELLS))
def test_cell_load_state_dict_both_ways(kind):
    ref_cls, our_cls, kw = CELLS[kind]
    ours = our_cls(I, H, dtype=F64, **kw)
    ref = ref_cls(I, H, dtype=F64, **kw)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == \
        [(n, p.shape) for n, p in ref.named_parameters()]
    ref.load_state_dict(ours.state_dict())              # rnnkit -> torch
    x = torch.randn(B, I, dtype=F64)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-12, rtol=1e-12)
    ours2 = our_cls(I, H, dtype=F64, **kw)
    ours2.load_state_dict(ref.state_dict())             # torch -> rnnkit
    torch.testing.assert_close(ours2(x), ref(x), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("kind", list(CELLS))
def test_functional_cells_match_torch(kind):
    """rnn_cell / lstm_cell / gru_cell take torch.nn's argument order and give torch's result."""
    ref, _ = make_pair(kind, F64)
    x = torch.randn(B, I, dtype=F64)
    hx = make_hx(kind, F64, (B,))
    weights = (ref.weight_ih, ref.weight_hh, ref.bias_ih, ref.bias_hh)
    if kind == "lstm":
        got = rnnkit.lstm_cell(x, hx, *weights)
    elif kind == "gru":
        got = rnnkit.gru_cell(x, hx, *weights)
    else:
        got = rnnkit.rnn_cell(x, hx, *weights, nonlinearity=ref.nonlinearity)
    want = ref(x, hx)
    for g, w in zip(got if kind == "lstm" else (got,), want if kind == "lstm" else (want,)):
        torch.testing.assert_close(g, w, atol=1e-12, rtol=1e-12)


# ---- hand-written formulas for the extras --------------------------------------------------------

def _randomise(module, scale=0.5):
    """Non-trivial values for every parameter (also layer-norm gains/biases and peepholes)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.randn_like(p) * scale + (1.0 if name.startswith("ln_") and "weight" in name
                                                   else 0.0))


def test_peephole_lstm_cell_matches_hand_formula():
    cell = rnnkit.LSTMCell(I, H, dtype=F64, peephole=True)
    _randomise(cell)
    x, h, c = (torch.randn(B, n, dtype=F64) for n in (I, H, H))
    a = x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
    a_i, a_f, a_g, a_o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
    i = torch.sigmoid(a_i + cell.weight_ci * c)
    f = torch.sigmoid(a_f + cell.weight_cf * c)
    c_new = f * c + i * torch.tanh(a_g)
    o = torch.sigmoid(a_o + cell.weight_co * c_new)
    h_new = o * torch.tanh(c_new)
    got_h, got_c = cell(x, (h, c))
    torch.testing.assert_close(got_c, c_new, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(got_h, h_new, atol=1e-12, rtol=1e-12)
    # The functional form with the same peephole weights gives the same step.
    fh, fc = rnnkit.lstm_cell(x, (h, c), cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh,
                              cell.weight_ci, cell.weight_cf, cell.weight_co)
    torch.testing.assert_close(fh, h_new, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(fc, c_new, atol=1e-12, rtol=1e-12)


def test_lstm_step_projection_matches_hand_formula():
    P = 2
    w_ih, w_hh = torch.randn(4 * H, I, dtype=F64), torch.randn(4 * H, P, dtype=F64)
    b_hh, w_hr = torch.randn(4 * H, dtype=F64), torch.randn(P, H, dtype=F64)
    x, h, c = torch.randn(B, I, dtype=F64), torch.randn(B, P, dtype=F64), torch.randn(B, H, dtype=F64)
    a = x @ w_ih.T + h @ w_hh.T + b_hh
    i, f, g, o = a.chunk(4, dim=-1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_new = (torch.sigmoid(o) * torch.tanh(c_new)) @ w_hr.T
    got_h, got_c = lstm_step(x @ w_ih.T, (h, c), w_hh, b_hh, weight_hr=w_hr)
    torch.testing.assert_close(got_h, h_new, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(got_c, c_new, atol=1e-12, rtol=1e-12)


def _cho_gru(x, h, w_ih, w_hh, b_ih, b_hh, h_rec=None):
    h_rec = h if h_rec is None else h_rec
    W_ir, W_iz, W_in = w_ih.chunk(3)
    W_hr, W_hz, W_hn = w_hh.chunk(3)
    b_ir, b_iz, b_in = b_ih.chunk(3)
    b_hr, b_hz, b_hn = b_hh.chunk(3)
    r = torch.sigmoid(x @ W_ir.T + b_ir + h_rec @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h_rec @ W_hz.T + b_hz)
    n = torch.tanh(x @ W_in.T + b_in + (r * h_rec) @ W_hn.T + b_hn)
    return (1 - z) * n + z * h


def _torch_form_gru(x, h, w_ih, w_hh, b_ih, b_hh, h_rec=None):
    h_rec = h if h_rec is None else h_rec
    x_r, x_z, x_n = (x @ w_ih.T + b_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = (h_rec @ w_hh.T + b_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


def test_cho_gru_cell_matches_hand_formula():
    cell = rnnkit.GRUCell(I, H, dtype=F64, reset_after=False)
    _randomise(cell)
    x, h = torch.randn(B, I, dtype=F64), torch.randn(B, H, dtype=F64)
    want = _cho_gru(x, h, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    torch.testing.assert_close(cell(x, h), want, atol=1e-12, rtol=1e-12)
    got = rnnkit.gru_cell(x, h, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh,
                          reset_after=False)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-12)
    # ... and it is a different function from torch's form with the same weights.
    torch_form = _torch_form_gru(x, h, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    assert (cell(x, h) - torch_form).abs().max() > 1e-3


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_step_recurrent_mask_drops_only_the_matmul_copy(reset_after):
    w_ih, w_hh = torch.randn(3 * H, I, dtype=F64), torch.randn(3 * H, H, dtype=F64)
    b_ih, b_hh = torch.randn(3 * H, dtype=F64), torch.randn(3 * H, dtype=F64)
    x, h = torch.randn(B, I, dtype=F64), torch.randn(B, H, dtype=F64)
    mask = torch.bernoulli(torch.full((B, H), 0.5, dtype=F64)) * 2
    form = _torch_form_gru if reset_after else _cho_gru
    want = form(x, h, w_ih, w_hh, b_ih, b_hh, h_rec=h * mask)     # carried z ⊙ h is not dropped
    got = gru_step(x @ w_ih.T + b_ih, h, w_hh, b_hh, reset_after, h_mask=mask)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-12)


def test_rnn_and_lstm_step_recurrent_mask():
    mask = torch.bernoulli(torch.full((B, H), 0.5, dtype=F64)) * 2
    xp, h, c = torch.randn(B, H, dtype=F64), torch.randn(B, H, dtype=F64), torch.randn(B, H, dtype=F64)
    w, b = torch.randn(H, H, dtype=F64), torch.randn(H, dtype=F64)
    torch.testing.assert_close(rnn_step(xp, h, w, b, h_mask=mask),
                               torch.tanh(xp + (h * mask) @ w.T + b))
    xp4, w4 = torch.randn(B, 4 * H, dtype=F64), torch.randn(4 * H, H, dtype=F64)
    b4 = torch.randn(4 * H, dtype=F64)
    got = lstm_step(xp4, (h, c), w4, b4, h_mask=mask)
    want = lstm_step(xp4, (h * mask, c), w4, b4)                  # c is carried untouched
    torch.testing.assert_close(got, want)
    assert not torch.allclose(got[1], lstm_step(xp4, (h, c), w4, b4)[1])


@pytest.mark.parametrize("bias", [True, False])
def test_forget_bias_adds_exactly_to_forget_slice(bias):
    torch.manual_seed(3)
    plain = rnnkit.LSTMCell(I, H, bias=bias, dtype=F64)
    torch.manual_seed(3)
    biased = rnnkit.LSTMCell(I, H, bias=bias, dtype=F64, forget_bias=1.5)
    for (n, p), (_, q) in zip(plain.named_parameters(), biased.named_parameters()):
        if n == "bias_ih":
            diff = q - p
            expected = torch.zeros(4 * H, dtype=F64)
            expected[H:2 * H] = 1.5
            torch.testing.assert_close(diff, expected, atol=1e-15, rtol=0)
        else:
            assert torch.equal(p, q), n


# ---- layer norm ---------------------------------------------------------------------------------

def _ln(z, w, b):
    mu = z.mean(-1, keepdim=True)
    var = z.var(-1, unbiased=False, keepdim=True)
    return (z - mu) / torch.sqrt(var + 1e-5) * w + b


def test_layer_norm_lstm_cell_matches_hand_formula():
    cell = rnnkit.LSTMCell(I, H, dtype=F64, layer_norm=True)
    _randomise(cell)
    x, h, c = (torch.randn(B, n, dtype=F64) for n in (I, H, H))
    a = _ln(x @ cell.weight_ih.T + cell.bias_ih, cell.ln_ih_weight, cell.ln_ih_bias) + \
        _ln(h @ cell.weight_hh.T + cell.bias_hh, cell.ln_hh_weight, cell.ln_hh_bias)
    i, f, g, o = a.chunk(4, dim=-1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_new = torch.sigmoid(o) * torch.tanh(_ln(c_new, cell.ln_c_weight, cell.ln_c_bias))
    got_h, got_c = cell(x, (h, c))
    torch.testing.assert_close(got_c, c_new, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(got_h, h_new, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("reset_after", [True, False])
def test_layer_norm_gru_cell_matches_hand_formula(reset_after):
    cell = rnnkit.GRUCell(I, H, dtype=F64, layer_norm=True, reset_after=reset_after)
    _randomise(cell)
    x, h = torch.randn(B, I, dtype=F64), torch.randn(B, H, dtype=F64)
    x_r, x_z, x_n = _ln(x @ cell.weight_ih.T + cell.bias_ih, cell.ln_ih_weight,
                        cell.ln_ih_bias).chunk(3, dim=-1)
    if reset_after:
        h_r, h_z, h_n = _ln(h @ cell.weight_hh.T + cell.bias_hh, cell.ln_hh_weight,
                            cell.ln_hh_bias).chunk(3, dim=-1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
    else:
        assert cell.ln_hh_weight.shape == (2 * H,)
        h_r, h_z = _ln(h @ cell.weight_hh[:2 * H].T + cell.bias_hh[:2 * H], cell.ln_hh_weight,
                       cell.ln_hh_bias).chunk(2, dim=-1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + (r * h) @ cell.weight_hh[2 * H:].T + cell.bias_hh[2 * H:])
    torch.testing.assert_close(cell(x, h), (1 - z) * n + z * h, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("cls, kw", [(rnnkit.LSTMCell, {}), (rnnkit.GRUCell, {}),
                                     (rnnkit.GRUCell, {"reset_after": False})])
def test_layer_norm_cell_differs_from_plain_with_same_weights(cls, kw):
    ln = cls(I, H, dtype=F64, layer_norm=True, **kw)
    plain = cls(I, H, dtype=F64, **kw)
    missing, unexpected = plain.load_state_dict(ln.state_dict(), strict=False)
    assert not missing and all(k.startswith("ln_") for k in unexpected) and unexpected
    x = torch.randn(B, I, dtype=F64)
    a, b = ln(x), plain(x)
    a, b = (a[0], b[0]) if isinstance(a, tuple) else (a, b)
    assert (a - b).abs().max() > 1e-3


# ---- gradcheck on every cell option --------------------------------------------------------------

GRADCHECK_CELLS = [
    ("rnn_tanh", rnnkit.RNNCell, {"nonlinearity": "tanh"}),
    ("rnn_relu", rnnkit.RNNCell, {"nonlinearity": "relu"}),
    ("lstm", rnnkit.LSTMCell, {}),
    ("lstm_nobias", rnnkit.LSTMCell, {"bias": False}),
    ("lstm_peephole", rnnkit.LSTMCell, {"peephole": True}),
    ("lstm_layer_norm", rnnkit.LSTMCell, {"layer_norm": True}),
    ("lstm_peephole_layer_norm", rnnkit.LSTMCell, {"peephole": True, "layer_norm": True}),
    ("gru", rnnkit.GRUCell, {}),
    ("gru_cho", rnnkit.GRUCell, {"reset_after": False}),
    ("gru_layer_norm", rnnkit.GRUCell, {"layer_norm": True}),
    ("gru_cho_layer_norm", rnnkit.GRUCell, {"reset_after": False, "layer_norm": True}),
]


@pytest.mark.parametrize("name, cls, kw", GRADCHECK_CELLS, ids=[c[0] for c in GRADCHECK_CELLS])
def test_cell_gradcheck(name, cls, kw):
    cell = cls(2, 3, dtype=F64, **kw)
    _randomise(cell)
    names = [n for n, _ in cell.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in cell.parameters()]
    x = torch.randn(2, 2, dtype=F64, requires_grad=True)
    h = torch.randn(2, 3, dtype=F64, requires_grad=True)
    c = torch.randn(2, 3, dtype=F64, requires_grad=True)
    is_lstm = cls is rnnkit.LSTMCell

    def fn(x, h, c, *ps):
        out = functional_call(cell, dict(zip(names, ps)), (x, (h, c) if is_lstm else h))
        return out if is_lstm else (out,)

    assert torch.autograd.gradcheck(fn, (x, h, c, *params), check_undefined_grad=False)


# ---- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [rnnkit.RNNCell, rnnkit.LSTMCell, rnnkit.GRUCell])
def test_cell_wrong_input_size(cls):
    cell = cls(4, H)
    with pytest.raises(ValueError, match=r"input has 3 features, expected input_size=4"):
        cell(torch.randn(B, 3))
    with pytest.raises(ValueError, match=re.escape("expected input of shape (B, 4) or (4,), "
                                                   "got (2, 3, 4)")):
        cell(torch.randn(2, 3, 4))


@pytest.mark.parametrize("cls", [rnnkit.RNNCell, rnnkit.GRUCell])
def test_cell_wrong_hidden_shape(cls):
    cell = cls(I, 5)
    with pytest.raises(ValueError, match=re.escape("hx has shape (3, 4), expected (3, 5)")):
        cell(torch.randn(3, I), torch.randn(3, 4))
    with pytest.raises(ValueError, match=re.escape("hx has shape (2, 5), expected (3, 5)")):
        cell(torch.randn(3, I), torch.randn(2, 5))


@pytest.mark.parametrize("cls", [rnnkit.RNNCell, rnnkit.GRUCell, rnnkit.LSTMCell])
def test_cell_unbatched_state_errors_speak_in_the_callers_shapes(cls):
    cell = cls(I, 5)
    name = "h_0" if cls is rnnkit.LSTMCell else "hx"
    h = torch.randn(4)
    with pytest.raises(ValueError, match=re.escape(f"{name} has shape (4,), expected (5,)")):
        cell(torch.randn(I), (h, torch.randn(5)) if cls is rnnkit.LSTMCell else h)
    h = torch.randn(1, 5)                               # a batched state for an unbatched input
    with pytest.raises(ValueError, match=re.escape(f"{name} has shape (1, 5), expected (5,)")):
        cell(torch.randn(I), (h, torch.randn(5)) if cls is rnnkit.LSTMCell else h)


def test_lstm_cell_wrong_state_shapes():
    cell = rnnkit.LSTMCell(I, 5)
    x = torch.randn(3, I)
    with pytest.raises(ValueError, match=re.escape("h_0 has shape (3, 4), expected (3, 5)")):
        cell(x, (torch.randn(3, 4), torch.randn(3, 5)))
    with pytest.raises(ValueError, match=re.escape("c_0 has shape (2, 5), expected (3, 5)")):
        cell(x, (torch.randn(3, 5), torch.randn(2, 5)))


def test_cell_constructor_errors():
    with pytest.raises(ValueError, match="must be positive, got 0 and 4"):
        rnnkit.LSTMCell(0, 4)
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"):
        rnnkit.RNNCell(2, 4, nonlinearity="sigmoid")
