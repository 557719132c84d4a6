"""Shared fixtures: for the core tests (cells, unroll, layers), and `fails` for the CLI tests.

Tolerances are the design's: 1e-5 for float32, 1e-10 for float64, used as both atol and rtol.
"""
from __future__ import annotations

from typing import Callable, Optional

import pytest
import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def loss_weights(t: Tensor) -> Tensor:
    """A fixed, non-uniform cotangent for ``t`` (so every output element carries its own weight)."""
    n = t.numel()
    return torch.cos(torch.arange(n, dtype=t.dtype, device=t.device) * 0.7 + 0.3).view(t.shape)


def _tensors(out, state) -> list[Tensor]:
    out = out.data if isinstance(out, PackedSequence) else out
    return [out] + ([state] if isinstance(state, Tensor) else list(state))


def _assert_close(actual: Tensor, expected: Tensor, dtype: Optional[torch.dtype] = None,
                  what: str = "") -> None:
    tol = TOL[dtype or expected.dtype]
    torch.testing.assert_close(actual, expected, atol=tol, rtol=tol,
                               msg=lambda m: f"{what}: {m}" if what else m)


def _fwd_bwd(module: torch.nn.Module, run: Callable[[], tuple], leaves: dict[str, Tensor],
             loss: Optional[Callable[[list[Tensor]], Tensor]] = None) -> dict[str, Tensor]:
    """Run ``run()`` -> (output, state); return output, state parts and the gradient of a fixed
    weighted sum of them w.r.t. ``leaves`` and every parameter of ``module`` (by name)."""
    out, state = run()
    parts = _tensors(out, state)
    total = loss(parts) if loss else sum((p * loss_weights(p)).sum() for p in parts)
    named = dict(leaves)
    named.update({f"param:{n}": p for n, p in module.named_parameters()})
    grads = torch.autograd.grad(total, list(named.values()), allow_unused=True)
    result = {f"value{i}": p.detach() for i, p in enumerate(parts)}
    for (name, leaf), g in zip(named.items(), grads):
        result[f"grad:{name}"] = torch.zeros_like(leaf) if g is None else g
    return result


def _assert_results_close(actual: dict, expected: dict, dtype: Optional[torch.dtype] = None) -> None:
    assert actual.keys() == expected.keys()
    for key in expected:
        _assert_close(actual[key], expected[key], dtype, what=key)


@pytest.fixture(scope="module")
def single_thread():
    """These tests use tiny tensors: with intra-op threads on a busy 2-core machine some CPU kernels
    (layer_norm in float64, for one) spend 100x longer synchronising than computing."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def assert_close():
    return _assert_close


@pytest.fixture
def fwd_bwd():
    return _fwd_bwd


@pytest.fixture
def assert_results_close():
    return _assert_results_close


def _cli_fails(argv: list[str], capsys, message: str) -> str:
    """Run the CLI expecting a refusal: exit status 2, no traceback, and a last stderr line
    ``rnnkit: error: ...`` that contains ``message``. Returns that line."""
    from rnnkit.cli import main
    assert main(argv) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err, err
    assert last.startswith("rnnkit: error:") and message in last, err
    return last


@pytest.fixture
def fails():
    return _cli_fails
