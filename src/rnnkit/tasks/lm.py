"""``rnnkit train lm`` / ``sample`` / ``eval`` for recurrent language models (char or word level).

Shapes: B batch (= TBPTT streams), T chunk length, V vocabulary.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.batching import StreamBatches
from ..data.corpora import Corpus
from ..data.errors import data_from
from ..data.text import read_text
from ..data.vocab import CharVocab, WordVocab, tokenize, vocab_from_json
from ..models.language_model import CELLS, LanguageModel, LanguageModelConfig
from ..sampling import check_sampling
from ..train.checkpoint import load_checkpoint
from ..train.trainer import TrainConfig, Trainer
from ..unroll import detach_state, map_state
from .common import (UsageError, add_text_arguments, add_training_arguments, checkpoint_path,
                     corpus_fingerprint, load_text_corpus, new_run_dir, read_json, resolve_device,
                     resumable_config, resume_device, train_config, write_json)

TASK = "lm"


# ---- data -------------------------------------------------------------------------------------------

def units(text: str, level: str) -> list[str] | str:
    return text if level == "char" else tokenize(text, lower=False)


def build_vocab(data: Corpus, level: str, min_count: int):
    if level == "char":
        # Every character of the corpus (validation too): validation never meets an unknown symbol.
        return CharVocab(sorted(set(data.train) | set(data.valid)))
    return WordVocab.build([units(data.train, level)], min_count=min_count)


def encode(vocab, text: str, level: str) -> Tensor:
    """Token ids as int32 (half of int64's memory on large corpora); batches are cast to long."""
    if level == "char":
        return torch.from_numpy(vocab.encode_array(text))
    return torch.tensor(vocab.encode(units(text, level)), dtype=torch.int32)


# ---- the hooks the trainer calls --------------------------------------------------------------------

class LMTask:
    """TBPTT over contiguous streams; the hidden state is carried between chunks, detached."""

    def __init__(self, train_ids: Tensor, valid_ids: Tensor, batch_size: int, seq_len: int,
                 device: torch.device, unit: str) -> None:
        self.batches = StreamBatches(train_ids, batch_size, seq_len)
        self.valid_ids, self.device, self.unit = valid_ids, device, unit
        self.state = None                                  # carried (h, c) or h, detached

    def steps_per_epoch(self) -> int:
        return self.batches.chunks_per_epoch

    def epochs_done(self) -> float:
        return self.batches.epoch + self.batches.chunk / self.batches.chunks_per_epoch

    def train_step(self, model: nn.Module) -> tuple[Tensor, int]:
        if self.batches.starts_sequence:
            self.state = None
        x, y = next(self.batches)                           # (B, T), (B, T)
        logits, state = model(x.to(self.device).long(), self.state)      # (B, T, V)
        self.state = detach_state(state)
        loss = F.cross_entropy(logits.flatten(0, 1), y.to(self.device).long().flatten())
        return loss, y.numel()

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        loss = evaluate_lm(model, self.valid_ids, self.device)
        return {"val_loss": loss, "val_bpc": loss / math.log(2)} if self.unit == "chars" else \
            {"val_loss": loss, "val_ppl": math.exp(min(loss, 50))}

    def state_dict(self) -> dict:
        return {"batches": self.batches.state_dict(), "state": self.state}

    def load_state_dict(self, state: dict) -> None:
        self.batches.load_state_dict(state["batches"])
        carried = state["state"]
        h = carried if carried is None or isinstance(carried, Tensor) else carried[0]
        if h is not None and h.shape[1] != self.batches.inputs.shape[0]:
            carried = None       # resharded: other rows than the ones carried; start them afresh
        self.state = None if carried is None else map_state(lambda s: s.to(self.device), carried)


@torch.no_grad()
def evaluate_lm(model: nn.Module, ids: Tensor, device: torch.device, streams: int = 16,
                chunk: int = 500) -> float:
    """Mean loss (nats per symbol) of predicting ids[1:] from ids[:-1], state carried throughout.

    The text is cut into up to ``streams`` contiguous parts run side by side (for speed); each part
    starts from a zero state, so parts are kept at least 2,000 symbols long to make that cost small.
    """
    model.eval()
    n = len(ids) - 1
    streams = max(1, min(streams, n // 2000))
    per = n // streams
    total, count = 0.0, 0
    ids = ids.long()
    x = ids[: per * streams].view(streams, per)
    y = ids[1: per * streams + 1].view(streams, per)
    state = None
    for start in range(0, per, chunk):
        logits, state = model(x[:, start:start + chunk].to(device), state)
        target = y[:, start:start + chunk].to(device)
        total += F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="sum").item()
        count += target.numel()
    tail = ids[per * streams:]                 # the few symbols that did not fill a stream
    if len(tail) > 1:
        logits, _ = model(tail[:-1].view(1, -1).to(device))
        total += F.cross_entropy(logits[0], tail[1:].to(device), reduction="sum").item()
        count += len(tail) - 1
    return total / count


# ---- command line -------------------------------------------------------------------------------------

def add_train_arguments(p: argparse.ArgumentParser) -> None:
    add_text_arguments(p)
    m = p.add_argument_group("model")
    m.add_argument("--cell", choices=sorted(CELLS), default="lstm")
    m.add_argument("--layers", type=int, default=2)
    m.add_argument("--hidden", type=int, default=256)
    m.add_argument("--embed", type=int, default=64)
    m.add_argument("--dropout", type=float, default=0.0)
    m.add_argument("--peephole", action="store_true", help="LSTM peephole connections")
    m.add_argument("--layer-norm", action="store_true")
    m.add_argument("--forget-bias", type=float, default=0.0)
    m.add_argument("--cho-gru", action="store_true", help="GRU with reset before the matmul")
    m.add_argument("--nonlinearity", choices=("tanh", "relu"), default="tanh")
    m.add_argument("--recurrent-dropout", type=float, default=0.0)
    m.add_argument("--zoneout", type=float, default=0.0)
    m.add_argument("--seq-len", type=int, default=100, help="TBPTT chunk length")
    add_training_arguments(p, lr=6e-3, batch_size=64, eval_every=500)


def _model_config(args, vocab_size: int) -> LanguageModelConfig:
    return LanguageModelConfig(
        vocab_size=vocab_size, cell=args.cell, embed=args.embed, hidden=args.hidden,
        layers=args.layers, dropout=args.dropout, peephole=args.peephole,
        layer_norm=args.layer_norm, forget_bias=args.forget_bias, reset_after=not args.cho_gru,
        nonlinearity=args.nonlinearity, recurrent_dropout=args.recurrent_dropout,
        zoneout=args.zoneout)


def train(args: argparse.Namespace) -> dict:
    if args.resume:
        return _resume(args)
    if args.seq_len <= 0:
        raise UsageError(f"--seq-len must be positive, got {args.seq_len}")
    device = resolve_device(args.device)
    cfg = train_config(args, device)
    data = load_text_corpus(args.dataset, args.text, args.encoding, args.valid_fraction)
    vocab = build_vocab(data, args.level, args.min_count)
    model_cfg = _model_config(args, len(vocab))
    with data_from(data.source):               # too little text for the batch shape
        task = LMTask(encode(vocab, data.train, args.level), encode(vocab, data.valid, args.level),
                      args.batch_size, args.seq_len, device,
                      "chars" if args.level == "char" else "words")
    run = new_run_dir(args.out, TASK)        # only after every input has been checked
    config = {"task": TASK, "model": model_cfg.to_json(), "train": asdict(cfg),
              "data": {"dataset": args.dataset, "text": args.text, "encoding": args.encoding,
                       "level": args.level, "min_count": args.min_count,
                       "valid_fraction": args.valid_fraction, "source": data.source,
                       "train_symbols": len(task.batches.data), "valid_symbols": len(task.valid_ids),
                       "fingerprint": corpus_fingerprint(data)},
              "batch_size": args.batch_size, "seq_len": args.seq_len, "device": str(device)}
    write_json(run / "config.json", config)
    write_json(run / "vocab.json", vocab.to_json())
    print(f"run directory: {run}\n{data.source}: {len(task.batches.data):,} training and "
          f"{len(task.valid_ids):,} validation {task.unit}, vocabulary {len(vocab)}",
          file=sys.stderr)
    return _fit(run, config, vocab, task, device, resume=False)


def _fit(run: Path, config: dict, vocab, task: LMTask, device, resume: bool) -> dict:
    torch.manual_seed(config["train"]["seed"])   # same initial weights for the same seed
    model = LanguageModel(LanguageModelConfig(**config["model"])).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {model.config.layers}×{model.config.hidden} {model.config.cell.upper()}, "
          f"{n_params:,} parameters, on {device} in {config['train']['precision']}", file=sys.stderr)
    meta = {"task": TASK, "config": config, "vocab": vocab.to_json()}
    trainer = Trainer(model, task, TrainConfig(**config["train"]), run, meta, device, resume=resume)
    summary = trainer.fit()
    print(f"done: {summary['steps']} steps in {summary['seconds']:.0f} s, validation loss "
          f"{summary['final_val_loss']:.4f} (best {summary['best_val_loss']:.4f})", file=sys.stderr)
    return summary


def _resume(args: argparse.Namespace) -> dict:
    run = args.resume
    config = resumable_config(run, TASK, "a language model")
    d = config["data"]
    data = load_text_corpus(d["dataset"], d["text"], d["encoding"], d["valid_fraction"])
    vocab = vocab_from_json(read_json(run / "vocab.json"))
    fresh = build_vocab(data, d["level"], d["min_count"])
    if fresh.to_json() != vocab.to_json():
        old, new = set(vocab.to_json()["symbols"]), set(fresh.to_json()["symbols"])
        raise UsageError(f"refusing to resume {run}: the data's vocabulary differs from the "
                         f"checkpoint's (only in the data: {''.join(sorted(new - old))!r}; only in "
                         f"the checkpoint: {''.join(sorted(old - new))!r})")
    if corpus_fingerprint(data) != d["fingerprint"]:
        raise UsageError(f"refusing to resume {run}: the training data differs from the "
                         f"checkpoint's (sha256 {corpus_fingerprint(data)[:12]}… vs "
                         f"{d['fingerprint'][:12]}…)")
    device = resume_device(args, config)
    task = LMTask(encode(vocab, data.train, d["level"]), encode(vocab, data.valid, d["level"]),
                  config["batch_size"], config["seq_len"], device,
                  "chars" if d["level"] == "char" else "words")
    return _fit(run, config, vocab, task, device, resume=True)


# ---- using a trained run --------------------------------------------------------------------------------

def load_run(run: Path, device: torch.device) -> tuple[LanguageModel, object, dict]:
    weights, meta, _ = load_checkpoint(checkpoint_path(run), device)
    model = LanguageModel(LanguageModelConfig(**meta["config"]["model"])).to(device)
    model.load_state_dict(weights)
    model.eval()
    return model, vocab_from_json(meta["vocab"]), meta["config"]


def sample(args: argparse.Namespace) -> Iterator[str]:
    """Stream generated text; the prime is read once and the state carried (never re-run)."""
    check_sampling(args.temperature, args.top_k, args.top_p)
    if args.length <= 0:
        raise UsageError(f"--length must be positive, got {args.length}")
    device = resolve_device(args.device)
    model, vocab, config = load_run(args.run_dir, device)
    level = config["data"]["level"]
    prime_ids = encode_prime(vocab, args.prime, level)
    generator = torch.Generator(device=device)
    generator.manual_seed(args.seed)
    yield args.prime
    ids = model.generate(prime_ids, args.length, args.temperature, args.top_k, args.top_p, generator)
    for i in ids:
        yield symbol_text(vocab, i, level)


def encode_prime(vocab, prime: str, level: str, name: str = "--prime") -> list[int]:
    """The ids the model reads before generating; a UsageError (naming the option or field
    ``name``) for an empty prime or, at char level, characters the model never saw."""
    if level == "char":
        missing = vocab.unknown(prime)
        if missing:
            raise UsageError(f"{name} has characters the model never saw: {''.join(missing)!r}")
    prime_units = units(prime, level)
    if not prime_units:
        raise UsageError(f"{name} must not be empty")
    return vocab.encode(prime_units)


def symbol_text(vocab, token: int, level: str) -> str:
    """One generated symbol as `sample` prints it: the character, or a space and the word."""
    return vocab.decode([token]) if level == "char" else " " + vocab.decode([token])[0]


def evaluate(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    model, vocab, config = load_run(args.run_dir, device)
    d = config["data"]
    if args.text:
        text, source = read_text(args.text, encoding=d["encoding"]), " ".join(args.text)
        if d["level"] == "char" and vocab.unknown(text):
            raise UsageError(f"{source} has characters the model never saw: "
                             f"{''.join(vocab.unknown(text)[:20])!r}")
    else:
        text = load_text_corpus(d["dataset"], d["text"], d["encoding"], d["valid_fraction"]).valid
        source = "validation split"
    ids = encode(vocab, text, d["level"])
    if len(ids) < 2:
        raise UsageError(f"{source} is too short to evaluate")
    loss = evaluate_lm(model, ids, device)
    unit = "chars" if d["level"] == "char" else "words"
    out = {"loss": loss, "data": source, unit: len(ids)}
    if unit == "chars":
        out["bpc"] = loss / math.log(2)
    else:
        out["perplexity"] = math.exp(min(loss, 50))
    return out
