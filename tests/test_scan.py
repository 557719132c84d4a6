"""Parallel-scan cells (minGRU, minLSTM): the log-space scan equals the step loop, forward and
backward; variable lengths, directions, stacking and streaming behave as in the other layers."""
from __future__ import annotations

import pytest
import torch

from rnnkit import MinGRU, MinLSTM, kernels
from rnnkit.scan import LinearRecurrence, g, scan_log

F64 = dict(dtype=torch.float64)
CELLS = [MinGRU, MinLSTM]


def run(layer, x, impl, **kw):
    layer.impl = impl
    x = x.clone().requires_grad_()
    out, h = layer(x, **kw)
    (out.sin().sum() + h.cos().sum()).backward()
    grads = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    return (out.detach(), h.detach(), x.grad), grads


@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_scan_equals_the_loop_forward_and_backward(cls, bidirectional):
    torch.manual_seed(0)
    layer = cls(3, 5, num_layers=2, bidirectional=bidirectional, batch_first=True, **F64)
    x, lengths = torch.randn(4, 9, 3, **F64), torch.tensor([9, 3, 0, 6])
    D = 2 if bidirectional else 1
    h0 = torch.rand(2 * D, 4, 5, **F64) + 0.1                    # states of these cells are > 0
    for kw in ({"lengths": lengths}, {"hx": h0}, {"lengths": lengths, "hx": h0}):
        loop = run(layer, x, "loop", **kw)
        for impl in ("scan", "recurrence", "recurrence without kernels"):
            with pytest.MonkeyPatch.context() as mp:
                if impl.endswith("without kernels"):   # LinearRecurrence's torch ops, not C++
                    mp.setenv("RNNKIT_KERNELS", "0")
                fast = run(layer, x, impl.split()[0], **kw)
            for a, b in zip(fast[0] + tuple(fast[1]), loop[0] + tuple(loop[1])):
                torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10, msg=impl)


@pytest.mark.parametrize("cls", CELLS)
def test_a_padded_row_is_that_row_alone_and_padding_never_leaks(cls):
    torch.manual_seed(1)
    layer = cls(2, 4, bidirectional=True, **F64)
    x = torch.randn(7, 3, 2, **F64)
    x[5:, 1] = float("nan")                                          # padding of row 1 (length 5)
    for impl in ("scan", "recurrence", "loop"):
        layer.impl = impl
        out, h = layer(x, lengths=[7, 5, 2])
        (out.sum() + h.sum()).backward()
        assert all(bool(torch.isfinite(p.grad).all()) for p in layer.parameters())
        layer.zero_grad()
        with torch.no_grad():
            alone, h_alone = layer(x[:5, 1:2])
        torch.testing.assert_close(out[:5, 1:2].detach(), alone)
        torch.testing.assert_close(h[:, 1:2].detach(), h_alone)
        assert out[5:, 1].abs().sum().item() == 0


@pytest.mark.parametrize("cls", CELLS)
def test_streaming_in_chunks_equals_one_run(cls):
    torch.manual_seed(2)
    layer = cls(3, 6, num_layers=2, **F64)
    x = torch.randn(12, 2, 3, **F64)
    for impl in ("scan", "recurrence", "loop"):
        layer.impl = impl
        whole, h_whole = layer(x)
        first, h = layer(x[:5])
        second, h = layer(x[5:], h)
        torch.testing.assert_close(torch.cat([first, second]), whole)
        torch.testing.assert_close(h, h_whole)


def test_min_gru_step_is_the_papers_equation():
    torch.manual_seed(3)
    layer = MinGRU(3, 4, batch_first=True, impl="loop", **F64)
    x, h0 = torch.randn(2, 1, 3, **F64), torch.rand(1, 2, 4, **F64) + 0.1
    out, _ = layer(x, h0)
    k, pre = torch.nn.functional.linear(x[:, 0], layer.weight_ih_l0, layer.bias_ih_l0).chunk(2, -1)
    z = torch.sigmoid(k)
    torch.testing.assert_close(out[:, 0], (1 - z) * h0[0] + z * g(pre))


def test_min_lstm_gates_are_normalised():
    torch.manual_seed(4)
    layer = MinLSTM(3, 4, impl="loop", **F64)
    x_proj = torch.randn(5, 12, **F64)
    log_a, log_b = layer.log_coefficients(x_proj)
    kf, ki, pre = x_proj.chunk(3, -1)
    f, i = torch.sigmoid(kf), torch.sigmoid(ki)
    torch.testing.assert_close(log_a.exp(), f / (f + i))
    torch.testing.assert_close(log_b.exp(), i / (f + i) * g(pre))


@pytest.mark.parametrize("cls", CELLS)
def test_kernels_pass_gradcheck_with_lengths_and_initial_state(cls):
    if kernels.load() is None:
        pytest.skip(f"no compiled kernels here: {kernels.build_error()}")
    torch.manual_seed(2)
    layer = cls(2, 3, bidirectional=True, impl="recurrence", **F64)
    x = torch.randn(4, 3, 2, **F64, requires_grad=True)
    h0 = (torch.rand(2, 3, 3, **F64) + 0.1).requires_grad_()
    fn = lambda x, h0: layer(x, h0, lengths=[4, 1, 3])
    assert torch.autograd.gradcheck(fn, (x, h0))
    assert layer.last_impl == "recurrence+kernels"


@pytest.mark.parametrize("cls", CELLS)
def test_kernels_split_over_threads_equal_the_loop(cls):
    """Enough work for the kernels to split rows and blocks of 64 units over torch's threads;
    H = 130 leaves a last block of 2 units, and one row ends early."""
    if kernels.load() is None:
        pytest.skip(f"no compiled kernels here: {kernels.build_error()}")
    torch.manual_seed(3)
    layer = cls(4, 130, batch_first=True, **F64)
    x, lengths = torch.randn(3, 400, 4, **F64), torch.tensor([400, 250, 399])
    h0 = torch.rand(1, 3, 130, **F64) + 0.1
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        fast = run(layer, x, "recurrence", lengths=lengths, hx=h0)
    finally:
        torch.set_num_threads(threads)
    assert layer.last_impl == "recurrence+kernels"
    loop = run(layer, x, "loop", lengths=lengths, hx=h0)
    for a, b in zip(fast[0] + tuple(fast[1]), loop[0] + tuple(loop[1])):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-9)


def test_written_out_backward_of_the_recurrence_passes_gradcheck():
    a = (torch.rand(5, 2, 3, **F64) + 0.1).requires_grad_()
    b, h0 = torch.randn(5, 2, 3, **F64, requires_grad=True), torch.randn(2, 3, **F64, requires_grad=True)
    assert torch.autograd.gradcheck(LinearRecurrence.apply, (a, b, h0))


def test_log_space_scan_is_the_linear_recurrence():
    a, b, h0 = torch.rand(2, 6, 3, **F64) + 0.01, torch.rand(2, 6, 3, **F64), torch.rand(2, 3, **F64)
    h, expected = h0, []
    for t in range(6):
        h = a[:, t] * h + b[:, t]
        expected.append(h)
    torch.testing.assert_close(scan_log(a.log(), b.log(), h0), torch.stack(expected, 1))


def test_g_is_positive_and_continuous():
    v = torch.linspace(-20, 20, 4001, **F64)
    assert bool((g(v) > 0).all())
    assert float(g(torch.tensor(-1e-12, **F64))) == pytest.approx(float(g(torch.tensor(0.0, **F64))))


def test_implementation_choice_is_explicit():
    layer = MinGRU(2, 3)
    x = torch.randn(4, 1, 2)
    layer(x)
    # on a CPU: measured the fastest here; minGRU's whole recurrence in C++ where it is built
    assert layer.last_impl == ("recurrence+kernels" if kernels.load() else "recurrence")
    min_lstm = MinLSTM(2, 3)
    min_lstm(x)
    assert min_lstm.last_impl == layer.last_impl
    with pytest.raises(ValueError, match="positive h_0"):
        MinGRU(2, 3, impl="scan")(x, torch.zeros(1, 1, 3))
    with pytest.raises(ValueError, match="impl must be one of"):
        MinGRU(2, 3, impl="fused")


def test_min_lstm_stays_finite_when_both_gates_vanish():
    """f and i both underflow for very negative pre-activations: f / (f + i) would be 0/0; the
    kernels (and the log-space reference) use σ(-Δ) with Δ = softplus(-kf) - softplus(-ki)."""
    torch.manual_seed(3)
    layer = MinLSTM(2, 3, impl="recurrence")
    with torch.no_grad():
        layer.bias_ih_l0[:6] = -200.0                                 # kf, ki
    x = torch.randn(5, 2, 2, requires_grad=True)
    out, h = layer(x)
    (out.sum() + h.sum()).backward()
    assert bool(torch.isfinite(out).all()) and bool(torch.isfinite(x.grad).all())
    ref = MinLSTM(2, 3, impl="loop")
    ref.load_state_dict(layer.state_dict())
    torch.testing.assert_close(out, ref(x)[0])
