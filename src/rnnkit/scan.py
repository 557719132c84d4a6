"""Parallel-scan cells: minGRU and minLSTM (Feng et al. 2024, "Were RNNs all we needed?").

Shapes: T time, B batch, I input size, H hidden size, L layers, D directions.

Both drop the recurrent weights from the gates, so each is a *linear* recurrence whose coefficients
depend on the input alone:

    minGRU   z = σ(W_z x + b_z)       h̃ = g(W_h x + b_h)
             h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t
    minLSTM  f = σ(W_f x + b_f)   i = σ(W_i x + b_i)   h̃ = g(W_h x + b_h)
             f' = f / (f + i),  i' = i / (f + i)
             h_t = f'_t ⊙ h_{t-1} + i'_t ⊙ h̃_t

with g(v) = v + 0.5 for v ≥ 0 and σ(v) below, which keeps h̃ (and so every h) positive. That is
h_t = a_t ⊙ h_{t-1} + b_t with a, b > 0, and all T pairs (a_t, b_t) come from ONE input GEMM. Two
ways to run the recurrence, chosen explicitly and reported in ``layer.last_impl``:

* ``"scan"``: parallel over time in log space (Heinsen 2023): with A_t = Σ_{k≤t} log a_k,
  log h_t = A_t + logcumsumexp_k(log b_k - A_k) (and the initial state as a k = 0 term). No loop
  over time: the way the paper trains;
* ``"loop"``: the readable step loop through ``unroll`` (the reference, and the way to generate).

``impl="auto"`` scans on a GPU and loops on a CPU, by measurement: on this 2-core CPU, at T = 4096,
B = 16, I = H = 256, forward+backward took 5.6 s scanning (logcumsumexp and its backward over
(B, T, H) dominate), 4.5 s looping, and 4.9 s for torch.nn.GRU. (A chunked scan in one fused kernel
is what would make the CPU fast; not written yet.) The scan needs a positive initial state (it takes
its logarithm; the cells' own states always are); the default zero state contributes nothing.
Padding (``lengths=``) sets a = 1 and b = 0 past each row's end, so the state stays.
"""
from __future__ import annotations

import math
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .unroll import check_lengths, mask_padding, reverse_within_lengths, time_mask, unroll

__all__ = ["MinGRU", "MinLSTM"]

IMPLS = ("auto", "scan", "loop")


def g(v: Tensor) -> Tensor:
    """The positive activation of the paper: v + 0.5 for v ≥ 0, σ(v) below (continuous at 0)."""
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def log_g(v: Tensor) -> Tensor:
    return torch.where(v >= 0, (F.relu(v) + 0.5).log(), -F.softplus(-v))


def scan_log(log_a: Tensor, log_b: Tensor, h0: Optional[Tensor]) -> Tensor:
    """h_t = a_t ⊙ h_{t-1} + b_t for all t at once, from log a, log b (B, T, H) and h0 (B, H) > 0
    or None (zeros). Returns h (B, T, H)."""
    A = torch.cumsum(log_a, dim=1)                                       # (B, T, H)
    terms = log_b - A
    if h0 is not None:                   # h0 enters as a term at k = 0 with A_0 = 0
        terms = torch.cat([h0.log().unsqueeze(1), terms], dim=1)         # (B, 1 + T, H)
        return torch.exp(A + torch.logcumsumexp(terms, dim=1)[:, 1:])
    return torch.exp(A + torch.logcumsumexp(terms, dim=1))


class _MinRNN(nn.Module):
    """What minGRU and minLSTM share: stacking, directions, lengths, the two implementations.
    A subclass names its gates and turns one step's input projection into (log a, log b)."""

    gates = 2
    cell_name = "MinRNN"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, *, impl: str = "auto") -> None:
        super().__init__()
        if impl not in IMPLS:
            raise ValueError(f"{self.cell_name}: impl must be one of {IMPLS}, got {impl!r}")
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
            if v <= 0:
                raise ValueError(f"{self.cell_name}: {name} must be positive, got {v}")
        if not 0 <= dropout < 1:
            raise ValueError(f"{self.cell_name}: dropout must be in [0, 1), got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        self.bidirectional, self.impl = bidirectional, impl
        self.last_impl: Optional[str] = None
        kw = {"device": device, "dtype": dtype}
        D = 2 if bidirectional else 1
        for layer in range(num_layers):
            for suffix in self._suffixes(layer):
                fan_in = input_size if layer == 0 else D * hidden_size
                self.register_parameter(f"weight_ih{suffix}", nn.Parameter(
                    torch.empty(self.gates * hidden_size, fan_in, **kw)))
                if bias:
                    self.register_parameter(f"bias_ih{suffix}", nn.Parameter(
                        torch.empty(self.gates * hidden_size, **kw)))
        self.reset_parameters()

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}"] + ([f"_l{layer}_reverse"] if self.bidirectional else [])

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def log_coefficients(self, x_proj: Tensor) -> tuple[Tensor, Tensor]:
        """(log a, log b), each (…, H), from the input projection (…, gates·H)."""
        raise NotImplementedError

    # -- forward ---------------------------------------------------------------------------------------

    def forward(self, input: Tensor, hx: Optional[Tensor] = None, *,
                lengths: Optional[Union[Tensor, list[int]]] = None) -> tuple[Tensor, Tensor]:
        """Returns ``(output, h_n)`` as torch.nn.GRU: output (T, B, D·H) — (B, T, D·H) with
        ``batch_first`` — and h_n (L·D, B, H). ``hx`` must be positive (the cells' states are)."""
        if input.dim() != 3 or input.shape[-1] != self.input_size:
            raise ValueError(f"{self.cell_name}: expected input (…, {self.input_size}) of 3 "
                             f"dimensions, got {tuple(input.shape)}")
        x = input if self.batch_first else input.transpose(0, 1)          # (B, T, I)
        B, T = x.shape[0], x.shape[1]
        D = 2 if self.bidirectional else 1
        if lengths is not None:
            lengths = check_lengths(lengths, T, B, x.device)
            # NaN padding must not reach the input GEMM (nor, through it, any gradient).
            x = mask_padding(x.transpose(0, 1), lengths).transpose(0, 1)
        if hx is not None and tuple(hx.shape) != (self.num_layers * D, B, self.hidden_size):
            raise ValueError(f"{self.cell_name}: h_0 has shape {tuple(hx.shape)}, expected "
                             f"{(self.num_layers * D, B, self.hidden_size)}")
        self.last_impl = self._choose_impl(x, hx)
        finals, layer_input = [], x
        for layer in range(self.num_layers):
            outs = []
            for d, suffix in enumerate(self._suffixes(layer)):
                h0 = None if hx is None else hx[layer * D + d]
                x_proj = F.linear(layer_input, getattr(self, f"weight_ih{suffix}"),
                                  getattr(self, f"bias_ih{suffix}", None))   # (B, T, gates·H)
                if d == 1:
                    x_proj = reverse_within_lengths(x_proj.transpose(0, 1), lengths).transpose(0, 1)
                run = self._scan if self.last_impl == "scan" else self._loop
                out, final = run(x_proj, h0, lengths)                       # (B, T, H), (B, H)
                if d == 1:
                    out = reverse_within_lengths(out.transpose(0, 1), lengths).transpose(0, 1)
                outs.append(out)
                finals.append(final)
            layer_input = torch.cat(outs, dim=-1) if D == 2 else outs[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        out = layer_input if self.batch_first else layer_input.transpose(0, 1)
        return out, torch.stack(finals)

    def _choose_impl(self, x: Tensor, hx: Optional[Tensor]) -> str:
        positive = hx is None or bool((hx > 0).all())
        if self.impl == "scan" and not positive:
            raise ValueError(f"{self.cell_name}: impl='scan' works in log space and needs a "
                             f"positive h_0 (states of these cells are); use impl='loop'")
        if self.impl == "auto":
            return "scan" if positive and x.device.type == "cuda" else "loop"
        return self.impl

    def _scan(self, x_proj: Tensor, h0: Optional[Tensor], lengths: Optional[Tensor]):
        log_a, log_b = self.log_coefficients(x_proj)                         # (B, T, H) each
        if lengths is not None:          # past a row's end: a = 1, b = 0, the state stays
            valid = time_mask(lengths, x_proj.shape[1]).t().unsqueeze(-1)    # (B, T, 1)
            log_a = torch.where(valid, log_a, torch.zeros((), dtype=log_a.dtype))
            # log 0 as a finite -1e4 (exp gives exactly 0 in float32 and float64): -inf would
            # make logcumsumexp's gradient NaN for a row of length 0.
            log_b = torch.where(valid, log_b, torch.full((), -1e4, dtype=log_b.dtype))
        h = scan_log(log_a, log_b, h0)                                        # (B, T, H)
        final = h[:, -1]                 # padding kept the state: the last valid step's
        return (h * valid if lengths is not None else h), final

    def _loop(self, x_proj: Tensor, h0: Optional[Tensor], lengths: Optional[Tensor]):
        def step(xp: Tensor, h: Tensor):
            log_a, log_b = self.log_coefficients(xp)
            h = log_a.exp() * h + log_b.exp()
            return h, h
        init = h0 if h0 is not None else x_proj.new_zeros(x_proj.shape[0], self.hidden_size)
        return unroll(step, x_proj, init, lengths=lengths, batch_first=True)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bidirectional={self.bidirectional}, impl={self.impl!r}")


class MinGRU(_MinRNN):
    """minGRU: h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ g(h̃_t); z and h̃ from x_t alone."""

    gates = 2
    cell_name = "MinGRU"

    def log_coefficients(self, x_proj: Tensor) -> tuple[Tensor, Tensor]:
        k, pre = x_proj.chunk(2, dim=-1)
        # log(1 - σ(k)) = -softplus(k), log σ(k) = -softplus(-k): no log of a rounded 0.
        return -F.softplus(k), -F.softplus(-k) + log_g(pre)


class MinLSTM(_MinRNN):
    """minLSTM: h_t = f'_t ⊙ h_{t-1} + i'_t ⊙ g(h̃_t) with f', i' = f, i normalised to sum 1."""

    gates = 3
    cell_name = "MinLSTM"

    def log_coefficients(self, x_proj: Tensor) -> tuple[Tensor, Tensor]:
        kf, ki, pre = x_proj.chunk(3, dim=-1)
        # log f' = log σ(kf) - log(σ(kf) + σ(ki)) = -softplus(Δ) with Δ = softplus(-kf) - softplus(-ki)
        diff = F.softplus(-kf) - F.softplus(-ki)
        return -F.softplus(diff), -F.softplus(-diff) + log_g(pre)
