"""Training throughput of the character LM: rnnkit.LSTM vs torch.nn.LSTM through the same loop.

Both models are the same LanguageModel; only the recurrent layer differs. Rounds alternate between
the two in one process (this machine is noisy: only the ratio is meaningful), and the median of the
rounds is reported.

    python benchmarks/lm_throughput.py [--hidden 512 --layers 2 --batch-size 64 --seq-len 100]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.cli import keep_freed_memory
from rnnkit.models.language_model import LanguageModel, LanguageModelConfig


def train_steps(model: nn.Module, opt, x, y, steps: int, bf16: bool = False) -> float:
    """Seconds for ``steps`` TBPTT steps (forward, backward, clip, Adam) with the state carried."""
    state = None
    start = time.perf_counter()
    for _ in range(steps):
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits, state = model(x, state)
        state = tuple(s.detach() for s in state)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=100)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: bfloat16 autocast, as `rnnkit train --precision bf16`")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    keep_freed_memory()                                  # as the `rnnkit` command does
    torch.manual_seed(0)
    cfg = LanguageModelConfig(vocab_size=70, embed=args.embed, hidden=args.hidden, layers=args.layers)
    ours = LanguageModel(cfg)
    theirs = LanguageModel(cfg)
    theirs.rnn = nn.LSTM(args.embed, args.hidden, args.layers, batch_first=True)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randint(0, 70, (args.batch_size, args.seq_len))
    y = torch.randint(0, 70, (args.batch_size, args.seq_len))
    opts = {name: torch.optim.Adam(m.parameters(), lr=1e-3) for name, m in
            (("rnnkit", ours), ("torch", theirs))}
    models = {"rnnkit": ours, "torch": theirs}
    bf16 = args.precision == "bf16"
    for name in models:                                  # warm-up
        train_steps(models[name], opts[name], x, y, 2, bf16)
    times = {name: [] for name in models}
    for _ in range(args.rounds):
        for name in models:
            times[name].append(train_steps(models[name], opts[name], x, y, args.steps, bf16))
    chars = args.batch_size * args.seq_len * args.steps
    rate = {name: chars / statistics.median(t) for name, t in times.items()}
    result = {"config": vars(args), "rnnkit_chars_per_s": round(rate["rnnkit"]),
              "torch_chars_per_s": round(rate["torch"]),
              "ratio_rnnkit_over_torch": round(rate["rnnkit"] / rate["torch"], 3),
              "rnnkit_impl": ours.rnn.last_impl, "threads": torch.get_num_threads()}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.layers}×{args.hidden} LSTM LM, B={args.batch_size}, T={args.seq_len}"
              f", {args.precision}: "
              f"rnnkit {rate['rnnkit']:,.0f} chars/s ({ours.rnn.last_impl}), torch.nn "
              f"{rate['torch']:,.0f} chars/s, ratio {rate['rnnkit'] / rate['torch']:.3f}")


if __name__ == "__main__":
    main()
