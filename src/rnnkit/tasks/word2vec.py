"""``rnnkit train word2vec`` / ``similar`` / ``analogy`` / ``eval`` / ``export`` / ``plot-words`` /
``bias``: word vectors.

Shapes: V vocabulary, E vector size, P examples (pairs) in a chunk, B a batch, K noise words.

Training (models/word2vec.py): each epoch subsamples frequent words afresh, cuts the kept tokens
into chunks, turns each chunk into (input, target) examples with the dynamic window in a few array
operations (data/word_pairs.py), shuffles them, draws every batch's K noise words in one call, and
applies hand-written sparse SGD updates. The learning rate falls linearly from --lr to --lr·1e-4 over
all the words of all epochs, as the original. There is no validation loss to choose a checkpoint by:
the run keeps its final vectors (``last``; after each epoch it also saves what ``--resume`` needs),
and ``eval`` measures them on analogy and word-similarity sets.

Every query command takes a run directory or a vectors file in word2vec's text or binary format
(gensim's ``save_word2vec_format`` output, say), so vectors made elsewhere can be queried too.
"""
from __future__ import annotations

import argparse
import difflib
import json
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..data.embeddings import read_word2vec, write_word2vec
from ..data.errors import DataError
from ..data.word2vec_data import (EVAL_FILES, W2V_CORPORA, load_eval_file, load_word2vec_corpus,
                                  read_analogies, read_corpus_files, read_word_pairs)
from ..data.word_pairs import (CountedVocab, cbow_examples, count_words, encode, keep_probabilities,
                               noise_distribution, skipgram_pairs, subsample)
from ..models.word2vec import (ARCHITECTURES, LOSSES, Word2Vec, Word2VecConfig, analogy_scores,
                               nearest, unit_rows)
from ..train.checkpoint import load_checkpoint, save_checkpoint
from ..train.progress import Progress
from ..train.trainer import plot_losses, truncate_metrics
from .common import UsageError, new_run_dir, resolve_device, resumable_config, write_json

TASK = "word2vec"
CHUNK_TOKENS = 200_000            # tokens turned into examples at a time (bounded memory)
NOISE_TABLE = 10_000_000          # noise words are drawn from a table, as the original's unigram table
MIN_LR_RATIO = 1e-4
LOSS_EVERY = 8                    # the logged loss: the mean over every 8th batch (and the first)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    d = p.add_argument_group("data")
    src = d.add_mutually_exclusive_group()
    src.add_argument("--dataset", choices=W2V_CORPORA, help="a bundled corpus")
    src.add_argument("--text", nargs="+", type=Path, metavar="FILE", help="your own text file(s)")
    d.add_argument("--encoding", default="utf-8")
    d.add_argument("--min-count", type=int, default=5, help="rarer words are dropped (default 5)")
    d.add_argument("--max-vocab", type=int, help="keep at most this many words")
    m = p.add_argument_group("model")
    m.add_argument("--model", choices=ARCHITECTURES, default="skipgram")
    m.add_argument("--loss", choices=LOSSES, default="negative",
                   help="negative sampling (Mikolov 2013) or noise-contrastive estimation")
    m.add_argument("--dim", type=int, default=100)
    m.add_argument("--window", type=int, default=5, help="largest window; each word draws 1..W")
    m.add_argument("--negatives", type=int, default=5)
    m.add_argument("--sample", type=float, default=1e-3, help="subsampling threshold (0: off)")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=5)
    t.add_argument("--minutes", type=float, help="wall-clock budget (the learning rate follows it)")
    t.add_argument("--lr", type=float, help="start learning rate (default 0.025 skip-gram, 0.05 CBOW)")
    t.add_argument("--batch-size", type=int, default=1024, help="examples per sparse update")
    t.add_argument("--share-negatives", type=int, default=2, metavar="S",
                   help="groups of S examples share their noise words (1: each its own, as the "
                        "original; larger is faster)")
    t.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="cpu", help="cpu (default) | auto | cuda")
    t.add_argument("--log-every", type=float, default=5.0, help="seconds between progress lines")
    t.add_argument("--out", type=Path, help="run directory (default runs/word2vec-<time>)")
    t.add_argument("--resume", type=Path, metavar="RUN_DIR",
                   help="continue an interrupted run from the end of its last finished epoch")


def load_sentences(dataset: Optional[str], files: Optional[list[Path]], encoding: str) -> list[list[str]]:
    if dataset:
        return load_word2vec_corpus(dataset)
    if not files:
        raise UsageError("give the corpus: --dataset NAME or --text FILE [FILE ...]")
    return read_corpus_files(files, encoding)


def train(args: argparse.Namespace) -> dict:
    if args.resume:
        return _resume(args)
    for name in ("min_count", "dim", "window", "negatives", "epochs", "batch_size", "share_negatives"):
        if getattr(args, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.share_negatives > args.batch_size:
        raise UsageError(f"--share-negatives {args.share_negatives} is larger than --batch-size "
                         f"{args.batch_size}")
    if not 0 <= args.sample < 1:
        raise UsageError(f"--sample must be in [0, 1), got {args.sample}")
    if args.minutes is not None and not args.minutes > 0:
        raise UsageError(f"--minutes must be > 0, got {args.minutes}")
    lr = args.lr or (0.05 if args.model == "cbow" else 0.025)
    if not lr > 0:
        raise UsageError(f"--lr must be > 0, got {lr}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    sentences = load_sentences(args.dataset, args.text, args.encoding)
    vocab = count_words(sentences, args.min_count, args.max_vocab)
    ids, sentence = encode(sentences, vocab)
    model_cfg = Word2VecConfig(vocab_size=len(vocab), dim=args.dim, model=args.model, loss=args.loss,
                               negatives=args.negatives)
    config = {"task": TASK, "model": model_cfg.to_json(),
              "data": {"dataset": args.dataset, "text": [str(f) for f in args.text or []],
                       "encoding": args.encoding, "min_count": args.min_count,
                       "max_vocab": args.max_vocab, "tokens": int(len(ids)),
                       "sentences": len(sentences), "fingerprint": _fingerprint(ids, sentence)},
              "train": {"window": args.window, "sample": args.sample, "epochs": args.epochs,
                        "minutes": args.minutes, "lr": lr, "batch_size": args.batch_size,
                        "share_negatives": args.share_negatives, "seed": args.seed,
                        "threads": torch.get_num_threads(), "device": str(device),
                        "log_every": args.log_every}}
    run = new_run_dir(args.out, TASK)
    write_json(run / "config.json", config)
    print(f"run directory: {run}\n{len(sentences):,} sentences, {len(ids):,} tokens in the vocabulary "
          f"of {len(vocab):,} words (min count {args.min_count}); {args.model}, {args.loss} loss, "
          f"{args.dim} dimensions, {torch.get_num_threads()} threads", file=sys.stderr)
    model = Word2Vec(model_cfg, seed=args.seed).to(device)
    return _fit_and_finish(run, config, model, vocab, ids, sentence, device, state=None)


def _fingerprint(ids: np.ndarray, sentence: np.ndarray) -> str:
    """sha256 of the encoded corpus: a resume must see the same tokens in the same vocabulary."""
    import hashlib
    return hashlib.sha256(ids.tobytes() + sentence.tobytes()).hexdigest()


def _resume(args: argparse.Namespace) -> dict:
    """Continue a run from the end of its last finished epoch, exactly as if never stopped."""
    run = args.resume
    config = resumable_config(run, TASK, "a word2vec run")
    weights, meta, state = load_checkpoint(run / "last.safetensors")
    if state is None:
        raise UsageError(f"{run} has finished its training: there is nothing to resume")
    d, t = config["data"], config["train"]
    vocab = CountedVocab.from_json(meta["vocab"])
    ids, sentence = encode(load_sentences(d["dataset"], [Path(f) for f in d["text"]], d["encoding"]),
                           vocab)
    if _fingerprint(ids, sentence) != d["fingerprint"]:
        raise UsageError(f"{run}: the corpus has changed since this run was trained")
    torch.set_num_threads(t["threads"])
    device = resolve_device(t["device"])
    model = Word2Vec(Word2VecConfig(**config["model"])).to(device)
    model.load_state_dict(weights)
    return _fit_and_finish(run, config, model, vocab, ids, sentence, device, state=state)


def _fit_and_finish(run: Path, config: dict, model: Word2Vec, vocab: CountedVocab, ids: np.ndarray,
                    sentence: np.ndarray, device: torch.device, state: Optional[dict]) -> dict:
    meta = {"task": TASK, "config": config, "vocab": vocab.to_json()}

    def save(training_state: Optional[dict]) -> None:      # after every epoch; None: finished
        save_checkpoint(run / "last.safetensors", model.state_dict(), meta, training_state)

    summary = fit(model, vocab, ids, sentence, config["train"], run, device, state, save)
    write_json(run / "summary.json", summary)
    plot_losses(run / "metrics.jsonl", run / "loss.png")
    print(f"done: {summary['words']:,} words in {summary['seconds']:.1f} s "
          f"({summary['words_per_s']:,.0f} words/s, {summary['effective_words_per_s']:,.0f} after "
          f"subsampling); final loss {summary['final_train_loss']:.4f}", file=sys.stderr)
    return summary


def noise_table(probabilities: np.ndarray, size: int = NOISE_TABLE) -> torch.Tensor:
    """(size,) word ids, each word filling a share of the table equal to its noise probability, so
    a uniform draw of positions is a draw from P_n (to within 1/size): faster than a search."""
    ends = np.rint(np.cumsum(probabilities) * size).astype(np.int64)
    counts = np.diff(ends, prepend=0)
    return torch.from_numpy(np.repeat(np.arange(len(probabilities)), counts))


def fit(model: Word2Vec, vocab: CountedVocab, ids: np.ndarray, sentence: np.ndarray, t: dict,
        run: Path, device: torch.device, state: Optional[dict] = None,
        save: Optional[Callable[[Optional[dict]], None]] = None) -> dict:
    """Epochs of subsampled, shuffled examples and sparse SGD; metrics.jsonl as it goes (a row every
    ``log_every`` seconds and at every epoch's end). After each epoch ``save`` gets the training
    state (position, counters, both random generators), from which ``state`` resumes exactly."""
    rng = np.random.default_rng(t["seed"])
    gen = torch.Generator(device="cpu").manual_seed(t["seed"])
    noise = noise_distribution(vocab.counts)
    model.set_noise(torch.as_tensor(noise, dtype=torch.float32, device=device))
    table = noise_table(noise)                                                       # (NOISE_TABLE,)
    keep = keep_probabilities(vocab.counts, t["sample"])
    K, B, S, lr0 = model.config.negatives, t["batch_size"], t["share_negatives"], t["lr"]
    B -= B % S                                                  # whole groups in every batch
    total = t["epochs"] * len(ids)
    budget = t["minutes"] * 60 if t.get("minutes") else None
    first_epoch, words, effective, step, before = 0, 0, 0, 0, 0.0
    if state is not None:
        first_epoch, words, effective, step = (state[k] for k in ("epoch", "words", "effective", "step"))
        before = state["seconds"]
        rng.bit_generator.state = json.loads(state["numpy_rng"])
        gen.set_state(state["torch_rng"])
        truncate_metrics(run / "metrics.jsonl", step)
    start = last_log = time.perf_counter()
    losses: list[float] = []
    stop_reason = "epochs"
    progress = Progress(total_seconds=budget, total_steps=None, unit="words")
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as metrics:
        for epoch in range(first_epoch, t["epochs"]):
            for lo in range(0, len(ids), CHUNK_TOKENS):
                chunk_ids, chunk_sent = subsample(ids[lo:lo + CHUNK_TOKENS],
                                                  sentence[lo:lo + CHUNK_TOKENS], keep, rng)
                if model.config.model == "skipgram":        # input: the centre; target: a context word
                    inputs, targets = skipgram_pairs(chunk_ids, chunk_sent, t["window"], rng)
                else:                                         # input: the context words; target: the centre
                    targets, inputs = cbow_examples(chunk_ids, chunk_sent, t["window"], rng)
                order = torch.from_numpy(rng.permutation(len(targets) - len(targets) % S))
                inputs, targets = torch.from_numpy(inputs)[order], torch.from_numpy(targets)[order]
                chunk_words = min(CHUNK_TOKENS, len(ids) - lo)
                n_batches = max(1, -(-len(targets) // B))
                for i in range(0, len(targets), B):
                    spent = (words + chunk_words * (i // B) / n_batches) / total
                    if budget:          # a --minutes budget: the schedule also follows the clock
                        spent = max(spent, (before + time.perf_counter() - start) / budget)
                    lr = lr0 * max(MIN_LR_RATIO, 1 - spent)
                    b = len(targets[i:i + B])
                    noise_ids = table[torch.randint(len(table), (b // S, K), generator=gen)]
                    loss = model.sgd_step(inputs[i:i + B].to(device), targets[i:i + B].to(device),
                                          noise_ids.to(device), lr,
                                          with_loss=step % LOSS_EVERY == 0 or not losses)
                    if loss is not None:
                        losses.append(loss)
                    step += 1
                words += chunk_words
                effective += len(chunk_ids)
                now = time.perf_counter()
                seconds = before + now - start
                end_of_epoch = lo + CHUNK_TOKENS >= len(ids)
                if budget and seconds >= budget:
                    stop_reason = "time"
                if now - last_log >= t["log_every"] or end_of_epoch or stop_reason == "time":
                    loss = float(np.mean(losses)) if losses else float("nan")
                    if not np.isfinite(loss):
                        raise DataError(f"the loss became {loss} at step {step}: lower --lr")
                    row = {"step": step, "train_loss": loss, "lr": lr, "epoch": epoch + (lo + chunk_words) / len(ids),
                           "words": words, "words_per_s": words / seconds, "seconds": seconds}
                    metrics.write(json.dumps(row) + "\n")
                    metrics.flush()
                    progress.update(step, seconds, loss, words / seconds)
                    losses, last_log = [], now
                if stop_reason == "time":
                    break
            if save is not None:
                done = stop_reason == "time" or epoch + 1 == t["epochs"]
                save(None if done else {
                    "epoch": epoch + 1, "words": words, "effective": effective, "step": step,
                    "seconds": before + time.perf_counter() - start,
                    "numpy_rng": json.dumps(rng.bit_generator.state), "torch_rng": gen.get_state()})
            if stop_reason == "time":
                break
    seconds = before + time.perf_counter() - start
    return {"task": TASK, "steps": step, "words": words, "effective_words": effective,
            "seconds": round(seconds, 2), "words_per_s": words / seconds,
            "effective_words_per_s": effective / seconds, "final_train_loss": row["train_loss"],
            "stop_reason": stop_reason}


# ---- using vectors -------------------------------------------------------------------------------------

def _run_vectors(run: Path) -> tuple[list[str], torch.Tensor]:
    """The words and the vectors (V, E), as trained, of a word2vec run directory."""
    ckpt = run / "last.safetensors"
    if not ckpt.is_file():
        raise UsageError(f"{run} has no last.safetensors: is it a word2vec run directory?")
    weights, meta, _ = load_checkpoint(ckpt)
    if meta.get("task") != TASK:
        raise UsageError(f"{run} is a {meta.get('task')!r} run, not a word2vec run")
    return meta["vocab"]["words"], weights["w_in"]


class Vectors:
    """Words and their unit-length vectors, from a run directory or a word2vec-format file."""

    def __init__(self, words: list[str], matrix: torch.Tensor, source: str) -> None:
        self.words, self.source = words, source
        self.index = {w: i for i, w in enumerate(words)}
        # evaluation files are matched case-insensitively, as gensim does: a lower-cased word
        # stands for its most frequent spelling (files are sorted most frequent first)
        self.folded: dict[str, int] = {}
        for i, w in enumerate(words):
            self.folded.setdefault(w.lower(), i)
        self.unit = unit_rows(matrix.float())                                         # (V, E)

    @classmethod
    def load(cls, path: Path) -> "Vectors":
        path = Path(path)
        if path.is_dir():
            return cls(*_run_vectors(path), str(path))
        if not path.is_file():
            raise UsageError(f"{path}: no such run directory or vectors file")
        words, matrix = read_word2vec(path)
        return cls(words, torch.from_numpy(matrix), str(path))

    def id(self, word: str) -> int:
        if word in self.index:
            return self.index[word]
        close = difflib.get_close_matches(word, self.words, n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UsageError(f"{word!r} is not in the vocabulary of {self.source} "
                         f"({len(self.words):,} words){hint}")


def similar(args: argparse.Namespace) -> list[dict]:
    vectors = Vectors.load(args.run_dir)
    i = vectors.id(args.word)
    return [{"word": vectors.words[j], "similarity": round(s, 6)}
            for j, s in nearest(vectors.unit, vectors.unit[i], args.n, exclude=[i])]


def analogy(args: argparse.Namespace) -> list[dict]:
    """``rnnkit analogy RUN king man woman``: the words nearest king − man + woman (queen, one hopes),
    i.e. what is to woman as king is to man; the three query words are never answers."""
    vectors = Vectors.load(args.run_dir)
    a, b, c = (torch.tensor([vectors.id(w)]) for w in (args.minus, args.plus, args.plus2))
    scores = analogy_scores(vectors.unit, a, b, c, args.method)[0]
    top = torch.topk(scores, min(args.n, len(scores)))
    return [{"word": vectors.words[int(j)], "score": round(float(s), 6)}
            for s, j in zip(top.values, top.indices)]


def analogy_accuracy(vectors: Vectors, sections: dict[str, list[tuple[str, str, str, str]]],
                     restrict: int, method: str) -> dict:
    """Accuracy per section and overall on lower-cased questions "a b c d" (d should be the best
    answer to a:b :: c:?), searching only the ``restrict`` most frequent words and skipping questions
    with a word outside them, as gensim's evaluate_word_analogies does."""
    limit = min(restrict, len(vectors.words))
    unit = vectors.unit[:limit]
    index = {w: i for w, i in vectors.folded.items() if i < limit}
    result, correct_all, asked_all, total_all = {}, 0, 0, 0
    for name, questions in sections.items():
        known = [q for q in questions if all(w in index for w in q)]
        total_all += len(questions)
        if not known:
            result[name] = {"correct": 0, "asked": 0, "total": len(questions), "accuracy": None}
            continue
        ids = torch.tensor([[index[w] for w in q] for q in known])                   # (Q, 4)
        correct = 0
        for lo in range(0, len(ids), 512):
            part = ids[lo:lo + 512]
            best = analogy_scores(unit, part[:, 0], part[:, 1], part[:, 2], method).argmax(1)
            correct += int((best == part[:, 3]).sum())
        result[name] = {"correct": correct, "asked": len(known), "total": len(questions),
                        "accuracy": correct / len(known)}
        correct_all += correct
        asked_all += len(known)
    return {"sections": result, "correct": correct_all, "asked": asked_all, "total": total_all,
            "accuracy": correct_all / asked_all if asked_all else None, "method": method,
            "restrict_vocab": limit}


def similarity_correlation(vectors: Vectors, pairs: list[tuple[str, str, float]]) -> dict:
    """Spearman's rank correlation between human scores and cosine similarities over the pairs
    whose two words are known; the fraction left out is reported."""
    known = [(vectors.folded[a], vectors.folded[b], s) for a, b, s in pairs
             if a in vectors.folded and b in vectors.folded]
    if len(known) < 3:
        return {"spearman": None, "pairs": len(known), "total": len(pairs)}
    a, b, human = (np.array(col) for col in zip(*known))
    cosine = (vectors.unit[torch.from_numpy(a)] * vectors.unit[torch.from_numpy(b)]).sum(1).numpy()
    from scipy.stats import spearmanr               # ties get their mean rank
    return {"spearman": float(spearmanr(human, cosine).statistic),
            "pairs": len(known), "total": len(pairs), "oov_ratio": 1 - len(known) / len(pairs)}


def evaluate(args: argparse.Namespace) -> dict:
    vectors = Vectors.load(args.run_dir)
    out: dict = {"vectors": vectors.source, "vocabulary": len(vectors.words)}
    sections = (read_analogies(args.analogies, lower=True) if args.analogies
                else load_eval_file("questions-words.txt"))
    out["analogies"] = {m: analogy_accuracy(vectors, sections, args.restrict_vocab, m)
                        for m in ("add", "mul")}
    files = args.similarity or ["wordsim353.tsv"]
    out["similarity"] = {}
    for f in files:
        if Path(f).exists():
            pairs = read_word_pairs(f, lower=True)
        elif f in EVAL_FILES or f"{f}.txt" in EVAL_FILES or f"{f}.tsv" in EVAL_FILES:
            pairs = load_eval_file(f)
        else:
            raise UsageError(f"--similarity {f}: no such file, nor a bundled one "
                             f"({', '.join(n for n in EVAL_FILES if n != 'questions-words.txt')})")
        out["similarity"][Path(f).name] = similarity_correlation(vectors, pairs)
    return out


def export(args: argparse.Namespace) -> dict:
    if not Path(args.run_dir).is_dir():
        raise UsageError(f"export reads a word2vec run directory; {args.run_dir} is not one")
    words, matrix = _run_vectors(Path(args.run_dir))
    write_word2vec(args.output, words, matrix.numpy(), binary=args.binary)
    return {"file": str(args.output), "words": len(words), "dim": int(matrix.shape[1]),
            "format": "binary" if args.binary else "text"}


# ---- seeing the vectors: a 2-D map, and association bias (WEAT) --------------------------------------

def plot_words(args: argparse.Namespace) -> dict:
    """The chosen words' vectors projected on their first two principal components, as a PNG."""
    from ..viz.plots import plot_word_map
    vectors = Vectors.load(args.run_dir)
    words = list(dict.fromkeys(args.words))
    if len(words) < 3:
        raise UsageError("give at least three words to place on the map")
    x = vectors.unit[torch.tensor([vectors.id(w) for w in words])].double()         # (n, E)
    x = x - x.mean(0)
    _, s, vt = torch.linalg.svd(x, full_matrices=False)
    xy = (x @ vt[:2].T).numpy()                                                     # (n, 2)
    explained = (s[:2] ** 2 / (s ** 2).sum()).tolist()
    plot_word_map(args.out, words, xy, f"{vectors.source}: PCA of {len(words)} word vectors "
                                       f"({100 * sum(explained):.0f} % of their variance)")
    return {"file": str(args.out), "words": words, "explained_variance": explained}


WEAT_SETS = ("X", "Y", "A", "B")


def read_weat(path: Path) -> dict[str, list[str]]:
    """A WEAT test file: lines "X: word word ...", likewise Y (the two target sets) and A, B (the two
    attribute sets); "#" starts a comment. Words are lower-cased like the corpora."""
    sets: dict[str, list[str]] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such word-list file") from None
    for line_no, line in enumerate(lines, start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, words = line.partition(":")
        if not sep or name.strip() not in WEAT_SETS:
            raise DataError(f"{path}, line {line_no}: expected 'X:', 'Y:', 'A:' or 'B:' and words, "
                            f"got {line[:40]!r}")
        sets.setdefault(name.strip(), []).extend(w.lower() for w in words.split())
    missing = [k for k in WEAT_SETS if not sets.get(k)]
    if missing:
        raise DataError(f"{path}: no words for {', '.join(missing)} (a WEAT file needs X, Y, A and B)")
    return sets


def weat(unit: torch.Tensor, ids: dict[str, torch.Tensor], permutations: int = 10_000,
         seed: int = 0) -> dict:
    """Caliskan et al. (2017): s(w) = mean cos(w, A) − mean cos(w, B); the effect size is
    (mean s over X − mean s over Y) / std of s over X ∪ Y, and the one-sided p-value the share of
    equal-size re-partitions of X ∪ Y whose Σ_X s − Σ_Y s is at least the observed one."""
    def cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return unit[a].double() @ unit[b].double().T
    targets = torch.cat([ids["X"], ids["Y"]])
    s = cos(targets, ids["A"]).mean(1) - cos(targets, ids["B"]).mean(1)             # (|X|+|Y|,)
    nx = len(ids["X"])
    observed = float(s[:nx].sum() - s[nx:].sum())
    effect = float((s[:nx].mean() - s[nx:].mean()) / s.std())
    g = torch.Generator().manual_seed(seed)
    order = torch.argsort(torch.rand(permutations, len(s), generator=g), dim=1)     # (P, n)
    shuffled = s[order]
    stats = shuffled[:, :nx].sum(1) - shuffled[:, nx:].sum(1)
    return {"effect_size": effect, "p_value": float((stats >= observed - 1e-12).double().mean()),
            "statistic": observed, "permutations": permutations}


def bias(args: argparse.Namespace) -> dict:
    vectors = Vectors.load(args.run_dir)
    sets = read_weat(args.words)
    ids, dropped = {}, {}
    for name, words in sets.items():
        known = [w for w in words if w in vectors.folded]
        dropped[name] = [w for w in words if w not in vectors.folded]
        if len(known) < 2:
            raise UsageError(f"{args.words}: set {name} has {len(known)} word(s) in the vocabulary "
                             f"of {vectors.source} (out of vocabulary: {', '.join(dropped[name])})")
        ids[name] = torch.tensor([vectors.folded[w] for w in known])
    return {**weat(vectors.unit, ids), "sizes": {k: len(v) for k, v in ids.items()},
            "out_of_vocabulary": dropped}
