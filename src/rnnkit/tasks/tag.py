"""``rnnkit train tag`` / ``tag`` / ``eval``: sequence tagging (named entities, parts of speech).

Shapes: N sentences, B batch, T words (padded), C characters per word (padded), K tags.

Data: CoNLL-style files (``--conll``, with ``--dev`` / ``--test`` or a split fixed by a hash of
each sentence), or a generated corpus whose tags are known by construction (``--dataset ner|pos``:
its validation and test sentences use person and company names never seen in training, so the
character features are what must recognise them). Words are lower-cased for the word embeddings
(numbers become <num>); the characters keep their case, which is much of what marks a name.
Entity tags may be trained in BIO or BIOES (``--scheme``); evaluation is on entity spans either way.

The model is models/tagger.py; the ``best`` checkpoint is the one with the lowest validation loss.
Evaluation reports token accuracy, entity precision / recall / F1 (seqeval's definition, micro
averaged, per type), and how many predicted tag transitions the scheme forbids (I-X after O).
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from ..data.batching import BucketBatches, pad_sequences
from ..data.errors import data_from, shown
from ..data.splits import hash_split
from ..data.tagging import (TAGSETS, Tagged, allowed_transition, entity_spans, generate_tagged,
                            read_conll, scheme_of, tagging_metrics, to_bio, to_bioes)
from ..data.text import read_text
from ..data.vocab import TokenVocab, WordVocab, tokenize, vocab_from_json
from ..models.tagger import CELLS, Tagger, TaggerConfig
from ..train.checkpoint import load_checkpoint
from ..train.trainer import TrainConfig, Trainer
from .common import (BatchedTask, UsageError, add_training_arguments, checkpoint_path, new_run_dir,
                     per_epoch_evaluation, read_json, refuse_changed_test_split, resolve_device,
                     resumable_config, resume_device, train_config, write_json)

TASK = "tag"
MAX_WORD_CHARS = 20          # longer words keep their first 20 characters for the char features
GENERATED_SIZES = {"train": 3000, "valid": 300, "test": 1000}
DEFAULT_EPOCHS = 10


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    d = p.add_argument_group("data")
    src = d.add_mutually_exclusive_group()
    src.add_argument("--conll", type=Path, metavar="FILE", help="tokens and tags, CoNLL style")
    src.add_argument("--dataset", choices=TAGSETS, help="a generated corpus (no download)")
    d.add_argument("--dev", type=Path, metavar="FILE", help="--conll: the validation file")
    d.add_argument("--test", type=Path, metavar="FILE", help="--conll: the test file")
    d.add_argument("--token-column", type=int, default=0)
    d.add_argument("--tag-column", type=int, default=-1)
    d.add_argument("--encoding", default="utf-8")
    d.add_argument("--scheme", choices=("keep", "bio", "bioes"), default="keep",
                   help="entity tags: train in BIO or BIOES (default: as the files have them)")
    d.add_argument("--min-count", type=int, default=1, help="rarer words become <unk>")
    m = p.add_argument_group("model")
    m.add_argument("--cell", choices=sorted(CELLS), default="lstm")
    m.add_argument("--embed", type=int, default=100)
    m.add_argument("--hidden", type=int, default=100, help="per direction")
    m.add_argument("--layers", type=int, default=1)
    m.add_argument("--char-features", type=int, default=50,
                   help="character convolution filters (0: no character features)")
    m.add_argument("--dropout", type=float, default=0.5)
    m.add_argument("--crf", action="store_true", help="a CRF output layer (Viterbi decoding)")
    m.add_argument("--constrain", action=argparse.BooleanOptionalAction, default=True,
                   help="CRF: rule out the transitions the tag scheme forbids (I-X after O)")
    add_training_arguments(p, lr=2e-3, batch_size=32, eval_every=None)


# ---- data ----------------------------------------------------------------------------------------

def _data_config(args) -> dict:
    if not (args.conll or args.dataset):
        raise UsageError("give the tagged sentences: --conll FILE or --dataset ner|pos")
    if (args.dev or args.test) and not args.conll:
        raise UsageError("--dev/--test go with --conll")
    if args.min_count < 1:
        raise UsageError(f"--min-count must be at least 1, got {args.min_count}")
    return {"dataset": args.dataset, "conll": _str(args.conll), "dev": _str(args.dev),
            "test": _str(args.test), "token_column": args.token_column,
            "tag_column": args.tag_column, "encoding": args.encoding, "scheme": args.scheme,
            "min_count": args.min_count}


def _str(path: Optional[Path]) -> Optional[str]:
    return None if path is None else str(path)


def load_splits(d: dict) -> dict[str, Tagged]:
    """train / valid / test sentences of a run's ``config["data"]``, in the run's tag scheme."""
    if d["dataset"]:
        names = {"train": "train", "valid": "test", "test": "test"}      # unseen names after training
        splits = {part: generate_tagged(n, seed, d["dataset"], names[part])
                  for (part, n), seed in zip(GENERATED_SIZES.items(), (0, 1, 2))}
    else:
        read = lambda path: read_conll(path, d["token_column"], d["tag_column"], d["encoding"])
        data = read(d["conll"])
        with data_from(d["conll"]):                # too few sentences for a split
            parts = hash_split([" ".join(s) for s in data.sentences], 0.1, 0.1, "sentences")
        splits = {name: data.select(idx) for name, idx in parts.items()}
        for name, key in (("valid", "dev"), ("test", "test")):
            if d[key]:                     # a file given for a split replaces that part
                train, part = splits["train"], splits[name]
                splits["train"] = Tagged(train.sentences + part.sentences, train.tags + part.tags)
                splits[name] = read(d[key])
    convert = {"bio": to_bio, "bioes": to_bioes}.get(d["scheme"])
    if convert is not None:
        if scheme_of(splits["train"].tags) in ("none", "IO"):
            raise UsageError(f"--scheme {d['scheme']}: the tags have no B-/I- entity prefixes")
        splits = {name: Tagged(t.sentences, [convert(tags) for tags in t.tags])
                  for name, t in splits.items()}
    return splits


def tagged_fingerprint(data: Tagged) -> str:
    h = hashlib.sha256()
    for words, tags in zip(data.sentences, data.tags):
        h.update(("\t".join(words) + "\n" + "\t".join(tags) + "\n").encode("utf-8", "surrogatepass"))
    return h.hexdigest()


@dataclass
class Vocabs:
    words: WordVocab                   # lower-cased words, <num> for numbers
    chars: TokenVocab                  # characters as they are, <unk> for unseen ones
    tags: list[str]

    @classmethod
    def build(cls, train: Tagged, min_count: int) -> "Vocabs":
        return cls(WordVocab.build(([w.lower() for w in s] for s in train.sentences), min_count),
                   TokenVocab.build(list(w) for s in train.sentences for w in s),
                   sorted({t for tags in train.tags for t in tags}))

    def to_json(self) -> dict:
        return {"words": self.words.to_json(), "chars": self.chars.to_json(), "tags": self.tags}

    @classmethod
    def from_json(cls, obj: dict) -> "Vocabs":
        return cls(vocab_from_json(obj["words"]), vocab_from_json(obj["chars"]), list(obj["tags"]))


@dataclass
class Encoded:
    """Sentences as padded ids: words (N, T), chars (N, T, C), tags (N, T), lengths (N,)."""

    words: Tensor
    chars: Tensor
    tags: Tensor
    lengths: Tensor

    def batch(self, idx: Tensor, device: torch.device) -> tuple[Tensor, ...]:
        lengths = self.lengths[idx]
        T = int(lengths.max())
        chars = self.chars[idx, :T]
        C = max(1, int((chars != 0).sum(-1).max()))
        return (self.words[idx, :T].to(device), chars[..., :C].to(device),
                self.tags[idx, :T].to(device), lengths.to(device))


def split_source(d: dict, name: str) -> str:
    """Where a split's sentences come from, for messages: its file (--conll, or --dev / --test
    for the split they give) and the split."""
    file = {"valid": d["dev"], "test": d["test"]}.get(name) or d["conll"]
    return f"{file} ({name} split)" if file else f"{name} split"


def encode(data: Tagged, vocabs: Vocabs, source: str) -> Encoded:
    """Ids of every sentence; a tag the training data never had is an error naming it."""
    tag_index = {t: i for i, t in enumerate(vocabs.tags)}
    words, tags = [], []
    for n, (sentence, sentence_tags) in enumerate(zip(data.sentences, data.tags)):
        words.append(vocabs.words.encode([w.lower() for w in sentence]))
        try:
            tags.append([tag_index[t] for t in sentence_tags])
        except KeyError as e:
            raise UsageError(f"{source}: sentence {n + 1} has the tag {shown(e.args[0])}, which "
                             f"the training data never uses") from None
    word_ids, lengths = pad_sequences(words)
    tag_ids, _ = pad_sequences(tags)
    C = min(MAX_WORD_CHARS, max(len(w) for s in data.sentences for w in s))
    chars = torch.zeros(len(data), word_ids.shape[1], C, dtype=torch.long)
    for i, sentence in enumerate(data.sentences):
        for j, word in enumerate(sentence):
            ids = vocabs.chars.encode(list(word[:C]))
            chars[i, j, : len(ids)] = torch.tensor(ids)
    return Encoded(word_ids, chars, tag_ids, lengths)


def forbidden_pairs(tags: Sequence[str], scheme: str) -> tuple:
    """(previous, next) index pairs the scheme forbids; -1 stands for the start or the end."""
    if scheme in ("none", "IO"):
        return ()
    names = [None, *tags]                     # None: the start (as previous) or the end (as next)
    return tuple((i - 1, j - 1) for i, prev in enumerate(names) for j, nxt in enumerate(names)
                 if (prev, nxt) != (None, None) and not allowed_transition(prev, nxt, scheme))


def _mask(lengths: Tensor, T: int) -> Tensor:
    return torch.arange(T, device=lengths.device) < lengths.unsqueeze(1)        # (B, T)


# ---- the hooks the trainer calls ---------------------------------------------------------------

class TagTask(BatchedTask):
    """Length-bucketed batches of sentences; validation loss, token accuracy and entity F1."""

    unit = "words"

    def __init__(self, train: Encoded, valid: Encoded, vocabs: Vocabs, valid_tags: list[list[str]],
                 batch_size: int, seed: int, device: torch.device) -> None:
        self.train, self.valid, self.vocabs, self.device = train, valid, vocabs, device
        self.valid_tags = valid_tags
        self.batches = BucketBatches(train.lengths, batch_size, seed)

    def train_step(self, model: nn.Module) -> tuple[Tensor, int]:
        words, chars, tags, lengths = self.train.batch(next(self.batches), self.device)
        mask = _mask(lengths, words.shape[1])
        return model.loss(model(words, chars, lengths), tags, mask), int(lengths.sum())

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        loss, predicted = predict(model, self.valid, self.vocabs, self.device)
        metrics = tagging_metrics(self.valid_tags, predicted)
        out = {"val_loss": loss, "val_accuracy": metrics["token_accuracy"]}
        if "f1" in metrics:
            out["val_f1"] = metrics["f1"]
        return out


@torch.no_grad()
def predict(model: Tagger, enc: Encoded, vocabs: Vocabs, device: torch.device,
            batch_size: int = 256) -> tuple[float, list[list[str]]]:
    """(mean loss per batch of sentences, predicted tags of every sentence) in eval mode."""
    was_training = model.training
    model.eval()
    losses, predicted = [], [None] * len(enc.lengths)
    for idx in torch.arange(len(enc.lengths)).split(batch_size):
        words, chars, tags, lengths = enc.batch(idx, device)
        mask = _mask(lengths, words.shape[1])
        scores = model(words, chars, lengths)
        losses.append(float(model.loss(scores, tags, mask)) * len(idx))
        for i, row, n in zip(idx.tolist(), model.decode(scores, mask).tolist(), lengths.tolist()):
            predicted[i] = [vocabs.tags[k] for k in row[:n]]
    model.train(was_training)
    return sum(losses) / len(enc.lengths), predicted


def forbidden_transitions(predicted: Sequence[Sequence[str]], scheme: str) -> int:
    """How many predicted tag pairs (including the start and the end) the scheme forbids."""
    if scheme in ("none", "IO"):
        return 0
    count = 0
    for tags in predicted:
        for prev, tag in zip([None, *tags], [*tags, None]):
            count += not allowed_transition(prev, tag, scheme)
    return count


# ---- training --------------------------------------------------------------------------------------

def train(args: argparse.Namespace) -> dict:
    if args.resume:
        return _resume(args)
    d = _data_config(args)
    device = resolve_device(args.device)
    if args.epochs is None and args.minutes is None:
        args.epochs = DEFAULT_EPOCHS
    cfg = train_config(args, device)
    splits = load_splits(d)                   # every data error before the run directory exists
    vocabs = Vocabs.build(splits["train"], d["min_count"])
    enc = {name: encode(part, vocabs, split_source(d, name)) for name, part in splits.items()}
    cfg = per_epoch_evaluation(cfg, -(-len(splits["train"]) // args.batch_size))
    scheme = scheme_of(splits["train"].tags)
    model_cfg = TaggerConfig(words=len(vocabs.words),
                             chars=len(vocabs.chars) if args.char_features else 0,
                             tags=len(vocabs.tags), cell=args.cell, embed=args.embed,
                             char_features=args.char_features or 1, hidden=args.hidden,
                             layers=args.layers, dropout=args.dropout, crf=args.crf,
                             forbidden=forbidden_pairs(vocabs.tags, scheme)
                             if args.crf and args.constrain else ())
    d = dict(d, test_fingerprint=tagged_fingerprint(splits["test"]))
    config = {"task": TASK, "model": model_cfg.to_json(), "train": asdict(cfg), "data": d,
              "device": str(device), "batch_size": args.batch_size,
              "scheme": scheme,
              "sizes": {name: len(part) for name, part in splits.items()}}
    run = new_run_dir(args.out, TASK)
    write_json(run / "config.json", config)
    write_json(run / "vocab.json", vocabs.to_json())
    sizes = config["sizes"]
    print(f"run directory: {run}\n{sizes['train']:,} training, {sizes['valid']:,} validation and "
          f"{sizes['test']:,} test sentences; {len(vocabs.words):,} words, {len(vocabs.chars):,} "
          f"characters, {len(vocabs.tags)} tags ({config['scheme']})", file=sys.stderr)
    torch.manual_seed(cfg.seed)
    model = Tagger(model_cfg).to(device)
    task = TagTask(enc["train"], enc["valid"], vocabs, splits["valid"].tags, args.batch_size,
                   cfg.seed, device)
    return _fit_and_test(run, config, vocabs, model, task, splits["test"], cfg, device, resume=False)


def _fit_and_test(run: Path, config: dict, vocabs: Vocabs, model: Tagger, task: TagTask,
                  test: Tagged, cfg: TrainConfig, device: torch.device, resume: bool) -> dict:
    m = config["model"]
    output = ("constrained CRF" if m["forbidden"] else "CRF") if m["crf"] else "softmax"
    print(f"model: bidirectional {m['layers']}×{m['hidden']} {m['cell'].upper()}"
          f"{', character features' if m['chars'] else ''}, {output} output; {sum(p.numel() for p in model.parameters()):,} parameters on {device}",
          file=sys.stderr)
    meta = {"task": TASK, "config": config, "vocab": vocabs.to_json()}
    summary = Trainer(model, task, cfg, run, meta, device, resume=resume).fit()
    best, _, _ = load_run(run, device)
    result = test_run(run, best, config, vocabs, test, device)
    f1 = f", entity F1 {result['f1']:.4f}" if "f1" in result else ""
    print(f"done: {summary['steps']} steps in {summary['seconds']:.0f} s; test token accuracy "
          f"{100 * result['token_accuracy']:.2f} %{f1}", file=sys.stderr)
    return {**summary, "test": result}


def _resume(args: argparse.Namespace) -> dict:
    run = args.resume
    config = resumable_config(run, TASK, "a tagging run")
    device = resume_device(args, config)
    splits = _checked_splits(run, config)
    vocabs = Vocabs.from_json(read_json(run / "vocab.json"))
    enc = {name: encode(part, vocabs, split_source(config["data"], name))
           for name, part in splits.items()}
    cfg = TrainConfig(**config["train"])
    model = Tagger(TaggerConfig(**config["model"])).to(device)
    task = TagTask(enc["train"], enc["valid"], vocabs, splits["valid"].tags, config["batch_size"],
                   cfg.seed, device)
    return _fit_and_test(run, config, vocabs, model, task, splits["test"], cfg, device, resume=True)


def _checked_splits(run: Path, config: dict) -> dict[str, Tagged]:
    splits = load_splits(config["data"])
    refuse_changed_test_split(run, config, tagged_fingerprint(splits["test"]), "the data has")
    return splits


# ---- using a trained run ---------------------------------------------------------------------------

def load_run(run: Path, device: torch.device) -> tuple[Tagger, dict, Vocabs]:
    weights, meta, _ = load_checkpoint(checkpoint_path(run), device)
    config = meta["config"]
    model = Tagger(TaggerConfig(**config["model"])).to(device)
    model.load_state_dict(weights)
    model.eval()
    return model, config, Vocabs.from_json(meta["vocab"])


def test_run(run: Path, model: Tagger, config: dict, vocabs: Vocabs, test: Tagged,
             device: torch.device) -> dict:
    """Test metrics of a run's model, written to its test.json."""
    _, predicted = predict(model, encode(test, vocabs, "test split"), vocabs, device)
    result = {"split": "test", "sentences": len(test), **tagging_metrics(test.tags, predicted),
              "forbidden_transitions": forbidden_transitions(predicted, config["scheme"])}
    write_json(run / "test.json", result)
    return result


def evaluate(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    model, config, vocabs = load_run(args.run_dir, device)
    test = _checked_splits(args.run_dir, config)["test"]
    return test_run(args.run_dir, model, config, vocabs, test, device)


def tag(args: argparse.Namespace) -> list[dict]:
    """Tags and entity spans of each sentence (arguments, or lines of --file)."""
    device = resolve_device(args.device)
    model, config, vocabs = load_run(args.run_dir, device)
    if args.file:
        texts = [line for line in read_text(args.file).splitlines() if line.strip()]
    else:
        texts = list(args.texts)
    sentences = [tokenize(text, lower=False) for text in texts]
    if not sentences or not all(sentences):
        raise UsageError("nothing to tag: give sentences with words, or --file with one per line")
    data = Tagged(sentences, [[vocabs.tags[0]] * len(s) for s in sentences])
    _, predicted = predict(model, encode(data, vocabs, "input"), vocabs, device)
    rows = []
    for text, words, tags in zip(texts, sentences, predicted):
        entities = ([{"type": kind, "start": start, "end": end, "text": " ".join(words[start:end])}
                     for kind, start, end in entity_spans(tags)]
                    if config["scheme"] != "none" else [])
        rows.append({"text": text, "tokens": words, "tags": tags, "entities": entities})
    return rows
