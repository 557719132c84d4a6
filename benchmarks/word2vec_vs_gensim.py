"""rnnkit's word2vec beside gensim's on the same corpus, hyperparameters and thread count.

    python benchmarks/word2vec_vs_gensim.py [--dataset shakespeare] [--model skipgram|cbow]
                                            [--loss negative|nce] [--epochs 5] [--threads 2]

Both train on the same sentences (rnnkit's loader, so the same tokens) with the same window, size,
negatives, min count, subsampling, epochs, start learning rate and threads, one after the other in
this process, and both sets of vectors are scored by the same code (rnnkit's eval: questions-words
analogies restricted to the 300,000 most frequent words as gensim does, 3CosAdd; Spearman on
WordSim-353 and SimLex-999). Throughput is corpus words per second of training wall time.
gensim is not a dependency of rnnkit: `pip install gensim==4.4.0` (the `bench` extra) to run this.
NCE has no gensim counterpart; with --loss nce gensim still trains with negative sampling.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rnnkit.data.word2vec_data import load_eval_file, load_word2vec_corpus
from rnnkit.data.word_pairs import count_words, encode
from rnnkit.models.word2vec import Word2Vec, Word2VecConfig
from rnnkit.tasks.word2vec import Vectors, analogy_accuracy, fit, similarity_correlation


def scores(vectors: Vectors) -> dict:
    sections = load_eval_file("questions-words.txt")
    analogies = analogy_accuracy(vectors, sections, 300_000, "add")
    out = {"analogy_accuracy": analogies["accuracy"], "analogy_asked": analogies["asked"]}
    for name in ("wordsim353.tsv", "simlex999.txt"):
        out[name] = similarity_correlation(vectors, load_eval_file(name))["spearman"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="shakespeare")
    p.add_argument("--model", choices=("skipgram", "cbow"), default="skipgram")
    p.add_argument("--loss", choices=("negative", "nce"), default="negative")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--share-negatives", type=int, default=2)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    try:
        from gensim.models import Word2Vec as GensimWord2Vec
        from gensim.models.word2vec_inner import FAST_VERSION
    except ImportError:
        sys.exit("gensim is not installed: pip install gensim==4.4.0 (or `pip install -e '.[bench]'`)")
    torch.set_num_threads(args.threads)
    sentences = load_word2vec_corpus(args.dataset)
    lr = 0.05 if args.model == "cbow" else 0.025
    vocab = count_words(sentences, args.min_count)
    ids, sentence = encode(sentences, vocab)
    runs: dict[str, list[dict]] = {"rnnkit": [], "gensim": []}
    for seed in range(args.seeds):                 # the two alternate, so drift hits both alike
        model = Word2Vec(Word2VecConfig(len(vocab), args.dim, args.model, args.loss, 5), seed=seed)
        with tempfile.TemporaryDirectory() as tmp:
            summary = fit(model, vocab, ids, sentence,
                          {"window": args.window, "sample": 1e-3, "epochs": args.epochs, "lr": lr,
                           "batch_size": 1024, "share_negatives": args.share_negatives,
                           "seed": seed, "log_every": 1e9}, Path(tmp), torch.device("cpu"))
        runs["rnnkit"].append({"seconds": summary["seconds"],
                               "words_per_s": summary["words"] / summary["seconds"],
                               **scores(Vectors(vocab.words, model.vectors(), "rnnkit"))})
        start = time.perf_counter()
        g = GensimWord2Vec(sentences, vector_size=args.dim, window=args.window,
                           min_count=args.min_count, sg=int(args.model == "skipgram"), hs=0,
                           negative=5, sample=1e-3, alpha=lr, epochs=args.epochs,
                           workers=args.threads, seed=seed)
        seconds = time.perf_counter() - start
        runs["gensim"].append({"seconds": seconds, "words_per_s": args.epochs * len(ids) / seconds,
                               **scores(Vectors(list(g.wv.index_to_key),
                                                torch.from_numpy(g.wv.vectors), "gensim"))})
    keys = ("words_per_s", "analogy_accuracy", "wordsim353.tsv", "simlex999.txt")
    rows = {name: {k: (float(np.mean([r[k] for r in rs])), float(np.std([r[k] for r in rs])))
                   for k in keys} for name, rs in runs.items()}
    result = {"corpus": args.dataset, "tokens": int(len(ids)), "vocabulary": len(vocab),
              "model": args.model, "loss": args.loss, "threads": args.threads, "epochs": args.epochs,
              "share_negatives": args.share_negatives, "seeds": args.seeds,
              "gensim_fast_version": FAST_VERSION, "runs": runs, "mean_std": rows,
              "speed_ratio": rows["rnnkit"]["words_per_s"][0] / rows["gensim"]["words_per_s"][0]}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.dataset}: {len(ids):,} tokens, {len(vocab):,} words; {args.model}, {args.loss}, "
          f"{args.epochs} epochs, {args.threads} threads, noise shared by {args.share_negatives}; "
          f"mean ± std over {args.seeds} seeds")
    print(f"{'':8} {'words/s':>18} {'analogy %':>14} {'WS-353':>14} {'SimLex-999':>14}")
    for name, r in rows.items():
        w, a, ws, sl = (r[k] for k in keys)
        print(f"{name:8} {w[0]:>10,.0f} ± {w[1]:>5,.0f} {100 * a[0]:>7.2f} ± {100 * a[1]:.2f} "
              f"{ws[0]:>7.3f} ± {ws[1]:.3f} {sl[0]:>7.3f} ± {sl[1]:.3f}")
    print(f"speed ratio rnnkit / gensim: {result['speed_ratio']:.2f}")


if __name__ == "__main__":
    main()
