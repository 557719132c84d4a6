"""What word2vec trains on: a counted vocabulary, frequent-word subsampling, the noise distribution,
and (input, target) examples drawn with the original's dynamic window — all as array operations,
never a Python loop over word pairs.

Shapes: N corpus tokens, V vocabulary, P pairs, W window, C = 2·W context slots.

    count_words(sentences, min_count)    words sorted by count (most frequent first) with their counts
    encode(sentences, vocab)             (ids (N,), sentence (N,)): out-of-vocabulary words are dropped,
                                         as word2vec does, so the window spans the words that remain
    keep_probabilities(counts, sample)   word2vec's subsampling: a word with frequency f = count / total
                                         is kept with probability (√(f/s) + 1) · s/f, at most 1
    noise_distribution(counts)           P_n(w) ∝ count(w)^0.75
    skipgram_pairs(ids, sentence, W)     (centre, context) for every context word within a window b drawn
                                         uniformly from 1..W per centre (nearer words are used more often)
    cbow_examples(ids, sentence, W)      (centre (P,), contexts (P, C) with −1 padding), same windows
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .errors import DataError


@dataclass(frozen=True, eq=False)
class CountedVocab:
    words: list[str]            # V words, most frequent first
    counts: np.ndarray          # (V,) int64

    def __post_init__(self):
        object.__setattr__(self, "index", {w: i for i, w in enumerate(self.words)})

    def __len__(self) -> int:
        return len(self.words)

    def to_json(self) -> dict:
        return {"words": self.words, "counts": self.counts.tolist()}

    @classmethod
    def from_json(cls, obj: dict) -> "CountedVocab":
        return cls(list(obj["words"]), np.asarray(obj["counts"], dtype=np.int64))


def count_words(sentences: Iterable[Sequence[str]], min_count: int,
                max_size: int | None = None) -> CountedVocab:
    counts = Counter(w for s in sentences for w in s)
    if not counts:
        raise DataError("the corpus is empty: no words to learn vectors for")
    kept = sorted(((w, c) for w, c in counts.items() if c >= min_count), key=lambda wc: (-wc[1], wc[0]))
    if max_size:
        kept = kept[:max_size]
    if len(kept) < 2:
        top = ", ".join(f"{w!r} ({c})" for w, c in counts.most_common(3))
        raise DataError(f"only {len(kept)} word(s) occur at least --min-count {min_count} times "
                        f"(most frequent: {top}); lower --min-count or give more text")
    return CountedVocab([w for w, _ in kept], np.array([c for _, c in kept], dtype=np.int64))


def encode(sentences: Iterable[Sequence[str]], vocab: CountedVocab) -> tuple[np.ndarray, np.ndarray]:
    ids, sentence = [], []
    for k, s in enumerate(sentences):
        row = [vocab.index[w] for w in s if w in vocab.index]
        ids.extend(row)
        sentence.extend([k] * len(row))
    return np.asarray(ids, dtype=np.int64), np.asarray(sentence, dtype=np.int64)


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """(V,) probability that each occurrence of a word survives subsampling (1 where sample = 0)."""
    if sample <= 0:
        return np.ones(len(counts))
    f = counts / counts.sum()
    return np.minimum(1.0, (np.sqrt(f / sample) + 1) * sample / f)


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    weights = counts.astype(np.float64) ** power
    return weights / weights.sum()


def subsample(ids: np.ndarray, sentence: np.ndarray, keep: np.ndarray,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    mask = rng.random(len(ids)) < keep[ids]
    return ids[mask], sentence[mask]


def _windows(n: int, window: int, rng: np.random.Generator) -> np.ndarray:
    """(N,) each centre's effective window b, uniform on 1..W (word2vec's `b = rand % window`)."""
    return rng.integers(1, window + 1, size=n)


def skipgram_pairs(ids: np.ndarray, sentence: np.ndarray, window: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(centres (P,), contexts (P,)) for every context word within its centre's window and sentence."""
    b = _windows(len(ids), window, rng)
    centres, contexts = [], []
    positions = np.arange(len(ids))
    for offset in range(1, window + 1):                   # W vectorised passes, not a loop over pairs
        for sign in (-1, 1):
            other = positions + sign * offset
            ok = (other >= 0) & (other < len(ids)) & (b >= offset)
            ok[ok] &= sentence[other[ok]] == sentence[positions[ok]]
            centres.append(ids[ok])
            contexts.append(ids[other[ok]])
    return np.concatenate(centres), np.concatenate(contexts)


def cbow_examples(ids: np.ndarray, sentence: np.ndarray, window: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(centres (P,), contexts (P, 2W)): each centre with the words of its window, −1 in unused slots;
    centres without any context word are left out."""
    n = len(ids)
    b = _windows(n, window, rng)
    positions = np.arange(n)
    contexts = np.full((n, 2 * window), -1, dtype=np.int64)
    slot = 0
    for offset in range(1, window + 1):
        for sign in (-1, 1):
            other = positions + sign * offset
            ok = (other >= 0) & (other < n) & (b >= offset)
            ok[ok] &= sentence[other[ok]] == sentence[positions[ok]]
            contexts[ok, slot] = ids[other[ok]]
            slot += 1
    has = (contexts >= 0).any(1)
    return ids[has], contexts[has]
