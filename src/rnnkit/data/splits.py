"""Splitting labelled data: fixed stratified hold-outs and cross-validation folds.

Splits never depend on the training seed: they are drawn with ``SPLIT_SEED``, so every run, model
and seed on the same data is tested on the same examples. Stratified means each class is split in
the same proportion, which keeps small or unbalanced test sets representative.
"""
from __future__ import annotations

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
