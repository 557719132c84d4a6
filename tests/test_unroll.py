"""The generic time loop with a user-written cell: lengths, reverse, batch_first, padding, helpers."""
from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from rnnkit import detach_state, reverse_within_lengths, unroll
from rnnkit.unroll import check_lengths, map_state, mask_padding, time_mask

F64 = torch.float64
T, B, FEAT, H = 6, 4, 3, 5
LENGTHS = [6, 2, 0, 4]          # full, short, empty, middle

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


class LeakyCell(nn.Module):
    """A tiny custom cell written for the test: tuple state (h, step counter), output ≠ state."""

    def __init__(self, feat: int = FEAT, hidden: int = H) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(hidden, feat, dtype=F64))
        self.u = nn.Parameter(torch.randn(hidden, hidden, dtype=F64) * 0.5)

    def step(self, x, state):
        h, n = state                                          # (B, H), (B, 1)
        h_new = 0.5 * h + 0.5 * torch.tanh(x @ self.w.T + h @ self.u.T)
        return 2.0 * h_new + 1.0, (h_new, n + 1)


def init_state(batch=B):
    return (torch.randn(batch, H, dtype=F64, requires_grad=True), torch.zeros(batch, 1, dtype=F64))


def per_row(cell, x, state, lengths, reverse):
    """Reference: each row alone, a plain Python loop over its own valid steps (time-major x)."""
    columns, finals = [], []
    for b, L in enumerate(lengths):
        h, n = state[0][b:b + 1], state[1][b:b + 1]
        column = [torch.zeros(H, dtype=F64)] * T
        for t in (reversed(range(L)) if reverse else range(L)):
            y, (h, n) = cell.step(x[t, b:b + 1], (h, n))
            column[t] = y[0]
        columns.append(torch.stack(column))
        finals.append((h[0], n[0]))
    return torch.stack(columns, dim=1), tuple(torch.stack(parts) for parts in zip(*finals))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_unroll_custom_cell_with_lengths_matches_per_row_loop(reverse, batch_first):
    cell = LeakyCell()
    x = torch.randn(T, B, FEAT, dtype=F64, requires_grad=True)
    state = init_state()
    inp = x.transpose(0, 1) if batch_first else x
    out, (h, n) = unroll(cell.step, inp, state, lengths=torch.tensor(LENGTHS), reverse=reverse,
                         batch_first=batch_first)
    out = out.transpose(0, 1) if batch_first else out
    want_out, (want_h, want_n) = per_row(cell, x, state, LENGTHS, reverse)
    torch.testing.assert_close(out, want_out, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(h, want_h, atol=1e-12, rtol=1e-12)
    assert n.squeeze(1).tolist() == LENGTHS                 # state stopped at each row's last step
    mask = time_mask(torch.tensor(LENGTHS), T)
    assert torch.equal(out[~mask], torch.zeros_like(out[~mask]))   # exact zeros past the end
    torch.testing.assert_close(h[2], state[0][2], atol=0, rtol=0)  # zero-length row: initial state

    # Gradients: of the weights, the inputs and the initial state, against the per-row loop.
    w = torch.cos(torch.arange(out.numel(), dtype=F64)).view(out.shape)
    params = [x, state[0], cell.w, cell.u]
    got = torch.autograd.grad((out * w).sum() + h.sum(), params)
    want = torch.autograd.grad((want_out * w).sum() + want_h.sum(), params)
    for g, e in zip(got, want):
        torch.testing.assert_close(g, e, atol=1e-12, rtol=1e-12)
    assert torch.equal(got[0][~mask], torch.zeros_like(got[0][~mask]))   # no gradient to padding
    torch.testing.assert_close(got[1][2], torch.ones(H, dtype=F64))     # h_final[2] is h_0[2]


@pytest.mark.parametrize("reverse", [False, True])
def test_unroll_without_lengths_is_plain_loop(reverse):
    cell = LeakyCell()
    x = torch.randn(T, B, FEAT, dtype=F64)
    state = init_state()
    out, (h, n) = unroll(cell.step, x, state, reverse=reverse)
    want_out, (want_h, _) = per_row(cell, x, state, [T] * B, reverse)
    torch.testing.assert_close(out, want_out, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(h, want_h, atol=1e-12, rtol=1e-12)
    assert n.squeeze(1).tolist() == [T] * B


def test_reverse_starts_at_each_rows_last_valid_element():
    cell = LeakyCell()
    x = torch.randn(T, B, FEAT, dtype=F64)
    state = init_state()
    out, _ = unroll(cell.step, x, state, lengths=LENGTHS, reverse=True)
    for b, L in enumerate(LENGTHS):
        if L:
            y, _ = cell.step(x[L - 1, b:b + 1], (state[0][b:b + 1], state[1][b:b + 1]))
            torch.testing.assert_close(out[L - 1, b], y[0], atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("reverse", [False, True])
def test_nan_padding_never_reaches_outputs_or_gradients(reverse):
    cell = LeakyCell()
    clean = torch.randn(T, B, FEAT, dtype=F64)
    mask = time_mask(torch.tensor(LENGTHS), T)
    clean = torch.where(mask.unsqueeze(-1), clean, torch.zeros(()).double()).requires_grad_()
    dirty = torch.where(mask.unsqueeze(-1), clean.detach(), torch.tensor(float("nan"), dtype=F64))
    dirty.requires_grad_()
    state = init_state()
    results = []
    for x in (clean, dirty):
        out, (h, _) = unroll(cell.step, x, state, lengths=LENGTHS, reverse=reverse)
        loss = (out * torch.cos(torch.arange(out.numel(), dtype=F64)).view(out.shape)).sum() + h.sum()
        grads = torch.autograd.grad(loss, [x, state[0], cell.w, cell.u])
        results.append((out, h) + grads)
    for a, b in zip(*results):
        assert torch.isfinite(b).all()
        torch.testing.assert_close(b, a, atol=0, rtol=0)


def test_state_with_trailing_dimensions_and_structured_inputs():
    """State tensors need only a leading batch dim; inputs may have any trailing shape."""
    K = 2
    w = torch.randn(K, H, FEAT * 2, dtype=F64)

    def step(x, mem):                                       # x (B, FEAT, 2), mem (B, K, H)
        upd = torch.tanh(torch.einsum("khf,bf->bkh", w, x.flatten(1)))
        mem = 0.8 * mem + 0.2 * upd
        return mem.sum(1), mem

    x = torch.randn(T, B, FEAT, 2, dtype=F64)
    mem0 = torch.randn(B, K, H, dtype=F64)
    out, mem = unroll(step, x, mem0, lengths=LENGTHS)
    for b, L in enumerate(LENGTHS):
        m = mem0[b:b + 1]
        for t in range(L):
            y, m = step(x[t, b:b + 1], m)
            torch.testing.assert_close(out[t, b], y[0], atol=1e-12, rtol=1e-12)
        torch.testing.assert_close(mem[b], m[0], atol=1e-12, rtol=1e-12)
        assert torch.equal(out[L:, b], torch.zeros(T - L, H, dtype=F64))


def test_unroll_rejects_bad_lengths_and_empty_time():
    cell = LeakyCell()
    x = torch.randn(T, B, FEAT, dtype=F64)
    with pytest.raises(ValueError, match=re.escape("lengths[1] = 9 is outside [0, 6]")):
        unroll(cell.step, x, init_state(), lengths=[6, 9, 1, 1])
    with pytest.raises(ValueError, match="no time steps"):
        unroll(cell.step, x[:0], init_state())


# ---- helpers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("trailing", [(), (3,), (2, 3)])
def test_reverse_within_lengths_matches_per_row_flip_and_is_involution(trailing):
    x = torch.randn(T, B, *trailing)
    lengths = torch.tensor(LENGTHS)
    r = reverse_within_lengths(x, lengths)
    for b, L in enumerate(LENGTHS):
        assert torch.equal(r[:L, b], x[:L, b].flip(0))
        assert torch.equal(r[L:, b], x[L:, b])                # padding stays put
    assert torch.equal(reverse_within_lengths(r, lengths), x)
    assert torch.equal(reverse_within_lengths(x, None), x.flip(0))
    assert torch.equal(reverse_within_lengths(x, torch.full((B,), T)), x.flip(0))


def test_time_mask_and_mask_padding():
    lengths = torch.tensor(LENGTHS)
    m = time_mask(lengths, T)
    assert m.shape == (T, B)
    assert m.sum(0).tolist() == LENGTHS
    assert m[:, 1].tolist() == [True, True, False, False, False, False]
    x = torch.full((T, B, 2), float("nan"))
    y = mask_padding(x, lengths)
    assert torch.isnan(y[m]).all() and torch.equal(y[~m], torch.zeros_like(y[~m]))


def test_check_lengths_accepts_and_converts():
    got = check_lengths([3, 0, 2], T=3, B=3)
    assert got.dtype == torch.long and got.tolist() == [3, 0, 2]
    assert check_lengths(torch.tensor([1, 2], dtype=torch.int32), 2, 2).dtype == torch.long


@pytest.mark.parametrize("lengths, exc, msg", [
    ([6, 9, 1, 1], ValueError, "lengths[1] = 9 is outside [0, 6] (the padded input has 6 time steps)"),
    ([6, 1, -1, 1], ValueError, "lengths[2] = -1 is outside [0, 6]"),
    ([6, 1, 1], ValueError, "lengths must have shape (4,) for a batch of 4, got (3,)"),
    ([[6, 1, 1, 1]], ValueError, "lengths must have shape (4,) for a batch of 4, got (1, 4)"),
    ([6.0, 1.0, 1.0, 1.0], TypeError, "lengths must be integers, got dtype torch.float32"),
    ([True, True, True, True], TypeError, "lengths must be integers, got dtype torch.bool"),
])
def test_check_lengths_errors_name_the_value(lengths, exc, msg):
    with pytest.raises(exc, match=re.escape(msg)):
        check_lengths(lengths, T=T, B=B)


def test_detach_state_and_map_state():
    h = torch.randn(2, 3, requires_grad=True) * 2
    c = torch.randn(2, 3, requires_grad=True) * 3
    for state in (h, (h, c)):
        d = detach_state(state)
        parts, dparts = ((state,), (d,)) if isinstance(state, torch.Tensor) else (state, d)
        assert type(d) is type(state)
        for p, q in zip(parts, dparts):
            assert torch.equal(p, q) and q.grad_fn is None and not q.requires_grad
    summed = map_state(lambda a, b: a + b, (h, c), (c, h))
    assert torch.equal(summed[0], h + c) and torch.equal(summed[1], c + h)
