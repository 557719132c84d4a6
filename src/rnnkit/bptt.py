"""Backpropagation through time written out by hand: the fast path for the cells torch has no kernel for.

Shapes: T time, B batch, H hidden size, G = gates · H.

Autograd through the readable loop (``unroll`` over ``cells``) records ~15 small ops per step and, in
the backward pass, a weight-gradient GEMM per step. Here each cell family is one
``torch.autograd.Function`` whose forward runs the same equations without a graph, keeping the
activations it needs, and whose backward walks the steps in reverse by the chain rule:

* per step, forward: one GEMM (W_hh h) and the pointwise gate maths; backward: one GEMM
  (dh_{t-1} = da_t W_hh) and the pointwise derivatives;
* after the loop, once: dW_hh = Σ_t da_tᵀ h_{t-1} as a single (G, T·B) × (T·B, H) GEMM, and the
  bias, peephole and layer-norm gradients as single reductions over all steps.

The pointwise part of a step runs either as torch ops (any device and dtype: the functions' torch-op
branches) or, given ``kernels`` (``rnnkit.kernels.load()``: CPU, float32/float64), as one compiled
pass (``csrc/steps.cpp``) computing the same equations. On the CPU the step's GEMM is MKL's with the
weight packed once per call.

The input projection x_proj = W_ih x + b_ih (and its layer norm) stays outside, in autograd: it is one
GEMM over all steps already. Each function takes x_proj in processing order (reversed within lengths
for a backward direction; what padding holds never reaches a state, keep is 1 there) and returns the
outputs (T, B, H) and the final state, as ``unroll`` does. Everything else a layer supports rides on the same two tensors per step:

* ``keep`` (T, B, H), (T, B, 1) or (T, 1, 1): the state update is s_t = lerp(s_new, s_{t-1}, keep_t):
  1 past a row's length (the state freezes there), zoneout's 0/1 mask in train() or its probability
  z in eval(), 0 otherwise. lerp is exact at 0 and 1, so frozen states are bit-identical.
* ``out_mask`` (T, B, 1): outputs past a row's length are zero.
* ``h_mask`` (B, H): the variational recurrent-dropout mask on the h that enters W_hh.

``tests/test_layers.py`` checks every path against autograd through the loop, values and gradients.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .kernels import step_kernels

__all__ = ["rnn_bptt", "gru_bptt", "lstm_bptt"]

LN_EPS = 1e-5   # F.layer_norm's default, as in cells._norm


class _MatMul:
    """x ↦ x Wᵀ (+ b) for one weight W (N, K) used at every step.

    On the CPU in float32 over several steps this is MKL's packed GEMM: W is packed into MKL's
    layout once per call of the layer instead of once per step, which at (B, K) = (32, 256) makes
    the step's GEMM 1.5–3× faster than ``addmm`` and gives the same values. Elsewhere (float64,
    CUDA, a single step as in sampling) it is ``addmm``.
    """

    def __init__(self, weight: Tensor, batch: int, steps: int) -> None:
        self.weight, self.batch, self.packed = weight.contiguous(), batch, None
        if steps > 1 and weight.device.type == "cpu" and weight.dtype == torch.float32 and \
                torch.backends.mkl.is_available():
            self.packed = torch.ops.mkl._mkl_reorder_linear_weight(self.weight, batch)

    def __call__(self, x: Tensor, bias: Optional[Tensor] = None) -> Tensor:
        if self.packed is not None:
            return torch.ops.mkl._mkl_linear(x, self.packed, self.weight, bias, self.batch)
        return x.mm(self.weight.t()) if bias is None else torch.addmm(bias, x, self.weight.t())


def _layer_norm(a: Tensor, ln: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """(normalised a, mean, rstd) over the last dimension, as F.layer_norm computes it."""
    return torch.native_layer_norm(a, a.shape[-1:], ln[0], ln[1], LN_EPS)


def _layer_norm_input_grad(dy: Tensor, a: Tensor, mean: Tensor, rstd: Tensor, weight: Tensor) -> Tensor:
    return torch.ops.aten.native_layer_norm_backward(dy, a, a.shape[-1:], mean, rstd, weight, None,
                                                     [True, False, False])[0]


def _layer_norm_param_grads(dy: Tensor, a: Tensor, mean: Tensor, rstd: Tensor, ln: tuple):
    """d weight, d bias of a layer norm, summed over all steps in one pass: dy, a (T, B, N)."""
    N = a.shape[-1]
    _, d_w, d_b = torch.ops.aten.native_layer_norm_backward(
        dy.reshape(-1, N), a.reshape(-1, N), (N,), mean.reshape(-1, 1), rstd.reshape(-1, 1),
        ln[0], ln[1], [False, True, True])
    return d_w, d_b


def _mean_rstd(stats: Tensor) -> tuple[Tensor, Tensor]:
    """(…, 2) per-row layer-norm statistics -> mean (…, 1), 1/std (…, 1)."""
    return stats[..., :1].contiguous(), stats[..., 1:].contiguous()


def _weight_grad(da: Tensor, h: Tensor) -> Tensor:
    """Σ_t da_tᵀ h_t in one GEMM: (T, B, G), (T, B, H) -> (G, H)."""
    return da.reshape(-1, da.shape[-1]).t().mm(h.reshape(-1, h.shape[-1]))


def _lerp(new: Tensor, old: Tensor, keep: Optional[Tensor], out: Tensor) -> Tensor:
    """s_t = lerp(s_new, s_{t-1}, keep_t) into ``out``: 0 takes the new state, 1 keeps the old."""
    return out.copy_(new) if keep is None else torch.lerp(new, old, keep, out=out)


def _split(d: Tensor, keep: Optional[Tensor]) -> tuple[Tensor, Optional[Tensor]]:
    """The gradient of s_t = lerp(s_new, s_{t-1}, keep_t) -> (d s_new, the part that goes to s_{t-1})."""
    if keep is None:
        return d, None
    return d * (1 - keep), d * keep


def _plus(a: Tensor, b: Optional[Tensor]) -> Tensor:
    return a if b is None else a + b


def _steps(t: Optional[Tensor], T: int) -> list[Optional[Tensor]]:
    return [None] * T if t is None else t.unbind(0)


def _output_grads(grad_out: Optional[Tensor], out_mask: Optional[Tensor], T: int):
    """The gradient reaching each step's output (contiguous (B, H) blocks), or None per step."""
    if grad_out is None:
        return [None] * T
    return (grad_out if out_mask is None else grad_out * out_mask).contiguous().unbind(0)


def _states(h0: Tensor, T: int) -> Tensor:
    """(T + 1, B, H) buffer: [0] = h_0, [t + 1] = the state after step t, filled in by the loop."""
    buf = h0.new_empty(T + 1, *h0.shape)
    buf[0] = h0
    return buf


def _outputs(states: Tensor, out_mask: Optional[Tensor]) -> Tensor:
    return states if out_mask is None else states * out_mask


# ---- Elman RNN: h' = act(x_proj + W_hh h + b_hh) ----------------------------------------------------

def _rnn_step(a: Tensor, x: Tensor, h: Tensor, keep: Optional[Tensor], act: Tensor, h_out: Tensor,
              relu: bool) -> None:
    """act = act(a + x), h_out the state after it (torch ops; = kernels.rnn_forward)."""
    pre = torch.add(a, x, out=act)
    _lerp(pre.relu_() if relu else pre.tanh_(), h, keep, h_out)


def _rnn_step_back(d: Tensor, keep: Optional[Tensor], act: Tensor, relu: bool, d_pre: Tensor):
    """-> the part of d (B, H) that skips the cell (zoneout / past the length), or None."""
    d_new, carry = _split(d, keep)
    torch.mul(d_new, (act > 0).to(act.dtype) if relu else 1 - act * act, out=d_pre)
    return carry


class _RNNFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_proj, h0, weight_hh, bias_hh, keep, out_mask, h_mask, relu, kernels):
        T, B = x_proj.shape[:2]
        mm = _MatMul(weight_hh, B, T)
        x_t, keep_t = x_proj.unbind(0), _steps(keep, T)
        hs, acts = _states(h0, T), torch.empty_like(x_proj)   # acts: act(pre) before zoneout
        step = kernels.rnn_forward if kernels is not None else _rnn_step
        hs_t, acts_t = hs.unbind(0), acts.unbind(0)    # per-step views, made once
        for t in range(T):
            h = hs_t[t]
            a = mm(h if h_mask is None else h * h_mask, bias_hh)             # (B, H)
            step(a, x_t[t], h, keep_t[t], acts_t[t], hs_t[t + 1], relu)
        ctx.relu, ctx.kernels = relu, kernels
        ctx.save_for_backward(weight_hh, bias_hh, keep, out_mask, h_mask, hs, acts)
        return _outputs(hs[1:], out_mask), hs[-1]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_h_n):
        weight_hh, bias_hh, keep, out_mask, h_mask, hs, acts = ctx.saved_tensors
        T, B = acts.shape[:2]
        kernels, relu = ctx.kernels, ctx.relu
        mm_back = _MatMul(weight_hh.t(), B, T)                # dh = d_pre W_hh
        keep_t, g_out = _steps(keep, T), _output_grads(grad_out, out_mask, T)
        d_pre = torch.empty_like(acts)                     # (T, B, H)
        carry = torch.empty_like(hs[0])
        dh = grad_h_n.contiguous() if grad_h_n is not None else torch.zeros_like(hs[0])
        acts_t, d_pre_t, hs_t = acts.unbind(0), d_pre.unbind(0), hs.unbind(0)
        for t in range(T - 1, -1, -1):
            if kernels is not None:
                kernels.rnn_backward(dh, g_out[t], keep_t[t], acts_t[t], relu, d_pre_t[t], carry)
                c = carry if keep is not None else None
            else:
                c = _rnn_step_back(_plus(dh, g_out[t]), keep_t[t], acts_t[t], relu, d_pre_t[t])
            d_rec = mm_back(d_pre_t[t])
            dh = _plus(d_rec if h_mask is None else d_rec * h_mask, c)
        h_rec = hs[:-1] if h_mask is None else hs[:-1] * h_mask
        d_bias = d_pre.sum((0, 1)) if bias_hh is not None else None
        return d_pre, dh, _weight_grad(d_pre, h_rec), d_bias, None, None, None, None, None


def rnn_bptt(x_proj: Tensor, h0: Tensor, weight_hh: Tensor, bias_hh: Optional[Tensor], *,
             nonlinearity: str = "tanh", keep: Optional[Tensor] = None,
             out_mask: Optional[Tensor] = None, h_mask: Optional[Tensor] = None,
             kernels=None) -> tuple[Tensor, Tensor]:
    """``unroll(rnn_step)`` with a hand-written backward: (T, B, H) x_proj -> outputs, h_T."""
    return _RNNFunction.apply(x_proj.contiguous(), h0.contiguous(), weight_hh, bias_hh, keep,
                              out_mask, h_mask, nonlinearity == "relu", kernels)


# ---- GRU: r, z = σ(x_rz + a_rz), n = tanh(x_n + r ⊙ a_n) (or W_hn (r ⊙ h)), h' = lerp(n, h, z) ------

def _gru_step_back(d: Tensor, keep: Optional[Tensor], rz: Tensor, n: Tensor, a_n: Tensor,
                   h_prev: Tensor, h_rec: Tensor, reset_after: bool, d_x: Tensor, d_a: Tensor,
                   mm_n_back: Optional["_MatMul"]):
    """Torch ops (= kernels.gru_backward with reset_after): fills d_x (B, 3H) and d_a (B, A);
    returns (the gradient reaching h_{t-1} outside the GEMM through W_a, d (r ⊙ h_rec) or None)."""
    H = n.shape[-1]
    d_new, carry = _split(d, keep)
    r, z = rz[:, :H], rz[:, H:]
    # h' = n + z ⊙ (h - n)
    dn = torch.mul(d_new * (1 - z), 1 - n * n, out=d_x[:, 2 * H:])     # d (tanh's input)
    torch.mul(d_new * (h_prev - n), z * (1 - z), out=d_a[:, H:2 * H])
    if reset_after:
        torch.mul(dn * a_n, r * (1 - r), out=d_a[:, :H])
        torch.mul(dn, r, out=d_a[:, 2 * H:])
        d_rh = None
    else:
        d_rh = mm_n_back(dn)                                              # d (r ⊙ h_rec)
        torch.mul(d_rh * h_rec, r * (1 - r), out=d_a[:, :H])
    d_x[:, :2 * H] = d_a[:, :2 * H]                                       # r, z: x_proj and a add up
    return _plus(d_new * z, carry), d_rh


class _GRUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_proj, h0, weight_hh, bias_hh, ln_w, ln_b, keep, out_mask, h_mask,
                reset_after, kernels):
        T, (B, H) = x_proj.shape[0], h0.shape
        ln = None if ln_w is None else (ln_w, ln_b)
        # With reset_after (torch's form) one GEMM gives a = W_hh h + b_hh for all three gates;
        # in Cho's form it gives only the r, z rows, and n's matmul waits for r ⊙ h.
        A = 3 * H if reset_after else 2 * H
        mm_a = _MatMul(weight_hh[:A], B, T)
        mm_n = None if reset_after else _MatMul(weight_hh[A:], B, T)
        b_a, b_n = (bias_hh, None) if reset_after or bias_hh is None else (bias_hh[:A], bias_hh[A:])
        x_t, keep_t = x_proj.unbind(0), _steps(keep, T)
        hs = _states(h0, T)
        rz, n, a_n = (x_proj.new_empty(T, B, w) for w in (2 * H, H, H))  # kept for the backward
        a_raws, means, rstds = [], [], []
        hs_t, rz_t, n_t, a_n_t = (v.unbind(0) for v in (hs, rz, n, a_n))   # per-step views
        for t in range(T):
            h = hs_t[t]
            h_rec = h if h_mask is None else h * h_mask
            a = a_raw = mm_a(h_rec, b_a)                                   # (B, A)
            if ln:
                a, mean, rstd = _layer_norm(a_raw, ln)
                a_raws.append(a_raw), means.append(mean), rstds.append(rstd)
            if kernels is not None:
                kernels.gru_forward(a, x_t[t], h, keep_t[t], rz_t[t], n_t[t], a_n_t[t],
                                    hs_t[t + 1])
                continue
            r, z = torch.add(a[:, :2 * H], x_t[t][:, :2 * H], out=rz_t[t]).sigmoid_().split(H, -1)
            if reset_after:
                a_n_t[t].copy_(a[:, 2 * H:])
                torch.addcmul(x_t[t][:, 2 * H:], r, a_n_t[t], out=n_t[t]).tanh_()
            else:
                a_n_t[t].copy_(mm_n(r * h_rec, b_n))
                torch.add(x_t[t][:, 2 * H:], a_n_t[t], out=n_t[t]).tanh_()
            _lerp(torch.lerp(n_t[t], h, z), h, keep_t[t], hs_t[t + 1])       # (1 - z) n + z h
        stats = (torch.stack(a_raws), torch.stack(means), torch.stack(rstds)) if ln else (None,) * 3
        ctx.reset_after, ctx.kernels = reset_after, kernels
        ctx.save_for_backward(weight_hh, bias_hh, ln_w, ln_b, keep, out_mask, h_mask, hs, rz, n,
                              a_n, *stats)
        return _outputs(hs[1:], out_mask), hs[-1]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_h_n):
        weight_hh, bias_hh, ln_w, ln_b, keep, out_mask, h_mask, hs, rz, n, a_n, a_raw, mean, rstd = \
            ctx.saved_tensors
        reset_after, kernels = ctx.reset_after, ctx.kernels
        T, B, H = n.shape
        A = 3 * H if reset_after else 2 * H
        mm_a_back = _MatMul(weight_hh[:A].t(), B, T)
        mm_n_back = None if reset_after else _MatMul(weight_hh[A:].t(), B, T)
        h_rec = hs[:-1] if h_mask is None else hs[:-1] * h_mask
        keep_t, g_out = _steps(keep, T), _output_grads(grad_out, out_mask, T)
        d_x = torch.empty(T, B, 3 * H, dtype=n.dtype, device=n.device)   # d x_proj
        d_a = torch.empty(T, B, A, dtype=n.dtype, device=n.device)       # d (a after layer norm)
        d_a_raw = torch.empty_like(d_a) if ln_w is not None else d_a
        carry = torch.empty_like(hs[0])
        dh = grad_h_n.contiguous() if grad_h_n is not None else torch.zeros_like(hs[0])
        rz_t, n_t, a_n_t, hs_t, d_x_t, d_a_t, d_a_raw_t, h_rec_t, a_raw_t, mean_t, rstd_t = (
            _steps(v, T + 1) for v in (rz, n, a_n, hs, d_x, d_a, d_a_raw, h_rec, a_raw, mean, rstd))
        for t in range(T - 1, -1, -1):
            if kernels is not None:
                kernels.gru_backward(dh, g_out[t], keep_t[t], rz_t[t], n_t[t], a_n_t[t], hs_t[t],
                                     d_x_t[t], d_a_t[t], carry)
                c, d_rh = carry, None
            else:
                c, d_rh = _gru_step_back(_plus(dh, g_out[t]), keep_t[t], rz_t[t], n_t[t],
                                         a_n_t[t], hs_t[t], h_rec_t[t], reset_after, d_x_t[t],
                                         d_a_t[t], mm_n_back)
            if ln_w is not None:
                d_a_raw_t[t].copy_(_layer_norm_input_grad(d_a_t[t], a_raw_t[t], mean_t[t],
                                                          rstd_t[t], ln_w))
            d_rec = mm_a_back(d_a_raw_t[t])
            if d_rh is not None:
                d_rec.addcmul_(d_rh, rz_t[t][:, :H])
            dh = (d_rec if h_mask is None else d_rec * h_mask).add_(c)
        d_ln_w = d_ln_b = None
        if ln_w is not None:
            d_ln_w, d_ln_b = _layer_norm_param_grads(d_a, a_raw, mean, rstd, (ln_w, ln_b))
        d_w = _weight_grad(d_a_raw, h_rec)
        d_b = d_a_raw.sum((0, 1)) if bias_hh is not None else None
        if not reset_after:
            d_n_pre = d_x[..., 2 * H:]
            d_w = torch.cat([d_w, _weight_grad(d_n_pre, rz[..., :H] * h_rec)])
            d_b = None if d_b is None else torch.cat([d_b, d_n_pre.sum((0, 1))])
        return d_x, dh, d_w, d_b, d_ln_w, d_ln_b, None, None, None, None, None


def gru_bptt(x_proj: Tensor, h0: Tensor, weight_hh: Tensor, bias_hh: Optional[Tensor], *,
             reset_after: bool = True, ln_hh: Optional[tuple[Tensor, Tensor]] = None,
             keep: Optional[Tensor] = None, out_mask: Optional[Tensor] = None,
             h_mask: Optional[Tensor] = None, kernels=None) -> tuple[Tensor, Tensor]:
    """``unroll(gru_step)`` with a hand-written backward: (T, B, 3H) x_proj -> outputs, h_T.
    The compiled ``kernels`` compute torch's form (reset_after=True) only."""
    if kernels is not None and not reset_after:
        raise ValueError("gru_bptt: the compiled kernels compute reset_after=True only")
    ln_w, ln_b = ln_hh if ln_hh is not None else (None, None)
    return _GRUFunction.apply(x_proj.contiguous(), h0.contiguous(), weight_hh, bias_hh, ln_w, ln_b,
                              keep, out_mask, h_mask, reset_after, kernels)


# ---- LSTM: i, f, o = σ(·) with peepholes, g = tanh(·), c' = f c + i g, h' = o tanh(LN(c')) ----------

class _LSTMFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_proj, h0, c0, weight_hh, bias_hh, w_ci, w_cf, w_co, ln_hh_w, ln_hh_b,
                ln_c_w, ln_c_b, keep_h, keep_c, out_mask, h_mask, kernels):
        T, (B, H) = x_proj.shape[0], h0.shape
        ln_hh = None if ln_hh_w is None else (ln_hh_w, ln_hh_b)
        ln_c = None if ln_c_w is None else (ln_c_w, ln_c_b)
        peep = w_ci is not None
        w_cif = torch.stack([w_ci, w_cf]) if peep else None              # (2, H)
        mm = _MatMul(weight_hh, B, T)
        x_t = x_proj.unbind(0)
        keep_h_t, keep_c_t = _steps(keep_h, T), _steps(keep_c, T)
        hs, cs = _states(h0, T), _states(c0, T)
        gates = x_proj.new_empty(T, B, 4 * H)              # σ(i), σ(f), tanh(g), σ(o)
        c_new, tanh_c = x_proj.new_empty(T, B, H), x_proj.new_empty(T, B, H)   # c' before zoneout
        # The layer norms' mean and 1/std per row and step (T, B, 2), and a before its norm.
        stats_hh, stats_c = (x_proj.new_empty(T, B, 2) if ln else None for ln in (ln_hh, ln_c))
        a_raws = []
        # per-step views, made once: indexing a list costs far less than indexing a tensor
        hs_t, cs_t, gates_t, c_new_t, tanh_c_t, stats_hh_t, stats_c_t = (
            _steps(v, T + 1) for v in (hs, cs, gates, c_new, tanh_c, stats_hh, stats_c))
        for t in range(T):
            h, c = hs_t[t], cs_t[t]
            h_rec = h if h_mask is None else h * h_mask
            a = mm(h_rec, bias_hh)                                         # (B, 4H)
            if ln_hh:
                a_raws.append(a)
            if kernels is not None:
                kernels.lstm_forward(a, x_t[t], h, c, w_ci, w_cf, w_co, ln_hh_w, ln_hh_b, ln_c_w,
                                     ln_c_b, keep_h_t[t], keep_c_t[t], gates_t[t], c_new_t[t],
                                     tanh_c_t[t], stats_hh_t[t], stats_c_t[t], hs_t[t + 1],
                                     cs_t[t + 1])
                continue
            if ln_hh:
                a, mean, rstd = _layer_norm(a, ln_hh)
                torch.cat([mean, rstd], -1, out=stats_hh_t[t])
            pre = a.add_(x_t[t])
            if peep:    # i and f see the old cell
                pre[:, :2 * H].view(B, 2, H).addcmul_(w_cif, c.unsqueeze(1))
            g = torch.sigmoid(pre, out=gates_t[t])                        # σ(i), σ(f), ·, σ(o)
            torch.tanh(pre[:, 2 * H:3 * H], out=g[:, 2 * H:3 * H])
            i, f, gg = g[:, :H], g[:, H:2 * H], g[:, 2 * H:3 * H]
            torch.addcmul(f * c, i, gg, out=c_new_t[t])
            if peep:    # o sees the new cell
                torch.sigmoid(torch.addcmul(pre[:, 3 * H:], w_co, c_new_t[t]), out=g[:, 3 * H:])
            c_norm = c_new_t[t]
            if ln_c:
                c_norm, mean, rstd = _layer_norm(c_new_t[t], ln_c)
                torch.cat([mean, rstd], -1, out=stats_c_t[t])
            _lerp(g[:, 3 * H:] * torch.tanh(c_norm, out=tanh_c_t[t]), h, keep_h_t[t],
                  hs_t[t + 1])
            _lerp(c_new_t[t], c, keep_c_t[t], cs_t[t + 1])
        ctx.kernels = kernels
        ctx.save_for_backward(weight_hh, bias_hh, w_ci, w_cf, w_co, ln_hh_w, ln_hh_b, ln_c_w, ln_c_b,
                              keep_h, keep_c, out_mask, h_mask, hs, cs, gates, c_new, tanh_c,
                              torch.stack(a_raws) if ln_hh else None, stats_hh, stats_c)
        return _outputs(hs[1:], out_mask), hs[-1], cs[-1]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_h_n, grad_c_n):
        (weight_hh, bias_hh, w_ci, w_cf, w_co, ln_hh_w, ln_hh_b, ln_c_w, ln_c_b, keep_h, keep_c,
         out_mask, h_mask, hs, cs, gates, c_new, tanh_c, a_raw, stats_hh, stats_c) = ctx.saved_tensors
        kernels = ctx.kernels
        T, B, H = c_new.shape
        peep = w_ci is not None
        w_cif = torch.stack([w_ci, w_cf]) if peep else None               # (2, H)
        mm_back = _MatMul(weight_hh.t(), B, T)
        i, f, g, o = gates.split(H, -1)
        keep_h_t, keep_c_t = _steps(keep_h, T), _steps(keep_c, T)
        g_out = _output_grads(grad_out, out_mask, T)
        d_pre = torch.empty_like(gates)              # d of the gate pre-activations (T, B, 4H)
        d_a = torch.empty_like(gates) if ln_hh_w is not None else d_pre  # … before layer norm
        d_c_norm_all = torch.empty_like(c_new) if ln_c_w is not None else None
        carry_h, dc_next = torch.empty_like(hs[0]), torch.empty_like(cs[0])
        dh = grad_h_n.contiguous() if grad_h_n is not None else torch.zeros_like(hs[0])
        # a copy: the kernels write dc_next and dc by turns
        dc = grad_c_n.clone() if grad_c_n is not None else torch.zeros_like(cs[0])
        hs_t, cs_t, gates_t, c_new_t, tanh_c_t, stats_hh_t, stats_c_t, d_pre_t, a_raw_t = (
            _steps(v, T + 1) for v in (hs, cs, gates, c_new, tanh_c, stats_hh, stats_c, d_pre,
                                       a_raw))
        d_a_t, d_c_norm_all_t = _steps(d_a, T), _steps(d_c_norm_all, T)
        for t in range(T - 1, -1, -1):
            dp = d_pre_t[t]
            if kernels is not None:
                kernels.lstm_backward(dh, g_out[t], dc, keep_h_t[t], keep_c_t[t], gates_t[t],
                                      tanh_c_t[t], cs_t[t], w_ci, w_cf, w_co, ln_c_w,
                                      c_new_t[t] if ln_c_w is not None else None, stats_c_t[t],
                                      ln_hh_w, a_raw_t[t], stats_hh_t[t], dp, d_c_norm_all_t[t],
                                      None if ln_hh_w is None else d_a_t[t], carry_h, dc_next)
                c_h, (dc, dc_next) = carry_h if keep_h is not None else None, (dc_next, dc)
            else:
                d_h_new, c_h = _split(_plus(dh, g_out[t]), keep_h_t[t])
                d_c_new, carry_c = _split(dc, keep_c_t[t])
                # h' = o ⊙ tanh(LN(c'))
                d_o = torch.mul(d_h_new * tanh_c_t[t], o[t] * (1 - o[t]), out=dp[:, 3 * H:])
                d_c_norm = d_h_new * o[t] * (1 - tanh_c_t[t] * tanh_c_t[t])
                if ln_c_w is not None:
                    d_c_norm_all_t[t].copy_(d_c_norm)
                    d_c_norm = _layer_norm_input_grad(d_c_norm, c_new_t[t],
                                                      *_mean_rstd(stats_c_t[t]), ln_c_w)
                d_c_new = d_c_new + d_c_norm
                if peep:
                    d_c_new.addcmul_(w_co, d_o)
                # c' = f ⊙ c + i ⊙ g
                torch.mul(d_c_new * g[t], i[t] * (1 - i[t]), out=dp[:, :H])
                torch.mul(d_c_new * cs_t[t], f[t] * (1 - f[t]), out=dp[:, H:2 * H])
                torch.mul(d_c_new * i[t], 1 - g[t] * g[t], out=dp[:, 2 * H:3 * H])
                dc = d_c_new * f[t]
                if peep:
                    dc.add_((dp[:, :2 * H].view(B, 2, H) * w_cif).sum(1))
                dc = _plus(dc, carry_c)
            if ln_hh_w is not None and kernels is None:
                d_a_t[t].copy_(_layer_norm_input_grad(dp, a_raw_t[t], *_mean_rstd(stats_hh_t[t]),
                                                      ln_hh_w))
            d_rec = mm_back(d_a_t[t])
            dh = _plus(d_rec if h_mask is None else d_rec * h_mask, c_h)
        h_rec = hs[:-1] if h_mask is None else hs[:-1] * h_mask
        d_w = _weight_grad(d_a, h_rec)
        d_b = d_a.sum((0, 1)) if bias_hh is not None else None
        d_peep = (None,) * 3
        if peep:
            d_peep = ((d_pre[..., :H] * cs[:-1]).sum((0, 1)),
                      (d_pre[..., H:2 * H] * cs[:-1]).sum((0, 1)),
                      (d_pre[..., 3 * H:] * c_new).sum((0, 1)))
        d_ln_hh = (None, None)
        if ln_hh_w is not None:
            d_ln_hh = _layer_norm_param_grads(d_pre, a_raw, *_mean_rstd(stats_hh), (ln_hh_w, ln_hh_b))
        d_ln_c = (None, None)
        if ln_c_w is not None:
            d_ln_c = _layer_norm_param_grads(d_c_norm_all, c_new, *_mean_rstd(stats_c), (ln_c_w, ln_c_b))
        return (d_pre, dh, dc, d_w, d_b, *d_peep, *d_ln_hh, *d_ln_c,
                None, None, None, None, None)


def lstm_bptt(x_proj: Tensor, state0: tuple[Tensor, Tensor], weight_hh: Tensor,
              bias_hh: Optional[Tensor], *, peepholes: Optional[tuple[Tensor, Tensor, Tensor]] = None,
              ln_hh: Optional[tuple[Tensor, Tensor]] = None,
              ln_c: Optional[tuple[Tensor, Tensor]] = None,
              keep: Optional[tuple[Tensor, Tensor]] = None, out_mask: Optional[Tensor] = None,
              h_mask: Optional[Tensor] = None, kernels=None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """``unroll(lstm_step)`` (no projection) with a hand-written backward: (T, B, 4H) x_proj ->
    outputs, (h_T, c_T). ``keep`` holds one tensor for h and one for c."""
    w_ci, w_cf, w_co = peepholes if peepholes is not None else (None,) * 3
    ln_hh_w, ln_hh_b = ln_hh if ln_hh is not None else (None, None)
    ln_c_w, ln_c_b = ln_c if ln_c is not None else (None, None)
    keep_h, keep_c = keep if keep is not None else (None, None)
    out, h_n, c_n = _LSTMFunction.apply(x_proj.contiguous(), state0[0].contiguous(),
                                        state0[1].contiguous(), weight_hh, bias_hh, w_ci, w_cf,
                                        w_co, ln_hh_w, ln_hh_b, ln_c_w, ln_c_b, keep_h, keep_c,
                                        out_mask, h_mask, kernels)
    return out, (h_n, c_n)
