"""A recurrent forecaster: the lectures' two set-ups for predicting a time series, and DeepAR's head.

Shapes: B batch, T time steps of a window, F input features per step (the scaled target first, then
covariates), H hidden size, K horizon (steps predicted at once), D = 1 (point) or 2 (Gaussian).

    sequence-to-sequence:  x (B, T, F) ─► RNN ─► (B, T, H) ─► one dense layer over all steps ─► (B, T, D)
                           step t predicts the target at t+1 (the inputs shifted one step ahead),
                           and the loss is taken on every step.
    sequence-to-vector:    x (B, T, F) ─► RNN ─► last state (B, H) ─► dense ─► (B, K, D)
                           the next K values at once, from the whole window.

The dense output layer of sequence-to-sequence is applied to all B·T hidden states in one GEMM
(the efficient way); applying it step by step gives the same numbers, only slower.

``likelihood="gaussian"`` (as DeepAR, Salinas et al. 2017) predicts a mean and a standard deviation
(softplus, so it stays positive) per step, trained by the Gaussian negative log-likelihood; its
quantiles give prediction intervals. ``"point"`` predicts the value, trained by the squared error.

``window_norm`` handles a level (or an amplitude) that drifts out of the range seen in training:
each window's level — its ``last`` target value (as NLinear, Zeng et al. 2023) or its ``mean`` — is
subtracted from the target input column and added back to the predictions, so the network models the
movement from the window's own level rather than absolute values it may never have seen. ``standard``
(RevIN, Kim et al. 2022) also divides by the window's standard deviation and multiplies it back, so a
growing amplitude is no extrapolation either.

Forecasting continues a series recursively: the model reads the history once, then each predicted
value (the mean) is fed back in as the next input, with the state carried — never re-running the
prefix. Known future covariates (calendar features) are read from ``future_covariates``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import GRU, LSTM, RNN
from ..unroll import State

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
MODES = ("seq2seq", "seq2vec")
LIKELIHOODS = ("point", "gaussian")
WINDOW_NORMS = ("none", "last", "mean", "standard")
MIN_WINDOW_SCALE = 0.05   # standard: a flatter window (in training standard deviations) is not blown up


@dataclass(frozen=True)
class ForecasterConfig:
    input_size: int                    # F: the target plus covariates
    mode: str = "seq2seq"              # seq2seq | seq2vec
    horizon: int = 1                   # K: seq2vec predicts K steps at once (seq2seq: 1)
    likelihood: str = "point"          # point | gaussian
    cell: str = "lstm"
    hidden: int = 64                   # H
    layers: int = 1
    dropout: float = 0.0
    window_norm: str = "none"          # none | last | mean | standard: removed, then restored

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        if self.window_norm not in WINDOW_NORMS:
            raise ValueError(f"window_norm must be one of {WINDOW_NORMS}, got {self.window_norm!r}")
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {self.cell!r}")
        if self.mode == "seq2seq" and self.horizon != 1:
            raise ValueError("seq2seq predicts one step ahead at every step: horizon must be 1")
        for name in ("input_size", "horizon", "hidden", "layers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    def to_json(self) -> dict:
        return asdict(self)


class Forecaster(nn.Module):
    def __init__(self, config: ForecasterConfig) -> None:
        super().__init__()
        self.config = c = config
        self.rnn = CELLS[c.cell](c.input_size, c.hidden, num_layers=c.layers, batch_first=True,
                                 dropout=c.dropout if c.layers > 1 else 0.0)
        self.outputs_per_step = 2 if c.likelihood == "gaussian" else 1          # D
        self.output = nn.Linear(c.hidden, c.horizon * self.outputs_per_step)

    def window_stats(self, x: Tensor) -> Optional[tuple[Tensor, Tensor]]:
        """(level, scale), each (B,), that ``window_norm`` removes from a window x (B, T, F)."""
        target = x[..., 0]                                               # (B, T)
        norm = self.config.window_norm
        if norm == "none":
            return None
        level = target[:, -1] if norm == "last" else target.mean(1)
        scale = (target.std(1, unbiased=False).clamp_min(MIN_WINDOW_SCALE) if norm == "standard"
                 else torch.ones_like(level))
        return level, scale

    def forward(self, x: Tensor, state: Optional[State] = None,
                stats: Optional[tuple[Tensor, Tensor]] = None) -> tuple[Tensor, Tensor, State]:
        """x (B, T, F) → (mean, std, state). seq2seq: mean/std (B, T), the prediction for each
        next step; seq2vec: (B, K), the K steps after the window. std is None for point output.
        ``stats``: the window's (level, scale) to use (a continuation carries its window's); by
        default ``window_stats(x)``."""
        if stats is None and state is None:
            stats = self.window_stats(x)
        if stats is not None:                                            # the window's own units
            level, scale = (v.view(-1, 1, 1) for v in stats)
            x = torch.cat([(x[..., :1] - level) / scale, x[..., 1:]], dim=-1)
        h, state = self.rnn(x, state)                                    # (B, T, H)
        if self.config.mode == "seq2vec":
            h = h[:, -1]                                                 # (B, H)
        out = self.output(h)                                             # (B, T, D) or (B, K·D)
        if self.config.mode == "seq2vec":
            out = out.view(out.shape[0], self.config.horizon, self.outputs_per_step)   # (B, K, D)
        mean = out[..., 0]
        std = F.softplus(out[..., 1]) + 1e-4 if self.outputs_per_step == 2 else None
        if stats is not None:                                            # back in the series' units
            level, scale = (v.view(-1, 1) for v in stats)
            mean = mean * scale + level
            std = None if std is None else std * scale
        return mean, std, state

    def loss(self, mean: Tensor, std: Optional[Tensor], target: Tensor) -> Tensor:
        """Mean squared error, or the Gaussian negative log-likelihood (constant dropped)."""
        if std is None:
            return F.mse_loss(mean, target)
        return F.gaussian_nll_loss(mean, target, std.square(), full=False, eps=1e-8)

    @torch.no_grad()
    def forecast(self, history: Tensor, steps: int,
                 future_covariates: Optional[Tensor] = None) -> tuple[Tensor, Optional[Tensor]]:
        """Continue each row of ``history`` (B, T, F) for ``steps`` steps → mean, std (B, steps).

        seq2seq feeds each predicted mean back as the next input (recursively, the state carried);
        seq2vec predicts K at a time and slides its window over its own predictions.
        ``future_covariates`` (B, steps, F - 1) are the known covariates of the predicted steps.
        """
        B, T, F_ = history.shape
        if F_ > 1 and (future_covariates is None or future_covariates.shape != (B, steps, F_ - 1)):
            raise ValueError(f"a model with covariates needs future_covariates of shape "
                             f"{(B, steps, F_ - 1)}, got "
                             f"{None if future_covariates is None else tuple(future_covariates.shape)}")
        self.eval()
        means, stds = [], []
        if self.config.mode == "seq2seq":
            stats = self.window_stats(history)                               # (B,) pair or None
            mean, std, state = self(history, stats=stats)
            mean, std = mean[:, -1], None if std is None else std[:, -1]      # (B,)
            for k in range(steps):
                means.append(mean)
                stds.append(std)
                if k + 1 == steps:
                    break
                step = mean.view(B, 1, 1)
                if F_ > 1:
                    step = torch.cat([step, future_covariates[:, k:k + 1]], dim=-1)  # (B, 1, F)
                mean, std, state = self(step, state, stats)
                mean, std = mean[:, -1], None if std is None else std[:, -1]
        else:
            window, done = history, 0
            while done < steps:
                mean, std, _ = self(window)                                   # (B, K)
                take = min(self.config.horizon, steps - done)
                means.extend(mean[:, :take].unbind(1))
                stds.extend([None] * take if std is None else std[:, :take].unbind(1))
                new = mean[:, :take].unsqueeze(-1)                            # (B, take, 1)
                if F_ > 1:
                    new = torch.cat([new, future_covariates[:, done:done + take]], dim=-1)
                window = torch.cat([window, new], dim=1)[:, -T:]              # slide over own output
                done += take
        mean = torch.stack(means, dim=1)                                      # (B, steps)
        std = None if stds[0] is None else torch.stack(stds, dim=1)
        return mean, std
