"""The NumPy reference (hand-written BPTT) against finite differences and against torch autograd.

Shapes: T time, B batch, I input size, H hidden size.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit import gradcheck as gc
from rnnkit import reference as ref
from rnnkit.unroll import unroll

CELLS = gc.CONFIGS
REF_DIR = Path(ref.__file__).parent


def _parts(state):
    return state if isinstance(state, tuple) else (state,)


def _with_nan_padding(xs, lengths):
    xs = xs.copy()
    for b, L in enumerate(lengths):
        xs[L:, b] = np.nan
    return xs


# ---- hand-written BPTT vs finite differences -----------------------------------------------------

@pytest.mark.parametrize("lengths", [(5, 2, 0), (3, 0, 5, 1)], ids=["5-2-0", "3-0-5-1"])
@pytest.mark.parametrize("cell", CELLS)
def test_bptt_equals_finite_differences(cell, lengths):
    problem = gc.make_problem(cell, seed=1, lengths=lengths)
    bptt = gc.gradients_numpy(problem)
    fd = gc.gradients_fd(problem)
    assert gc.max_rel_err(bptt, fd) <= 1e-6
    # the gradients are not trivially zero: every parameter and the valid inputs get some
    for name in problem["params"]:
        assert np.abs(bptt[name]).max() > 1e-3, name
    valid = np.arange(5)[:, None] < np.array(lengths)                      # (T, B)
    assert np.all(np.abs(bptt["input"]).max(axis=2)[valid] > 0)
    assert np.all(bptt["input"][~valid] == 0)                              # padding: exactly zero


def test_plain_centred_differences_agree_roughly():
    """The textbook (f(p+e) - f(p-e)) / 2e, as the student would write it (absolute 1e-8)."""
    problem = gc.make_problem("lstm-peephole", seed=2)
    bptt = gc.gradients_numpy(problem)
    fd = gc.gradients_fd(problem, eps=1e-6, richardson=False)
    for name in bptt:
        np.testing.assert_allclose(fd[name], bptt[name], rtol=0, atol=1e-8, err_msg=name)


def test_finite_differences_of_a_known_function():
    p = {"a": np.array([1.0, -2.0]), "b": np.array([[0.5]])}
    f = lambda d: float(np.sum(d["a"] ** 3) + np.sin(d["b"][0, 0]) * d["a"][0])
    g = ref.finite_difference_gradients(f, p, eps=1e-4, richardson=True)
    np.testing.assert_allclose(g["a"], [3.0 + np.sin(0.5), 12.0], rtol=1e-10)
    np.testing.assert_allclose(g["b"], [[np.cos(0.5)]], rtol=1e-10)
    assert p["a"][0] == 1.0 and p["b"][0, 0] == 0.5                       # inputs untouched


# ---- variable lengths -------------------------------------------------------------------------

@pytest.mark.parametrize("cell", CELLS)
def test_nan_padding_changes_nothing(cell):
    problem = gc.make_problem(cell, seed=3, lengths=(5, 2, 0))
    p, lengths = problem["params"], problem["lengths"]
    xs_nan = _with_nan_padding(problem["xs"], lengths)
    out, final, caches = ref.bptt_forward(cell, problem["xs"], problem["state0"], p, lengths)
    out_n, final_n, caches_n = ref.bptt_forward(cell, xs_nan, problem["state0"], p, lengths)
    np.testing.assert_array_equal(out_n, out)
    for a, b in zip(_parts(final_n), _parts(final)):
        np.testing.assert_array_equal(a, b)
    clean = ref.bptt_backward(cell, problem["w_out"], problem["w_final"], caches)
    dirty = ref.bptt_backward(cell, problem["w_out"], problem["w_final"], caches_n)
    np.testing.assert_array_equal(dirty[0], clean[0])
    for a, b in zip(_parts(dirty[1]), _parts(clean[1])):
        np.testing.assert_array_equal(a, b)
    for name in clean[2]:
        assert np.isfinite(dirty[2][name]).all()
        np.testing.assert_array_equal(dirty[2][name], clean[2][name])
    # and the same through rnnkit's torch cells + unroll
    np.testing.assert_equal(gc.gradients_torch(problem, xs=xs_nan), gc.gradients_torch(problem))


@pytest.mark.parametrize("cell", CELLS)
def test_padded_row_equals_row_alone(cell):
    lengths = (5, 2, 0, 4)
    problem = gc.make_problem(cell, seed=4, lengths=lengths)
    p, xs, state0 = problem["params"], problem["xs"], problem["state0"]
    out, final, caches = ref.bptt_forward(cell, xs, state0, p, np.array(lengths))
    dxs, d_state0, dparams = ref.bptt_backward(cell, problem["w_out"], problem["w_final"], caches)
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    param_sum = {k: np.zeros_like(v) for k, v in p.items()}
    for b, L in enumerate(lengths):
        row = slice(b, b + 1)
        s0 = tuple(s[row] for s in state0) if isinstance(state0, tuple) else state0[row]
        w_fin = problem["w_final"]
        w_fin = tuple(w[row] for w in w_fin) if isinstance(w_fin, tuple) else w_fin[row]
        assert np.all(out[L:, b] == 0)                                     # zero past the end
        assert np.all(dxs[L:, b] == 0)
        if L == 0:                                                         # nothing runs
            for f, s, d, w in zip(_parts(final), _parts(s0), _parts(d_state0), _parts(w_fin)):
                np.testing.assert_array_equal(f[b], s[0])
                np.testing.assert_array_equal(d[b], w[0])
            continue
        out1, final1, caches1 = ref.bptt_forward(cell, xs[:L, row], s0, p)    # no lengths at all
        dxs1, d_s1, dp1 = ref.bptt_backward(cell, problem["w_out"][:L, row], w_fin, caches1)
        close(out[:L, b], out1[:, 0])
        close(dxs[:L, b], dxs1[:, 0])
        for f, f1 in zip(_parts(final), _parts(final1)):
            close(f[b], f1[0])
        for d, d1 in zip(_parts(d_state0), _parts(d_s1)):
            close(d[b], d1[0])
        for k in param_sum:
            param_sum[k] += dp1[k]
    for k in param_sum:                           # the loss is a sum over rows, so are its gradients
        close(dparams[k], param_sum[k])


def test_lengths_are_validated():
    problem = gc.make_problem("gru", seed=0)
    with pytest.raises(ValueError, match="lengths"):
        ref.bptt_forward("gru", problem["xs"], problem["state0"], problem["params"], [6, 1, 0])
    with pytest.raises(ValueError, match="lengths"):
        ref.bptt_forward("gru", problem["xs"], problem["state0"], problem["params"], [1, 1])


# ---- against torch autograd through rnnkit.cells + rnnkit.unroll --------------------------------

@pytest.mark.parametrize("lengths", [(5, 2, 0), (5, 5, 5)], ids=["ragged", "full"])
@pytest.mark.parametrize("cell", CELLS)
def test_bptt_equals_torch_autograd(cell, lengths):
    problem = gc.make_problem(cell, seed=5, lengths=lengths)
    # forward: outputs and final state
    p = problem
    out, final, _ = ref.bptt_forward(cell, p["xs"], p["state0"], p["params"], p["lengths"])
    t = lambda a: torch.tensor(a, dtype=torch.float64)
    step = gc._torch_step_fn(cell, {k: t(v) for k, v in p["params"].items()})
    state0 = tuple(map(t, p["state0"])) if isinstance(p["state0"], tuple) else t(p["state0"])
    with torch.no_grad():
        out_t, final_t = unroll(step, t(p["xs"]), state0, lengths=torch.tensor(lengths))
    np.testing.assert_allclose(out_t.numpy(), out, rtol=1e-12, atol=1e-14)
    for a, b in zip(_parts(final_t), _parts(final)):
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-12, atol=1e-14)
    # backward: every parameter, input and initial-state gradient
    assert gc.max_rel_err(gc.gradients_numpy(problem), gc.gradients_torch(problem)) <= 1e-8


def _reverse_within_lengths(a, lengths):
    """Row b becomes a[L_b - 1], ..., a[0], then its padding unchanged (an involution)."""
    t = np.arange(a.shape[0])[:, None]                                       # (T, 1)
    index = np.where(t < lengths, lengths - 1 - t, t)                        # (T, B)
    return a[index, np.arange(a.shape[1])]


@pytest.mark.parametrize("cell", ["rnn-tanh", "lstm-peephole", "gru-cho"])
def test_bptt_on_reversed_rows_equals_torch_reverse_unroll(cell):
    """unroll(reverse=True) is the forward recurrence on each row reversed within its length."""
    problem = gc.make_problem(cell, seed=6, lengths=(5, 3, 0, 1))
    p, lengths = problem, np.array((5, 3, 0, 1))
    xs_rev = _reverse_within_lengths(p["xs"], lengths)
    _, _, caches = ref.bptt_forward(cell, xs_rev, p["state0"], p["params"], lengths)
    d_out_rev = _reverse_within_lengths(p["w_out"], lengths)
    dxs_rev, d_state0, dparams = ref.bptt_backward(cell, d_out_rev, p["w_final"], caches)
    expected = gc._pack(dparams, _reverse_within_lengths(dxs_rev, lengths), d_state0)
    assert gc.max_rel_err(expected, gc.gradients_torch(problem, reverse=True)) <= 1e-8
    # and it is not the forward direction's gradient
    assert gc.max_rel_err(expected, gc.gradients_torch(problem)) > 1e-2


# ---- the gradcheck command's engine ------------------------------------------------------------

def test_run_gradcheck_all_ok():
    rows = gc.run_gradcheck(seed=0)
    assert [r["cell"] for r in rows] == list(CELLS)
    for r in rows:
        assert r["ok"] is True, r
        assert 0 <= r["max_rel_err_fd"] <= 1e-6 and 0 <= r["max_rel_err_torch"] <= 1e-6
    lines = gc.format_gradcheck(rows).splitlines()
    assert len(lines) == len(CELLS)
    assert all(line.startswith(c) and line.endswith("ok") for line, c in zip(lines, CELLS))


def test_run_gradcheck_catches_a_wrong_backward(monkeypatch):
    """A backward off by 0.1 % in one weight must fail that row (and only that row)."""
    good = ref.CELLS["gru-cho"]

    def bad_backward(d_new, cache):
        dx, dh, dp = good.step_backward(d_new, cache)
        return dx, dh, dict(dp, weight_hh=dp["weight_hh"] * 1.001)
    monkeypatch.setitem(ref.CELLS, "gru-cho", good._replace(step_backward=bad_backward))
    rows = {r["cell"]: r for r in gc.run_gradcheck(seed=0)}
    assert not rows["gru-cho"]["ok"]
    assert 5e-4 < rows["gru-cho"]["max_rel_err_fd"] < 2e-3
    assert 5e-4 < rows["gru-cho"]["max_rel_err_torch"] < 2e-3
    assert all(r["ok"] for c, r in rows.items() if c != "gru-cho")
    assert "FAIL" in gc.format_gradcheck(list(rows.values())).splitlines()[-1]


def test_max_rel_err():
    a = {"w": np.array([1.0, 0.0, 0.0, -2.0])}
    assert gc.max_rel_err(a, {"w": np.array([1.0, 0.0, 1e-9, -2.0])}) == pytest.approx(0.1)
    assert gc.max_rel_err(a, {"w": np.array([1.1, 0.0, 0.0, -2.0])}) == pytest.approx(0.1 / 1.1)
    assert gc.max_rel_err(a, a) == 0.0
    assert np.isnan(gc.max_rel_err(a, {"w": np.array([np.nan, 0.0, 0.0, -2.0])}))
    with pytest.raises(ValueError):
        gc.max_rel_err(a, {"v": a["w"]})


# ---- the reference stands alone ----------------------------------------------------------------

def test_reference_imports_numpy_only():
    """Load rnnkit/reference by path, without the rnnkit package: no torch, no other rnnkit module."""
    code = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location(
    "ref_alone", {str(REF_DIR / "__init__.py")!r}, submodule_search_locations=[{str(REF_DIR)!r}])
mod = importlib.util.module_from_spec(spec); sys.modules["ref_alone"] = mod
spec.loader.exec_module(mod)
bad = [m for m in sys.modules if m.split(".")[0] in ("torch", "rnnkit")]
assert not bad, bad
assert mod.bptt_forward and mod.finite_difference_gradients
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
