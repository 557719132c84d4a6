"""Splitting data: fixed stratified hold-outs and cross-validation folds for labelled data, and
splits fixed by a hash of each example's text (sentence pairs, tagged sentences, captions).

Splits never depend on the training seed: they are drawn with ``SPLIT_SEED``, so every run, model
and seed on the same data is tested on the same examples. Stratified means each class is split in
the same proportion, which keeps small or unbalanced test sets representative.
"""
from __future__ import annotations

import hashlib
from typing import Optional, Sequence

import numpy as np

from .errors import DataError
from .labelled import LabelledData

SPLIT_SEED = 0


def _take(x, idx: np.ndarray):
    return x[idx] if isinstance(x, np.ndarray) else [x[i] for i in idx]


def _concat(parts: Sequence):
    if all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts)
    return [item for p in parts for item in p]


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held) indices: ``fraction`` of each class, drawn with ``seed``, is held out."""
    rng = np.random.default_rng(seed)
    kept, held = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n = int(round(fraction * len(idx)))
        held.append(idx[:n])
        kept.append(idx[n:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """K disjoint index sets covering every example, each with (nearly) the class proportions."""
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for c in np.unique(labels):
        for j, i in enumerate(rng.permutation(np.flatnonzero(labels == c))):
            folds[(offset + j) % k].append(int(i))
        offset += int((labels == c).sum())      # the next class continues the round-robin
    return [np.sort(np.array(f, dtype=np.int64)) for f in folds]


def split_labelled(data: LabelledData, test_fraction: float, valid_fraction: float,
                   fold: Optional[int] = None, folds: Optional[int] = None) -> dict[str, tuple]:
    """{"train"|"valid"|"test": (inputs, labels)}: fold ``fold`` of ``folds`` as the test set (all
    examples pooled), or the data's own test split, or a stratified ``test_fraction`` hold-out; then
    the data's own validation split (not with folds), or ``valid_fraction`` of the training part."""
    if fold is not None:
        parts = [(data.train_x, data.train_y)] + \
                [(x, y) for x, y in ((data.valid_x, data.valid_y), (data.test_x, data.test_y))
                 if x is not None]
        x_all, y_all = _concat([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        test_idx = stratified_folds(y_all, folds, SPLIT_SEED)[fold]
        rest = np.setdiff1d(np.arange(len(y_all)), test_idx)
        test = (_take(x_all, test_idx), y_all[test_idx])
        train_x, train_y = _take(x_all, rest), y_all[rest]
    elif data.test_x is not None:
        test = (data.test_x, data.test_y)
        train_x, train_y = data.train_x, data.train_y
    else:
        kept, held = stratified_holdout(data.train_y, test_fraction, SPLIT_SEED)
        test = (_take(data.train_x, held), data.train_y[held])
        train_x, train_y = _take(data.train_x, kept), data.train_y[kept]
    if data.valid_x is not None and fold is None:
        valid = (data.valid_x, data.valid_y)
    else:
        kept, held = stratified_holdout(train_y, valid_fraction, SPLIT_SEED + 1)
        valid = (_take(train_x, held), train_y[held])
        train_x, train_y = _take(train_x, kept), train_y[kept]
    splits = {"train": (train_x, train_y), "valid": valid, "test": test}
    for name, (x, y) in splits.items():
        if len(y) == 0:
            raise DataError(f"{data.name}: the {name} split is empty ({len(data.train_y)} "
                            f"examples): use more data, or other test/validation fractions")
    return splits


def text_position(text: str, seed: int = 0) -> float:
    """Where a text falls in [0, 1): the first 8 bytes of the sha256 of its lower-cased,
    whitespace-collapsed form (prefixed by the seed unless it is 0). It depends on nothing else,
    so an example never changes split when others are added or removed, and equal texts (the same
    source sentence, the same caption) always land in the same split."""
    key = " ".join(text.lower().split())
    if seed:
        key = f"{seed}\x00{key}"
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2.0 ** 64


def hash_split(keys: Sequence[str], valid_fraction: float, test_fraction: float, what: str,
               seed: int = 0) -> dict[str, list[int]]:
    """Indices of ``{"train", "valid", "test"}``: test where the key's `text_position` is below
    ``test_fraction``, valid below ``test_fraction + valid_fraction``, else train; order kept.
    ``what`` names the examples (plural) in the error raised when train or test comes out empty."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if not 0.0 <= valid_fraction < 1.0 or valid_fraction + test_fraction >= 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1) and valid_fraction + test_fraction < 1, "
                         f"got {valid_fraction} and {test_fraction}")
    parts: dict[str, list[int]] = {"train": [], "valid": [], "test": []}
    for i, key in enumerate(keys):
        u = text_position(key, seed)
        parts["test" if u < test_fraction else "valid" if u < test_fraction + valid_fraction
              else "train"].append(i)
    for name in ("train", "test"):
        if not parts[name]:
            raise DataError(f"cannot split {len(keys)} {what}: the {name} split is empty "
                            f"(give more)")
    return parts
