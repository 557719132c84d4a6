"""`rnnkit bench`: every rnnkit layer against its torch.nn twin, timed in the same process.

Shapes: B batch, T time, I input size, H hidden size, G = gates · H.

For each (B, T, I, H) and each layer, rounds alternate between rnnkit and torch.nn (these machines
are noisy: only ratios measured side by side mean anything) and the median of the per-round ratios
is reported, rnnkit time / torch time, for the forward pass alone (inference, under no_grad) and for
forward + backward (training). Beside it: achieved GFLOP/s, counting only the GEMMs
(forward 2·T·B·G·(I + H) per layer, backward twice that), as a fraction of this machine's GEMM peak,
measured in the same run with the fastest float32 GEMM torch offers here (MKL, MKL with the weight
packed once, oneDNN with the weight packed once or on its own tensors) at three sizes.

Rows whose torch twin lacks the feature (peepholes, layer norm) compare with the plain torch.nn
layer: the price of the feature. "LSTM dropout 2L" compares a 2-layer LSTM with inter-layer dropout 0.3
against the same rnnkit LSTM without it, "nn.LSTM dropout 2L" torch's own pair.
"""
from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .layers import GRU, LSTM, RNN

__all__ = ["SHAPES", "gemm_peak", "run_bench", "format_bench"]

SHAPES = ((32, 100, 64, 256), (64, 200, 128, 512), (1, 1000, 64, 256), (128, 50, 256, 256))


@dataclass(frozen=True)
class Case:
    name: str
    gates: int
    ours: Callable[[int, int], nn.Module]          # (I, H) -> the rnnkit layer
    theirs: Callable[[int, int], nn.Module]        # (I, H) -> what it is compared with
    layers: int = 1


CASES = (
    Case("LSTM", 4, lambda i, h: LSTM(i, h), lambda i, h: nn.LSTM(i, h)),
    Case("GRU", 3, lambda i, h: GRU(i, h), lambda i, h: nn.GRU(i, h)),
    Case("RNN", 1, lambda i, h: RNN(i, h), lambda i, h: nn.RNN(i, h)),
    Case("GRU reset_after=False", 3, lambda i, h: GRU(i, h, reset_after=False),
         lambda i, h: nn.GRU(i, h)),
    Case("LSTM peephole", 4, lambda i, h: LSTM(i, h, peephole=True), lambda i, h: nn.LSTM(i, h)),
    Case("LSTM layer_norm", 4, lambda i, h: LSTM(i, h, layer_norm=True),
         lambda i, h: nn.LSTM(i, h)),
    Case("LSTM dropout 2L", 4, lambda i, h: LSTM(i, h, 2, dropout=0.3),
         lambda i, h: LSTM(i, h, 2), layers=2),
    Case("nn.LSTM dropout 2L", 4, lambda i, h: nn.LSTM(i, h, 2, dropout=0.3),
         lambda i, h: nn.LSTM(i, h, 2), layers=2),
)


def _seconds(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def gemm_peak(repeats: int = 5) -> tuple[float, str]:
    """The fastest float32 GEMM rate here, GFLOP/s, and which GEMM at which (M, K, N) gave it: the
    best of each GEMM torch offers (MKL, MKL with the weight packed, oneDNN with the weight packed,
    oneDNN on its own tensor layout) at three sizes, a batched input projection among them."""
    best = (0.0, "")
    for M, K, N in ((4096, 512, 2048), (2048, 2048, 2048), (6400, 256, 1024)):
        a, w = torch.randn(M, K), torch.randn(N, K)
        gemms = {"torch.mm (MKL)": lambda: a.mm(w.t())}
        if torch.backends.mkl.is_available():
            packed = torch.ops.mkl._mkl_reorder_linear_weight(w, M)
            gemms["MKL, packed weight"] = lambda: torch.ops.mkl._mkl_linear(a, packed, w, None, M)
        if torch.backends.mkldnn.is_available():
            packed_dnn = torch.ops.mkldnn._reorder_linear_weight(w, M)
            gemms["oneDNN, packed weight"] = lambda: torch.ops.mkldnn._linear_pointwise(
                a, packed_dnn, None, "none", [], "")
            a_dnn, w_dnn = a.to_mkldnn(), w.to_mkldnn()
            gemms["oneDNN tensors"] = lambda: torch._C._nn.mkldnn_linear(a_dnn, w_dnn, None)
        for name, gemm in gemms.items():
            gemm()
            seconds = min(_seconds(gemm) for _ in range(repeats))
            best = max(best, (2 * M * K * N / seconds / 1e9, f"{name}, ({M}, {K}) x ({K}, {N})"))
    return best


def _time_pair(ours: nn.Module, theirs: nn.Module, x: torch.Tensor, backward: bool,
               rounds: int) -> tuple[float, float, float, str]:
    """(median ratio ours/theirs, median seconds ours, median seconds theirs, ours.last_impl)."""
    def run(module):
        if backward:
            out, _ = module(x)
            out.sum().backward()
        else:
            with torch.no_grad():
                module(x)

    for module in (ours, theirs):      # warm-up: allocator, packed weights, oneDNN primitives
        run(module)
    ratios, t_ours, t_theirs = [], [], []
    for r in range(rounds):
        pair = (ours, theirs) if r % 2 == 0 else (theirs, ours)        # alternate who goes first
        times = {id(m): _seconds(lambda m=m: run(m)) for m in pair}
        t_ours.append(times[id(ours)])
        t_theirs.append(times[id(theirs)])
        ratios.append(t_ours[-1] / t_theirs[-1])
    return (statistics.median(ratios), statistics.median(t_ours), statistics.median(t_theirs),
            getattr(ours, "last_impl", "torch"))


def run_bench(shapes=SHAPES, cases=CASES, rounds: int = 5, progress=None) -> dict:
    """Every case at every shape; returns {"peak_gflops", "peak_gemm", "rows": [...]}."""
    torch.manual_seed(0)
    peak, peak_name = gemm_peak()
    rows = []
    for B, T, I, H in shapes:
        x = torch.randn(T, B, I)
        for case in cases:
            ours, theirs = case.ours(I, H), case.theirs(I, H)
            ours.train(), theirs.train()
            # GEMM FLOPs of one forward pass: input and recurrent projections of every layer.
            flops = sum(2 * T * B * case.gates * H * ((I if layer == 0 else H) + H)
                        for layer in range(case.layers))
            row = {"layer": case.name, "B": B, "T": T, "I": I, "H": H}
            for mode, backward, factor in (("fwd", False, 1), ("fwd_bwd", True, 3)):
                ratio, s_ours, s_theirs, impl = _time_pair(ours, theirs, x, backward, rounds)
                row[mode] = {"ratio": ratio, "ms": 1e3 * s_ours, "torch_ms": 1e3 * s_theirs,
                             "impl": impl, "gflops": factor * flops / s_ours / 1e9,
                             "peak_fraction": factor * flops / s_ours / 1e9 / peak}
            rows.append(row)
            if progress:
                progress(row)
    return {"peak_gflops": peak, "peak_gemm": peak_name, "rows": rows,
            "torch": torch.__version__, "threads": torch.get_num_threads()}


def format_row(row: dict) -> str:
    cells = [f"{row['layer']}", f"({row['B']},{row['T']},{row['I']},{row['H']})"]
    for mode in ("fwd", "fwd_bwd"):
        m = row[mode]
        cells += [f"{m['ratio']:.2f}", f"{m['impl']}", f"{m['gflops']:.0f} ({m['peak_fraction']:.0%})"]
    return "| " + " | ".join(cells) + " |"


def format_bench(result: dict) -> str:
    head = (f"GEMM peak: {result['peak_gflops']:.0f} GFLOP/s ({result['peak_gemm']}), "
            f"torch {result['torch']}, {result['threads']} threads; ratio = rnnkit time / torch.nn "
            f"time (median of alternating rounds)\n\n"
            "| layer | (B,T,I,H) | fwd ratio | fwd impl | fwd GFLOP/s (of peak) | fwd+bwd ratio "
            "| fwd+bwd impl | fwd+bwd GFLOP/s (of peak) |\n"
            "|---|---|---|---|---|---|---|---|")
    return "\n".join([head] + [format_row(r) for r in result["rows"]])


def main(quick: bool = False, as_json: bool = False, rounds: int = 5) -> None:
    shapes = SHAPES[:1] if quick else SHAPES
    result = run_bench(shapes, CASES, rounds=3 if quick else rounds,
                       progress=None if as_json else lambda r: print(format_row(r), flush=True))
    print(json.dumps(result, indent=1) if as_json else "\n" + format_bench(result))
