"""The classical forecasters every RNN forecast is compared with (``rnnkit eval`` on a forecast run).

Each takes the history before an origin, y (L,), and returns the next K values (K,):

    naive            every future value is the last one seen:             ŷ_{o+h} = y_{o-1}
    seasonal naive   each value repeats the one a season earlier:         ŷ_{o+h} = y_{o+h-m·(1+⌊h/m⌋)}
    Holt-Winters     exponential smoothing of level, damped trend and an additive season of period m
                     (statsmodels' ExponentialSmoothing, parameters fitted by maximum likelihood on the
                     history it is given); without a season, Holt's damped trend.

These are strong on seasonal series: the weekly seasonal naive on half-hourly electricity demand is already
about three times better than the daily one, and Holt-Winters better again.
"""
from __future__ import annotations

import warnings
from typing import Optional

import numpy as np


def naive(history: np.ndarray, horizon: int) -> np.ndarray:
    return np.full(horizon, float(history[-1]))


def seasonal_naive(history: np.ndarray, horizon: int, period: Optional[int]) -> np.ndarray:
    """The last season repeated; without a period, the naive forecast."""
    if not period or period <= 1:
        return naive(history, horizon)
    if len(history) < period:
        raise ValueError(f"seasonal naive needs a full season of history ({period} steps), "
                         f"got {len(history)}")
    return history[-period:][np.arange(horizon) % period].astype(np.float64)


def holt_winters(history: np.ndarray, horizon: int, period: Optional[int],
                 seasonal: str = "add") -> np.ndarray:
    """Holt-Winters fitted on ``history`` (damped additive trend; additive or multiplicative season).

    statsmodels needs two full seasons to start the seasonal component; with less history (or no
    period) the season is left out.
    """
    from statsmodels.tsa.holtwinters import ExponentialSmoothing   # slow to import; only eval needs it

    y = np.asarray(history, dtype=np.float64)
    use_season = bool(period) and period > 1 and len(y) >= 2 * period + 2
    if seasonal == "mul" and (y <= 0).any():
        raise ValueError("a multiplicative Holt-Winters season needs a positive series")
    model = ExponentialSmoothing(y, trend="add", damped_trend=True,
                                 seasonal=seasonal if use_season else None,
                                 seasonal_periods=period if use_season else None,
                                 initialization_method="estimated")
    with warnings.catch_warnings():      # convergence chatter from the optimiser; the fit is still used
        warnings.simplefilter("ignore")
        return np.asarray(model.fit().forecast(horizon), dtype=np.float64)
