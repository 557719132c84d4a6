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

    seasonal_difference(y, m)         d_t = y_t - y_{t-m} (NaN for t < m): the Box-Jenkins seasonal difference
    undifference(d, y, origin, m)     forecasts of d from ``origin`` back to y, each step adding the value one
                                      season earlier (observed, or itself forecast when h >= m)
    rolling_origins(span, K, step)    forecast origins inside a range, every ``step``, each leaving K steps

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


def seasonal_difference(y: np.ndarray, m: int) -> np.ndarray:
    """(N,) d_t = y_t - y_{t-m}; the first m entries, which have no value a season earlier, are NaN."""
    d = np.full(len(y), np.nan)
    d[m:] = y[m:] - y[:-m]
    return d


def undifference(d: np.ndarray, y: np.ndarray, origins: np.ndarray, m: int,
                 d_std: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Forecasts of the differenced series, d (O, K) for steps origin .. origin+K-1, back in the units of y.

    y_{o+h} = d_{o+h} + y_{o+h-m}: the value one season earlier is observed when h < m (only y[:o] is
    read) and is the forecast itself when h >= m. Standard deviations add in quadrature along that chain
    (the forecast errors taken as independent), so an interval widens every season.
    """
    out = np.empty_like(d)
    std = None if d_std is None else np.empty_like(d_std)
    for h in range(d.shape[1]):
        if h < m:
            out[:, h] = d[:, h] + y[origins + h - m]
            if std is not None:
                std[:, h] = d_std[:, h]
        else:
            out[:, h] = d[:, h] + out[:, h - m]
            if std is not None:
                std[:, h] = np.hypot(d_std[:, h], std[:, h - m])
    return out, std


def rolling_origins(span: range, horizon: int, step: int) -> np.ndarray:
    """Origins o in ``span`` every ``step`` steps from its start such that o .. o+horizon-1 stay in it."""
    if step <= 0:
        raise ValueError(f"the step between origins must be positive, got {step}")
    origins = np.arange(span.start, span.stop - horizon + 1, step)
    if len(origins) == 0:
        raise ValueError(f"a range of {len(span)} steps holds no forecast of {horizon} steps")
    return origins
