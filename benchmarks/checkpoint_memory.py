"""Gradient checkpointing over time: peak memory and time of one forward+backward at T = 10,000.

    python benchmarks/checkpoint_memory.py [--T 10000] [--B 16] [--H 256] [--every 100]

Each configuration runs in a fresh process, so that its peak resident memory (ru_maxrss) is its
own; the table compares `checkpoint_every=K` with the plain layer (same weights, same input).
Backward starts from a given gradient of the output, made before the measurement like the input:
what is measured is the layer's own memory, not that of a loss over its (T, B, H) output.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def measure(cell: str, T: int, B: int, H: int, every: int | None) -> dict:
    import torch
    import rnnkit
    torch.manual_seed(0)
    layer = getattr(rnnkit, cell)(H, H, num_layers=2, checkpoint_every=every)
    x = torch.randn(T, B, H)
    grad_out = torch.randn(T, B, H)   # the gradient from above, as a model's loss would hand it down
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    out, _ = layer(x)
    out.backward(grad_out)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "peak_mib": peak / 1024, "added_mib": (peak - before) / 1024,
            "impl": layer.last_impl}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--T", type=int, default=10_000)
    p.add_argument("--B", type=int, default=16)
    p.add_argument("--H", type=int, default=256)
    p.add_argument("--every", type=int, default=100)
    p.add_argument("--one", nargs=2, metavar=("CELL", "EVERY"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:                                   # the child: one measurement, as JSON
        every = int(args.one[1]) or None
        print(json.dumps(measure(args.one[0], args.T, args.B, args.H, every)))
        return
    print(f"T={args.T} B={args.B} H={args.H}, 2 layers, forward+backward; memory added by the step")
    for cell in ("LSTM", "GRU"):
        rows = {}
        for every in (0, args.every):
            child = subprocess.run([sys.executable, __file__, "--T", str(args.T), "--B", str(args.B),
                                    "--H", str(args.H), "--one", cell, str(every)],
                                   capture_output=True, text=True, check=True)
            rows[every] = json.loads(child.stdout)
        plain, chunked = rows[0], rows[args.every]
        print(f"{cell} ({plain['impl']}): plain {plain['added_mib']:7.0f} MiB {plain['seconds']:6.2f} s"
              f" | checkpoint_every={args.every}: {chunked['added_mib']:6.0f} MiB "
              f"{chunked['seconds']:6.2f} s | memory ×{chunked['added_mib'] / plain['added_mib']:.2f},"
              f" time ×{chunked['seconds'] / plain['seconds']:.2f}")


if __name__ == "__main__":
    main()
