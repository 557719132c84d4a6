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
* ``"recurrence"``: h_t = a_t ⊙ h_{t-1} + b_t as one autograd function whose backward is written
  out (the gradient runs the same recurrence backwards, see `LinearRecurrence`): T multiply-adds
  forward and T backward, no graph of T nodes. On the CPU the compiled kernels
  (``rnnkit.kernels``) run the whole of it, gates included, in one pass each way
  (``last_impl == "recurrence+kernels"``);
* ``"loop"``: the readable step loop through ``unroll`` (the reference, and the way to generate).

``impl="auto"`` scans on a GPU and runs the recurrence on a CPU, by measurement (benchmarks/scan.py,
this 2-core CPU, T = 4096, B = 16, I = H = 256, forward+backward, best of 3): torch.nn.GRU 3.1 s;
minGRU scanning 3.8 s (logcumsumexp and its backward over (B, T, H) dominate), in the readable
loop 1.9 s, with the written-out recurrence in torch ops 1.6 s, through the kernels 0.44–0.50 s
(5.9–6.9× faster than torch.nn.GRU; on a faster day 0.28 s against 1.8 s, 6.3×, with the kernels
split over both threads: the input GEMMs are half of what is left; minLSTM 4.1×). The scan needs a positive
initial state (it takes its logarithm; the cells' own states always are); the default zero state
contributes nothing.
Padding (``lengths=``) sets a = 1 and b = 0 past each row's end, so the state stays.
"""
from __future__ import annotations

import math
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .kernels import step_kernels
from .unroll import check_lengths, mask_padding, reverse_within_lengths, time_mask, unroll

__all__ = ["MinGRU", "MinLSTM"]

IMPLS = ("auto", "scan", "recurrence", "loop")


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


class LinearRecurrence(torch.autograd.Function):
    """h_t = a_t ⊙ h_{t-1} + b_t for t = 0..T-1 from h0, time-major: a, b (T, B, H), h0 (B, H).

    Backward, written out: with G_t the whole gradient reaching h_t,
        G_{T-1} = ∂L/∂h_{T-1},   G_t = ∂L/∂h_t + a_{t+1} ⊙ G_{t+1}    (the recurrence, backwards)
        ∂L/∂b_t = G_t,   ∂L/∂a_t = G_t ⊙ h_{t-1},   ∂L/∂h0 = a_0 ⊙ G_0
    so both directions are T fused multiply-adds, and autograd keeps one node instead of T.
    """

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
        h = torch.empty_like(b)                                              # (T, B, H)
        prev = h0
        for t in range(b.shape[0]):
            prev = torch.addcmul(b[t], a[t], prev, out=h[t])
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    def backward(ctx, grad_h: Tensor):
        a, h, h0 = ctx.saved_tensors
        grad_b = torch.empty_like(grad_h)                                   # G_t, (T, B, H)
        G = grad_b[-1].copy_(grad_h[-1])
        for t in range(grad_h.shape[0] - 2, -1, -1):
            G = torch.addcmul(grad_h[t], a[t + 1], G, out=grad_b[t])
        h_prev = torch.cat([h0.unsqueeze(0), h[:-1]])                       # h_{t-1}, (T, B, H)
        return grad_b * h_prev, grad_b, a[0] * grad_b[0]


class _MinRNNSequence(torch.autograd.Function):
    """A minGRU's or minLSTM's whole recurrence in one compiled pass each way (``kernels``:
    mingru_/minlstm_forward and _backward): from the input projection x (B, T, gates·H) straight to
    the states (B, T, H), without materialising the gates, a or b. Same equations as
    ``log_coefficients`` and :class:`LinearRecurrence`; the tests check it against the loop."""

    @staticmethod
    def forward(ctx, x: Tensor, h0: Tensor, lengths: Tensor, forward_op, backward_op) -> Tensor:
        h = x.new_empty(x.shape[0], x.shape[1], h0.shape[-1])              # (B, T, H)
        forward_op(x, h0, lengths, h)
        ctx.backward_op = backward_op
        ctx.save_for_backward(x, h0, lengths, h)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h: Tensor):
        x, h0, lengths, h = ctx.saved_tensors
        d_x, d_h0 = torch.empty_like(x), torch.empty_like(h0)
        ctx.backward_op(x, h0, lengths, h, grad_h.contiguous(), d_x, d_h0)
        return d_x, d_h0, None, None, None


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
        impl = self.last_impl = self._choose_impl(x, hx)   # _recurrence adds "+kernels" if so
        finals, layer_input = [], x
        for layer in range(self.num_layers):
            outs = []
            for d, suffix in enumerate(self._suffixes(layer)):
                h0 = None if hx is None else hx[layer * D + d]
                x_proj = F.linear(layer_input, getattr(self, f"weight_ih{suffix}"),
                                  getattr(self, f"bias_ih{suffix}", None))   # (B, T, gates·H)
                if d == 1:
                    x_proj = reverse_within_lengths(x_proj.transpose(0, 1), lengths).transpose(0, 1)
                run = {"scan": self._scan, "recurrence": self._recurrence,
                       "loop": self._loop}[impl]
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
            return "scan" if positive and x.device.type == "cuda" else "recurrence"
        return self.impl

    def _padded_coefficients(self, x_proj: Tensor, lengths: Optional[Tensor]):
        """(log a, log b, valid (B, T, 1) or None): past a row's end a = 1 and b = 0, so that the
        state stays. log 0 is a finite -1e4 (exp gives exactly 0 in float32 and float64): -inf
        would make logcumsumexp's gradient NaN for a row of length 0."""
        log_a, log_b = self.log_coefficients(x_proj)                         # (B, T, H) each
        if lengths is None:
            return log_a, log_b, None
        valid = time_mask(lengths, x_proj.shape[1]).t().unsqueeze(-1)        # (B, T, 1)
        log_a = torch.where(valid, log_a, torch.zeros((), dtype=log_a.dtype))
        log_b = torch.where(valid, log_b, torch.full((), -1e4, dtype=log_b.dtype))
        return log_a, log_b, valid

    def _scan(self, x_proj: Tensor, h0: Optional[Tensor], lengths: Optional[Tensor]):
        log_a, log_b, valid = self._padded_coefficients(x_proj, lengths)
        h = scan_log(log_a, log_b, h0)                                        # (B, T, H)
        # Padding kept the state: the last step's is the last valid step's.
        return (h if valid is None else h * valid), h[:, -1]

    def _recurrence(self, x_proj: Tensor, h0: Optional[Tensor], lengths: Optional[Tensor]):
        if h0 is None:
            h0 = x_proj.new_zeros(x_proj.shape[0], self.hidden_size)
        kernels = step_kernels(x_proj)
        if kernels is not None:
            B, T = x_proj.shape[:2]
            full = torch.full((B,), T, dtype=torch.long, device=x_proj.device)
            cell = self.cell_name.lower()                                   # mingru | minlstm
            h = _MinRNNSequence.apply(x_proj.contiguous(), h0.contiguous(),
                                      full if lengths is None else lengths,
                                      getattr(kernels, f"{cell}_forward"),
                                      getattr(kernels, f"{cell}_backward"))
            self.last_impl = "recurrence+kernels"
            out = h if lengths is None else h * time_mask(lengths, T).t().unsqueeze(-1)
            return out, h[:, -1]
        log_a, log_b, valid = self._padded_coefficients(x_proj, lengths)
        h = LinearRecurrence.apply(log_a.exp().transpose(0, 1).contiguous(),
                                   log_b.exp().transpose(0, 1).contiguous(), h0).transpose(0, 1)
        return (h if valid is None else h * valid), h[:, -1]

    def _loop(self, x_proj: Tensor, h0: Optional[Tensor], lengths: Optional[Tensor]):
        # The coefficients of all T steps at once (they depend on x only); the loop itself is
        # one multiply-add a step.
        log_a, log_b = self.log_coefficients(x_proj)
        ab = torch.cat([log_a.exp(), log_b.exp()], dim=-1)                  # (B, T, 2H)

        def step(ab_t: Tensor, h: Tensor):
            a_t, b_t = ab_t.chunk(2, dim=-1)
            h = torch.addcmul(b_t, a_t, h)                                   # a ⊙ h + b
            return h, h
        init = h0 if h0 is not None else x_proj.new_zeros(x_proj.shape[0], self.hidden_size)
        return unroll(step, ab, init, lengths=lengths, batch_first=True)

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
