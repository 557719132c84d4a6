"""``rnnkit train markov``: the n-gram (Markov chain) baseline, on the same data and split as ``lm``.

``--order best`` fits orders 1..``--max-order`` and keeps the one with the lowest validation loss,
so the baseline beside the LSTM is the best the chain can do on that split.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Iterator

from ..data.text import read_text
from ..models.markov import SMOOTHINGS, MarkovConfig, MarkovModel, iter_play
from ..sampling import check_sampling
from .common import (UsageError, add_text_arguments, load_text_corpus, new_run_dir, read_run_config,
                     write_json)
from .lm import build_vocab

TASK = "markov"


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    add_text_arguments(p)
    m = p.add_argument_group("model")
    m.add_argument("--order", default="best",
                   help="context length N, or 'best': the best of 1..--max-order on validation")
    m.add_argument("--max-order", type=int, default=10)
    m.add_argument("--smoothing", choices=SMOOTHINGS, default="kneser-ney")
    p.add_argument("--out", type=Path, help="run directory (default runs/markov-<time>)")


def _orders(args) -> list[int]:
    if args.order == "best":
        if args.max_order < 1:
            raise UsageError(f"--max-order must be at least 1, got {args.max_order}")
        return list(range(1, args.max_order + 1))
    try:
        order = int(args.order)
    except ValueError:
        raise UsageError(f"--order must be an integer or 'best', got {args.order!r}") from None
    if order < 0:
        raise UsageError(f"--order must be >= 0, got {order}")
    return [order]


def train(args: argparse.Namespace) -> dict:
    orders = _orders(args)
    corpus = load_text_corpus(args.dataset, args.text, args.encoding, args.valid_fraction)
    vocab = build_vocab(corpus, args.level, args.min_count)
    run = new_run_dir(args.out, TASK)
    start = time.perf_counter()
    best, rows = None, []
    for order in orders:
        model = MarkovModel(MarkovConfig(order, args.smoothing)).fit(corpus.train, vocab)
        metrics = model.evaluate(corpus.valid)
        row = {"order": order, "val_loss": metrics["loss"], "val_bpc": metrics["loss"] / math.log(2),
               "seconds": time.perf_counter() - start}
        rows.append(row)
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
              file=sys.stderr)
        if best is None or row["val_loss"] < best[1]["val_loss"]:
            best = (model, row)
    model, row = best
    model.save(run)
    config = {"task": TASK, "model": {"order": row["order"], "smoothing": args.smoothing},
              "data": {"dataset": args.dataset, "text": args.text, "encoding": args.encoding,
                       "level": args.level, "min_count": args.min_count,
                       "valid_fraction": args.valid_fraction, "source": corpus.source},
              "orders_tried": orders}
    write_json(run / "config.json", config)
    write_json(run / "vocab.json", vocab.to_json())
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {"task": TASK, "order": row["order"], "best_val_loss": row["val_loss"],
               "final_val_loss": row["val_loss"], "val_bpc": row["val_bpc"], "steps": 0,
               "seconds": round(time.perf_counter() - start, 2)}
    write_json(run / "summary.json", summary)
    _plot_orders(rows, run / "loss.png")
    print(f"best order {row['order']}: validation {row['val_loss']:.4f} nats/char, "
          f"{row['val_bpc']:.4f} bits/char; saved to {run}", file=sys.stderr)
    return summary


def _plot_orders(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot([r["order"] for r in rows], [r["val_loss"] for r in rows], "o-")
    ax.set_xlabel("order (context symbols)")
    ax.set_ylabel("validation loss (nats per symbol)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _load(run: Path) -> tuple[MarkovModel, dict]:
    config = read_run_config(run)
    return MarkovModel.load(run), config


def sample(args: argparse.Namespace) -> Iterator[str]:
    if args.temperature != 0:
        check_sampling(args.temperature)
    if args.length <= 0:
        raise UsageError(f"--length must be positive, got {args.length}")
    model, config = _load(args.run_dir)
    if args.play:
        yield from iter_play(model, seed=args.seed, temperature=args.temperature)
        return
    if config["data"]["level"] == "char" and model.vocab.unknown(args.prime):
        raise UsageError(f"--prime has characters the model never saw: "
                         f"{''.join(model.vocab.unknown(args.prime))!r}")
    yield args.prime
    yield from model.sample(args.prime, args.length, args.temperature, args.seed)


def evaluate(args: argparse.Namespace) -> dict:
    model, config = _load(args.run_dir)
    d = config["data"]
    if args.text:
        text, source = read_text(args.text, encoding=d["encoding"]), " ".join(args.text)
    else:
        text = load_text_corpus(d["dataset"], d["text"], d["encoding"], d["valid_fraction"]).valid
        source = "validation split"
    result = model.evaluate(text)
    result["data"] = source
    result["order"] = model.config.order
    return result
