"""Forecasting windows: exact shifted targets, time-ordered splits, scaling that never sees test data."""
from __future__ import annotations

import numpy as np
import pytest

from rnnkit.data.windows import (Scaler, rolling_origins, seasonal_difference, seq2seq_windows,
                                 seq2vec_windows, split_ranges, undifference, window_starts)


def series(n: int = 50) -> np.ndarray:
    t = np.arange(n, dtype=np.float64)
    return np.stack([t * 10, -t], axis=1)                 # (N, 2): target = 10·t, covariate = -t


def test_seq2seq_targets_are_the_inputs_shifted_one_step():
    values = series()
    x, y = seq2seq_windows(values, np.array([0, 7, 40]), 9)
    assert x.shape == (3, 9, 2) and y.shape == (3, 9)
    assert x[1, :, 0].tolist() == [10 * t for t in range(7, 16)]
    assert x[1, :, 1].tolist() == [-t for t in range(7, 16)]
    assert y[1].tolist() == [10 * t for t in range(8, 17)]
    np.testing.assert_array_equal(y[:, :-1], x[:, 1:, 0])    # shifted exactly, no gap, no overlap


def test_seq2vec_targets_are_the_next_horizon_values():
    x, y = seq2vec_windows(series(), np.array([3, 20]), 5, 4)
    assert x.shape == (2, 5, 2) and y.shape == (2, 4)
    assert x[0, :, 0].tolist() == [30, 40, 50, 60, 70]
    assert y[0].tolist() == [80, 90, 100, 110]
    assert y[1].tolist() == [250, 260, 270, 280]


def test_windows_stay_inside_their_range():
    train, valid, test = split_ranges(100, valid_fraction=0.1, test_fraction=0.2)
    assert (train, valid, test) == (range(0, 70), range(70, 80), range(80, 100))
    starts = window_starts(train, length=12, horizon=3)
    assert starts[0] == 0 and starts[-1] + 12 + 3 - 1 == 69           # the last target is step 69
    _, y = seq2vec_windows(series(100), starts, 12, 3)
    assert y.max() == 10 * 69                                         # never a validation value
    with pytest.raises(ValueError, match="holds no window of 12 steps plus 3"):
        window_starts(range(0, 14), 12, 3)
    with pytest.raises(ValueError, match="must leave a training part"):
        split_ranges(100, valid_fraction=0.5, test_fraction=0.5)


def test_scaling_is_fitted_on_the_training_range_only():
    values = series(100)
    train, _, test = split_ranges(100, 0.1, 0.2)
    scaler = Scaler.fit(values[train.start:train.stop])
    np.testing.assert_allclose(scaler.mean, [10 * 34.5, -34.5])       # the mean of steps 0..69
    changed = values.copy()
    changed[test.start:] = 1e6                                        # any test values at all
    refit = Scaler.fit(changed[train.start:train.stop])
    assert np.array_equal(refit.mean, scaler.mean) and np.array_equal(refit.std, scaler.std)
    scaled = scaler.transform(values)
    np.testing.assert_allclose(scaled[train.start:train.stop].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(scaled[train.start:train.stop].std(0), 1)
    np.testing.assert_allclose(scaler.target_to_original(scaled[:, 0]), values[:, 0])
    assert Scaler.from_json(scaler.to_json()).to_json() == scaler.to_json()
    flat = Scaler.fit(np.ones((5, 1)))
    assert flat.std.tolist() == [1.0]                                 # a constant column is not divided by 0


def test_undifference_inverts_the_seasonal_difference_exactly():
    rng = np.random.default_rng(0)
    y = rng.normal(size=60).cumsum()
    m = 5
    d = seasonal_difference(y, m)
    assert np.isnan(d[:m]).all()
    origins = np.array([20, 33])
    horizon = 12                                        # longer than a season: h >= m reads its own output
    true_d = d[origins[:, None] + np.arange(horizon)]
    back, _ = undifference(true_d, y, origins, m)
    np.testing.assert_allclose(back, y[origins[:, None] + np.arange(horizon)])


def test_undifference_reads_no_value_at_or_after_the_origin():
    y = np.arange(30, dtype=np.float64)
    wrecked = y.copy()
    wrecked[20:] = 1e9
    d = np.ones((1, 8))
    std = np.full((1, 8), 2.0)
    a, sa = undifference(d, y, np.array([20]), 3, std)
    b, _ = undifference(d, wrecked, np.array([20]), 3, std)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a[0], [18, 19, 20, 19, 20, 21, 20, 21])
    np.testing.assert_allclose(sa[0], 2.0 * np.sqrt([1, 1, 1, 2, 2, 2, 3, 3]))   # widens each season


def test_rolling_origins_leave_a_whole_horizon_inside_the_range():
    np.testing.assert_array_equal(rolling_origins(range(100, 130), 10, 7), [100, 107, 114])
    np.testing.assert_array_equal(rolling_origins(range(0, 5), 5, 1), [0])
    with pytest.raises(ValueError, match="no forecast of 6"):
        rolling_origins(range(0, 5), 6, 1)
