"""The recurrent forecaster: projection styles, recursive forecasting, learning a sine."""
from __future__ import annotations

import math

import pytest
import torch

from rnnkit.models.forecaster import Forecaster, ForecasterConfig


def test_one_dense_layer_over_all_steps_equals_a_per_step_projection():
    torch.manual_seed(0)
    model = Forecaster(ForecasterConfig(input_size=3, likelihood="gaussian", hidden=8, layers=2))
    x = torch.randn(4, 11, 3)
    mean, std, _ = model(x)                                          # (4, 11) each
    h, _ = model.rnn(x)
    for t in range(11):
        out = model.output(h[:, t])                                  # (4, 2): one step at a time
        torch.testing.assert_close(mean[:, t], out[:, 0])
        torch.testing.assert_close(std[:, t], torch.nn.functional.softplus(out[:, 1]) + 1e-4)
    assert (std > 0).all()


@pytest.mark.parametrize("covariates", [False, True])
def test_recursive_forecast_equals_feeding_step_by_step(covariates):
    torch.manual_seed(1)
    F = 3 if covariates else 1
    model = Forecaster(ForecasterConfig(input_size=F, hidden=10, cell="gru")).eval()
    history = torch.randn(2, 7, F)
    future = torch.randn(2, 5, F - 1) if covariates else None
    mean, std = model.forecast(history, 5, future)
    assert std is None and mean.shape == (2, 5)
    series = history
    for k in range(5):                    # re-run the whole sequence each time: the slow, obvious way
        predicted = model(series)[0][:, -1]                          # (2,)
        torch.testing.assert_close(mean[:, k], predicted, atol=1e-6, rtol=1e-5)
        step = predicted.view(2, 1, 1)
        if covariates:
            step = torch.cat([step, future[:, k:k + 1]], dim=-1)
        series = torch.cat([series, step], dim=1)


def test_seq2vec_forecast_slides_its_window_over_its_own_predictions():
    torch.manual_seed(2)
    model = Forecaster(ForecasterConfig(input_size=1, mode="seq2vec", horizon=3, hidden=6)).eval()
    history = torch.randn(2, 8, 1)
    mean, _ = model.forecast(history, 7)
    first = model(history)[0]                                        # (2, 3)
    torch.testing.assert_close(mean[:, :3], first)
    window = torch.cat([history, first.unsqueeze(-1)], dim=1)[:, -8:]
    second = model(window)[0]
    torch.testing.assert_close(mean[:, 3:6], second)
    window = torch.cat([window, second.unsqueeze(-1)], dim=1)[:, -8:]
    torch.testing.assert_close(mean[:, 6], model(window)[0][:, 0])


def fit(model: Forecaster, x: torch.Tensor, y: torch.Tensor, steps: int):
    """Full-batch Adam with cosine decay; returns the last (mean, std, loss)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        mean, std, _ = model(x)
        loss = model.loss(mean, std, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
    return mean, std, loss


def test_learns_a_noiseless_sine_and_forecasts_it():
    torch.manual_seed(0)
    t = torch.arange(0, 60, 0.25)
    series = torch.sin(t)                                            # period 8π ≈ 25 steps
    windows = series.unfold(0, 41, 3)                                # (N, 41)
    x, y = windows[:, :-1].unsqueeze(-1), windows[:, 1:]             # targets: shifted one step
    model = Forecaster(ForecasterConfig(input_size=1, hidden=32))
    _, _, loss = fit(model, x, y, steps=500)
    assert loss.item() < 2e-3             # most of it on the first steps of a window (no history)
    start = 100
    mean, _ = model.forecast(series[:start].view(1, -1, 1), 25)
    error = (mean[0] - series[start:start + 25]).abs().max().item()
    assert error < 0.05, error


def test_gaussian_head_learns_the_noise_level():
    torch.manual_seed(0)
    n, T = 256, 20
    x = torch.randn(n, T, 1)
    y = 0.5 * x[..., 0] + 0.3 * torch.randn(n, T)                   # y = x/2 + N(0, 0.3²)
    model = Forecaster(ForecasterConfig(input_size=1, likelihood="gaussian", hidden=16))
    mean, std, loss = fit(model, x, y, steps=300)
    assert std.mean().item() == pytest.approx(0.3, rel=0.15)
    inside = ((y - mean).abs() < 1.96 * std).float().mean().item()   # a 95 % interval covers ~95 %
    assert 0.9 < inside < 0.99
    expected_nll = 0.5 * math.log(0.3 ** 2) + 0.5                    # its optimum, constant dropped
    assert loss.item() == pytest.approx(expected_nll, abs=0.1)


@pytest.mark.parametrize("kwargs, message", [
    (dict(mode="seq2seq", horizon=4), "horizon must be 1"),
    (dict(mode="both"), "mode must be one of"),
    (dict(likelihood="poisson"), "likelihood must be one of"),
    (dict(hidden=0), "hidden must be positive"),
])
def test_bad_configs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ForecasterConfig(input_size=1, **kwargs)


def test_forecast_with_covariates_needs_their_future_values():
    model = Forecaster(ForecasterConfig(input_size=2))
    with pytest.raises(ValueError, match=r"future_covariates of shape \(1, 4, 1\)"):
        model.forecast(torch.zeros(1, 5, 2), 4)


@pytest.mark.parametrize("mode", ["seq2seq", "seq2vec"])
@pytest.mark.parametrize("norm", ["last", "mean"])
def test_a_level_normalised_model_moves_its_forecast_with_the_level(mode, norm):
    torch.manual_seed(3)
    model = Forecaster(ForecasterConfig(input_size=1, mode=mode, horizon=4 if mode == "seq2vec" else 1,
                                        hidden=8, window_norm=norm)).eval()
    history = torch.randn(3, 9, 1)
    mean, _ = model.forecast(history, 6)
    shifted, _ = model.forecast(history + 25.0, 6)       # far outside anything it could have seen
    torch.testing.assert_close(shifted, mean + 25.0, atol=1e-4, rtol=1e-5)


def test_a_standard_normalised_model_is_equivariant_to_level_and_amplitude():
    torch.manual_seed(4)
    model = Forecaster(ForecasterConfig(input_size=1, likelihood="gaussian", hidden=8,
                                        window_norm="standard")).eval()
    history = torch.randn(2, 12, 1)
    mean, std = model.forecast(history, 5)
    mean2, std2 = model.forecast(3.0 * history - 7.0, 5)
    torch.testing.assert_close(mean2, 3.0 * mean - 7.0, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(std2, 3.0 * std, atol=1e-4, rtol=1e-4)


def test_without_window_norm_the_level_changes_the_forecast_shape():
    torch.manual_seed(5)
    model = Forecaster(ForecasterConfig(input_size=1, hidden=8)).eval()
    history = torch.randn(2, 9, 1)
    mean, _ = model.forecast(history, 4)
    shifted, _ = model.forecast(history + 25.0, 4)
    assert not torch.allclose(shifted - 25.0, mean, atol=1e-2)   # so the tests above can fail
