"""minGRU / minLSTM against torch.nn.GRU, forward+backward, float32, in one process.

    python benchmarks/scan.py [--T 4096] [--B 16] [--H 256] [--repeat 3]

Prints seconds per forward+backward and the speed-up over torch.nn.GRU (same I, H, batch_first)
for each implementation: "scan" (log-space parallel scan), "recurrence" (written-out backward),
"loop" (the readable reference). Run nothing else meanwhile: this machine has 2 cores.
"""
from __future__ import annotations

import argparse
import time

import torch

from rnnkit import MinGRU, MinLSTM


def seconds(module: torch.nn.Module, x: torch.Tensor, repeat: int) -> float:
    out, _ = module(x)                           # warm-up (allocations, oneDNN primitives)
    out.sum().backward()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        out, _ = module(x)
        out.sum().backward()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--T", type=int, default=4096)
    p.add_argument("--B", type=int, default=16)
    p.add_argument("--H", type=int, default=256)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    torch.manual_seed(0)
    x = torch.randn(args.B, args.T, args.H)
    reference = seconds(torch.nn.GRU(args.H, args.H, batch_first=True), x, args.repeat)
    print(f"T={args.T} B={args.B} I=H={args.H}, forward+backward, best of {args.repeat}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'torch.nn.GRU':<24}{reference:8.3f} s")
    for cls in (MinGRU, MinLSTM):
        for impl in ("scan", "recurrence", "loop"):
            t = seconds(cls(args.H, args.H, batch_first=True, impl=impl), x, args.repeat)
            print(f"{cls.__name__ + ' ' + impl:<24}{t:8.3f} s   {reference / t:5.1f}× faster than "
                  f"torch.nn.GRU")


if __name__ == "__main__":
    main()
