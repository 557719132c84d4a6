"""The compiled step kernels: built here, refused inputs named, a failed build said and survived."""
from __future__ import annotations

import shutil

import pytest
import torch

import rnnkit
from rnnkit import kernels
from rnnkit.layers import dropout

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler on this machine")
def test_the_kernels_build_where_there_is_a_compiler():
    assert kernels.load() is not None, kernels.build_error()


def test_a_kernel_names_the_argument_it_cannot_take():
    ops = kernels.load()
    if ops is None:
        pytest.skip(f"no compiled kernels here: {kernels.build_error()}")
    B, H = 2, 3
    a, x = torch.randn(B, 3 * H), torch.randn(B, 3 * H)
    h = torch.randn(H, B).t()                                          # not contiguous
    outs = [torch.empty(B, 2 * H), torch.empty(B, H), torch.empty(B, H), torch.empty(B, H)]
    with pytest.raises(RuntimeError, match="h must be a contiguous CPU tensor"):
        ops.gru_forward(a, x, h, None, *outs)


def test_a_failed_build_is_said_once_and_bptt_runs_its_steps_as_torch_ops(tmp_path, monkeypatch):
    broken = tmp_path / "steps.cpp"
    broken.write_text("this is not C++\n")
    monkeypatch.setattr(kernels, "SOURCE", broken)
    monkeypatch.setattr(kernels, "_state", {})
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    with pytest.warns(RuntimeWarning, match="could not be built"):
        assert kernels.load() is None
    assert kernels.build_error()
    assert kernels.load() is None                                     # no second build, no warning
    gru = rnnkit.GRU(3, 4)
    out, _ = gru(torch.randn(5, 2, 3))
    out.sum().backward()
    assert gru.last_impl == "bptt"


def test_rnnkit_kernels_0_turns_them_off(monkeypatch):
    monkeypatch.setenv("RNNKIT_KERNELS", "0")
    assert kernels.load() is None
    rnn = rnnkit.RNN(3, 4)
    rnn(torch.randn(5, 2, 3))[0].sum().backward()
    assert rnn.last_impl == "bptt"


def test_the_word2vec_step_refuses_a_word_outside_the_vocabulary():
    ops = kernels.load()
    if ops is None:
        pytest.skip(f"no compiled kernels here: {kernels.build_error()}")
    w_in, w_out, b_out, log_noise = torch.zeros(5, 3), torch.zeros(5, 3), torch.zeros(5), torch.zeros(5)
    before = w_out.clone()
    with pytest.raises(RuntimeError, match="word id 5 outside the vocabulary of 5"):
        ops.w2v_sgd(w_in, w_out, b_out, log_noise, torch.tensor([0, 5]), torch.tensor([1, 2]),
                    torch.tensor([[3, 4]]), 0.1, False, False)
    assert torch.equal(w_out, before)                                 # refused before any update


@pytest.mark.parametrize("path", ["kernels", "torch ops"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_keeps_1_minus_p_of_the_values_scaled_independently(path, dtype, p, monkeypatch):
    if path == "kernels" and kernels.load() is None:
        pytest.skip(f"no compiled kernels here: {kernels.build_error()}")
    if path == "torch ops":
        monkeypatch.setenv("RNNKIT_KERNELS", "0")
    n = 400_000
    x = torch.linspace(1, 2, n, dtype=dtype)                           # never 0 itself
    torch.manual_seed(0)
    y = dropout(x, p)
    kept = y != 0
    # the kept fraction within 4.5 standard deviations of 1 - p (binomial)
    assert abs(kept.double().mean().item() - (1 - p)) < 4.5 * (p * (1 - p) / n) ** 0.5
    torch.testing.assert_close(y[kept], (x[kept].double() / (1 - p)).to(dtype))
    # neighbours independent: P(both kept) = (1 - p)², not 1 - p (a stuck or periodic generator)
    both = (kept[1:] & kept[:-1]).double().mean().item()
    assert abs(both - (1 - p) ** 2) < 0.01
    torch.manual_seed(0)
    assert torch.equal(dropout(x, p), y)                              # torch's seed fixes the mask
    assert not torch.equal(dropout(x, p), y)                          # and each call draws anew


def test_the_dropout_kernel_refuses_a_probability_of_one():
    ops = kernels.load()
    if ops is None:
        pytest.skip(f"no compiled kernels here: {kernels.build_error()}")
    with pytest.raises(RuntimeError, match=r"dropout probability must be in \[0, 1\), got 1"):
        ops.dropout_mask(torch.empty(3), 0, 1.0)
