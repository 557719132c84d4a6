"""``rnnkit train forecast`` / ``forecast`` / ``generate`` / ``eval`` end to end on small series the
tests write, and the scores and classical forecasters eval compares with."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.cli import main
from rnnkit.models.classical import holt_winters, naive, seasonal_naive
from rnnkit.tasks.forecast import (ForecastTask, forecast_errors, prepare, seasonal_naive_scale)
from rnnkit.data.series import read_series_csv
from rnnkit.models.forecaster import ForecasterConfig

PERIOD = 24


def sine_rows(n: int, start_hour: int = 0) -> list[str]:
    """Hourly timestamps and a noiseless daily sine around a level of 100."""
    rows = []
    for i in range(n):
        day, hour = divmod(start_hour + i, 24)
        value = 100 + 10 * math.sin(2 * math.pi * i / PERIOD)
        rows.append(f"2021-03-{1 + day:02d} {hour:02d}:00,{value:.6f},{i % 7}")
    return rows


@pytest.fixture(scope="module")
def sine_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "load.csv"
    path.write_text("\n".join(["time,load,other", *sine_rows(600)]) + "\n", encoding="utf-8")
    return path


SMALL = ["--window", "24", "--horizon", "12", "--hidden", "16", "--batch-size", "32", "--lr", "1e-2",
         "--log-every", "20", "--precision", "fp32"]


@pytest.fixture(scope="module")
def sine_run(sine_csv, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "sine"
    assert main(["train", "forecast", "--csv", str(sine_csv), "--column", "load", "--time-column",
                 "time", *SMALL, "--epochs", "12", "--out", str(run)]) == 0
    return run




# ---- scores and the classical forecasters -------------------------------------------------------

def test_forecast_errors_by_hand():
    actual = np.array([[1.0, 2.0], [0.0, 4.0]])
    predicted = np.array([[2.0, 2.0], [0.0, 1.0]])
    got = forecast_errors(actual, predicted, scale=2.0)
    assert got["mae"] == pytest.approx(1.0)
    assert got["rmse"] == pytest.approx(math.sqrt(10 / 4))
    assert got["mase"] == pytest.approx(0.5)
    # sMAPE terms 2|e| / (|a| + |f|): 2/3, 0, 0 (0/0 counts as a perfect forecast), 6/5
    assert got["smape"] == pytest.approx(100 * (2 / 3 + 0 + 0 + 6 / 5) / 4)


def test_mase_scale_is_the_in_sample_seasonal_naive_error():
    y = np.array([1.0, 5.0, 2.0, 7.0, 4.0, 6.0])
    assert seasonal_naive_scale(y, 2) == (pytest.approx(np.mean([1, 2, 2, 1])), 2)
    assert seasonal_naive_scale(y, None) == (pytest.approx(np.mean([4, 3, 5, 3, 2])), 1)
    periodic = np.array([1.0, 3.0, 1.0, 3.0, 1.0, 3.0])              # the seasonal naive is exact
    assert seasonal_naive_scale(periodic, 2) == (2.0, 1)


def test_naive_and_seasonal_naive_repeat_what_they_should():
    history = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_array_equal(naive(history, 3), [5.0, 5.0, 5.0])
    np.testing.assert_array_equal(seasonal_naive(history, 5, 2), [4.0, 5.0, 4.0, 5.0, 4.0])
    np.testing.assert_array_equal(seasonal_naive(history, 2, None), [5.0, 5.0])
    with pytest.raises(ValueError, match="full season"):
        seasonal_naive(history, 2, 7)


def test_holt_winters_continues_a_level_and_season_it_was_fitted_on():
    season = np.array([3.0, -1.0, 0.5, -2.5])
    t = np.arange(48)
    history = 20 + season[t % 4]
    forecast = holt_winters(history, 6, 4)
    np.testing.assert_allclose(forecast, 20 + season[np.arange(48, 54) % 4], atol=0.05)
    trend = holt_winters(2.0 * np.arange(40) + 1, 3, None)          # no season: a damped trend
    assert np.all(np.diff(trend) > 1.5) and trend[0] == pytest.approx(81, abs=0.5)


# ---- the task's data handling ------------------------------------------------------------------

def test_scaler_and_training_windows_never_see_validation_or_test_values(sine_csv):
    series = read_series_csv(sine_csv, "load", time_column="time")
    d = {"calendar": "hourly", "valid_fraction": 0.1, "test_fraction": 0.2, "difference": 24,
         "window": 24, "horizon": 12, "covariates": []}
    prep = prepare(series, d)
    changed = series.values.copy()
    changed[prep.ranges["valid"].start:] *= 50                     # wreck everything after training
    other = prepare(type(series)(series.name, changed, series.columns, series.timestamps, None,
                                 series.source), d)
    np.testing.assert_array_equal(prep.scaler.mean, other.scaler.mean)
    np.testing.assert_array_equal(prep.scaler.std, other.scaler.std)
    task = ForecastTask(prep, d, ForecasterConfig(input_size=prep.raw.shape[1], mode="seq2vec",
                                                  horizon=5), 8, 0, torch.device("cpu"))
    assert task.starts.min() == 24                                  # a season back is needed
    assert task.starts.max() + 24 + 5 == prep.ranges["train"].stop  # the last target ends training
    torch.manual_seed(0)
    # seq2seq windows: each step's target is the next step's input
    task = ForecastTask(prep, d, ForecasterConfig(input_size=prep.raw.shape[1]), 8, 0,
                        torch.device("cpu"))

    class Spy(torch.nn.Module):
        def forward(self, x):
            self.x = x
            return x[..., 0] * 0, None, None

        def loss(self, mean, std, target):
            self.target = target
            return mean.sum()
    spy = Spy()
    task.train_step(spy)
    torch.testing.assert_close(spy.target[:, :-1], spy.x[:, 1:, 0])


# ---- end to end --------------------------------------------------------------------------------

def test_train_writes_a_run_that_beats_the_naive_forecast_on_a_sine(sine_run):
    for name in ("config.json", "metrics.jsonl", "summary.json", "loss.png", "best.safetensors",
                 "last.safetensors", "test.json", "test.png"):
        assert (sine_run / name).is_file(), name
    config = json.loads((sine_run / "config.json").read_text())
    assert config["inputs"] == ["load", "day_sin", "day_cos", "weekday_sin", "weekday_cos"]
    assert config["data"]["season"] == PERIOD                        # detected
    test = json.loads((sine_run / "test.json").read_text())
    assert test["horizon"] == 12 and test["origins"] == 10 and test["origin_step"] == 12  # 120 / 12
    assert test["model"]["mae"] < 0.3, test["model"]                 # amplitude 10: within 3 %
    assert test["model"]["mase"] < 0.2 * test["baselines"]["naive"]["mase"]


def test_eval_json_has_the_documented_shape(sine_run, capsys):
    assert main(["eval", str(sine_run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["baselines"]) == {"naive", "seasonal_naive", "holt_winters"}
    for scores in [result["model"], *result["baselines"].values()]:
        assert {"mae", "rmse", "smape", "mase"} <= set(scores)
        assert scores["mase"] == pytest.approx(scores["mae"] / result["mase_scale"])
    assert result["horizon"] == 12 and result["origins"] == 10
    assert result["baselines"]["seasonal_naive"]["mae"] < 1e-6      # a noiseless period-24 sine
    assert main(["eval", str(sine_run), "--json", "--horizon", "6"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["horizon"], again["origins"]) == (6, 20)


def test_forecast_past_the_end_continues_the_timestamps_and_the_sine(sine_run, tmp_path, capsys):
    png = tmp_path / "f.png"
    assert main(["forecast", str(sine_run), "--horizon", "6", "--json", "--plot", str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["timestamps"] == [f"2021-03-26 {h:02d}:00" for h in range(6)]
    assert "actual" not in out and png.stat().st_size > 0
    truth = [100 + 10 * math.sin(2 * math.pi * i / PERIOD) for i in range(600, 606)]
    np.testing.assert_allclose(out["mean"], truth, atol=1.0)


def test_forecast_from_an_origin_inside_the_data_shows_the_actual_values(sine_run, capsys, fails):
    assert main(["forecast", str(sine_run), "--horizon", "3", "--origin", "2021-03-20 05:00"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["2021-03-20 05:00", "2021-03-20 06:00",
                                                       "2021-03-20 07:00"]
    assert all("actual" in line for line in lines)
    fails(["forecast", str(sine_run), "--origin", "1999-01-01"], capsys, "neither a step index")
    fails(["forecast", str(sine_run), "--origin", "9999"], capsys, "outside the series")


def test_generate_runs_on_its_own_predictions(sine_run, tmp_path, capsys):
    png = tmp_path / "g.png"
    assert main(["generate", str(sine_run), "--steps", "48", "--seed-with", "data", "--start", "100",
                 "--json", "--plot", str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["seed"]) == 24 and len(out["generated"]) == 48 and png.stat().st_size > 0
    truth = [100 + 10 * math.sin(2 * math.pi * i / PERIOD) for i in range(124, 172)]
    assert np.mean(np.abs(np.array(out["generated"]) - truth)) < 2.0   # two cycles, still a sine
    assert main(["generate", str(sine_run), "--steps", "5", "--seed-with", "zeros", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["seed"] == [0.0] * 24 and all(math.isfinite(v) for v in out["generated"])


def test_resume_after_a_crash_continues_the_same_curve(sine_csv, tmp_path, monkeypatch):
    common = ["train", "forecast", "--csv", str(sine_csv), "--column", "load", *SMALL,
              "--mode", "seq2vec", "--likelihood", "gaussian", "--eval-every", "10", "--epochs", "3"]
    full, crashed = tmp_path / "full", tmp_path / "crashed"
    assert main([*common, "--out", str(full)]) == 0
    real_step, calls = ForecastTask.train_step, {"n": 0}

    def crash_at_step_25(self, model):
        calls["n"] += 1
        if calls["n"] == 25:
            raise KeyboardInterrupt
        return real_step(self, model)

    monkeypatch.setattr(ForecastTask, "train_step", crash_at_step_25)
    assert main([*common, "--out", str(crashed)]) == 130
    monkeypatch.setattr(ForecastTask, "train_step", real_step)
    assert main(["train", "forecast", "--resume", str(crashed)]) == 0
    rows = lambda run: [{k: v for k, v in json.loads(line).items()
                         if k not in ("seconds", "windows_per_s")}
                        for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows(crashed) == rows(full)
    assert (crashed / "test.json").read_text() == (full / "test.json").read_text()
    test = json.loads((full / "test.json").read_text())
    assert 0.3 < test["model"]["interval_coverage"] <= 1.0 and test["model"]["interval"] == 0.8


# ---- bad input: a clear one-line error, and no run directory -----------------------------------------

def test_missing_values_are_counted_and_nothing_is_written(tmp_path, capsys, fails):
    rows = sine_rows(200)
    rows[50] = rows[50].split(",")[0] + ",,1"
    rows[70] = rows[70].split(",")[0] + ",NA,1"
    path = tmp_path / "gaps.csv"
    path.write_text("\n".join(["time,load,other", *rows]) + "\n")
    out = tmp_path / "run"
    err = fails(["train", "forecast", "--csv", str(path), "--column", "load", "--epochs", "1",
                 "--out", str(out)], capsys, "gaps.csv")
    assert "2" in err and "row 52" in err, err
    assert not out.exists()
    assert main(["train", "forecast", "--csv", str(path), "--column", "load", "--fill", "interpolate",
                 *SMALL, "--epochs", "1", "--out", str(out)]) == 0
    assert "fill:" in capsys.readouterr().err


def test_bad_requests_are_refused_before_anything_is_written(sine_csv, tmp_path, capsys, fails):
    out = tmp_path / "run"
    fails(["train", "forecast", "--csv", str(sine_csv), "--epochs", "1"], capsys, "--column")
    fails(["train", "forecast", "--csv", str(sine_csv), "--column", "nope", "--epochs", "1"],
          capsys, "nope")
    fails(["train", "forecast", "--csv", str(sine_csv), "--column", "load", "--window", "500",
           "--epochs", "1", "--out", str(out)], capsys, "no window of 500")
    fails(["train", "forecast", "--dataset", "synthetic", "--column", "x", "--epochs", "1"],
          capsys, "are for --csv")
    fails(["train", "forecast", "--csv", str(sine_csv), "--column", "load", "--season", "1",
           "--epochs", "1", "--out", str(out)], capsys, "--season must be at least 2")
    assert not out.exists()


def test_a_model_with_covariates_refuses_to_forecast_past_the_data(sine_csv, tmp_path, capsys, fails):
    run = tmp_path / "cov"
    assert main(["train", "forecast", "--csv", str(sine_csv), "--column", "load", "--covariates",
                 "other", "--calendar", "none", *SMALL, "--epochs", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    fails(["forecast", str(run)], capsys, "other")
    assert main(["forecast", str(run), "--origin", "500", "--horizon", "4", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["actual"]) == 4


def test_a_changed_series_is_refused(sine_csv, tmp_path, capsys, fails):
    path = tmp_path / "copy.csv"
    path.write_text(sine_csv.read_text())
    run = tmp_path / "run"
    assert main(["train", "forecast", "--csv", str(path), "--column", "load", *SMALL, "--epochs", "1",
                 "--out", str(run)]) == 0
    path.write_text(sine_csv.read_text().replace("100.000000", "101.000000"))
    fails(["eval", str(run)], capsys, "has changed")


@pytest.mark.slow
def test_electricity_figure_beats_weekly_seasonal_naive_and_holt_winters(tmp_path, capsys):
    """The README's figure (fetches pmdarima's wheel on first use): seed 0 of the default recipe."""
    run = tmp_path / "elec"
    assert main(["train", "forecast", "--dataset", "electricity", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["horizon"], result["origins"], result["season"]) == (48, 16, 336)
    model, baselines = result["model"]["mase"], result["baselines"]
    assert model <= 0.8 * baselines["seasonal_naive"]["mase"]
    assert model <= baselines["holt_winters"]["mase"]


def test_origins_every_horizon_when_there_are_ten_else_every_step_and_never_too_many():
    from rnnkit.tasks.forecast import MAX_ORIGINS, origin_step
    assert origin_step(range(3226, 4032), 48) == 48          # electricity: 16 daily origins
    assert origin_step(range(115, 144), 12) == 1             # airline: 18 monthly origins
    step = origin_step(range(0, 100_000), 24)
    assert step > 24 and len(range(0, 100_000 - 24 + 1, step)) <= MAX_ORIGINS
