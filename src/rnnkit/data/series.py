"""Time series for forecasting (`rnnkit train forecast`): bundled real series, the user's CSV, helpers.

    load_series("synthetic")     the lectures' f(t) = t sin(t) / 3 + 2 sin(5t) at t = 0, 0.1, ..., 299.9
                                 (3,000 values, no timestamps, no seasonal period); generated, not fetched
    load_series("airline")       Box & Jenkins' monthly international airline passengers (thousands),
                                 1949-01 .. 1960-12: 144 values, period 12
    load_series("co2")           Mauna Loa atmospheric CO2 (ppmv), monthly means 1958-03 .. 2001-12:
                                 526 values, period 12 (made from weekly data with gaps, see below)
    load_series("sunspots")      yearly sunspot numbers 1700 .. 2008: 309 values, period 11 (the solar cycle)
    load_series("electricity")   half-hourly electricity demand (MW) in England and Wales, Monday 2000-06-05
                                 .. Sunday 2000-08-27 (Taylor 2003): 4,032 values, period 336 = one week;
                                 the daily period is 48 (`ELECTRICITY_DAILY_PERIOD`)

    read_series_csv(path, column, time_column=None, covariates=(), fill=None, min_length=2)
    detect_period(values, max_period)      the dominant seasonal period, by autocorrelation
    calendar_features(timestamps, kind)    month of year / time of day / day of week as sin, cos pairs
    future_timestamps(timestamps, steps)   the timestamps after the last one, at the series' own step
    parse_timestamp(text)                  the timestamp grammar read_series_csv accepts

Every series is a `TimeSeries`: an (N, C) float64 array whose first column is the target (the others are
covariates), the column names, the timestamps as strings (or None) and the seasonal period (or None).

Where the bundled series come from (files inside published wheels, fetched once by
`rnnkit.data.fetch` with a pinned version and sha256, then offline; never installed, never imported):
    airline      pmdarima 2.1.1 wheel, pmdarima/datasets/airpassengers.py: the values are a list literal
                 in `load_airpassengers`, read with `ast.parse` + `ast.literal_eval` (the module is never
                 executed). Timestamps 1949-01 .. 1960-12 from the documented span (Box & Jenkins, series G).
    electricity  pmdarima 2.1.1 wheel, pmdarima/datasets/taylor.py (`load_taylor`), read the same way. The
                 source has no timestamps; they are made from the documented span (Monday 5 June 2000 to
                 Sunday 27 August 2000, 12 weeks x 336 half hours), assuming the first value is the half
                 hour starting at 00:00, so "2000-06-05 00:00" .. "2000-08-27 23:30".
    co2          statsmodels 0.15.0 wheel, statsmodels/datasets/co2/co2.csv: 2,284 weekly values (dates
                 YYYYMMDD, each the Saturday ending its week, 1958-03-29 .. 2001-12-29) of which 59 are
                 empty. Choice: the common practice of resampling to monthly means; each month is the
                 mean of its available weeks (a week counts in the month of its date), and the 5 months
                 with no weekly value at all (1958-06, 1958-10, 1964-02 .. 1964-04) are interpolated
                 linearly between the neighbouring months. That is recorded in `fill_log`. Monthly data
                 has an exact period (12), where weekly data would not (52.18 weeks a year).
    sunspots     statsmodels 0.15.0 wheel, statsmodels/datasets/sunspots/sunspots.csv ("YEAR",
                 "SUNACTIVITY"): 309 yearly values; the timestamps are the years as written.

The converted arrays are cached in `cache_dir()/series/<name>.npz` and verified against the sha256
(`arrays_sha256`) pinned below, so a change to a converter or a source is caught.

The user's file (`read_series_csv`) is a CSV or TSV with a header row (told apart by extension as in
readers.py); every problem raises `DataError` naming the file, the row (1-based, the header is row 1),
the column and the value concerned.

Shape legend: N time steps, C columns (the target first, then covariates), K calendar features.
"""
from __future__ import annotations

import ast
import csv
import io
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .errors import DataError
from .fetch import CP311_PIP_ARGS, PinnedPackage, cached_arrays, read_archive_member
from .readers import _check_width, _column, _header, _table_rows


@dataclass(frozen=True, eq=False)
class TimeSeries:
    """One series to forecast: the target (column 0) and covariates, observed at N time steps."""
    name: str
    values: np.ndarray            # (N, C) float64, no missing values; column 0 is the target
    columns: list[str]            # C names; columns[0] is the target
    timestamps: list[str] | None  # N timestamps as written in the source (or derived from a documented
                                  # start and step for bundled sets without any), or None
    period: int | None            # the dominant seasonal period in steps, None if unknown
    source: str                   # where it came from, for reports
    fill_log: list[str] = ()      # what a fill policy (or a bundled set's conversion) changed, for the run log

    def __post_init__(self):
        values = self.values
        if not (isinstance(values, np.ndarray) and values.ndim == 2 and values.dtype == np.float64):
            raise ValueError(f"TimeSeries values must be an (N, C) float64 array, not "
                             f"{getattr(values, 'dtype', type(values).__name__)} {np.shape(values)}")
        if len(self.columns) != values.shape[1]:
            raise ValueError(f"TimeSeries has {values.shape[1]} value columns but {len(self.columns)} names")
        if self.timestamps is not None and len(self.timestamps) != len(values):
            raise ValueError(f"TimeSeries has {len(values)} steps but {len(self.timestamps)} timestamps")

    def __len__(self) -> int:
        return len(self.values)

    @property
    def target(self) -> np.ndarray:
        """(N,) the target column."""
        return self.values[:, 0]

    def __repr__(self) -> str:
        columns = self.columns if len(self.columns) <= 6 else [*self.columns[:5], "..."]
        times = "None" if self.timestamps is None else (
            f"{self.timestamps[0]!r}..{self.timestamps[-1]!r}" if self.timestamps else "[]")
        filled = f", fill_log={len(self.fill_log)} lines" if self.fill_log else ""
        return (f"TimeSeries(name={self.name!r}, length={len(self.values)}, columns={columns!r}, "
                f"period={self.period}, timestamps={times}{filled})")


# --- numbers and timestamps -------------------------------------------------------------------------

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})  # compared in lower case
FILL_POLICIES = ("ffill", "interpolate", "zero", "drop")
TIMESTAMP_FORMATS = ("YYYY-MM-DD, YYYY-MM, YYYY, YYYY-MM-DD HH:MM[:SS] (or with 'T' for the space), "
                     "or a plain number")

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_GROUPED = re.compile(r"[+-]?\d{1,3}(?P<sep>[,' _\u00a0\u202f])\d{3}(?:(?P=sep)\d{3})*(?:\.\d*)?")
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+")
_SEPARATOR_NAMES = {",": "','", "'": '"\'"', " ": "a space", "_": "'_'", "\u00a0": "a no-break space",
                    "\u202f": "a narrow no-break space"}
_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})(?:-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?)?")


def _cell_number(text: str, where: str) -> float:
    """The float64 written as `text` (stripped, not a missing token); `where` names the cell in errors.

    Only plain decimal numbers are read (1, -2.5, .5, 3e-4). Thousands separators and decimal commas
    are errors that say so, never guessed: "1,234" could be 1234 or 1.234.
    """
    if _NUMBER.fullmatch(text):
        value = float(text)
        if not math.isfinite(value):
            raise DataError(f"{where}: the value {text!r} is too large for a float64")
        return value
    grouped = _GROUPED.fullmatch(text)
    if grouped:
        sep = grouped["sep"]
        hint = " (or, if ',' is a decimal comma, write a decimal point)" if sep == "," else ""
        raise DataError(f"{where}: the value {text!r} is written with thousands separators "
                        f"({_SEPARATOR_NAMES[sep]}), which are not read: write {text.replace(sep, '')!r}"
                        f"{hint}")
    if _DECIMAL_COMMA.fullmatch(text):
        raise DataError(f"{where}: the value {text!r} has a decimal comma, which is not read: "
                        f"write {text.replace(',', '.')!r}")
    if text.lower().lstrip("+-") in ("inf", "infinity"):
        raise DataError(f"{where}: the value {text!r} is not finite")
    raise DataError(f"{where}: the value {text!r} is not a number")


def parse_timestamp(text: str) -> tuple[str, float | datetime]:
    """The kind and sort key of a timestamp; `ValueError` (saying what is accepted) if it is unreadable.

    Kinds: "month" (YYYY-MM, key the 1st of the month), "date" (YYYY-MM-DD), "datetime"
    (YYYY-MM-DD HH:MM, HH:MM:SS or HH:MM:SS.ffffff, with a space or 'T'; no time zones), and "number"
    (a plain number, which includes a year YYYY). The key of a calendar kind is a `datetime`, of a number
    a float.
    """
    text = text.strip()
    match = _TIMESTAMP.fullmatch(text)
    if match:
        year, month, day, hour, minute, second, fraction = match.groups()
        kind = "month" if day is None else "date" if hour is None else "datetime"
        try:
            key = datetime(int(year), int(month), int(day or 1), int(hour or 0), int(minute or 0),
                           int(second or 0), int((fraction or "0").ljust(6, "0")))
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a valid {kind} ({exc})") from None
        return kind, key
    if _NUMBER.fullmatch(text) and math.isfinite(float(text)):
        return "number", float(text)
    raise ValueError(f"cannot read the timestamp {text!r}; accepted: {TIMESTAMP_FORMATS}")


def _time_group(kind: str) -> str:
    return "a number" if kind == "number" else "a date"


def _rows_text(rows: Sequence[int], limit: int = 10) -> str:
    """"rows 5, 6" (the first `limit`, then a count)."""
    shown = ", ".join(str(r) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _shown(token: str) -> str:
    return "empty" if token == "" else repr(token)


# --- the user's CSV ---------------------------------------------------------------------------------

def read_series_csv(path: str | os.PathLike, column: str, time_column: str | None = None,
                    covariates: Sequence[str] = (), fill: str | None = None, min_length: int = 2,
                    encoding: str = "utf-8") -> TimeSeries:
    """A series from a CSV/TSV with a header row: `column` is the target, `covariates` follow it.

    Rows are time steps in file order. With `time_column` its timestamps (see `parse_timestamp`) are
    kept as written, must all be of one kind (numbers or dates), strictly increasing, and never empty.
    Missing values are empty cells and NA, N/A, NaN, null, None, ? (any case). Without `fill` they are
    an error that counts them per column; `fill` handles them, and `fill_log` says what it changed:
        ffill        carry the last value forward (a missing first value is an error)
        interpolate  linear between the nearest values before and after, by row position (so it assumes
                     evenly spaced rows); a missing first or last value is an error
        zero         put 0
        drop         drop the rows (their timestamps go with them)
    `min_length` (the caller's window length) is the fewest rows the series may have after that.
    """
    path = Path(path)
    if fill is not None and fill not in FILL_POLICIES:
        raise ValueError(f"fill must be one of {', '.join(FILL_POLICIES)} or None, not {fill!r}")
    if min_length < 1:
        raise ValueError(f"min_length must be >= 1, not {min_length}")
    rows = _table_rows(path, encoding)
    header = _header(path, rows)
    if all(_NUMBER.fullmatch(h) or _TIMESTAMP.fullmatch(h) for h in header):
        raise DataError(f"{path} row 1: {', '.join(repr(h) for h in header)} looks like data, not a header; "
                        f"the file needs a header row naming its columns")
    names = [column, *covariates]
    for i, name in enumerate(names):
        if name in names[:i] or name == time_column:
            raise DataError(f"{path}: column {name!r} is named twice (target, covariates, time column)")
    value_is = [_column(header, name, path, "target" if i == 0 else "covariate")
                for i, name in enumerate(names)]
    time_i = None if time_column is None else _column(header, time_column, path, "time")

    table: list[list[float]] = []                                   # (N, C), NaN where missing
    file_rows: list[int] = []
    times: list[str] = []
    missing: dict[int, list[tuple[int, str]]] = {}                  # column -> [(file row, token)]
    first_time = last_time = None                                   # (row, text, kind, key)
    for number, row in rows:
        _check_width(row, header, number, path)
        if time_i is not None:
            where = f"{path} row {number}, column {header[time_i]!r}"
            text = row[time_i].strip()
            if not text:
                raise DataError(f"{where}: the timestamp is empty (missing timestamps cannot be filled)")
            try:
                kind, key = parse_timestamp(text)
            except ValueError as exc:
                raise DataError(f"{where}: {exc}") from None
            if first_time is None:
                first_time = (number, text, kind, key)
            elif _time_group(kind) != _time_group(first_time[2]):
                raise DataError(f"{where}: {text!r} is {_time_group(kind)} but row {first_time[0]} has "
                                f"{first_time[1]!r}, {_time_group(first_time[2])}; a time column holds "
                                f"one kind of timestamp")
            if last_time is not None and key == last_time[3]:
                raise DataError(f"{where}: duplicated timestamp: rows {last_time[0]} and {number} are both "
                                f"at {last_time[1]!r}" + ("" if text == last_time[1] else f" ({text!r})"))
            if last_time is not None and key < last_time[3]:
                raise DataError(f"{where}: the timestamp {text!r} comes before {last_time[1]!r} in row "
                                f"{last_time[0]}; the rows must be sorted by time, oldest first")
            last_time = (number, text, kind, key)
            times.append(text)
        values = []
        for c, index in enumerate(value_is):
            text = row[index].strip()
            if text.lower() in MISSING_TOKENS:
                missing.setdefault(c, []).append((number, text))
                values.append(math.nan)
            else:
                values.append(_cell_number(text, f"{path} row {number}, column {header[index]!r}"))
        table.append(values)
        file_rows.append(number)
    if not table:
        raise DataError(f"{path}: a header but no data rows")

    data = np.array(table, dtype=np.float64)                        # (N, C)
    log: list[str] = []
    dropped = 0
    if missing:
        if fill is None:
            total = sum(len(v) for v in missing.values())
            parts = []
            for c in sorted(missing):
                (row0, token0), count = missing[c][0], len(missing[c])
                first = f"first in row {row0}" if count > 1 else f"row {row0}"
                parts.append(f"{names[c]!r} {count} ({first}: {_shown(token0)})")
            raise DataError(f"{path}: {_plural(total, 'missing value')}: {', '.join(parts)}; "
                            f"use --fill {'|'.join(FILL_POLICIES)}")
        data, keep, log = _fill(data, missing, names, file_rows, fill, path)
        dropped = int((~keep).sum())
        if dropped and times:
            times = [t for t, k in zip(times, keep) if k]
    if len(data) < min_length:
        after = f" (after dropping {_plural(dropped, 'row')} with missing values)" if dropped else ""
        raise DataError(f"{path}: the series has {_plural(len(data), 'row')} of data{after}, but at least "
                        f"{min_length} are needed (min_length, e.g. the window length)")
    return TimeSeries(path.name, data, list(names), times if time_i is not None else None, None,
                      str(path), log)


def _fill(data: np.ndarray, missing: dict[int, list[tuple[int, str]]], names: list[str],
          file_rows: list[int], policy: str, path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(filled (N', C) values, (N,) rows kept, log lines) after applying `policy` to the NaN cells."""
    data = data.copy()
    keep = np.ones(len(data), dtype=bool)
    log: list[str] = []
    position = {r: i for i, r in enumerate(file_rows)}              # file row -> position in the series
    for c in sorted(missing):
        rows = [r for r, _ in missing[c]]
        at = np.array([position[r] for r in rows])                  # positions of the gaps, ascending
        col = data[:, c]                                            # (N,) a view
        where = f"{path} row {rows[0]}, column {names[c]!r}"
        if policy == "ffill":
            if at[0] == 0:
                raise DataError(f"{where}: the column starts with a missing value ({_shown(missing[c][0][1])}); "
                                f"--fill ffill has no earlier value to carry into it (use zero or drop, "
                                f"or remove the leading rows)")
            for i in at:
                col[i] = col[i - 1]
        elif policy == "interpolate":
            last_row, last_token = missing[c][-1]
            if at[0] == 0:
                raise DataError(f"{where}: the column starts with a missing value ({_shown(missing[c][0][1])}); "
                                f"--fill interpolate needs a value before and after each gap (use zero or "
                                f"drop, or remove the leading rows)")
            if at[-1] == len(col) - 1:
                raise DataError(f"{path} row {last_row}, column {names[c]!r}: the column ends with a missing "
                                f"value ({_shown(last_token)}); --fill interpolate needs a value before and "
                                f"after each gap (use ffill, zero or drop, or remove the trailing rows)")
            valid = np.flatnonzero(~np.isnan(col))
            col[at] = np.interp(at, valid, col[valid])
        elif policy == "zero":
            col[at] = 0.0
        else:  # drop
            keep[at] = False
        if policy == "drop":
            whose = "their rows" if len(rows) > 1 else "its row"
            log.append(f"{names[c]}: {_plural(len(rows), 'missing value')}, {whose} dropped ({_rows_text(rows)})")
        else:
            log.append(f"{names[c]}: {_plural(len(rows), 'value')} filled by {policy} ({_rows_text(rows)})")
    if policy == "drop":
        log.append(f"drop: {_plural(int((~keep).sum()), 'row')} dropped, {int(keep.sum())} left")
        data = data[keep]
    return data, keep, log


# --- seasonal period and calendar features ----------------------------------------------------------

def autocorrelation(values: np.ndarray, max_lag: int) -> np.ndarray:
    """(max_lag + 1,) sample autocorrelation r(k) = sum_t x_t x_{t+k} / sum_t x_t^2 of the mean-removed
    1-D series (the usual biased estimate, as in statsmodels' `acf`; r(0) = 1). All zeros for a constant
    series."""
    x = np.asarray(values, dtype=np.float64)
    x = x - x.mean()
    n = len(x)
    max_lag = min(max_lag, n - 1)
    size = 1 << (2 * n - 1).bit_length()                            # FFT length >= 2n - 1: no wrap-around
    spectrum = np.fft.rfft(x, size)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), size)[:max_lag + 1]
    if not float(x @ x) > 0:                                        # constant
        return np.zeros(max_lag + 1)
    return acov / acov[0]


def detect_period(values, max_period: int, threshold: float = 0.3) -> int | None:
    """The dominant seasonal period in steps, or None.

    The series is linearly detrended (least squares), then the lag k in [2, max_period] is chosen whose
    autocorrelation r(k) is highest among the local maxima (r(k) > r(k-1), r(k) >= r(k+1)) and above
    `threshold`. The biased estimate decays with the lag, so a multiple of the period (2P, 3P, ...) scores
    a little lower than P itself, while a longer period that fits better than its divisors (a week of
    half hours, 336, when weekends differ, over a day, 48) still wins. None when no local maximum exceeds
    the threshold (white noise) or the series is too short.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"detect_period needs a 1-D series, not shape {x.shape}")
    if max_period < 2:
        raise ValueError(f"max_period must be >= 2, not {max_period}")
    if not np.isfinite(x).all():
        raise ValueError("detect_period needs finite values (fill the missing ones first)")
    n = len(x)
    if n < 4:
        return None
    t = np.arange(n, dtype=np.float64)
    slope, intercept = np.polyfit(t, x, 1)
    residual = x - (slope * t + intercept)                          # (N,) detrended
    centred = x - x.mean()
    if not float(residual @ residual) > 1e-20 * float(centred @ centred):
        return None                                                 # constant, or a straight line
    r = autocorrelation(residual, max_period + 1)                   # (min(max_period + 1, n - 1) + 1,)
    best = None
    for k in range(2, min(max_period, len(r) - 2) + 1):
        if r[k] > r[k - 1] and r[k] >= r[k + 1] and r[k] > threshold and (best is None or r[k] > r[best]):
            best = k
    return best


CALENDAR_KINDS = ("monthly", "daily", "hourly", "half-hourly")


def calendar_features(timestamps: Sequence[str], kind: str) -> tuple[np.ndarray, list[str]]:
    """Known-in-advance covariates from timestamps: (N, K) float64 features and their K names.

    Each cyclic quantity q with cycle length L is given as sin(2 pi q / L), cos(2 pi q / L), so the end of
    a cycle sits next to its start:
        monthly               month of year, q = month - 1, L = 12:         month_sin, month_cos
        daily                 day of week, q = 0 (Monday) .. 6, L = 7:      weekday_sin, weekday_cos
        hourly, half-hourly   time of day, q = minutes since midnight,
                              L = 1440, then day of week:                   day_sin, day_cos,
                                                                            weekday_sin, weekday_cos
    Timestamps are read by `parse_timestamp`; "monthly" needs at least a month, "daily" a date and the
    intraday kinds a time of day. See `calendar_kind` to guess the kind.
    """
    if kind not in CALENDAR_KINDS:
        raise ValueError(f"kind must be one of {', '.join(CALENDAR_KINDS)}, not {kind!r}")
    need = {"monthly": ("month", "date", "datetime"), "daily": ("date", "datetime")}.get(kind, ("datetime",))
    moments = []
    for i, text in enumerate(timestamps):
        try:
            got, key = parse_timestamp(text)
        except ValueError as exc:
            raise DataError(f"timestamp {i}: {exc}") from None
        if got not in need:
            raise DataError(f"timestamp {i} ({text!r}) is {'a ' + got}; {kind} calendar features need "
                            f"{' or '.join(need)} timestamps")
        moments.append(key)
    columns: list[np.ndarray] = []
    names: list[str] = []

    def cyclic(name: str, q: np.ndarray, length: float) -> None:
        angle = 2 * np.pi * q / length
        columns.extend([np.sin(angle), np.cos(angle)])
        names.extend([f"{name}_sin", f"{name}_cos"])

    if kind == "monthly":
        cyclic("month", np.array([m.month - 1 for m in moments], dtype=np.float64), 12)
    else:
        if kind != "daily":
            cyclic("day", np.array([m.hour * 60 + m.minute + m.second / 60 for m in moments],
                                   dtype=np.float64), 1440)
        cyclic("weekday", np.array([m.weekday() for m in moments], dtype=np.float64), 7)
    return np.stack(columns, axis=1).reshape(len(moments), len(names)), names  # (N, K)


def calendar_kind(timestamps: Sequence[str]) -> str | None:
    """The `calendar_features` kind that fits the timestamps, or None (numbers, years, other steps).

    YYYY-MM timestamps are "monthly"; dates "daily"; datetimes "half-hourly" or "hourly" by their most
    common step (30 or 60 minutes).
    """
    try:
        parsed = [parse_timestamp(t) for t in timestamps]
    except ValueError:
        return None
    kinds = {kind for kind, _ in parsed}
    if kinds == {"month"}:
        return "monthly"
    if kinds == {"date"}:
        return "daily"
    if kinds != {"datetime"} or len(parsed) < 2:
        return None
    steps, counts = np.unique([(b[1] - a[1]).total_seconds() for a, b in zip(parsed, parsed[1:])],
                              return_counts=True)
    return {1800.0: "half-hourly", 3600.0: "hourly"}.get(float(steps[np.argmax(counts)]))


def future_timestamps(timestamps: Sequence[str], steps: int) -> list[str]:
    """The `steps` timestamps after the last one, at the series' own step, so calendar features can be
    made for a forecast beyond the data: months step by a month ("YYYY-MM" or, for dates, the same day),
    dates and datetimes by their most common difference. Numbers step by their most common difference.
    `DataError` when the step cannot be told (fewer than two timestamps)."""
    if len(timestamps) < 2:
        raise DataError("at least two timestamps are needed to continue them")
    parsed = [parse_timestamp(t) for t in timestamps[-50:]]
    kind, last = parsed[-1]
    if kind == "month":
        months = [last.year * 12 + last.month - 1 + k for k in range(1, steps + 1)]
        return [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in months]
    deltas = [b[1] - a[1] for a, b in zip(parsed, parsed[1:])]
    values, counts = np.unique(np.array(deltas, dtype=object if kind != "number" else np.float64),
                               return_counts=True)
    step = values[np.argmax(counts)]
    if kind == "number":
        digits = max((len(t.split(".")[1]) if "." in t else 0) for t in timestamps[-50:])
        return [f"{last + k * step:.{digits}f}" for k in range(1, steps + 1)]
    if kind == "date" and step == timedelta(days=31):        # monthly on a day: keep the day
        return [_add_months(last, k).strftime("%Y-%m-%d") for k in range(1, steps + 1)]
    text = "%Y-%m-%d" if kind == "date" else "%Y-%m-%d %H:%M" if last.second == 0 else "%Y-%m-%d %H:%M:%S"
    return [(last + k * step).strftime(text) for k in range(1, steps + 1)]


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1, day=min(moment.day, 28))


# --- bundled series: sources ------------------------------------------------------------------------

# statsmodels 0.15 ships manylinux_2_27/2_28 wheels only (0.14.6 was the last with manylinux2014); both
# hold byte-identical co2.csv and sunspots.csv. The platform options make pip pick this one file on every
# machine; it is read, never installed.
STATSMODELS = PinnedPackage(
    "statsmodels", "0.15.0", "statsmodels-0.15.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
    "b67886b66d9c7ca118526accedb5c6de7ffd74c015dc0492ea0b1690192b65da",
    pip_args=("--platform", "manylinux_2_28_x86_64", *CP311_PIP_ARGS),
)
CO2_MEMBER = "statsmodels/datasets/co2/co2.csv"
SUNSPOTS_MEMBER = "statsmodels/datasets/sunspots/sunspots.csv"

PMDARIMA = PinnedPackage(
    "pmdarima", "2.1.1",
    "pmdarima-2.1.1-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
    "e8148ff1f4cdb9a07164247eb3e6dddc1baef6e226d38528bd3fdf5d160f8dee",
    pip_args=("--platform", "manylinux2014_x86_64", *CP311_PIP_ARGS),
)
AIRLINE_MEMBER = "pmdarima/datasets/airpassengers.py"
ELECTRICITY_MEMBER = "pmdarima/datasets/taylor.py"

# sha256 (`arrays_sha256`) of each set's converted arrays. Changing a converter changes these: update
# them only on purpose, since that changes the data set and every number reported on it.
CONVERTED_SHA256 = {
    "airline": "fa73d183e19e7ab959d88632be7bd916ee54a95cef7f3cadfc49eee14d60d4ac",
    "co2": "a203c5c9184c763f8c27c4137e779caaf1079da5a8f9cf02cb9547e66e93ea7a",
    "sunspots": "3307b32e3dbf083e32abd9f2770a1f1f0cd3f857a60692cd9f3842951014b15a",
    "electricity": "6d52e4ff98f5b0e00ff32f84299bdac8d880389ebaf980a001b76aebcb60a625",
}

SYNTHETIC_LENGTH = 3_000
ELECTRICITY_DAILY_PERIOD = 48
ELECTRICITY_START = datetime(2000, 6, 5)                            # Monday; first half hour from 00:00


def synthetic_values(n: int = SYNTHETIC_LENGTH) -> np.ndarray:
    """(n,) f(t) = t sin(t) / 3 + 2 sin(5t) at t = 0, 0.1, 0.2, ... (t = k / 10, the decimals exactly)."""
    t = np.arange(n) / 10.0
    return t * np.sin(t) / 3 + 2 * np.sin(5 * t)


# --- bundled series: converters (each takes the fetched archive, testable on a fake one) --------------

def literal_array(source: str, function: str, what: str) -> list[float]:
    """The numbers in the one `np.array([...])` list literal inside `function` of the Python `source`.

    The source is parsed (`ast.parse`), never executed or imported; the list is read by
    `ast.literal_eval`, which builds only literals. `what` names the file in errors.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise DataError(f"{what}: not parseable as Python ({exc.msg}, line {exc.lineno})") from None
    functions = [node for node in ast.walk(tree)
                 if isinstance(node, ast.FunctionDef) and node.name == function]
    if len(functions) != 1:
        raise DataError(f"{what}: expected one function {function}(), found {len(functions)}")
    lists = [node.args[0] for node in ast.walk(functions[0])
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr == "array" and node.args and isinstance(node.args[0], ast.List)]
    if len(lists) != 1:
        raise DataError(f"{what}: expected one np.array([...]) literal in {function}(), found {len(lists)}")
    try:
        values = ast.literal_eval(lists[0])
    except ValueError as exc:
        raise DataError(f"{what}: the array in {function}() is not a plain literal ({exc})") from None
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, float))]
    if not values or bad:
        raise DataError(f"{what}: the array in {function}() should hold numbers, "
                        f"{'is empty' if not values else f'holds {bad[0]!r}'}")
    return values


def _single_column(values: Sequence[float], column: str, timestamps: Sequence[str],
                   log: Sequence[str] = ()) -> dict[str, np.ndarray]:
    arrays = {"values": np.array(values, dtype=np.float64).reshape(-1, 1),   # (N, 1)
              "columns": np.array([column]), "timestamps": np.array(list(timestamps))}
    if log:
        arrays["fill_log"] = np.array(list(log))
    return arrays


def _month_labels(year: int, month: int, n: int) -> list[str]:
    """n "YYYY-MM" labels from year-month on."""
    first = year * 12 + month - 1
    return [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in range(first, first + n)]


def build_airline(wheel) -> dict[str, np.ndarray]:
    """Monthly passengers (thousands) from `load_airpassengers` in pmdarima's airpassengers.py, from 1949-01."""
    source = read_archive_member(wheel, AIRLINE_MEMBER).decode("utf-8")
    values = literal_array(source, "load_airpassengers", AIRLINE_MEMBER)
    return _single_column(values, "passengers", _month_labels(1949, 1, len(values)))


def build_electricity(wheel) -> dict[str, np.ndarray]:
    """Half-hourly demand (MW) from `load_taylor` in pmdarima's taylor.py, timestamps from 2000-06-05 00:00."""
    source = read_archive_member(wheel, ELECTRICITY_MEMBER).decode("utf-8")
    values = literal_array(source, "load_taylor", ELECTRICITY_MEMBER)
    times = [(ELECTRICITY_START + timedelta(minutes=30 * k)).strftime("%Y-%m-%d %H:%M")
             for k in range(len(values))]
    return _single_column(values, "demand", times)


def _member_table(wheel, member: str, header: list[str]) -> list[tuple[int, list[str]]]:
    """(line number, fields) of a CSV member whose first line must be `header`."""
    text = read_archive_member(wheel, member).decode("utf-8")
    lines = [(n, row) for n, row in enumerate(csv.reader(io.StringIO(text)), 1) if row]
    if not lines or [h.strip() for h in lines[0][1]] != header:
        got = lines[0][1] if lines else "nothing"
        raise DataError(f"{member} line 1: expected the header {header}, got {got}")
    for n, row in lines[1:]:
        if len(row) != len(header):
            raise DataError(f"{member} line {n}: {len(row)} fields, expected {len(header)}")
    return lines[1:]


def build_sunspots(wheel) -> dict[str, np.ndarray]:
    """Yearly sunspot numbers from statsmodels' sunspots.csv; the years (consecutive) are the timestamps."""
    rows = _member_table(wheel, SUNSPOTS_MEMBER, ["YEAR", "SUNACTIVITY"])
    years, values = [], []
    for n, (year, value) in rows:
        where = f"{SUNSPOTS_MEMBER} line {n}"
        year = year.strip()
        if years and (not year.isdigit() or int(year) != int(years[-1]) + 1):
            raise DataError(f"{where}: the year {year!r} does not follow {years[-1]!r}")
        years.append(year)
        values.append(_cell_number(value.strip(), f"{where}, column 'SUNACTIVITY'"))
    return _single_column(values, "sunspots", years)


def build_co2(wheel) -> dict[str, np.ndarray]:
    """Monthly mean CO2 (ppmv) from statsmodels' weekly co2.csv; see the module docstring for the choice.

    A month's value is the mean (`math.fsum`, so the same on every machine) of its weeks that have one;
    a month with none is interpolated linearly between the nearest months that have one.
    """
    rows = _member_table(wheel, CO2_MEMBER, ["date", "co2"])
    months: dict[tuple[int, int], list[float]] = {}
    previous = None
    empty = 0
    for n, (date, value) in rows:
        where = f"{CO2_MEMBER} line {n}"
        try:
            day = datetime.strptime(date.strip(), "%Y%m%d")
        except ValueError:
            raise DataError(f"{where}: the date {date!r} is not YYYYMMDD") from None
        if previous is not None and day - previous != timedelta(days=7):
            raise DataError(f"{where}: {date!r} is not one week after the previous date")
        previous = day
        weeks = months.setdefault((day.year, day.month), [])
        if value.strip() == "":
            empty += 1
        else:
            weeks.append(_cell_number(value.strip(), f"{where}, column 'co2'"))
    labels = [f"{y:04d}-{m:02d}" for y, m in months]
    means = [math.fsum(v) / len(v) if v else math.nan for v in months.values()]
    gaps = [i for i, v in enumerate(means) if math.isnan(v)]
    for i in gaps:
        before = max(j for j in range(i) if not math.isnan(means[j])) if i else None
        after = next((j for j in range(i + 1, len(means)) if not math.isnan(means[j])), None)
        if before is None or after is None:
            raise DataError(f"{CO2_MEMBER}: month {labels[i]} has no weekly value and no month with one "
                            f"on {'both sides' if before is None and after is None else 'one side'}")
        means[i] = means[before] + (means[after] - means[before]) * (i - before) / (after - before)
    log = [f"co2: {empty} of {len(rows):,} weekly values are missing in {CO2_MEMBER}; each month is the mean "
           f"of its available weeks (a week counts in the month of its date)"]
    if gaps:
        log.append(f"co2: {_plural(len(gaps), 'month')} without any weekly value interpolated linearly "
                   f"between the neighbouring months ({', '.join(labels[i] for i in gaps)})")
    return _single_column(means, "co2", labels, log)


# --- the registry -----------------------------------------------------------------------------------

PERIODS = {"synthetic": None, "airline": 12, "co2": 12, "sunspots": 11, "electricity": 336}
_BUILDERS: dict[str, tuple[Callable, PinnedPackage, str]] = {
    "airline": (build_airline, PMDARIMA, AIRLINE_MEMBER),
    "co2": (build_co2, STATSMODELS, CO2_MEMBER),
    "sunspots": (build_sunspots, STATSMODELS, SUNSPOTS_MEMBER),
    "electricity": (build_electricity, PMDARIMA, ELECTRICITY_MEMBER),
}
SERIES_SETS = ("synthetic", "airline", "co2", "sunspots", "electricity")


def _load_synthetic() -> TimeSeries:
    values = synthetic_values()[:, None]                            # (N, 1)
    return TimeSeries("synthetic", values, ["f"], None, None,
                      f"generated: f(t) = t sin(t) / 3 + 2 sin(5t), t = 0, 0.1, ..., "
                      f"{(SYNTHETIC_LENGTH - 1) / 10:g}")


def _load_bundled(name: str) -> TimeSeries:
    build, package, member = _BUILDERS[name]
    arrays = cached_arrays("series", name, CONVERTED_SHA256[name], lambda: build(package.fetch()))
    log = arrays["fill_log"].tolist() if "fill_log" in arrays else []
    return TimeSeries(name, arrays["values"], arrays["columns"].tolist(), arrays["timestamps"].tolist(),
                      PERIODS[name], f"{member} in {package.describe()}", log)


def load_series(name: str) -> TimeSeries:
    """A bundled series by name; fetched and converted on first use, from the cache afterwards."""
    if name == "synthetic":
        return _load_synthetic()
    if name not in _BUILDERS:
        raise ValueError(f"unknown series {name!r}; known: {', '.join(SERIES_SETS)}")
    return _load_bundled(name)
