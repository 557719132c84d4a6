"""``rnnkit train translate`` / ``translate`` / ``eval``: encoder–decoder translation.

Shapes: N pairs, B batch, S source length, T target length (with its <eos>), V vocabulary.

Data: a TSV of ``source<TAB>target`` lines (``--pairs``, with ``--valid-pairs`` / ``--test-pairs``
or a fixed split), the German–English sentences of Debian's trans-de-en dictionary
(``--dataset de-en``), or generated human-written dates → ISO dates (``--dataset dates``, whose
test half is in date formats held out of training). Sentences are lower-cased and split into words
and punctuation (or into characters, ``--tokens char``, or into the words' subword pieces learned by
byte-pair encoding on both sides of the training pairs, ``--tokens bpe``: data/bpe.py); tokens
outside the vocabulary become <unk> and are counted. Pairs whose sides are longer than
``--max-length`` tokens (words for bpe) are left out of training only: validation and test keep
everything. Output pieces are joined back into words before scoring and display.

The model (models/seq2seq.py) learns by teacher forcing; the ``best`` checkpoint is the one with the
lowest validation loss per target token. The test split is then translated greedily and by beam
search, and scored with sacrebleu's BLEU and chrF and the exact-match rate (test.json).
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
from torch import Tensor, nn

from ..attention import ATTENTION
from ..data.batching import BucketBatches, pad_sequences
from ..data.errors import data_from
from ..data.bpe import BPE, join_pieces
from ..data.pairs import (DATE_HELD_OUT, Pairs, dates_splits, detokenize, load_de_en, read_pairs,
                          sentence_tokens, split_pairs)
from ..data.text import read_text
from ..data.vocab import TokenVocab, vocab_from_json
from ..decoder import teacher_inputs
from ..models.seq2seq import CELLS, Seq2Seq, Seq2SeqConfig
from ..train.checkpoint import load_checkpoint
from ..train.trainer import TrainConfig, Trainer
from ..viz.plots import plot_attention
from .common import (BatchedTask, UsageError, add_training_arguments, apply_recipe, checkpoint_path,
                     new_run_dir, per_epoch_evaluation, read_json, refuse_changed_test_split,
                     resolve_device, resumable_config, resume_device, train_config, write_json)

TASK = "translate"
DATASETS = ("de-en", "dates")
TOKENS = ("word", "char", "bpe")

# Defaults by data set; a flag given on the command line always wins. "pairs" is the user's file.
RECIPES: dict[str, dict] = {
    "dates": dict(tokens="char", bpe_merges=0, min_count=1, embed=32, hidden=128, layers=1,
                  bidirectional=True, reverse_source=False, attention="additive", dropout=0.2,
                  label_smoothing=0.0, lr=3e-3, batch_size=64, epochs=10, max_length=60),
    "de-en": dict(tokens="bpe", bpe_merges=2000, min_count=1, embed=256, hidden=512, layers=1,
                  bidirectional=False, reverse_source=False, attention="dot", dropout=0.3,
                  label_smoothing=0.1, lr=2e-3, batch_size=64, epochs=12, max_length=30),
    "pairs": dict(tokens="word", bpe_merges=4000, min_count=1, embed=256, hidden=256, layers=1,
                  bidirectional=False, reverse_source=False, attention="dot", dropout=0.2,
                  label_smoothing=0.0, lr=2e-3, batch_size=64, epochs=10, max_length=50),
}
DEFAULT_BEAMS = (1, 5)        # what training tests and `rnnkit eval` reports: greedy and beam 5


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    d = p.add_argument_group("data")
    src = d.add_mutually_exclusive_group()
    src.add_argument("--dataset", choices=DATASETS, help="bundled pairs (de-en) or generated (dates)")
    src.add_argument("--pairs", type=Path, metavar="FILE.tsv", help="your pairs: source<TAB>target")
    d.add_argument("--valid-pairs", type=Path, metavar="FILE.tsv", help="--pairs: its validation set")
    d.add_argument("--test-pairs", type=Path, metavar="FILE.tsv", help="--pairs: its test set")
    d.add_argument("--encoding", default="utf-8")
    d.add_argument("--skip-bad-lines", action="store_true",
                   help="skip (and count) lines without a tab, with an empty side or bad bytes")
    d.add_argument("--tokens", choices=TOKENS,
                   help="word: lower-cased words and punctuation; bpe: their subword pieces")
    d.add_argument("--bpe-merges", type=int, help="--tokens bpe: merges learned (joint for both sides)")
    d.add_argument("--keep-case", action="store_true", help="do not lower-case")
    d.add_argument("--min-count", type=int, help="rarer words become <unk>")
    d.add_argument("--max-vocab", type=int, help="keep only the most frequent words (per side)")
    d.add_argument("--max-length", type=int, help="train only on pairs with at most N tokens a side")
    m = p.add_argument_group("model")
    m.add_argument("--cell", choices=sorted(CELLS), default="lstm")
    m.add_argument("--embed", type=int)
    m.add_argument("--hidden", type=int)
    m.add_argument("--layers", type=int)
    m.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None,
                   help="a bidirectional encoder")
    m.add_argument("--reverse-source", action=argparse.BooleanOptionalAction, default=None,
                   help="read the source backwards")
    m.add_argument("--attention", choices=ATTENTION)
    m.add_argument("--dropout", type=float)
    m.add_argument("--sampling-rate", type=float, default=0.0,
                   help="scheduled sampling: feed the model's own sampled word with this probability")
    m.add_argument("--label-smoothing", type=float, default=None,
                   help="training loss against (1 - ε)·one-hot + ε/V: ε (validation loss stays plain)")
    m.add_argument("--length-penalty", type=float, default=0.6,
                   help="beam search: GNMT's α (0: total log-probability)")
    add_training_arguments(p, lr=None, batch_size=None, eval_every=None)


# ---- data ---------------------------------------------------------------------------------------------

def _data_config(args) -> dict:
    if not (args.dataset or args.pairs):
        raise UsageError("give the pairs to learn: --dataset de-en|dates or --pairs FILE.tsv")
    if (args.valid_pairs or args.test_pairs) and not args.pairs:
        raise UsageError("--valid-pairs/--test-pairs go with --pairs")
    if args.bpe_merges < 0:
        raise UsageError(f"--bpe-merges must be >= 0, got {args.bpe_merges}")
    for name in ("min_count", "max_length"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.max_vocab is not None and args.max_vocab <= len(TokenVocab.SPECIALS):
        raise UsageError(f"--max-vocab must be more than {len(TokenVocab.SPECIALS)}, got {args.max_vocab}")
    if not 0 <= args.sampling_rate <= 1:
        raise UsageError(f"--sampling-rate must be in [0, 1], got {args.sampling_rate}")
    if not 0 <= args.label_smoothing < 1:
        raise UsageError(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}")
    if args.length_penalty < 0:
        raise UsageError(f"--length-penalty must be >= 0, got {args.length_penalty}")
    return {"dataset": args.dataset, "pairs": _str(args.pairs), "valid_pairs": _str(args.valid_pairs),
            "test_pairs": _str(args.test_pairs), "encoding": args.encoding,
            "skip_bad_lines": args.skip_bad_lines, "tokens": args.tokens,
            "bpe_merges": args.bpe_merges if args.tokens == "bpe" else None, "lower": not args.keep_case,
            "min_count": args.min_count, "max_vocab": args.max_vocab, "max_length": args.max_length}


def _str(path: Optional[Path]) -> Optional[str]:
    return None if path is None else str(path)


def load_splits(d: dict) -> dict[str, Pairs]:
    """train / valid / test pairs of a run's ``config["data"]``."""
    if d["dataset"] == "dates":
        return dates_splits()
    if d["dataset"] == "de-en":
        return split_pairs(load_de_en())
    read = lambda path: read_pairs(path, encoding=d["encoding"], skip_bad_lines=d["skip_bad_lines"])
    pairs = read(d["pairs"])
    with data_from(d["pairs"]):                  # too few pairs for a split
        splits, skipped = split_pairs(pairs), pairs.skipped
    for name in ("valid", "test"):               # a file given for a split replaces that part,
        if d[f"{name}_pairs"]:                   # which then goes to training
            train, part = splits["train"], splits[name]
            splits["train"] = Pairs(train.sources + part.sources, train.targets + part.targets)
            splits[name] = read(d[f"{name}_pairs"])
            skipped += splits[name].skipped
    splits["train"].skipped = skipped            # bad lines skipped in all the files
    return splits


def pairs_fingerprint(pairs: Pairs) -> str:
    h = hashlib.sha256()
    for s, t in zip(pairs.sources, pairs.targets):
        h.update(f"{s}\t{t}\n".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


@dataclass
class Encoded:
    """A split as padded ids: sources (N, S) and targets (N, T) ending in <eos>, with lengths."""

    sources: Tensor
    source_lengths: Tensor
    targets: Tensor
    target_lengths: Tensor
    unknown: int = 0               # source tokens that became <unk>
    tokens: int = 0                # source tokens in all

    def batch(self, idx: Tensor, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        sl, tl = self.source_lengths[idx], self.target_lengths[idx]
        return (self.sources[idx, : int(sl.max())].to(device), sl.to(device),
                self.targets[idx, : int(tl.max())].to(device))


def _level(d: dict) -> str:
    """How a sentence splits into the units scored and shown: characters or words."""
    return "char" if d["tokens"] == "char" else "word"


def model_tokens(text: str, d: dict, bpe: Optional[BPE]) -> list[str]:
    """The tokens the model reads or writes for a sentence: its words (and punctuation), its
    characters, or the BPE pieces of its words."""
    tokens = sentence_tokens(text, _level(d), d["lower"])
    return bpe.segment(tokens) if d["tokens"] == "bpe" else tokens


def output_units(tokens: list[str], d: dict) -> list[str]:
    """Decoded tokens as the words (or characters) they spell: BPE pieces joined."""
    return join_pieces(tokens) if d["tokens"] == "bpe" else tokens


def encode_pairs(pairs: Pairs, vocabs: dict, d: dict) -> Encoded:
    src_ids, tgt_ids, unknown, total = [], [], 0, 0
    bpe = vocabs.get("bpe")
    for s, t in zip(pairs.sources, pairs.targets):
        ids = vocabs["source"].encode(model_tokens(s, d, bpe))
        unknown += sum(i == TokenVocab.unk_id for i in ids)
        total += len(ids)
        src_ids.append(ids)
        tgt_ids.append(vocabs["target"].encode(model_tokens(t, d, bpe)) + [TokenVocab.eos_id])
    sources, source_lengths = pad_sequences(src_ids, TokenVocab.pad_id)
    targets, target_lengths = pad_sequences(tgt_ids, TokenVocab.pad_id)
    return Encoded(sources, source_lengths, targets, target_lengths, unknown, total)


def build_vocabs(train: Pairs, d: dict) -> dict:
    """The source and target vocabularies, and with --tokens bpe the merges (learned jointly on
    both sides' words: names and numbers then split alike in both languages)."""
    bpe = None
    if d["tokens"] == "bpe":
        words = (w for x in train.sources + train.targets for w in sentence_tokens(x, "word", d["lower"]))
        bpe = BPE.learn(words, d["bpe_merges"])
    tokens = lambda texts: (model_tokens(x, d, bpe) for x in texts)
    vocabs = {side: TokenVocab.build(tokens(texts), d["min_count"], d["max_vocab"])
              for side, texts in (("source", train.sources), ("target", train.targets))}
    return vocabs if bpe is None else {**vocabs, "bpe": bpe}


def _short_enough(pairs: Pairs, d: dict) -> Pairs:
    keep = [i for i, (s, t) in enumerate(zip(pairs.sources, pairs.targets))
            if max(len(sentence_tokens(s, _level(d), d["lower"])),
                   len(sentence_tokens(t, _level(d), d["lower"]))) <= d["max_length"]]
    if not keep:
        raise UsageError(f"no training pair has at most --max-length {d['max_length']} tokens a side")
    return Pairs([pairs.sources[i] for i in keep], [pairs.targets[i] for i in keep], 0)


# ---- the hooks the trainer calls ------------------------------------------------------------------------

class TranslateTask(BatchedTask):
    """Length-bucketed batches of pairs, teacher-forced; validation loss and word accuracy."""

    unit = "words"

    def __init__(self, train: Encoded, valid: Encoded, batch_size: int, seed: int,
                 device: torch.device, sampling_rate: float = 0.0, label_smoothing: float = 0.0
                 ) -> None:
        self.train, self.valid, self.device = train, valid, device
        self.sampling_rate, self.label_smoothing = sampling_rate, label_smoothing
        self.batches = BucketBatches(train.source_lengths, batch_size, seed)

    def train_step(self, model: nn.Module) -> tuple[Tensor, int]:
        source, lengths, targets = self.train.batch(next(self.batches), self.device)
        inputs = teacher_inputs(targets, TokenVocab.go_id)
        logits, _ = model(source, lengths, inputs, self.sampling_rate)
        return (model.decoder.loss(logits, targets, self.label_smoothing),
                int((targets != TokenVocab.pad_id).sum()))

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        model.eval()
        batches = (self.valid.batch(idx, self.device)
                   for idx in torch.arange(len(self.valid.source_lengths)).split(256))
        scores = model.decoder.validation_scores(
            (model(source, lengths, teacher_inputs(targets, TokenVocab.go_id))[0], targets)
            for source, lengths, targets in batches)
        model.train()
        return scores


# ---- training -----------------------------------------------------------------------------------------

def train(args: argparse.Namespace) -> dict:
    if args.resume:
        return _resume(args)
    recipe = args.dataset or "pairs"
    apply_recipe(args, RECIPES[recipe])
    d = _data_config(args)
    device = resolve_device(args.device)
    cfg = train_config(args, device)
    splits = load_splits(d)                     # every data error before the run directory exists
    train_pairs = _short_enough(splits["train"], d)
    vocabs = build_vocabs(train_pairs, d)
    enc = {"train": encode_pairs(train_pairs, vocabs, d),
           **{name: encode_pairs(splits[name], vocabs, d) for name in ("valid", "test")}}
    model_cfg = Seq2SeqConfig(
        source_vocab=len(vocabs["source"]), target_vocab=len(vocabs["target"]), cell=args.cell,
        embed=args.embed, hidden=args.hidden, layers=args.layers, bidirectional=args.bidirectional,
        reverse_source=args.reverse_source, attention=args.attention, dropout=args.dropout,
        pad_id=TokenVocab.pad_id, go_id=TokenVocab.go_id, eos_id=TokenVocab.eos_id)
    cfg = per_epoch_evaluation(cfg, -(-len(train_pairs) // args.batch_size))
    longest = int(enc["train"].target_lengths.max())
    d = dict(d, test_fingerprint=pairs_fingerprint(splits["test"]), max_output=longest + 10)
    config = {"task": TASK, "model": model_cfg.to_json(), "train": asdict(cfg), "data": d,
              "recipe": recipe, "device": str(device), "batch_size": args.batch_size,
              "sampling_rate": args.sampling_rate, "label_smoothing": args.label_smoothing,
              "length_penalty": args.length_penalty,
              "sizes": {name: len(e.source_lengths) for name, e in enc.items()},
              "skipped_lines": splits["train"].skipped,
              "left_out_long": len(splits["train"].sources) - len(train_pairs.sources)}
    run = new_run_dir(args.out, TASK)
    write_json(run / "config.json", config)
    write_json(run / "vocab.json", {side: v.to_json() for side, v in vocabs.items()})
    print(f"run directory: {run}\n{_describe_data(config, vocabs, enc)}", file=sys.stderr)
    torch.manual_seed(cfg.seed)
    model = Seq2Seq(model_cfg).to(device)
    task = TranslateTask(enc["train"], enc["valid"], args.batch_size, cfg.seed, device,
                         args.sampling_rate, args.label_smoothing)
    return _fit_and_test(run, config, vocabs, model, task, splits["test"], cfg, device, resume=False)


def _describe_data(config: dict, vocabs: dict, enc: dict) -> str:
    sizes = config["sizes"]
    test = enc["test"]
    d = config["data"]
    units = {"word": "words", "char": "characters", "bpe": "BPE pieces"}[d["tokens"]]
    line = (f"{sizes['train']:,} training, {sizes['valid']:,} validation and {sizes['test']:,} test "
            f"pairs; vocabularies {len(vocabs['source']):,} source / {len(vocabs['target']):,} target "
            f"{units}; {100 * test.unknown / max(1, test.tokens):.1f} % of test source {units} are <unk>")
    if config["skipped_lines"]:
        line += f"; {config['skipped_lines']} bad lines skipped"
    if config["left_out_long"]:
        line += (f"; {config['left_out_long']} training pairs longer than {config['data']['max_length']} "
                 f"tokens left out")
    return line


def _fit_and_test(run: Path, config: dict, vocabs: dict, model: nn.Module, task: TranslateTask,
                  test: Pairs, cfg: TrainConfig, device: torch.device, resume: bool) -> dict:
    n_params = sum(p.numel() for p in model.parameters())
    m = config["model"]
    print(f"model: {m['layers']}×{m['hidden']} {m['cell'].upper()} encoder–decoder, attention "
          f"{m['attention']}{', bidirectional' if m['bidirectional'] else ''}"
          f"{', reversed source' if m['reverse_source'] else ''}; {n_params:,} parameters on "
          f"{device}", file=sys.stderr)
    meta = {"task": TASK, "config": config, "vocab": {s: v.to_json() for s, v in vocabs.items()}}
    summary = Trainer(model, task, cfg, run, meta, device, resume=resume).fit()
    best, _, _ = load_run(run, device)
    result = test_run(run, best, config, vocabs, test, device)
    scores = ", ".join(f"{name}: BLEU {r['bleu']:.2f}, exact {100 * r['exact_match']:.1f} %"
                       for name, r in result["decoding"].items())
    print(f"done: {summary['steps']} steps in {summary['seconds']:.0f} s; test {scores}",
          file=sys.stderr)
    return {**summary, "test": result}


def _resume(args: argparse.Namespace) -> dict:
    run = args.resume
    config = resumable_config(run, TASK, "a translation run")
    device = resume_device(args, config)
    d = config["data"]
    splits = _checked_splits(run, config)
    vocabs = _vocabs(read_json(run / "vocab.json"))
    train_enc = encode_pairs(_short_enough(splits["train"], d), vocabs, d)
    cfg = TrainConfig(**config["train"])
    model = Seq2Seq(Seq2SeqConfig(**config["model"])).to(device)
    task = TranslateTask(train_enc, encode_pairs(splits["valid"], vocabs, d), config["batch_size"],
                         cfg.seed, device, config["sampling_rate"],
                         config.get("label_smoothing", 0.0))
    return _fit_and_test(run, config, vocabs, model, task, splits["test"], cfg, device, resume=True)


def _checked_splits(run: Path, config: dict) -> dict[str, Pairs]:
    splits = load_splits(config["data"])
    refuse_changed_test_split(run, config, pairs_fingerprint(splits["test"]), "the pairs have")
    return splits


def _vocabs(obj: dict) -> dict:
    vocabs = {side: vocab_from_json(obj[side]) for side in ("source", "target")}
    return vocabs if "bpe" not in obj else {**vocabs, "bpe": BPE.from_json(obj["bpe"])}


# ---- decoding and scoring ------------------------------------------------------------------------------

def load_run(run: Path, device: torch.device) -> tuple[Seq2Seq, dict, dict]:
    weights, meta, _ = load_checkpoint(checkpoint_path(run), device)
    config = meta["config"]
    model = Seq2Seq(Seq2SeqConfig(**config["model"])).to(device)
    model.load_state_dict(weights)
    model.eval()
    return model, config, _vocabs(meta["vocab"])


@torch.no_grad()
def decode(model: Seq2Seq, enc: Encoded, beam: int, alpha: float, max_len: int,
           device: torch.device, batch_size: int = 128) -> list[list[int]]:
    """Translate every source of ``enc`` (greedy when beam = 1): output ids without <eos>."""
    model.eval()
    order = enc.source_lengths.argsort(descending=True)        # similar lengths share a batch
    out: list[Optional[list[int]]] = [None] * len(order)
    for idx in order.split(max(1, batch_size // beam)):
        source, lengths, _ = enc.batch(idx, device)
        ids = model.decoder.search(model.encode(source, lengths), len(idx), beam, max_len, alpha)
        for i, row in zip(idx.tolist(), ids):
            out[i] = row
    return out


def score(hypotheses: Sequence[list[str]], references: Sequence[list[str]], level: str) -> dict:
    """sacrebleu's corpus BLEU and chrF on detokenized text, and the exact-match rate."""
    import sacrebleu            # here, not at the top: only scoring needs it, and it loads slowly
    hyp = [detokenize(h, level) for h in hypotheses]
    ref = [detokenize(r, level) for r in references]
    exact = sum(h == r for h, r in zip(hypotheses, references)) / max(1, len(references))
    return {"bleu": sacrebleu.corpus_bleu(hyp, [ref]).score,
            "chrf": sacrebleu.corpus_chrf(hyp, [ref]).score, "exact_match": exact}


def bleu_difference(base: Sequence[list[str]], system: Sequence[list[str]],
                    references: Sequence[list[str]], level: str, samples: int = 1000,
                    seed: int = 0) -> dict:
    """Paired bootstrap (Koehn 2004): draw the test sentences with replacement ``samples`` times and
    score both systems on the same draw. Returns the BLEU difference system − base on the whole
    test set and the 2.5th and 97.5th percentiles of the drawn differences: an interval that holds
    0 means the test set cannot tell the two apart, as at BLEU of a few points it often cannot."""
    from sacrebleu.metrics import BLEU
    metric = BLEU()
    ref = [[detokenize(r, level) for r in references]]
    # Per sentence: sacrebleu's sufficient statistics (n-gram matches and totals, lengths), whose
    # sums over any set of sentences give that set's corpus BLEU.
    stats = [np.array(metric._extract_corpus_statistics([detokenize(h, level) for h in hyps], ref))
             for hyps in (base, system)]

    def bleu(s: np.ndarray) -> float:
        return metric._compute_score_from_stats(list(s.sum(0))).score

    draws = np.random.default_rng(seed).integers(0, len(references), (samples, len(references)))
    deltas = np.array([bleu(stats[1][i]) - bleu(stats[0][i]) for i in draws])
    low, high = np.percentile(deltas, [2.5, 97.5])
    return {"bleu_delta": bleu(stats[1]) - bleu(stats[0]), "ci95": [float(low), float(high)]}


def test_run(run: Path, model: Seq2Seq, config: dict, vocabs: dict, test: Pairs,
             device: torch.device, beams: Sequence[int] = DEFAULT_BEAMS,
             alpha: Optional[float] = None) -> dict:
    """Translate the test split with each decoding setting; test.json, and attention.png for a few."""
    d = config["data"]
    alpha = config["length_penalty"] if alpha is None else alpha
    enc = encode_pairs(test, vocabs, d)
    references = [sentence_tokens(t, _level(d), d["lower"]) for t in test.targets]
    result = {"split": "test", "pairs": len(references),
              "source_unknown_rate": enc.unknown / max(1, enc.tokens), "length_penalty": alpha,
              "decoding": {}}
    systems: dict[str, list[list[str]]] = {}
    for beam in beams:
        outputs = decode(model, enc, beam, alpha, d["max_output"], device)
        hypotheses = [output_units(vocabs["target"].decode(ids), d) for ids in outputs]
        name = "greedy" if beam == 1 else f"beam_{beam}"
        scores = score(hypotheses, references, _level(d))
        if test.tags:                      # dates: formats seen in training vs held out
            for part, keep in (("seen_formats", False), ("held_out_formats", True)):
                rows = [i for i, tag in enumerate(test.tags) if (tag in DATE_HELD_OUT) == keep]
                scores[f"exact_match_{part}"] = (sum(hypotheses[i] == references[i] for i in rows)
                                                 / max(1, len(rows)))
        result["decoding"][name] = scores
        systems[name] = hypotheses
    first, *others = systems                       # greedy, unless other beams were asked
    for name in others if references else ():
        result["decoding"][name][f"vs_{first}"] = bleu_difference(
            systems[first], systems[name], references, _level(d))
    write_json(run / "test.json", result)
    if model.decoder.attention is not None:
        translate_texts(model, config, vocabs, test.sources[:4], 1, alpha, device,
                        plot=run / "attention.png")
    return result


def translate_texts(model: Seq2Seq, config: dict, vocabs: dict, texts: Sequence[str], beam: int,
                    alpha: float, device: torch.device, plot: Optional[Path] = None,
                    attention: bool = False) -> list[dict]:
    """Translations of ``texts``, each with the source words that were unknown. With ``attention``
    each row also has ``source_tokens`` and ``target_tokens`` (as the model read and wrote them,
    ending in <eos>) and ``attention``: the (target, source) weights as nested lists, or None for a
    run trained without attention."""
    d = config["data"]
    enc = encode_pairs(Pairs(list(texts), [""] * len(texts)), vocabs, d)
    outputs = decode(model, enc, beam, alpha, d["max_output"], device)
    rows = []
    bpe = vocabs.get("bpe")
    for text, ids in zip(texts, outputs):
        # The words (or characters) read as <unk>, in whole or, for BPE, in part.
        unknown = [u for u in sentence_tokens(text, _level(d), d["lower"])
                   if TokenVocab.unk_id in vocabs["source"].encode(model_tokens(u, d, bpe))]
        translation = detokenize(output_units(vocabs["target"].decode(ids), d), _level(d))
        rows.append({"source": text, "translation": translation, "unknown": unknown})
    if attention:
        for row, (source, target, weights) in zip(rows, attention_maps(model, enc, outputs, vocabs,
                                                                       device)):
            row.update(source_tokens=source, target_tokens=target,
                       attention=None if weights is None else weights.tolist())
    if plot is not None:
        if model.decoder.attention is None:
            raise UsageError("--plot-attention: this run was trained without attention")
        plot_attention(plot, attention_maps(model, enc, outputs[:6], vocabs, device))
    return rows


@torch.no_grad()
def attention_maps(model: Seq2Seq, enc: Encoded, outputs: list[list[int]], vocabs: dict,
                   device: torch.device) -> list[tuple[list[str], list[str], Optional[np.ndarray]]]:
    """The attention of each translation (the first ``len(outputs)`` sources of ``enc``): source
    tokens, target tokens ending in <eos>, and the weights (T, S), each row summing to 1 (None for
    a run trained without attention). The teacher-forced pass over the decoded words gives the
    very weights the decoding used (the attention does not feed back into the decoder RNN)."""
    examples = []
    for i, ids in enumerate(outputs):
        n = int(enc.source_lengths[i])
        source = enc.sources[i: i + 1, :n].to(device)
        targets = torch.tensor([ids + [TokenVocab.eos_id]], device=device)
        _, weights = model(source, enc.source_lengths[i: i + 1].to(device),
                           teacher_inputs(targets, TokenVocab.go_id))          # (1, T, S)
        examples.append((vocabs["source"].decode(enc.sources[i, :n].tolist()),
                         vocabs["target"].decode(targets[0].tolist()),
                         None if weights is None else weights[0].cpu().numpy()))
    return examples


# ---- verbs on a trained run ---------------------------------------------------------------------------

def translate(args: argparse.Namespace) -> list[dict]:
    device = resolve_device(args.device)
    model, config, vocabs = load_run(args.run_dir, device)
    if args.file:
        texts = [line.strip() for line in read_text(args.file).splitlines() if line.strip()]
    else:
        texts = list(args.texts)
    if not texts:
        raise UsageError("nothing to translate: give sentences, or --file with one per line")
    if args.beam < 1:
        raise UsageError(f"--beam must be at least 1, got {args.beam}")
    alpha = config["length_penalty"] if args.length_penalty is None else args.length_penalty
    return translate_texts(model, config, vocabs, texts, args.beam, alpha, device,
                           plot=args.plot_attention)


def evaluate(args: argparse.Namespace) -> dict:
    """BLEU, chrF and exact match of the run's best checkpoint on its test split, per decoding."""
    device = resolve_device(args.device)
    model, config, vocabs = load_run(args.run_dir, device)
    beams = args.beam or DEFAULT_BEAMS
    if min(beams) < 1:
        raise UsageError(f"--beam must be at least 1, got {min(beams)}")
    test = _checked_splits(args.run_dir, config)["test"]
    return test_run(args.run_dir, model, config, vocabs, test, device, beams, args.length_penalty)
