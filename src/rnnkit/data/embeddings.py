"""Pre-trained word vectors from a text file: word2vec's text format or GloVe's.

word2vec text:  a header line "<count> <dim>", then one line per word: "word v1 v2 ... v_dim"
GloVe:          no header, the same word lines

Only the vectors of words in the vocabulary are kept (a GloVe file has hundreds of thousands of
words; the classifier's vocabulary a few thousand). A word missing from the file is looked up
lower-cased too; words still missing keep a random vector with the found vectors' scale. The caller
reports how many were found: out-of-vocabulary rates matter when comparing embeddings.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError


@dataclass(frozen=True)
class LoadedVectors:
    matrix: np.ndarray          # (V, E) float32, row i for vocabulary word i
    found: int                  # vocabulary words (specials excluded) that had a vector in the file
    searched: int               # vocabulary words looked up (specials excluded)
    dim: int                    # E


def read_word_vectors(path: str | Path, words: list[str], skip: int = 0, seed: int = 0,
                      encoding: str = "utf-8") -> LoadedVectors:
    """Vectors for ``words`` (the vocabulary, in id order); its first ``skip`` (special tokens such
    as <pad> <unk>) are never looked up: <pad> (id 0) gets zeros, the others random vectors."""
    path = Path(path)
    wanted: dict[str, int] = {}
    for i, w in enumerate(words[skip:], start=skip):
        wanted.setdefault(w, i)
    lowered = {w.lower(): i for w, i in reversed(list(wanted.items()))}
    exact: dict[int, np.ndarray] = {}
    by_lower: dict[int, np.ndarray] = {}
    dim = None
    try:
        fh = open(path, encoding=encoding, errors="strict")
    except FileNotFoundError:
        raise DataError(f"{path}: no such embeddings file") from None
    with fh:
        for line_no, line in enumerate(fh, start=1):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if line_no == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                dim = int(parts[1])            # word2vec header: "<count> <dim>"
                continue
            if len(parts) < 2:
                if not line.strip():
                    continue
                raise DataError(f"{path}, line {line_no}: expected a word and its vector, got "
                                f"{line.strip()[:40]!r}")
            if dim is None:
                dim = len(parts) - 1
            if len(parts) - 1 != dim:
                raise DataError(f"{path}, line {line_no}: {len(parts) - 1} numbers after the word "
                                f"{parts[0]!r}, expected {dim}")
            word = parts[0]
            target, table = (wanted.get(word), exact) if word in wanted else \
                (lowered.get(word.lower()), by_lower)
            if target is None or target in table:
                continue
            try:
                table[target] = np.asarray(parts[1:], dtype=np.float32)
            except ValueError:
                bad = next(p for p in parts[1:] if not _is_float(p))
                raise DataError(f"{path}, line {line_no}: {bad!r} is not a number "
                                f"(word {word!r})") from None
    if dim is None:
        raise DataError(f"{path}: the embeddings file has no vectors")
    vectors = {**by_lower, **exact}                     # an exact match beats a lower-cased one
    scale = float(np.std(np.stack(list(vectors.values())))) if vectors else 0.1
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, scale or 0.1, size=(len(words), dim)).astype(np.float32)
    if skip:
        matrix[0] = 0.0                                 # <pad>
    for i, v in vectors.items():
        matrix[i] = v
    searched = len(words) - skip
    found = sum(1 for i in range(skip, len(words)) if i in vectors)
    return LoadedVectors(matrix, found, searched, dim)


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
