"""Training windows for forecasting: time-ordered splits, scaling fitted on training data only, and the
two target layouts the lectures show.

Shapes: N time steps, C columns (the target first, then covariates), B windows, T window length,
K horizon.

    split_ranges(N, valid, test)      (train, valid, test) as [start, end) index ranges, in time order:
                                      the test range is the last ``test`` fraction and is never seen by
                                      training, validation or the scaler
    Scaler.fit(values[train])         per-column mean and standard deviation of the training range only
    seq2seq_windows(values, starts, T)    inputs values[s : s+T] (B, T, C), targets the target column one
                                      step ahead, values[s+1 : s+T+1, 0] (B, T): a loss on every step
    seq2vec_windows(values, starts, T, K) inputs values[s : s+T] (B, T, C), targets the next K values of the
                                      target, values[s+T : s+T+K, 0] (B, K)

A window may use values up to its last target, so windows for a range [lo, hi) start in
[lo, hi - T - K]: training windows never reach into the validation or test range.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def split_ranges(n: int, valid_fraction: float, test_fraction: float) -> tuple[range, range, range]:
    """Consecutive [train | valid | test] index ranges covering 0..n-1 (validation may be empty)."""
    if not 0 < test_fraction < 1 or not 0 <= valid_fraction < 1 or valid_fraction + test_fraction >= 1:
        raise ValueError(f"fractions must leave a training part: valid {valid_fraction}, "
                         f"test {test_fraction}")
    test_start = n - int(round(n * test_fraction))
    valid_start = test_start - int(round(n * valid_fraction))
    return range(0, valid_start), range(valid_start, test_start), range(test_start, n)


@dataclass(frozen=True, eq=False)
class Scaler:
    """Standardises each column with statistics of the training range; inverts the target column."""

    mean: np.ndarray          # (C,)
    std: np.ndarray           # (C,)

    @classmethod
    def fit(cls, values: np.ndarray) -> "Scaler":
        std = values.std(axis=0)
        return cls(values.mean(axis=0), np.where(std > 0, std, 1.0))    # a constant column: unscaled

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.std                             # (N, C)

    def target_to_original(self, scaled: np.ndarray) -> np.ndarray:
        """Scaled target values (any shape) back in the series' own units."""
        return scaled * self.std[0] + self.mean[0]

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_json(cls, obj: dict) -> "Scaler":
        return cls(np.asarray(obj["mean"], dtype=np.float64), np.asarray(obj["std"], dtype=np.float64))


def window_starts(span: range, length: int, horizon: int = 1) -> np.ndarray:
    """Every start s in ``span`` whose window and targets, s .. s+length+horizon-1, stay inside it."""
    last = span.stop - length - horizon
    if last < span.start:
        raise ValueError(f"a range of {len(span)} steps holds no window of {length} steps plus "
                         f"{horizon} to predict")
    return np.arange(span.start, last + 1)


def seq2seq_windows(values: np.ndarray, starts: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (B, T, C), targets (B, T)): each step's target is the target column's next value."""
    idx = starts[:, None] + np.arange(length)                              # (B, T)
    return values[idx], values[idx + 1, 0]


def seq2vec_windows(values: np.ndarray, starts: np.ndarray, length: int,
                    horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (B, T, C), targets (B, K)): the K values of the target after each window."""
    idx = starts[:, None] + np.arange(length)                              # (B, T)
    ahead = starts[:, None] + length + np.arange(horizon)                  # (B, K)
    return values[idx], values[ahead, 0]
