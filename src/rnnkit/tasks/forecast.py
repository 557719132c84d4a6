"""``rnnkit train forecast`` / ``forecast`` / ``generate`` / ``eval``: forecasting a time series.

Shapes: N time steps, C model input columns (the target, then covariates and calendar features),
T window, K steps a seq2vec model predicts at once, H forecast horizon, O forecast origins.

The pipeline; everything that is fitted is fitted on the training range only:

    series (N, C) ─► seasonal difference of the target, d_t = y_t − y_{t−m}   (--difference m; optional)
                  ─► Scaler (each column standardised with the training range's statistics)
                  ─► windows that lie in the training range ─► Forecaster (seq2seq | seq2vec)

and a forecast undoes it step by step: the model continues the window recursively, its output is
unscaled, then integrated (y_t = d_t + y_{t−m}). Calendar features (month of year, time of day, day of
week) are added when the timestamps allow it: they are known in advance, so forecasts read their
future values; user covariates (--covariates) are known only inside the data.

Ranges: [train | valid | test] in time order. Validation is the forecast error of the model's own
recursive H-step forecasts from origins in the validation range, so the checkpoint kept (``best``) is
the best forecaster, not the best one-step predictor. ``eval`` forecasts from rolling origins over the
test range, which training never saw, and scores the classical forecasters (models/classical.py) on
the same origins: MAE, RMSE, sMAPE and MASE, the last scaled by the in-sample seasonal-naive error of
the training range, so every number shares one unit.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from ..data.batching import BucketBatches
from ..data.series import (FILL_POLICIES, SERIES_SETS, TimeSeries, calendar_features, calendar_kind,
                           detect_period, future_timestamps, load_series,
                           read_series_csv)
from ..data.windows import (Scaler, rolling_origins, seasonal_difference, split_ranges, undifference,
                            window_starts)
from ..models.classical import holt_winters, naive, seasonal_naive
from ..models.forecaster import (CELLS, LIKELIHOODS, MODES, WINDOW_NORMS, Forecaster,
                                 ForecasterConfig)
from ..train.checkpoint import load_checkpoint
from ..train.trainer import TrainConfig, Trainer
from ..viz.plots import plot_forecast
from .common import (UsageError, add_training_arguments, checkpoint_path, new_run_dir,
                     per_epoch_evaluation, resolve_device, resumable_config, resume_device,
                     train_config, write_json)

TASK = "forecast"

# Defaults by data set; a flag given on the command line always wins.
RECIPES: dict[str, dict] = {
    # The lectures' set-up: windows of 20 steps, a basic RNN of 100 units, Adam at 1e-3, batches of 50.
    "synthetic": dict(cell="rnn", hidden=100, window=20, horizon=20, lr=1e-3, batch_size=50,
                      epochs=40),
    "airline": dict(window=24, horizon=12, difference=12, hidden=32, lr=3e-3, batch_size=16,
                    epochs=100),
    "co2": dict(window=36, horizon=12, difference=12, hidden=32, lr=3e-3, batch_size=16, epochs=60),
    "sunspots": dict(window=33, horizon=11, hidden=32, lr=3e-3, batch_size=16, epochs=100),
    # Half hours: the week-ago value carries the weekly pattern; the network models how this week
    # departs from the last, from the level of its own window (which drifts over the summer).
    "electricity": dict(mode="seq2vec", window=96, horizon=48, difference=336, window_norm="last", hidden=32,
                        lr=3e-3, batch_size=32, epochs=10, hw_seasons=4),
}
GENERIC = dict(mode="seq2seq", likelihood="point", cell="lstm", hidden=64, layers=1, dropout=0.0,
               window=48, horizon=12, difference=0, window_norm="none", lr=3e-3, batch_size=32,
               epochs=30, hw_seasons=None)
INTERVAL = 0.8                     # the central probability of a Gaussian model's prediction interval


# ---- data: the series and its model inputs ------------------------------------------------------------

def load_data(d: dict) -> TimeSeries:
    if d["dataset"]:
        return load_series(d["dataset"])
    return read_series_csv(d["file"], d["column"], time_column=d["time_column"],
                           covariates=d["covariates"], fill=d["fill"])


def fingerprint(series: TimeSeries) -> str:
    """sha256 of the values and timestamps: a resumed or evaluated run must see the same series."""
    h = hashlib.sha256(np.ascontiguousarray(series.values, dtype=np.float64).tobytes())
    h.update("\n".join(series.timestamps or []).encode("utf-8"))
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class Prepared:
    """A series in the model's terms: raw inputs in their own units and the scaled features."""

    raw: np.ndarray               # (N, C) original units: target, covariates, calendar features
    features: np.ndarray          # (N, C) scaled model inputs; column 0 differenced (NaN for t < m)
    scaler: Scaler
    ranges: dict[str, range]      # train, valid, test
    timestamps: Optional[list[str]]

    @property
    def target(self) -> np.ndarray:
        return self.raw[:, 0]


def model_inputs(series: TimeSeries, calendar: Optional[str],
                 timestamps: Optional[list[str]] = None) -> tuple[np.ndarray, list[str]]:
    """(N, C) the series' columns followed by its calendar features, and their names."""
    if not calendar:
        return series.values, list(series.columns)
    cal, names = calendar_features(timestamps or series.timestamps, calendar)
    return np.concatenate([series.values, cal], axis=1), [*series.columns, *names]


def to_features(raw: np.ndarray, difference: int, scaler: Scaler) -> np.ndarray:
    values = raw.copy()
    if difference:
        values[:, 0] = seasonal_difference(raw[:, 0], difference)
    return scaler.transform(values)


def prepare(series: TimeSeries, d: dict, scaler: Optional[Scaler] = None) -> Prepared:
    """The run's view of ``series``; the scaler is fitted on the training range unless given."""
    raw, _ = model_inputs(series, d["calendar"])
    train, valid, test = split_ranges(len(raw), d["valid_fraction"], d["test_fraction"])
    m = d["difference"]
    if scaler is None:
        values = raw[m:train.stop].copy()
        if m:
            values[:, 0] = seasonal_difference(raw[:train.stop, 0], m)[m:]
        if len(values) < 2:
            raise UsageError(f"{series.name}: the training range ({len(train)} steps) is too short "
                             f"for a seasonal difference of {m} steps")
        scaler = Scaler.fit(values)
    return Prepared(raw, to_features(raw, m, scaler), scaler,
                    {"train": train, "valid": valid, "test": test}, series.timestamps)


MAX_ORIGINS = 200                  # eval refits Holt-Winters at every origin: keep long series quick


def origin_step(span: range, horizon: int) -> int:
    """Origins every H steps (each forecast scored on fresh values) when that gives ten or more;
    otherwise every step, so a short range still gives an average over many origins; and never more
    than MAX_ORIGINS, spread evenly over the range."""
    step = horizon if (len(span) - horizon) // horizon + 1 >= 10 else 1
    return max(step, -(-(len(span) - horizon + 1) // MAX_ORIGINS))


def forecast_origins(model: Forecaster, prep: Prepared, origins: np.ndarray, horizon: int, d: dict,
                     device: torch.device) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """The model's H-step forecasts from each origin, (mean, std) (O, H) in the series' own units.

    Each reads only the window before its origin (and the known covariates of the steps it
    forecasts); std is None for a point model.
    """
    T, m = d["window"], d["difference"]
    if (origins - T - m < 0).any():
        raise UsageError(f"a forecast needs {T + m} steps of history before its origin "
                         f"(window {T}{f' + difference {m}' if m else ''}); origin {origins.min()} has fewer")
    if (origins + horizon > len(prep.features)).any():
        raise UsageError("the covariates of the forecast steps are not known")
    x = torch.as_tensor(prep.features, dtype=torch.float32, device=device)          # (N, C)
    history = x[torch.as_tensor(origins[:, None] - T + np.arange(T), device=device)]  # (O, T, C)
    future = None
    if x.shape[1] > 1:
        future = x[torch.as_tensor(origins[:, None] + np.arange(horizon), device=device), 1:]
    mean, std = model.forecast(history, horizon, future)                           # (O, H)
    mean = prep.scaler.target_to_original(mean.double().cpu().numpy())
    std = None if std is None else std.double().cpu().numpy() * prep.scaler.std[0]
    if m:
        mean, std = undifference(mean, prep.target, origins, m, std)
    return mean, std


def extended(prep: Prepared, series: TimeSeries, d: dict, steps: int) -> Prepared:
    """``prep`` with ``steps`` rows appended after the data (target unknown, NaN), so a forecast can
    run past its end; their calendar features are computed from the continued timestamps."""
    if steps <= 0:
        return prep
    if d["covariates"]:
        raise UsageError(f"the model reads the covariates {', '.join(d['covariates'])}, whose values "
                         f"after the data are unknown: forecast from an --origin at most "
                         f"{len(prep.raw)} - horizon")
    timestamps = None
    if prep.timestamps:
        timestamps = [*prep.timestamps, *future_timestamps(prep.timestamps, steps)]
    future = TimeSeries(series.name, np.vstack([series.values, np.full((steps, 1), np.nan)]),
                        series.columns, timestamps, series.period, series.source)
    raw, _ = model_inputs(future, d["calendar"])
    return replace(prep, raw=raw, features=to_features(raw, d["difference"], prep.scaler),
                   timestamps=timestamps)


# ---- scores --------------------------------------------------------------------------------------------

def seasonal_naive_scale(y: np.ndarray, season: Optional[int]) -> tuple[float, int]:
    """MASE's denominator and its lag: the in-sample MAE of the seasonal-naive forecast; of the naive
    one (lag 1) without a season, or where the seasonal one is exact (a noiseless seasonal series)."""
    lags = [season] if season and season > 1 and len(y) > season else []
    for lag in [*lags, 1]:
        scale = float(np.mean(np.abs(y[lag:] - y[:-lag])))
        if scale > 0:
            return scale, lag
    raise UsageError("the training range is constant: MASE has no scale")


def forecast_errors(actual: np.ndarray, predicted: np.ndarray, scale: float) -> dict[str, float]:
    """Errors over every origin and step: MAE, RMSE, sMAPE (percent, 0..200), MASE (MAE / scale)."""
    err = predicted - actual
    total = np.abs(actual) + np.abs(predicted)
    smape = np.where(total > 0, 2 * np.abs(err) / np.where(total > 0, total, 1), 0.0)
    mae = float(np.mean(np.abs(err)))
    return {"mae": mae, "rmse": float(np.sqrt(np.mean(err ** 2))), "smape": float(100 * smape.mean()),
            "mase": mae / scale}


def baseline_forecasts(y: np.ndarray, origins: np.ndarray, horizon: int, season: Optional[int],
                       hw_seasons: Optional[int]) -> dict[str, np.ndarray]:
    """(O, H) forecasts of the classical forecasters, each from the history before its origin only.
    Holt-Winters is refitted at every origin, on its last ``hw_seasons`` seasons when that is set."""
    out = {"naive": [], "seasonal_naive": [], "holt_winters": []}
    for o in origins:
        history = y[:o]
        out["naive"].append(naive(history, horizon))
        out["seasonal_naive"].append(seasonal_naive(history, horizon, season))
        if hw_seasons and season:
            history = history[-hw_seasons * season:]
        out["holt_winters"].append(holt_winters(history, horizon, season))
    return {k: np.stack(v) for k, v in out.items()}


# ---- the hooks the trainer calls -------------------------------------------------------------------

class ForecastTask:
    """Shuffled windows from the training range; validation by forecasting from validation origins."""

    unit = "windows"

    def __init__(self, prep: Prepared, d: dict, model_config: ForecasterConfig, batch_size: int,
                 seed: int, device: torch.device) -> None:
        self.prep, self.d, self.device = prep, d, device
        self.mode, self.K, T = model_config.mode, model_config.horizon, d["window"]
        self.x = torch.as_tensor(prep.features, dtype=torch.float32, device=device)   # (N, C)
        train = prep.ranges["train"]
        self.starts = window_starts(range(d["difference"], train.stop), T, self.K)
        self.batches = BucketBatches(np.full(len(self.starts), T), batch_size, seed, bucket=False)
        valid = prep.ranges["valid"]
        self.valid_origins = rolling_origins(valid, d["horizon"], origin_step(valid, d["horizon"]))
        self.valid_actual = prep.target[self.valid_origins[:, None] + np.arange(d["horizon"])]
        self.scale = float(prep.target[train].std()) or 1.0       # val_loss in training-std units

    def steps_per_epoch(self) -> int:
        return len(self.batches)

    def epochs_done(self) -> float:
        return self.batches.epoch + self.batches.batch / len(self.batches)

    def train_step(self, model: Forecaster) -> tuple[Tensor, int]:
        T = self.d["window"]
        starts = torch.as_tensor(self.starts, device=self.device)[next(self.batches).to(self.device)]
        rows = starts[:, None] + torch.arange(T, device=self.device)                  # (B, T)
        x = self.x[rows]                                                              # (B, T, C)
        if self.mode == "seq2seq":
            target = self.x[rows + 1, 0]                                              # (B, T)
        else:
            target = self.x[starts[:, None] + T + torch.arange(self.K, device=self.device), 0]
        mean, std, _ = model(x)
        return model.loss(mean, std, target), len(starts)

    def evaluate(self, model: Forecaster) -> dict[str, float]:
        mean, _ = forecast_origins(model, self.prep, self.valid_origins, self.d["horizon"], self.d,
                                   self.device)
        model.train()
        err = mean - self.valid_actual
        return {"val_loss": float(np.mean(err ** 2)) / self.scale ** 2,
                "val_mae": float(np.mean(np.abs(err)))}

    def state_dict(self) -> dict:
        return {"batches": self.batches.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.batches.load_state_dict(state["batches"])


# ---- command line ------------------------------------------------------------------------------------

def add_train_arguments(p: argparse.ArgumentParser) -> None:
    d = p.add_argument_group("data")
    src = d.add_mutually_exclusive_group()
    src.add_argument("--dataset", choices=SERIES_SETS, help="a bundled series")
    src.add_argument("--csv", type=Path, metavar="FILE", help="your own series: CSV or TSV, one row a step")
    d.add_argument("--column", help="--csv: the column to forecast")
    d.add_argument("--time-column", help="--csv: the timestamps (checked sorted, no duplicates)")
    d.add_argument("--covariates", nargs="+", default=[], metavar="NAME",
                   help="--csv: more input columns (known only inside the data)")
    d.add_argument("--fill", choices=FILL_POLICIES,
                   help="--csv: what to do with missing values (default: refuse them, with counts)")
    d.add_argument("--calendar", choices=("auto", "none"), default="auto",
                   help="auto: month / time of day / weekday features when the timestamps allow")
    d.add_argument("--season", type=int, help="seasonal period in steps for the baselines and MASE "
                                              "(default: the data set's, else detected)")
    d.add_argument("--valid-fraction", type=float, default=0.1)
    d.add_argument("--test-fraction", type=float, default=0.2)
    m = p.add_argument_group("model")
    m.add_argument("--mode", choices=MODES,
                   help="seq2seq: predict each next step, loss on every step (default); seq2vec: "
                        "the next --horizon steps at once")
    m.add_argument("--likelihood", choices=LIKELIHOODS,
                   help="gaussian: a mean and a standard deviation per step (prediction intervals)")
    m.add_argument("--cell", choices=sorted(CELLS))
    m.add_argument("--hidden", type=int)
    m.add_argument("--layers", type=int)
    m.add_argument("--dropout", type=float)
    m.add_argument("--window", type=int, help="steps the model reads before forecasting")
    m.add_argument("--horizon", type=int, help="steps to forecast (validation, eval, seq2vec)")
    m.add_argument("--difference", type=int, metavar="LAG",
                   help="model y_t - y_{t-LAG} (a seasonal difference); 0: the series itself")
    m.add_argument("--window-norm", choices=WINDOW_NORMS,
                   help="remove each window's level (last value or mean) and restore it")
    m.add_argument("--hw-seasons", type=int, help="Holt-Winters baseline: fit on the last K seasons "
                                                  "before each origin (default: all history)")
    add_training_arguments(p, lr=None, batch_size=None, eval_every=None)


def apply_recipe(args: argparse.Namespace) -> str:
    name = args.dataset or "generic"
    for key, value in {**GENERIC, **RECIPES.get(name, {})}.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return name


def _data_config(args, series: TimeSeries) -> dict:
    if not (0 <= args.difference < len(series)):
        raise UsageError(f"--difference must be between 0 and the series length, got {args.difference}")
    for name in ("window", "horizon"):
        if getattr(args, name) <= 0:
            raise UsageError(f"--{name} must be positive, got {getattr(args, name)}")
    if args.season is not None and args.season < 2:
        raise UsageError(f"--season must be at least 2 steps, got {args.season}")
    calendar = None
    if args.calendar == "auto" and series.timestamps:
        calendar = calendar_kind(series.timestamps)
    train, _, _ = split_ranges(len(series), args.valid_fraction, args.test_fraction)
    season = args.season or series.period
    if season is None:
        season = detect_period(series.target[train], max_period=max(2, len(train) // 3))
    return {"dataset": args.dataset, "file": str(args.csv) if args.csv else None,
            "column": series.columns[0], "time_column": args.time_column,
            "covariates": list(args.covariates), "fill": args.fill, "calendar": calendar,
            "season": season, "valid_fraction": args.valid_fraction,
            "test_fraction": args.test_fraction, "window": args.window, "horizon": args.horizon,
            "difference": args.difference, "hw_seasons": args.hw_seasons,
            "fingerprint": fingerprint(series)}


def train(args: argparse.Namespace) -> dict:
    if args.resume:
        return _resume(args)
    if not (args.dataset or args.csv):
        raise UsageError("give the series: --dataset NAME or --csv FILE --column NAME")
    if args.csv and not args.column:
        raise UsageError("--csv needs --column: the name of the column to forecast")
    if args.dataset and (args.column or args.covariates or args.time_column or args.fill):
        raise UsageError("--column, --time-column, --covariates and --fill are for --csv")
    recipe = apply_recipe(args)
    device = resolve_device(args.device)
    cfg = train_config(args, device)
    series = load_data({"dataset": args.dataset, "file": args.csv, "column": args.column,
                        "time_column": args.time_column, "covariates": args.covariates,
                        "fill": args.fill})
    d = _data_config(args, series)
    prep = prepare(series, d)
    model_cfg = ForecasterConfig(
        input_size=prep.raw.shape[1], mode=args.mode, likelihood=args.likelihood,
        horizon=args.horizon if args.mode == "seq2vec" else 1, cell=args.cell, hidden=args.hidden,
        layers=args.layers, dropout=args.dropout, window_norm=args.window_norm)
    try:      # every check that can fail on the data runs before the run directory is made
        task = ForecastTask(prep, d, model_cfg, args.batch_size, cfg.seed, device)
    except ValueError as e:
        raise UsageError(f"{series.name}: {e} (shorten --window or --horizon, or give more data)") from None
    cfg = per_epoch_evaluation(cfg, task.steps_per_epoch())
    _, names = model_inputs(series, d["calendar"])
    config = {"task": TASK, "model": model_cfg.to_json(), "train": asdict(cfg), "data": d,
              "inputs": names, "scaler": prep.scaler.to_json(), "source": series.source,
              "recipe": recipe, "device": str(device), "batch_size": args.batch_size,
              "sizes": {k: len(r) for k, r in prep.ranges.items()}}
    run = new_run_dir(args.out, TASK)
    write_json(run / "config.json", config)
    sizes = config["sizes"]
    print(f"run directory: {run}\n{series.source}: {len(series):,} steps: {sizes['train']:,} training, "
          f"{sizes['valid']:,} validation, {sizes['test']:,} test; inputs {', '.join(names)}; "
          f"{len(task.starts):,} training windows of {d['window']}", file=sys.stderr)
    for line in series.fill_log:
        print(f"fill: {line}", file=sys.stderr)
    torch.manual_seed(cfg.seed)
    model = Forecaster(model_cfg).to(device)
    return _fit_and_test(run, config, model, task, series, cfg, device, resume=False)


def _fit_and_test(run: Path, config: dict, model: Forecaster, task: ForecastTask,
                  series: TimeSeries, cfg: TrainConfig, device: torch.device, resume: bool) -> dict:
    n_params = sum(p.numel() for p in model.parameters())
    m = config["model"]
    print(f"model: {m['mode']} {m['layers']}×{m['hidden']} {m['cell'].upper()}, {m['likelihood']} "
          f"output, {n_params:,} parameters, on {device} in {cfg.precision}", file=sys.stderr)
    summary = Trainer(model, task, cfg, run, {"task": TASK, "config": config}, device,
                      resume=resume).fit()
    best, _ = load_run(run, device)
    result = test_run(run, best, config, task.prep, series.name, device)
    print(f"done: {summary['steps']} steps in {summary['seconds']:.0f} s; test MASE "
          f"{result['model']['mase']:.3f} (seasonal naive {result['baselines']['seasonal_naive']['mase']:.3f}, "
          f"Holt-Winters {result['baselines']['holt_winters']['mase']:.3f}) over {result['origins']} "
          f"origins, horizon {result['horizon']}", file=sys.stderr)
    return {**summary, "test": result}


def _resume(args: argparse.Namespace) -> dict:
    run = args.resume
    config = resumable_config(run, TASK, "a forecasting run")
    device = resume_device(args, config)
    series, prep = _checked_data(run, config)
    cfg = TrainConfig(**config["train"])
    model_cfg = ForecasterConfig(**config["model"])
    task = ForecastTask(prep, config["data"], model_cfg, config["batch_size"], cfg.seed, device)
    model = Forecaster(model_cfg).to(device)
    return _fit_and_test(run, config, model, task, series, cfg, device, resume=True)


def _checked_data(run: Path, config: dict) -> tuple[TimeSeries, Prepared]:
    """The run's series, refused if it changed since training, prepared with the run's scaler."""
    d = config["data"]
    series = load_data(d)
    if fingerprint(series) != d["fingerprint"]:
        raise UsageError(f"{run}: the series has changed since this run was trained")
    return series, prepare(series, d, Scaler.from_json(config["scaler"]))


# ---- using a trained run --------------------------------------------------------------------------------

def load_run(run: Path, device: torch.device) -> tuple[Forecaster, dict]:
    weights, meta, _ = load_checkpoint(checkpoint_path(run), device)
    config = meta["config"]
    model = Forecaster(ForecasterConfig(**config["model"])).to(device)
    model.load_state_dict(weights)
    model.eval()
    return model, config


def test_run(run: Path, model: Forecaster, config: dict, prep: Prepared, name: str,
             device: torch.device, horizon: Optional[int] = None) -> dict:
    """Rolling-origin errors on the test range of the model and the baselines; test.json, test.png."""
    d = config["data"]
    H = horizon or d["horizon"]
    test = prep.ranges["test"]
    step = origin_step(test, H)
    try:
        origins = rolling_origins(test, H, step)
    except ValueError as e:
        raise UsageError(f"{name}: the test range: {e}") from None
    y = prep.target
    actual = y[origins[:, None] + np.arange(H)]                                     # (O, H)
    scale, lag = seasonal_naive_scale(y[prep.ranges["train"]], d["season"])
    mean, std = forecast_origins(model, prep, origins, H, d, device)
    baselines = baseline_forecasts(y, origins, H, d["season"], d["hw_seasons"])
    result = {"split": "test", "horizon": H, "origins": len(origins), "origin_step": step,
              "season": d["season"], "mase_scale": scale, "mase_scale_lag": lag,
              "model": forecast_errors(actual, mean, scale),
              "baselines": {k: forecast_errors(actual, f, scale) for k, f in baselines.items()}}
    if std is not None:
        lower, upper = _interval(mean, std)
        result["model"]["interval_coverage"] = float(np.mean((actual >= lower) & (actual <= upper)))
        result["model"]["interval"] = INTERVAL
    write_json(run / "test.json", result)
    first = max(test.start - 2 * H, 0)
    plot_forecast(run / "test.png", np.arange(first, len(y)), y[first:], origins, H, mean,
                  baselines["holt_winters"],
                  title=f"{name}: {H}-step forecasts from {len(origins)} test origins")
    return result


def _interval(mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = float(torch.distributions.Normal(0, 1).icdf(torch.tensor(0.5 + INTERVAL / 2)))
    return mean - z * std, mean + z * std


def evaluate(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    model, config = load_run(args.run_dir, device)
    series, prep = _checked_data(args.run_dir, config)
    return test_run(args.run_dir, model, config, prep, series.name, device,
                    getattr(args, "horizon", None))


def _origin_index(text: Optional[str], prep: Prepared) -> int:
    """--origin: a step index, or a timestamp of the series; default the end of the data."""
    n = len(prep.raw)
    if text is None:
        return n
    if prep.timestamps and text in prep.timestamps:
        return prep.timestamps.index(text)
    try:
        index = int(text)
    except ValueError:
        raise UsageError(f"--origin {text!r} is neither a step index nor a timestamp of the series"
                         + (f" ({prep.timestamps[0]} .. {prep.timestamps[-1]})" if prep.timestamps else ""))
    if not 0 <= index <= n:
        raise UsageError(f"--origin {index} is outside the series (0 .. {n})")
    return index


def forecast(args: argparse.Namespace) -> dict:
    """The next --horizon steps after --origin (default: after the data), with an interval for a
    Gaussian model; the actual values too when the origin lies inside the data."""
    device = resolve_device(args.device)
    model, config = load_run(args.run_dir, device)
    d = config["data"]
    H = args.horizon or d["horizon"]
    if H <= 0:
        raise UsageError(f"--horizon must be positive, got {H}")
    series, prep = _checked_data(args.run_dir, config)
    origin = _origin_index(args.origin, prep)
    full = extended(prep, series, d, origin + H - len(prep.raw))
    mean, std = forecast_origins(model, full, np.array([origin]), H, d, device)
    out = {"origin": origin, "horizon": H,
           "timestamps": full.timestamps[origin:origin + H] if full.timestamps else None,
           "mean": mean[0].tolist()}
    lower = upper = None
    if std is not None:
        lower, upper = (a[0] for a in _interval(mean, std))
        out.update(interval=INTERVAL, lower=lower.tolist(), upper=upper.tolist())
    actual = prep.target[origin:origin + H]
    if len(actual):
        out["actual"] = actual.tolist()
    if args.plot:
        shown = args.history or max(3 * H, 2 * (d["season"] or 0))
        first = max(0, origin - shown)
        plot_forecast(args.plot, np.arange(first, min(len(prep.raw), origin + H)),
                      prep.target[first:origin + H], np.array([origin]), H, mean, None,
                      lower=None if lower is None else lower[None], upper=None if upper is None else upper[None],
                      title=f"{series.name}: {H} steps from {_when(full, origin)}")
    return out


def _when(prep: Prepared, index: int) -> str:
    return prep.timestamps[index] if prep.timestamps and index < len(prep.timestamps) else f"step {index}"


def generate(args: argparse.Namespace) -> dict:
    """The lectures' creative RNN: a seed window (zeros, or real data from --start), then --steps
    steps of the model running on its own predictions."""
    device = resolve_device(args.device)
    model, config = load_run(args.run_dir, device)
    d = config["data"]
    if args.steps <= 0:
        raise UsageError(f"--steps must be positive, got {args.steps}")
    series, prep = _checked_data(args.run_dir, config)
    seed_len = d["window"] + d["difference"]
    start = args.start or 0
    if not 0 <= start <= len(prep.raw) - seed_len:
        raise UsageError(f"--start {start}: a seed of {seed_len} steps must fit in the series "
                         f"(0 .. {len(prep.raw) - seed_len})")
    full = extended(prep, series, d, start + seed_len + args.steps - len(prep.raw))
    raw = full.raw[start:start + seed_len + args.steps].copy()
    raw[seed_len:, 0] = np.nan                                     # never read: the model's own output
    if args.seed_with == "zeros":
        raw[:seed_len, 0] = 0.0
    seeded = replace(full, raw=raw, features=to_features(raw, d["difference"], full.scaler),
                     timestamps=full.timestamps[start:start + len(raw)] if full.timestamps else None)
    mean, _ = forecast_origins(model, seeded, np.array([seed_len]), args.steps, d, device)
    if args.plot:
        x = np.arange(start, start + len(raw))
        plot_forecast(args.plot, x[:seed_len], raw[:seed_len, 0], np.array([start + seed_len]),
                      args.steps, mean, None,
                      title=f"{series.name}: {args.steps} steps generated from a seed of "
                            f"{'zeros' if args.seed_with == 'zeros' else 'data'} ({seed_len} steps)")
    return {"seed_with": args.seed_with, "start": start, "seed": raw[:seed_len, 0].tolist(),
            "generated": mean[0].tolist()}
