"""LSTM / GRU / RNN layers: torch.nn parity, variable length, packing, streaming, dropout, fast path
vs loop, gradcheck of every option, and the error messages."""
from __future__ import annotations

import os
import re

import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit
from rnnkit import detach_state, kernels

F32, F64 = torch.float32, torch.float64
T, B, I, H, P = 5, 4, 3, 5, 3
LENGTHS = [5, 2, 3, 1]                     # torch can pack these (no zero)
LENGTHS0 = [5, 2, 0, 3]                    # with a zero-length row

pytestmark = [
    pytest.mark.usefixtures("single_thread"),
    # torch.nn.LSTM(proj_size=...) itself says it leaves oneDNN; that is torch's business.
    pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN"),
]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# kind -> (torch class, rnnkit class, constructor kwargs shared by both)
KINDS = {
    "lstm": (nn.LSTM, rnnkit.LSTM, {}),
    "lstm_proj": (nn.LSTM, rnnkit.LSTM, {"proj_size": P}),
    "gru": (nn.GRU, rnnkit.GRU, {}),
    "rnn_tanh": (nn.RNN, rnnkit.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNN, rnnkit.RNN, {"nonlinearity": "relu"}),
}

# rnnkit-only configurations (no torch twin), each with the kind it extends.
EXTRAS = {
    "lstm_peephole": ("lstm", {"peephole": True}),
    "lstm_layer_norm": ("lstm", {"layer_norm": True}),
    "lstm_peephole_layer_norm": ("lstm", {"peephole": True, "layer_norm": True}),
    "lstm_proj_peephole": ("lstm_proj", {"peephole": True}),
    "gru_cho": ("gru", {"reset_after": False}),
    "gru_layer_norm": ("gru", {"layer_norm": True}),
    "gru_cho_layer_norm": ("gru", {"reset_after": False, "layer_norm": True}),
    "lstm_zoneout_eval": ("lstm", {"zoneout": 0.3}),
    "gru_recurrent_dropout_eval": ("gru", {"recurrent_dropout": 0.3}),
    "rnn_relu_zoneout_eval": ("rnn_relu", {"zoneout": 0.3}),
}


def base_kind(config):
    return EXTRAS[config][0] if config in EXTRAS else config


def with_impls(configs):
    """(config, impl) pairs for every path, but bptt for an LSTM projection: bptt has none (the
    fused kernel computes it; test_bptt_refuses_the_lstm_projection)."""
    return [(c, impl) for c in configs for impl in ("loop", "bptt", "auto")
            if not (impl == "bptt" and "proj" in c)]


def bptt_impl(layer):
    """What last_impl says for a bptt run: with the compiled step kernels where they apply."""
    with_kernels = layer.kernels_unsupported() is None and os.environ.get("RNNKIT_KERNELS") != "0" \
        and kernels.load() is not None
    return "bptt+kernels" if with_kernels else "bptt"


def expected_impl(layer, impl):
    """What impl='auto' picks when gradients flow: torch's kernel for the LSTM (oneDNN), the
    hand-written BPTT for the GRU and RNN, the loop where neither computes the configuration."""
    if impl == "auto":
        if layer.fused_unsupported() is None and layer.cell_name == "LSTM":
            impl = "fused"
        else:
            impl = "bptt" if layer.bptt_unsupported() is None else \
                "fused" if layer.fused_unsupported() is None else "loop"
    return bptt_impl(layer) if impl == "bptt" else impl


@pytest.fixture(params=["kernels", "torch-ops"])
def step_path(request, monkeypatch):
    """bptt's steps through the compiled kernels, then through torch ops (RNNKIT_KERNELS=0)."""
    if request.param == "torch-ops":
        monkeypatch.setenv("RNNKIT_KERNELS", "0")
    elif kernels.load() is None:
        pytest.skip(f"no compiled kernels on this machine: {kernels.build_error()}")
    return request.param


def make_pair(kind, dtype=F64, input_size=I, **kw):
    """A torch.nn layer and an rnnkit layer with the same weights (loaded torch -> rnnkit)."""
    ref_cls, our_cls, shared = KINDS[kind]
    impl = kw.pop("impl", "auto")
    ref = ref_cls(input_size, H, dtype=dtype, **shared, **kw)
    ours = our_cls(input_size, H, dtype=dtype, impl=impl, **shared, **kw)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def make_ours(config, dtype=F64, **kw):
    """An rnnkit layer for a plain kind or an extra configuration, with non-trivial extra weights."""
    kind = base_kind(config)
    _, our_cls, shared = KINDS[kind]
    extra = EXTRAS[config][1] if config in EXTRAS else {}
    layer = our_cls(I, H, dtype=dtype, **shared, **extra, **kw)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name.startswith(("ln_", "weight_c")):
                p.add_(torch.randn_like(p) * 0.3)
    return layer.eval() if config.endswith("_eval") else layer


def make_hx(kind, num_layers, bidirectional, batch=B, dtype=F64, unbatched=False):
    LD = num_layers * (2 if bidirectional else 1)
    h_size = P if kind == "lstm_proj" else H
    batch_shape = () if unbatched else (batch,)
    h = torch.randn(LD, *batch_shape, h_size, dtype=dtype, requires_grad=True)
    if kind.startswith("lstm"):
        return (h, torch.randn(LD, *batch_shape, H, dtype=dtype, requires_grad=True))
    return h


def leaves(x, hx):
    out = {"x": x}
    if hx is not None:
        out.update({"h0": hx[0], "c0": hx[1]} if isinstance(hx, tuple) else {"h0": hx})
    return out


def padded_input(dtype=F64, lengths=LENGTHS, batch_first=False, fill=0.0):
    """A (T, B, I) or (B, T, I) leaf whose padding holds ``fill``."""
    x = torch.randn(T, B, I, dtype=dtype)
    valid = torch.arange(T).unsqueeze(1) < torch.tensor(lengths)
    x = torch.where(valid.unsqueeze(-1), x, torch.tensor(fill, dtype=dtype))
    return (x.transpose(0, 1) if batch_first else x).contiguous().requires_grad_()


def state_parts(state):
    return [state] if isinstance(state, torch.Tensor) else list(state)


# ---- parity with torch.nn ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["tmajor", "bfirst"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("kind, impl", with_impls(KINDS))
def test_parity_with_torch(kind, num_layers, bidirectional, batch_first, dtype, impl,
                           fwd_bwd, assert_results_close):
    ref, ours = make_pair(kind, dtype, num_layers=num_layers, bidirectional=bidirectional,
                          batch_first=batch_first, impl=impl)
    x = torch.randn(*((B, T) if batch_first else (T, B)), I, dtype=dtype, requires_grad=True)
    hx = make_hx(kind, num_layers, bidirectional, dtype=dtype)
    expected = fwd_bwd(ref, lambda: ref(x, hx), leaves(x, hx))
    actual = fwd_bwd(ours, lambda: ours(x, hx), leaves(x, hx))
    assert ours.last_impl == expected_impl(ours, impl)
    assert_results_close(actual, expected)


@pytest.mark.parametrize("kind, impl", with_impls(KINDS))
def test_parity_without_bias_and_without_initial_state(kind, impl, fwd_bwd, assert_results_close):
    ref, ours = make_pair(kind, bias=False, num_layers=2, bidirectional=True, impl=impl)
    x = torch.randn(T, B, I, dtype=F64, requires_grad=True)
    expected = fwd_bwd(ref, lambda: ref(x), {"x": x})
    actual = fwd_bwd(ours, lambda: ours(x), {"x": x})
    assert_results_close(actual, expected)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind, impl", with_impls(KINDS))
def test_unbatched_input_parity(kind, bidirectional, impl, fwd_bwd, assert_results_close):
    ref, ours = make_pair(kind, num_layers=2, bidirectional=bidirectional, batch_first=True,
                          impl=impl)
    x = torch.randn(T, I, dtype=F64, requires_grad=True)          # (T, I): batch_first is moot
    hx = make_hx(kind, 2, bidirectional, unbatched=True)
    expected = fwd_bwd(ref, lambda: ref(x, hx), leaves(x, hx))
    actual = fwd_bwd(ours, lambda: ours(x, hx), leaves(x, hx))
    assert actual["value0"].shape == expected["value0"].shape
    assert_results_close(actual, expected)
    out, state = ours(x)                                             # no hx: zeros
    ref_out, ref_state = ref(x)
    torch.testing.assert_close(out, ref_out, atol=1e-10, rtol=1e-10)
    for a, b in zip(state_parts(state), state_parts(ref_state)):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_load_state_dict_both_ways(kind, bidirectional):
    ref_cls, our_cls, shared = KINDS[kind]
    ours = our_cls(I, H, num_layers=2, bidirectional=bidirectional, dtype=F64, **shared)
    ref = ref_cls(I, H, num_layers=2, bidirectional=bidirectional, dtype=F64, **shared)
    # Same names, shapes and order as torch.
    assert [(n, p.shape) for n, p in ours.named_parameters()] == \
        [(n, p.shape) for n, p in ref.named_parameters()]
    ref.load_state_dict(ours.state_dict())                           # rnnkit -> torch (strict)
    x = torch.randn(T, B, I, dtype=F64)
    out, _ = ours(x)
    torch.testing.assert_close(out, ref(x)[0], atol=1e-10, rtol=1e-10)
    back = our_cls(I, H, num_layers=2, bidirectional=bidirectional, dtype=F64, impl="loop", **shared)
    back.load_state_dict(ref.state_dict())                           # torch -> rnnkit (strict)
    torch.testing.assert_close(back(x)[0], ref(x)[0], atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("config", ["lstm_peephole", "lstm_layer_norm", "lstm_peephole_layer_norm",
                                    "gru_cho", "gru_layer_norm", "gru_cho_layer_norm"])
def test_layer_extras_equal_a_stacked_loop_of_rnnkit_cells(config, bidirectional):
    """Options without a torch twin: the layer equals stepping rnnkit's cells (themselves checked
    against hand-written formulas) layer by layer, the reverse direction backwards in time."""
    layer = make_ours(config, num_layers=2, bidirectional=bidirectional)
    is_lstm = config.startswith("lstm")
    cell_cls, extra = (rnnkit.LSTMCell if is_lstm else rnnkit.GRUCell), EXTRAS[config][1]
    params = dict(layer.named_parameters())
    x = torch.randn(T, B, I, dtype=F64)
    hx = make_hx(base_kind(config), 2, bidirectional)
    out, state = layer(x, hx)

    D, inp, finals, used = (2 if bidirectional else 1), x, [], 0
    for lay in range(2):
        outs = []
        for d, suffix in enumerate([f"_l{lay}", f"_l{lay}_reverse"][:D]):
            cell = cell_cls(inp.shape[-1], H, dtype=F64, **extra)
            cell.load_state_dict({n: params[n + suffix] for n in cell.state_dict()})
            used += len(cell.state_dict())
            s = tuple(p[lay * D + d].detach() for p in state_parts(hx))
            s, ys = (s if is_lstm else s[0]), [None] * T
            for t in (reversed(range(T)) if d else range(T)):
                s = cell(inp[t], s)
                ys[t] = s[0] if is_lstm else s
            outs.append(torch.stack(ys))
            finals.append(s if is_lstm else (s,))
        inp = torch.cat(outs, dim=-1)
    assert used == len(params)
    torch.testing.assert_close(out, inp, atol=1e-12, rtol=1e-12)
    for got, want in zip(state_parts(state), zip(*finals)):
        torch.testing.assert_close(got, torch.stack(want), atol=1e-12, rtol=1e-12)


# ---- variable length -----------------------------------------------------------------------------

VARLEN_CONFIGS = list(KINDS) + list(EXTRAS)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("config, impl", with_impls(VARLEN_CONFIGS))
def test_lengths_give_each_row_what_it_gives_alone(config, bidirectional, impl):
    layer = make_ours(config, num_layers=2, bidirectional=bidirectional, impl=impl,
                      batch_first=True)
    kind = base_kind(config)
    x = padded_input(lengths=LENGTHS0, batch_first=True, fill=0.7)    # (B, T, I)
    hx = make_hx(kind, 2, bidirectional)
    out, state = layer(x, hx, lengths=torch.tensor(LENGTHS0))
    w_out = torch.cos(torch.arange(out.numel(), dtype=F64)).view(out.shape)
    loss = (out * w_out).sum() + sum(s.sum() for s in state_parts(state))
    params = [p for _, p in layer.named_parameters()]
    g_batch = torch.autograd.grad(loss, [x, *state_parts(hx)] + params)
    g_rows = [torch.zeros_like(g) for g in params]
    for b, L in enumerate(LENGTHS0):
        hx_b = [s[:, b:b + 1] for s in state_parts(hx)]
        if L == 0:                                                   # zero outputs, state = h_0
            assert torch.equal(out[b], torch.zeros_like(out[b]))
            for s, s0 in zip(state_parts(state), hx_b):
                assert torch.equal(s[:, b], s0[:, 0])
            for g in g_batch[1:1 + len(hx_b)]:                       # d loss / d h_0 = 1
                assert torch.equal(g[:, b], torch.ones_like(g[:, b]))
            continue
        row_out, row_state = layer(x[b:b + 1, :L], hx_b[0] if len(hx_b) == 1 else tuple(hx_b))
        torch.testing.assert_close(out[b, :L], row_out[0], atol=1e-10, rtol=1e-10)
        assert torch.equal(out[b, L:], torch.zeros_like(out[b, L:]))  # exact zeros past the end
        for s, rs in zip(state_parts(state), state_parts(row_state)):
            torch.testing.assert_close(s[:, b], rs[:, 0], atol=1e-10, rtol=1e-10)
        row_loss = (row_out * w_out[b:b + 1, :L]).sum() + sum(s.sum() for s in state_parts(row_state))
        g_row = torch.autograd.grad(row_loss, [x] + hx_b + params)
        torch.testing.assert_close(g_batch[0][b], g_row[0][b], atol=1e-10, rtol=1e-10)
        for gb, gr in zip(g_batch[1:1 + len(hx_b)], g_row[1:1 + len(hx_b)]):
            torch.testing.assert_close(gb[:, b], gr[:, 0], atol=1e-10, rtol=1e-10)
        g_rows = [acc + g for acc, g in zip(g_rows, g_row[1 + len(hx_b):])]
    # Weight gradients of the batch are the sum of the rows' weight gradients.
    for (name, _), gb, gr in zip(layer.named_parameters(), g_batch[1 + len(state_parts(hx)):], g_rows):
        torch.testing.assert_close(gb, gr, atol=1e-10, rtol=1e-10, msg=name)
    valid = torch.arange(T) < torch.tensor(LENGTHS0).unsqueeze(1)      # (B, T)
    assert torch.equal(g_batch[0][~valid], torch.zeros_like(g_batch[0][~valid]))


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["tmajor", "bfirst"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind, impl", with_impls(KINDS))
def test_lengths_match_torch_pack_padded_sequence(kind, bidirectional, batch_first, dtype, impl,
                                                  fwd_bwd, assert_results_close):
    ref, ours = make_pair(kind, dtype, num_layers=2, bidirectional=bidirectional,
                          batch_first=batch_first, impl=impl)
    x = padded_input(dtype, LENGTHS, batch_first)
    hx = make_hx(kind, 2, bidirectional, dtype=dtype)

    def run_ref():
        packed = pack_padded_sequence(x, torch.tensor(LENGTHS), batch_first=batch_first,
                                      enforce_sorted=False)
        out, state = ref(packed, hx)
        return pad_packed_sequence(out, batch_first=batch_first, total_length=T)[0], state

    expected = fwd_bwd(ref, run_ref, leaves(x, hx))
    actual = fwd_bwd(ours, lambda: ours(x, hx, lengths=LENGTHS), leaves(x, hx))
    assert_results_close(actual, expected)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("config, impl", with_impls(VARLEN_CONFIGS))
def test_nan_padding_changes_no_valid_output_or_gradient(config, bidirectional, impl, fwd_bwd):
    layer = make_ours(config, num_layers=2, bidirectional=bidirectional, impl=impl)
    clean = padded_input(lengths=LENGTHS0)
    dirty = padded_input(lengths=LENGTHS0, fill=float("nan"))
    with torch.no_grad():
        dirty.copy_(torch.where(torch.isnan(dirty), dirty, clean))   # same valid content
    hx = make_hx(base_kind(config), 2, bidirectional)
    want = fwd_bwd(layer, lambda: layer(clean, hx, lengths=LENGTHS0), leaves(clean, hx))
    got = fwd_bwd(layer, lambda: layer(dirty, hx, lengths=LENGTHS0), leaves(dirty, hx))
    for key in want:
        assert torch.isfinite(got[key]).all(), key
        torch.testing.assert_close(got[key], want[key], atol=0, rtol=0, msg=key)
    valid = torch.arange(T).unsqueeze(1) < torch.tensor(LENGTHS0)
    assert torch.equal(got["grad:x"][~valid], torch.zeros_like(got["grad:x"][~valid]))


@pytest.mark.parametrize("kind, impl", with_impls(KINDS))
def test_reverse_direction_starts_at_each_rows_last_element(kind, impl):
    """out[L-1, b] of the reverse direction is one step of the cell from h_0 on x[L-1, b]."""
    ref, ours = make_pair(kind, num_layers=1, bidirectional=True, impl=impl)
    x = padded_input(lengths=LENGTHS0, fill=3.0)
    hx = make_hx(kind, 1, True)
    out, state = ours(x, hx, lengths=LENGTHS0)
    H_out = P if kind == "lstm_proj" else H
    # torch.nn's bidirectional layer with the same weights, on x[L-1] alone: its reverse half.
    for b, L in enumerate(LENGTHS0):
        if L == 0:
            continue
        hx_b = tuple(s[:, b:b + 1] for s in state_parts(hx))
        step_out, _ = ref(x[L - 1:L, b:b + 1], hx_b if len(hx_b) > 1 else hx_b[0])
        torch.testing.assert_close(out[L - 1, b, H_out:], step_out[0, 0, H_out:],
                                   atol=1e-12, rtol=1e-12)
        # The final reverse state is the reverse output at t = 0; forward's is at t = L - 1.
        torch.testing.assert_close(state_parts(state)[0][1, b], out[0, b, H_out:], atol=0, rtol=0)
        torch.testing.assert_close(state_parts(state)[0][0, b], out[L - 1, b, :H_out], atol=0, rtol=0)


# ---- PackedSequence ------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_first", [False, True], ids=["tmajor", "bfirst"])
@pytest.mark.parametrize("enforce_sorted", [False, True], ids=["unsorted", "sorted"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind, impl", with_impls(KINDS))
def test_packed_sequence_matches_torch(kind, bidirectional, enforce_sorted, batch_first, impl,
                                       fwd_bwd, assert_results_close):
    """A PackedSequence in gives a PackedSequence out, laid out as torch's (batch_first is moot)."""
    ref, ours = make_pair(kind, num_layers=2, bidirectional=bidirectional, impl=impl,
                          batch_first=batch_first)
    lengths = sorted(LENGTHS, reverse=True) if enforce_sorted else LENGTHS
    x = padded_input(lengths=lengths, batch_first=True)
    hx = make_hx(kind, 2, bidirectional)
    results, packs = [], []
    for layer in (ref, ours):
        def run(layer=layer):
            out, state = layer(pack_padded_sequence(x, torch.tensor(lengths), batch_first=True,
                                                    enforce_sorted=enforce_sorted), hx)
            packs.append(out)
            return out, state
        results.append(fwd_bwd(layer, run, leaves(x, hx)))
    want, got = packs
    assert isinstance(got, type(want))
    assert torch.equal(got.batch_sizes, want.batch_sizes)
    for a, b in ((got.sorted_indices, want.sorted_indices),
                 (got.unsorted_indices, want.unsorted_indices)):
        assert (a is None and b is None) or torch.equal(a, b)
    assert got.data.shape == want.data.shape
    assert_results_close(results[1], results[0])                     # data, states, all gradients


# ---- streaming (truncated BPTT) ------------------------------------------------------------------

STREAM_CONFIGS = list(KINDS) + ["lstm_peephole", "gru_cho_layer_norm", "lstm_zoneout_eval",
                                "gru_recurrent_dropout_eval"]
CHUNKS = [2, 1, 3, 1]                                                # sums to T + 2 = 7


@pytest.mark.parametrize("batch_first", [False, True], ids=["tmajor", "bfirst"])
@pytest.mark.parametrize("config, impl", with_impls(STREAM_CONFIGS))
def test_streaming_equals_one_run(config, batch_first, impl):
    layer = make_ours(config, num_layers=2, batch_first=batch_first, impl=impl)
    kind = base_kind(config)
    steps = sum(CHUNKS)
    tdim = 1 if batch_first else 0
    x = torch.randn(*((B, steps) if batch_first else (steps, B)), I, dtype=F64, requires_grad=True)
    hx = make_hx(kind, 2, False)
    full_out, full_state = layer(x, hx)
    pieces = x.split(CHUNKS, dim=tdim)

    # Values: chunks with the state carried and detached between them (truncated BPTT).
    state, outs = hx, []
    for piece in pieces:
        out, state = layer(piece, state)
        outs.append(out)
        state = detach_state(state)
    torch.testing.assert_close(torch.cat(outs, dim=tdim), full_out, atol=1e-10, rtol=1e-10)
    for a, b in zip(state_parts(state), state_parts(full_state)):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)
    # ... and the detach really cuts the graph: the last chunk's loss does not reach x's first chunk.
    g = torch.autograd.grad(outs[-1].sum(), x)[0]
    first = g.narrow(tdim, 0, CHUNKS[0])
    assert torch.equal(first, torch.zeros_like(first)) and g.abs().sum() > 0

    # Gradients: the same chunks without detaching equal the one run's gradients.
    state, outs = hx, []
    for piece in pieces:
        out, state = layer(piece, state)
        outs.append(out)
    params = [x, *state_parts(hx)] + list(layer.parameters())

    def loss(out, st):
        w = torch.cos(torch.arange(out.numel(), dtype=F64)).view(out.shape)
        return (out * w).sum() + sum((s * 0.5).sum() for s in state_parts(st))

    g_chunks = torch.autograd.grad(loss(torch.cat(outs, dim=tdim), state), params)
    g_full = torch.autograd.grad(loss(full_out, full_state), params)
    for a, b in zip(g_chunks, g_full):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


# ---- dropout, recurrent dropout and zoneout only in train() --------------------------------------

@pytest.mark.parametrize("kind, impl", with_impls(KINDS))
def test_inter_layer_dropout_only_in_train(kind, impl):
    _, plain = make_pair(kind, num_layers=2, impl=impl)
    _, our_cls, shared = KINDS[kind]
    layer = our_cls(I, H, num_layers=2, dropout=0.5, dtype=F64, impl=impl, **shared)
    layer.load_state_dict(plain.state_dict())
    x = torch.randn(T, B, I, dtype=F64)
    a, b = layer(x)[0], layer(x)[0]
    assert (a - b).abs().max() > 1e-6                                 # fresh masks per call
    layer.eval()
    a, b = layer(x)[0], layer(x)[0]
    assert torch.equal(a, b)
    torch.testing.assert_close(a, plain(x)[0], atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("option", ["recurrent_dropout", "zoneout"])
def test_recurrent_dropout_and_zoneout_masks_only_in_train(kind, option):
    _, plain = make_pair(kind, num_layers=2, bidirectional=True)
    _, our_cls, shared = KINDS[kind]
    layer = our_cls(I, H, num_layers=2, bidirectional=True, dtype=F64, **shared, **{option: 0.4})
    layer.load_state_dict(plain.state_dict())
    x = torch.randn(T, B, I, dtype=F64)
    a, b = layer(x, lengths=LENGTHS)[0], layer(x, lengths=LENGTHS)[0]
    assert layer.last_impl == ("loop" if kind == "lstm_proj" else bptt_impl(layer))
    assert (a - b).abs().max() > 1e-6                                 # random masks in train()
    layer.eval()
    with torch.no_grad():                                             # inference: fused if it can
        a, b = layer(x, lengths=LENGTHS)[0], layer(x, lengths=LENGTHS)[0]
    assert torch.equal(a, b)                                          # deterministic in eval()
    plain_out = plain(x, lengths=LENGTHS)[0]
    if option == "recurrent_dropout":                                 # eval: no mask, fused kernel
        assert layer.last_impl == "fused"
        torch.testing.assert_close(a, plain_out, atol=1e-10, rtol=1e-10)
    else:                                                             # eval: expectation, bptt
        assert layer.last_impl == ("loop" if kind == "lstm_proj" else bptt_impl(layer))
        assert (a - plain_out).abs().max() > 1e-3


def test_recurrent_dropout_mask_is_one_per_sequence_and_scaled():
    """Variational dropout: the same (B, H) mask, scaled by 1/keep, on h at every step. With
    W_ih = 0, biases 0 and W_hh = I the recurrence is h_t = tanh(m ⊙ h_{t-1})."""
    layer = rnnkit.RNN(I, H, recurrent_dropout=0.5, dtype=F64, impl="loop")
    with torch.no_grad():
        for p in layer.parameters():
            p.zero_()
        layer.weight_hh_l0.copy_(torch.eye(H, dtype=F64))
    h0 = torch.rand(1, B, H, dtype=F64) + 0.5
    out, _ = layer(torch.randn(T, B, I, dtype=F64), h0)
    m = (out[0] != 0).to(F64) * 2.0                                  # the mask, read off step 1
    assert 0 < int((m == 0).sum()) < B * H                            # some dropped, some kept
    prev = h0[0]
    for t in range(T):
        torch.testing.assert_close(out[t], torch.tanh(m * prev), atol=1e-12, rtol=1e-12)
        prev = out[t]


@pytest.mark.parametrize("kind", ["lstm", "lstm_proj", "gru", "rnn_tanh"])
def test_zoneout_train_keeps_each_unit_old_or_new(kind):
    """In train() every unit of every state part, at every step, is exactly its previous value or
    exactly the cell's update (checked one step at a time against torch.nn with the same weights)."""
    ref, _ = make_pair(kind, num_layers=1)
    _, our_cls, shared = KINDS[kind]
    layer = our_cls(I, H, dtype=F64, zoneout=0.5, **shared)
    layer.load_state_dict(ref.state_dict())
    x = torch.randn(T, B, I, dtype=F64)
    state = detach_state(make_hx(kind, 1, False))
    kept = updated = 0
    for t in range(T):
        _, new = ref(x[t:t + 1], state)
        out, nxt = layer(x[t:t + 1], state)
        assert torch.equal(out[0], state_parts(nxt)[0][0])
        for old_p, new_p, got in zip(state_parts(state), state_parts(new), state_parts(nxt)):
            is_old, is_new = (got - old_p).abs() < 1e-12, (got - new_p).abs() < 1e-12
            assert bool((is_old | is_new).all())
            kept += int((is_old & ~is_new).sum())
            updated += int((is_new & ~is_old).sum())
        state = nxt
    assert kept > 0 and updated > 0


@pytest.mark.parametrize("kind", ["lstm", "lstm_proj", "gru", "rnn_tanh"])
def test_zoneout_eval_is_expected_update(kind):
    """In eval() zoneout computes s_t = z·s_{t-1} + (1 - z)·cell(x_t, s_{t-1}), every state part."""
    z = 0.3
    ref, _ = make_pair(kind, num_layers=1)
    _, our_cls, shared = KINDS[kind]
    layer = our_cls(I, H, dtype=F64, zoneout=z, **shared).eval()
    layer.load_state_dict(ref.state_dict())
    x = torch.randn(T, B, I, dtype=F64)
    hx = make_hx(kind, 1, False)
    out, state = layer(x, hx)
    s = [p[0].detach() for p in state_parts(hx)]
    for t in range(T):
        _, new = ref(x[t:t + 1], tuple(p.unsqueeze(0) for p in s) if len(s) > 1 else s[0][None])
        s = [z * old + (1 - z) * nw[0] for old, nw in zip(s, state_parts(new))]
        torch.testing.assert_close(out[t], s[0], atol=1e-12, rtol=1e-12)
    for got, want in zip(state_parts(state), s):
        torch.testing.assert_close(got[0], want, atol=1e-12, rtol=1e-12)


# ---- fused path = loop path ----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("lengths", [None, LENGTHS0], ids=["full", "lengths"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind, fast", [(k, f) for k in KINDS for f in ("fused", "bptt", "bptt-ops")
                                        if not (f.startswith("bptt") and "proj" in k)])
def test_fast_path_equals_loop(fast, kind, bidirectional, lengths, dtype, fwd_bwd,
                               assert_results_close, monkeypatch):
    if fast == "bptt-ops":                       # bptt's steps as torch ops, not the kernels
        monkeypatch.setenv("RNNKIT_KERNELS", "0")
        fast = "bptt"
    _, fused = make_pair(kind, dtype, num_layers=2, bidirectional=bidirectional, impl=fast,
                         batch_first=True)
    _, loop = make_pair(kind, dtype, num_layers=2, bidirectional=bidirectional, impl="loop",
                        batch_first=True)
    loop.load_state_dict(fused.state_dict())
    x = torch.randn(B, T, I, dtype=dtype, requires_grad=True)
    hx = make_hx(kind, 2, bidirectional, dtype=dtype)
    got = fwd_bwd(fused, lambda: fused(x, hx, lengths=lengths), leaves(x, hx))
    want = fwd_bwd(loop, lambda: loop(x, hx, lengths=lengths), leaves(x, hx))
    assert (fused.last_impl, loop.last_impl) == (expected_impl(fused, fast), "loop")
    assert_results_close(got, want)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("lengths", [None, LENGTHS0], ids=["full", "lengths"])
@pytest.mark.parametrize("config", [c for c in EXTRAS if "proj" not in c] + [
    "rnn_relu_recurrent_dropout", "gru_zoneout", "lstm_peephole_layer_norm_all_extras"])
def test_bptt_equals_loop_for_every_extra(config, lengths, train, step_path, fwd_bwd,
                                          assert_results_close):
    """The hand-written backward against autograd through the readable loop, float64, 2 layers,
    bidirectional, with the same dropout, recurrent-dropout and zoneout masks (same seed)."""
    extra = {"rnn_relu_recurrent_dropout": ("rnn_relu", {"recurrent_dropout": 0.3}),
             "gru_zoneout": ("gru", {"zoneout": 0.3, "bias": False}),
             "lstm_peephole_layer_norm_all_extras": (
                 "lstm", {"peephole": True, "layer_norm": True, "forget_bias": 1.0,
                          "recurrent_dropout": 0.25, "zoneout": 0.2, "dropout": 0.3})}
    kind, options = extra[config] if config in extra else EXTRAS[config]
    _, our_cls, shared = KINDS[kind]
    make = lambda impl: our_cls(I, H, num_layers=2, bidirectional=True, dtype=F64, impl=impl,
                                **shared, **options)
    fast, loop = make("bptt"), make("loop")
    with torch.no_grad():
        for p in fast.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    loop.load_state_dict(fast.state_dict())
    fast.train(train), loop.train(train)
    x = torch.randn(T, B, I, dtype=F64, requires_grad=True)
    hx = make_hx(kind, 2, True, dtype=F64)
    results = []
    for layer in (fast, loop):
        torch.manual_seed(5)
        results.append(fwd_bwd(layer, lambda: layer(x, hx, lengths=lengths), leaves(x, hx)))
    assert (fast.last_impl, loop.last_impl) == (bptt_impl(fast), "loop")
    assert_results_close(*results)


def test_bptt_refuses_the_lstm_projection():
    layer = rnnkit.LSTM(I, H, proj_size=P, impl="bptt", dtype=F64)
    with pytest.raises(RuntimeError, match=re.escape("impl='bptt' but the hand-written BPTT does "
                                                     "not compute proj_size")):
        layer(torch.randn(T, B, I, dtype=F64))


@pytest.mark.parametrize("config, reason", [
    ("lstm_peephole", "peephole"), ("lstm_layer_norm", "layer_norm"),
    ("gru_cho", "reset_after=False"), ("gru_layer_norm", "layer_norm"),
    ("gru_cho_layer_norm", "reset_after=False"), ("lstm_zoneout_eval", "zoneout"),
    ("rnn_relu_zoneout_eval", "zoneout"),
])
def test_fused_refuses_what_it_cannot_compute_and_auto_takes_bptt(config, reason):
    x = torch.randn(T, B, I, dtype=F64)
    layer = make_ours(config, impl="fused")
    msg = f"impl='fused' but torch's fused kernel does not compute {reason}"
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        layer(x)
    auto = make_ours(config, impl="auto")
    auto.load_state_dict(layer.state_dict())
    loop = make_ours(config, impl="loop")
    loop.load_state_dict(layer.state_dict())
    out_auto, out_loop = auto(x)[0], loop(x)[0]
    assert auto.last_impl == bptt_impl(auto)
    torch.testing.assert_close(out_auto, out_loop, atol=1e-12, rtol=1e-12)


def test_fused_with_recurrent_dropout_only_in_eval():
    layer = rnnkit.LSTM(I, H, recurrent_dropout=0.2, impl="fused", dtype=F64)
    x = torch.randn(T, B, I, dtype=F64)
    with pytest.raises(RuntimeError, match=re.escape("does not compute recurrent_dropout in train()")):
        layer(x)
    layer.eval()
    layer(x)
    assert layer.last_impl == "fused"


# ---- gradcheck of every layer option -------------------------------------------------------------

GRADCHECK_CONFIGS = ["lstm_peephole", "lstm_layer_norm", "lstm_proj_peephole", "gru_layer_norm",
                     "gru_cho", "gru_cho_layer_norm", "gru_recurrent_dropout_eval",
                     "lstm_zoneout_eval", "rnn_relu_zoneout_eval", "rnn_relu"]


@pytest.mark.parametrize("config, impl", [(c, i) for c in GRADCHECK_CONFIGS
                                          for i in ("loop", "bptt", "bptt-ops")
                                          if not (i.startswith("bptt") and "proj" in c)])
def test_layer_gradcheck(config, impl, monkeypatch):
    """float64 gradcheck w.r.t. input, initial state and every parameter: 2 layers, bidirectional,
    lengths."""
    kind = base_kind(config)
    _, our_cls, shared = KINDS[kind]
    extra = EXTRAS[config][1] if config in EXTRAS else {}
    shared = dict(shared, proj_size=2) if "proj_size" in shared else shared
    if impl == "bptt-ops":
        monkeypatch.setenv("RNNKIT_KERNELS", "0")
    layer = our_cls(2, 3, num_layers=2, bidirectional=True, dtype=F64, impl=impl[:4] if
                    impl.startswith("bptt") else impl, **shared, **extra)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    if config.endswith("_eval"):
        layer.eval()
    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    x = torch.randn(3, 2, 2, dtype=F64, requires_grad=True)          # T=3, B=2, I=2
    h0 = torch.randn(4, 2, shared.get("proj_size", 3), dtype=F64, requires_grad=True)
    hx = (h0, torch.randn(4, 2, 3, dtype=F64, requires_grad=True)) if kind.startswith("lstm") \
        else (h0,)

    def fn(x, *rest):
        h = rest[:len(hx)]
        out, state = functional_call(layer, dict(zip(names, rest[len(hx):])),
                                     (x, h if len(h) > 1 else h[0]), {"lengths": [3, 2]})
        return (out, *state_parts(state))

    # fast_mode: a random projection of the full Jacobian (the cells get the exhaustive check);
    # it still fails on any wrong gradient entry with probability ~1.
    assert torch.autograd.gradcheck(fn, (x, *hx, *params), fast_mode=True)
    assert layer.last_impl == expected_impl(layer, impl[:4] if impl.startswith("bptt") else impl)


# ---- constructor options -------------------------------------------------------------------------

@pytest.mark.parametrize("bidirectional", [False, True])
def test_layer_forget_bias_adds_exactly_to_every_forget_slice(bidirectional):
    torch.manual_seed(5)
    plain = rnnkit.LSTM(I, H, num_layers=2, bidirectional=bidirectional, dtype=F64)
    torch.manual_seed(5)
    biased = rnnkit.LSTM(I, H, num_layers=2, bidirectional=bidirectional, dtype=F64, forget_bias=1.0)
    expected = torch.zeros(4 * H, dtype=F64)
    expected[H:2 * H] = 1.0
    n_bias = 0
    for (name, p), (_, q) in zip(plain.named_parameters(), biased.named_parameters()):
        if name.startswith("bias_ih"):
            torch.testing.assert_close(q - p, expected, atol=1e-15, rtol=0)
            n_bias += 1
        else:
            assert torch.equal(p, q), name
    assert n_bias == 2 * (2 if bidirectional else 1)


# ---- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(KINDS))
def test_wrong_input_size_is_named(kind):
    _, ours = make_pair(kind, input_size=4)
    name = type(ours).__name__
    with pytest.raises(ValueError, match=re.escape(f"{name}: input has 3 features in its last "
                                                   f"dimension, expected input_size=4")):
        ours(torch.randn(T, B, 3, dtype=F64))
    with pytest.raises(ValueError, match=re.escape("expected input of 3 dimensions (T, B, I) or 2 "
                                                   "(T, I) unbatched, got shape (2, 5, 4, 4)")):
        ours(torch.randn(2, 5, 4, 4, dtype=F64))


@pytest.mark.parametrize("kind", list(KINDS))
def test_wrong_hidden_state_shape_is_named(kind):
    _, ours = make_pair(kind, num_layers=2)
    x = torch.randn(T, 3, I, dtype=F64)
    H_out = P if kind == "lstm_proj" else H
    bad_h = torch.randn(1, 3, H_out, dtype=F64)
    good_c = torch.randn(2, 3, H, dtype=F64)
    msg = f"h_0 has shape (1, 3, {H_out}), expected (2, 3, {H_out})"
    with pytest.raises(ValueError, match=re.escape(msg)):
        ours(x, (bad_h, good_c) if kind.startswith("lstm") else bad_h)
    msg = f"h_0 has shape (2, {H_out}), expected (2, 3, {H_out})"
    with pytest.raises(ValueError, match=re.escape(msg)):
        h = torch.randn(2, H_out, dtype=F64)
        ours(x, (h, good_c) if kind.startswith("lstm") else h)
    # Unbatched input: the message speaks in unbatched shapes.
    with pytest.raises(ValueError, match=re.escape(f"h_0 has shape (2, 2), expected (2, {H_out})")):
        h = torch.randn(2, 2, dtype=F64)
        ours(x[:, 0], (h, good_c[:, 0]) if kind.startswith("lstm") else h)
    if kind.startswith("lstm"):
        good_h = torch.randn(2, 3, H_out, dtype=F64)
        msg = f"c_0 has shape (2, 4, {H}), expected (2, 3, {H})"
        with pytest.raises(ValueError, match=re.escape(msg)):
            ours(x, (good_h, torch.randn(2, 4, H, dtype=F64)))
        msg = "expected a hidden state of 2 tensor(s), got 1"
        with pytest.raises(ValueError, match=re.escape(msg)):
            ours(x, good_h)


@pytest.mark.parametrize("impl", ["loop", "bptt", "auto"])
@pytest.mark.parametrize("lengths, exc, msg", [
    ([5, 9, 1, 1], ValueError, "lengths[1] = 9 is outside [0, 5]"),
    ([5, 1, 1, -2], ValueError, "lengths[3] = -2 is outside [0, 5]"),
    ([5, 1, 1], ValueError, "lengths must have shape (4,) for a batch of 4, got (3,)"),
    (torch.tensor([5.0, 1, 1, 1]), TypeError, "lengths must be integers, got dtype torch.float32"),
])
def test_bad_lengths_are_named(lengths, exc, msg, impl):
    layer = rnnkit.GRU(I, H, impl=impl, dtype=F64)
    with pytest.raises(exc, match=re.escape(msg)):
        layer(torch.randn(T, B, I, dtype=F64), lengths=lengths)


def test_packed_and_lengths_together_is_an_error():
    layer = rnnkit.LSTM(I, H)
    packed = pack_padded_sequence(torch.randn(T, B, I), torch.tensor(LENGTHS), enforce_sorted=False)
    with pytest.raises(ValueError, match="pass lengths= or a PackedSequence, not both"):
        layer(packed, lengths=LENGTHS)


@pytest.mark.parametrize("ctor, msg", [
    (lambda: rnnkit.LSTM(I, 4, proj_size=4), "proj_size must be in [0, hidden_size), got 4"),
    (lambda: rnnkit.GRU(I, 4, dropout=1.0), "dropout must be in [0, 1), got 1.0"),
    (lambda: rnnkit.LSTM(I, 4, zoneout=-0.1), "zoneout must be in [0, 1), got -0.1"),
    (lambda: rnnkit.RNN(I, 4, recurrent_dropout=1.5), "recurrent_dropout must be in [0, 1), got 1.5"),
    (lambda: rnnkit.RNN(I, 0), "hidden_size must be a positive integer, got 0"),
    (lambda: rnnkit.GRU(I, 4, num_layers=0), "num_layers must be a positive integer, got 0"),
    (lambda: rnnkit.LSTM(I, 4, impl="cuda"),
     "impl must be one of ('auto', 'fused', 'bptt', 'loop'), got 'cuda'"),
    (lambda: rnnkit.RNN(I, 4, nonlinearity="gelu"),
     "nonlinearity must be 'tanh' or 'relu', got 'gelu'"),
])
def test_constructor_errors(ctor, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        ctor()


# ---- one step at a time (generation) -------------------------------------------------------------

@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("config", ["lstm", "lstm_peephole", "lstm_zoneout_eval", "gru",
                                    "gru_recurrent_dropout_eval", "rnn_tanh",
                                    "rnn_relu_zoneout_eval", "gru_cho", "lstm_layer_norm",
                                    "lstm_proj"])
def test_stepper_equals_forward_one_step_at_a_time(config, dtype):
    """Ten steps through stepper() give forward()'s outputs and states over the ten steps (eval,
    2 layers); kernels where they compute the configuration, forward() with T = 1 otherwise."""
    layer = make_ours(config, dtype, num_layers=2).eval()
    x = torch.randn(10, B, I, dtype=dtype)
    want_out, want_state = layer(x)
    step, state, outs = layer.stepper(), None, []
    for x_t in x:
        y, state = step(x_t, state)
        outs.append(y)
    kernel_configs = ("lstm", "lstm_peephole", "lstm_zoneout_eval", "gru",
                      "gru_recurrent_dropout_eval", "rnn_tanh", "rnn_relu_zoneout_eval")
    assert step.impl == ("step+kernels" if config in kernel_configs and kernels.load() is not None
                         else "forward")
    tol = 1e-5 if dtype == F32 else 1e-12
    torch.testing.assert_close(torch.stack(outs), want_out, atol=tol, rtol=tol)
    for got, want in zip(state_parts(state), state_parts(want_state)):
        torch.testing.assert_close(got, want, atol=tol, rtol=tol)


def test_stepper_in_train_mode_steps_through_forward():
    layer = rnnkit.LSTM(I, H, dropout=0.5, num_layers=2)
    assert layer.stepper().impl == "forward"


@pytest.mark.parametrize("kind", ["gru", "rnn_tanh", "lstm"])
def test_bptt_under_bf16_autocast_runs_the_recurrence_in_float32(kind):
    """Autocast may hand bptt a bfloat16 input projection: the recurrence runs in the weights'
    float32, close to the float32 result (bf16 rounding of the projection only)."""
    _, layer = make_pair(kind, F32, impl="bptt")
    x = torch.randn(T, B, I, requires_grad=True)
    want = layer(x)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = layer(x)[0]
    got.sum().backward()
    assert got.dtype == torch.float32 and x.grad is not None
    torch.testing.assert_close(got, want, atol=3e-2, rtol=3e-2)
