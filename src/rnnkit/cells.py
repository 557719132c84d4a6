"""One time step of each recurrent cell, written as the lecture equations, plus thin Module shells.

Shapes: B batch, I input size, H hidden size, P projection size (LSTM ``proj_size``), G = gates * H.

Every cell is split in two so that the time loop can do the input work for all steps in one GEMM:

    x_proj = input_projection(x)                # W_ih x + b_ih        (…, G)   done once for all T
    h_new  = *_step(x_proj, state, ...)         # the recurrence       (B, H)   done T times

``rnn_cell``/``lstm_cell``/``gru_cell`` compose the two for a single step, with torch.nn's argument
order. Conventions are PyTorch's: LSTM gates i, f, g, o; GRU gates r, z, n; state ``(h, c)``.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "rnn_step", "lstm_step", "gru_step", "lstm_gates", "gru_gates", "rnn_cell", "lstm_cell",
    "gru_cell", "RNNCell", "LSTMCell", "GRUCell", "LayerNormParams",
]

# Layer normalisation (Ba et al. 2016) is passed to the step functions as (weight, bias) pairs:
# ``ln_ih`` and ``ln_hh`` normalise the G gate pre-activations of each matmul, ``ln_c`` the LSTM cell
# before its tanh. ``None`` means "no layer norm" for that place.
LayerNormParams = Optional[tuple[Tensor, Tensor]]


def _norm(z: Tensor, ln: LayerNormParams) -> Tensor:
    return z if ln is None else F.layer_norm(z, z.shape[-1:], ln[0], ln[1])


def rnn_step(x_proj: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Optional[Tensor],
             nonlinearity: str = "tanh", h_mask: Optional[Tensor] = None) -> Tensor:
    """h' = act(W_ih x + b_ih + W_hh h + b_hh); ``x_proj`` (B, H) is W_ih x + b_ih.

    ``h_mask`` (B, H) is a variational-dropout mask (Gal & Ghahramani 2016) on the copy of h that
    enters the recurrent matmul; it is the same for every step of a sequence. The LSTM and GRU steps
    take it too.
    """
    h_rec = h if h_mask is None else h * h_mask
    pre = x_proj + F.linear(h_rec, weight_hh, bias_hh)                  # (B, H)
    if nonlinearity == "tanh":
        return torch.tanh(pre)
    if nonlinearity == "relu":
        return torch.relu(pre)
    raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


def lstm_step(x_proj: Tensor, state: tuple[Tensor, Tensor], weight_hh: Tensor,
              bias_hh: Optional[Tensor], weight_ci: Optional[Tensor] = None,
              weight_cf: Optional[Tensor] = None, weight_co: Optional[Tensor] = None,
              weight_hr: Optional[Tensor] = None, ln_hh: LayerNormParams = None,
              ln_c: LayerNormParams = None, h_mask: Optional[Tensor] = None
              ) -> tuple[Tensor, Tensor]:
    """One LSTM step; ``x_proj`` (B, 4H) is W_ih x + b_ih (already layer-normalised if asked).

        a = x_proj + W_hh h + b_hh                  split into a_i, a_f, a_g, a_o     (B, H) each
        i = σ(a_i + w_ci ⊙ c)   f = σ(a_f + w_cf ⊙ c)     (peepholes see the old cell c)
        g = tanh(a_g)           c' = f ⊙ c + i ⊙ g
        o = σ(a_o + w_co ⊙ c')                          (the output peephole sees the new cell)
        h' = o ⊙ tanh(c')       then h' = W_hr h' with an output projection (proj_size > 0)
    """
    gates = lstm_gates(x_proj, state, weight_hh, bias_hh, weight_ci, weight_cf, weight_co,
                       weight_hr, ln_hh, ln_c, h_mask)
    return gates["h"], gates["c"]


def lstm_gates(x_proj: Tensor, state: tuple[Tensor, Tensor], weight_hh: Tensor,
               bias_hh: Optional[Tensor], weight_ci: Optional[Tensor] = None,
               weight_cf: Optional[Tensor] = None, weight_co: Optional[Tensor] = None,
               weight_hr: Optional[Tensor] = None, ln_hh: LayerNormParams = None,
               ln_c: LayerNormParams = None, h_mask: Optional[Tensor] = None
               ) -> dict[str, Tensor]:
    """:func:`lstm_step` with every gate returned: {"i", "f", "g", "o", "c", "h"}, (B, H) each
    (h is (B, P) with a projection). The lab's gate statistics and the neuron viewer read these."""
    h, c = state                                                        # (B, P or H), (B, H)
    h_rec = h if h_mask is None else h * h_mask
    pre = x_proj + _norm(F.linear(h_rec, weight_hh, bias_hh), ln_hh)    # (B, 4H)
    a_i, a_f, a_g, a_o = pre.chunk(4, dim=-1)
    if weight_ci is not None:
        a_i = a_i + weight_ci * c
        a_f = a_f + weight_cf * c
    i, f, g = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g)
    c_new = f * c + i * g
    if weight_co is not None:
        a_o = a_o + weight_co * c_new
    o = torch.sigmoid(a_o)
    h_new = o * torch.tanh(_norm(c_new, ln_c))
    if weight_hr is not None:
        h_new = F.linear(h_new, weight_hr)                              # (B, P)
    return {"i": i, "f": f, "g": g, "o": o, "c": c_new, "h": h_new}


def gru_step(x_proj: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Optional[Tensor],
             reset_after: bool = True, ln_hh: LayerNormParams = None,
             h_mask: Optional[Tensor] = None) -> Tensor:
    """One GRU step; ``x_proj`` (B, 3H) is W_ih x + b_ih.

        r = σ(W_ir x + b_ir + W_hr h + b_hr)        z = σ(W_iz x + b_iz + W_hz h + b_hz)
        reset_after=True  (torch, cuDNN):  n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
        reset_after=False (Cho et al. 2014): n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)
        h' = (1 - z) ⊙ n + z ⊙ h
    Variational dropout (``h_mask``) drops only the matmul's copy of h, never the carried z ⊙ h.
    """
    return gru_gates(x_proj, h, weight_hh, bias_hh, reset_after, ln_hh, h_mask)["h"]


def gru_gates(x_proj: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Optional[Tensor],
              reset_after: bool = True, ln_hh: LayerNormParams = None,
              h_mask: Optional[Tensor] = None) -> dict[str, Tensor]:
    """:func:`gru_step` with every gate returned: {"r", "z", "n", "h"}, (B, H) each."""
    x_r, x_z, x_n = x_proj.chunk(3, dim=-1)                             # (B, H) each
    h_rec = h if h_mask is None else h * h_mask
    if reset_after:
        h_r, h_z, h_n = _norm(F.linear(h_rec, weight_hh, bias_hh), ln_hh).chunk(3, dim=-1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
    else:
        H = h.shape[-1]
        # r and z need W_h{r,z} h first; the candidate's matmul must wait for r.
        b_rz = None if bias_hh is None else bias_hh[: 2 * H]
        h_r, h_z = _norm(F.linear(h_rec, weight_hh[: 2 * H], b_rz), ln_hh).chunk(2, dim=-1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        b_n = None if bias_hh is None else bias_hh[2 * H:]
        n = torch.tanh(x_n + F.linear(r * h_rec, weight_hh[2 * H:], b_n))
    return {"r": r, "z": z, "n": n, "h": (1 - z) * n + z * h}


# ---- single-step functions with torch.nn's argument order ------------------------------------------

def rnn_cell(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Optional[Tensor] = None, bias_hh: Optional[Tensor] = None,
             nonlinearity: str = "tanh") -> Tensor:
    return rnn_step(F.linear(x, weight_ih, bias_ih), h, weight_hh, bias_hh, nonlinearity)


def lstm_cell(x: Tensor, state: tuple[Tensor, Tensor], weight_ih: Tensor, weight_hh: Tensor,
              bias_ih: Optional[Tensor] = None, bias_hh: Optional[Tensor] = None,
              weight_ci: Optional[Tensor] = None, weight_cf: Optional[Tensor] = None,
              weight_co: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    return lstm_step(F.linear(x, weight_ih, bias_ih), state, weight_hh, bias_hh,
                     weight_ci, weight_cf, weight_co)


def gru_cell(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Optional[Tensor] = None, bias_hh: Optional[Tensor] = None,
             reset_after: bool = True) -> Tensor:
    return gru_step(F.linear(x, weight_ih, bias_ih), h, weight_hh, bias_hh, reset_after)


# ---- Module shells: torch.nn.RNNCell/LSTMCell/GRUCell drop-ins --------------------------------------

class _CellBase(nn.Module):
    """Parameters ``weight_ih`` (G, I), ``weight_hh`` (G, H), ``bias_ih``/``bias_hh`` (G,) as torch."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(f"input_size and hidden_size must be positive, got "
                             f"{input_size} and {hidden_size}")
        kw = {"device": device, "dtype": dtype}
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        G = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(G, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(G, hidden_size, **kw))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(G, **kw))
            self.bias_hh = nn.Parameter(torch.empty(G, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)

    def reset_parameters(self) -> None:
        # torch's initialisation: U(-1/sqrt(H), 1/sqrt(H)) for every parameter.
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _check(self, x: Tensor) -> tuple[Tensor, bool]:
        if x.dim() not in (1, 2):
            raise ValueError(f"{type(self).__name__}: expected input of shape (B, {self.input_size}) "
                             f"or ({self.input_size},), got {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: input has {x.shape[-1]} features, "
                             f"expected input_size={self.input_size}")
        batched = x.dim() == 2
        return (x if batched else x.unsqueeze(0)), batched

    def _zeros(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], self.hidden_size)

    def _check_state(self, t: Tensor, batched: bool, B: int, size: int, name: str) -> Tensor:
        want = (B, size) if batched else (size,)          # in the caller's own (un)batched shapes
        if tuple(t.shape) != want:
            raise ValueError(f"{type(self).__name__}: {name} has shape {tuple(t.shape)}, "
                             f"expected {want}")
        return t if batched else t.unsqueeze(0)


class RNNCell(_CellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity
        self.reset_parameters()

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        x, batched = self._check(input)
        h = self._zeros(x) if hx is None else self._check_state(hx, batched, x.shape[0],
                                                                  self.hidden_size, "hx")
        h = rnn_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                     self.nonlinearity)
        return h if batched else h.squeeze(0)


class LSTMCell(_CellBase):
    """torch.nn.LSTMCell plus keyword-only ``peephole``, ``layer_norm`` and ``forget_bias``.

    ``forget_bias`` (e.g. 1.0) is added to ``bias_ih``'s forget slice at initialisation, the classic
    remedy for early forgetting (Gers et al. 2000; Jozefowicz et al. 2015).
    """

    gates = 4

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None, *, peephole: bool = False, layer_norm: bool = False,
                 forget_bias: float = 0.0) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype)
        kw = {"device": device, "dtype": dtype}
        self.peephole, self.layer_norm, self.forget_bias = peephole, layer_norm, forget_bias
        if peephole:
            for name in ("weight_ci", "weight_cf", "weight_co"):
                setattr(self, name, nn.Parameter(torch.empty(hidden_size, **kw)))
        if layer_norm:
            _add_layer_norm(self, "", 4 * hidden_size, hidden_size, kw)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        _reset_layer_norm(self, "")
        if self.bias and self.forget_bias:
            H = self.hidden_size
            with torch.no_grad():
                self.bias_ih[H:2 * H] += self.forget_bias

    def forward(self, input: Tensor, hx: Optional[tuple[Tensor, Tensor]] = None
                ) -> tuple[Tensor, Tensor]:
        x, batched = self._check(input)
        B = x.shape[0]
        if hx is None:
            state = (self._zeros(x), self._zeros(x))
        else:
            state = (self._check_state(hx[0], batched, B, self.hidden_size, "h_0"),
                     self._check_state(hx[1], batched, B, self.hidden_size, "c_0"))
        ln = _layer_norm_params(self, "")
        x_proj = _norm(F.linear(x, self.weight_ih, self.bias_ih), ln["ih"])
        peep = (self.weight_ci, self.weight_cf, self.weight_co) if self.peephole else (None,) * 3
        h, c = lstm_step(x_proj, state, self.weight_hh, self.bias_hh, *peep,
                         ln_hh=ln["hh"], ln_c=ln["c"])
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(_CellBase):
    """torch.nn.GRUCell plus keyword-only ``reset_after`` (False: Cho et al.'s form) and ``layer_norm``."""

    gates = 3

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None, *, reset_after: bool = True, layer_norm: bool = False) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.reset_after, self.layer_norm = reset_after, layer_norm
        if layer_norm:
            G = 3 * hidden_size if reset_after else 2 * hidden_size
            _add_layer_norm(self, "", 3 * hidden_size, None, {"device": device, "dtype": dtype},
                            hh_size=G)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        _reset_layer_norm(self, "")

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        x, batched = self._check(input)
        h = self._zeros(x) if hx is None else self._check_state(hx, batched, x.shape[0],
                                                                  self.hidden_size, "hx")
        ln = _layer_norm_params(self, "")
        x_proj = _norm(F.linear(x, self.weight_ih, self.bias_ih), ln["ih"])
        h = gru_step(x_proj, h, self.weight_hh, self.bias_hh, self.reset_after, ln_hh=ln["hh"])
        return h if batched else h.squeeze(0)


# ---- layer-norm parameters, shared by the cells and the layers --------------------------------------
# Names: ``ln_ih_weight{suffix}``, ``ln_ih_bias{suffix}``, ``ln_hh_*``, ``ln_c_*`` (LSTM only), where the
# layers use suffixes like ``_l0`` / ``_l0_reverse`` as torch does for the other parameters.

def _add_layer_norm(module: nn.Module, suffix: str, ih_size: int, c_size: Optional[int], kw: dict,
                    hh_size: Optional[int] = None) -> None:
    sizes = {"ih": ih_size, "hh": hh_size or ih_size}
    if c_size is not None:
        sizes["c"] = c_size
    for place, size in sizes.items():
        module.register_parameter(f"ln_{place}_weight{suffix}", nn.Parameter(torch.empty(size, **kw)))
        module.register_parameter(f"ln_{place}_bias{suffix}", nn.Parameter(torch.empty(size, **kw)))


def _reset_layer_norm(module: nn.Module, suffix: str) -> None:
    for place in ("ih", "hh", "c"):
        w = getattr(module, f"ln_{place}_weight{suffix}", None)
        if w is not None:
            nn.init.ones_(w)
            nn.init.zeros_(getattr(module, f"ln_{place}_bias{suffix}"))


def _layer_norm_params(module: nn.Module, suffix: str) -> dict[str, LayerNormParams]:
    out: dict[str, LayerNormParams] = {}
    for place in ("ih", "hh", "c"):
        w = getattr(module, f"ln_{place}_weight{suffix}", None)
        out[place] = None if w is None else (w, getattr(module, f"ln_{place}_bias{suffix}"))
    return out
