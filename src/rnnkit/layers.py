"""LSTM / GRU / RNN layers: drop-in replacements for torch.nn's, built from ``cells`` + ``unroll``.

Shapes: T time, B batch, I input size, H hidden size, P LSTM projection size (H_out = P or H),
L layers, D directions (2 if bidirectional else 1), G = gates · H.

Same constructor, parameter names (``weight_ih_l0``, ``bias_hh_l1_reverse``, ``weight_hr_l0``…),
shapes, return values and ``PackedSequence`` handling as torch.nn, so ``load_state_dict`` works both
ways. Extras, keyword-only: ``forward(..., lengths=)`` without packing; LSTM ``peephole``,
``layer_norm``, ``forget_bias``; GRU ``reset_after`` and ``layer_norm``; ``recurrent_dropout``
(variational) and ``zoneout``, both active only in ``train()``; ``checkpoint_every=K`` (gradient
checkpointing over chunks of K steps: memory grows with T/K for one more forward pass).

Three implementations, chosen explicitly and reported in ``layer.last_impl``:

* ``"fused"``: torch's own kernel (oneDNN on CPU, cuDNN on GPU) called with this layer's weights, for
  the configurations it computes (plain LSTM incl. projection, GRU with reset_after=True, RNN);
* ``"bptt"``: the same equations with the backward pass written out by hand (``bptt``): one GEMM per
  step each way and the weight gradients as one GEMM over all steps. It computes everything but the
  LSTM projection, and on the CPU it beats torch's own GRU and RNN, which oneDNN does not fuse;
* ``"loop"``: the readable reference, ``unroll`` over the step functions of ``cells``; it computes
  everything, and the tests prove all three give the same outputs and gradients.

``impl="auto"`` takes the fastest that applies (measured by ``rnnkit bench``): the fused kernel for
the LSTM (but for single steps), on a GPU and for inference; ``bptt`` to train the GRU and RNN and
whatever torch has no kernel for. ``impl="fused"`` or ``"bptt"`` raise if they cannot compute the
configuration; ``impl="loop"`` always loops. With a C++ compiler, bptt runs each step's pointwise
maths as one compiled pass (``kernels``; ``last_impl`` then reads "bptt+kernels").
"""
from __future__ import annotations

import math
from functools import partial
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .bptt import gru_bptt, lstm_bptt, rnn_bptt
from .cells import _add_layer_norm, _layer_norm_params, _norm, _reset_layer_norm, gru_gates, \
    lstm_gates, rnn_step
from .kernels import load, step_kernels
from .unroll import State, check_lengths, map_state, mask_padding, reverse_within_lengths, \
    time_mask, unroll

__all__ = ["RNN", "LSTM", "GRU"]

IMPLS = ("auto", "fused", "bptt", "loop")


def dropout(x: Tensor, p: float) -> Tensor:
    """Inverted dropout, as F.dropout in train(): x ⊙ mask, mask = 1/(1 - p) where a uniform draw
    is ≥ p, else 0. Between layers here and before a language model's output layer.

    On the CPU the mask comes from the compiled kernels' counter-based generator, seeded by one
    draw from torch's (so torch.manual_seed fixes it): ~20× faster than torch's sequential CPU
    generator, whose two masks took a sixth of a 2×512 LSTM language model's training step.
    Elsewhere, or without the kernels, from torch.rand (torch's CPU bernoulli_ is slower still).
    """
    kernels = load() if x.device.type == "cpu" and x.dtype in DROPOUT_KERNEL_DTYPES else None
    if kernels is None:
        return x * ((torch.rand_like(x) >= p).to(x.dtype) / (1.0 - p))
    mask = torch.empty_like(x, memory_format=torch.contiguous_format)
    kernels.dropout_mask(mask, int(torch.randint(2 ** 62, ())), p)
    return x * mask


DROPOUT_KERNEL_DTYPES = (torch.float32, torch.float64, torch.bfloat16)


class _WriteChunk(torch.autograd.Function):
    """out[start : start + len(chunk)] = chunk, in place, for assembling checkpointed chunks one
    by one: each chunk can be freed once written (torch.cat would need them all alive beside the
    result, doubling the peak), and the backward hands each chunk a view of the gradient (the
    in-place slice assignment's own backward would clone the whole gradient once per chunk)."""

    @staticmethod
    def forward(ctx, out: Tensor, chunk: Tensor, start: int) -> Tensor:
        out[start: start + chunk.shape[0]] = chunk
        ctx.mark_dirty(out)
        ctx.span = (start, start + chunk.shape[0])
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        start, end = ctx.span
        return grad, grad[start:end], None


class _RecurrentLayer(nn.Module):
    gates = 1
    cell_name = "RNN"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None, *, layer_norm: bool = False,
                 recurrent_dropout: float = 0.0, zoneout: float = 0.0, impl: str = "auto",
                 checkpoint_every: Optional[int] = None) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{self.cell_name}: {name} must be a positive integer, got {value!r}")
        for name, p in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout),
                        ("zoneout", zoneout)):
            if not 0.0 <= float(p) < 1.0:
                raise ValueError(f"{self.cell_name}: {name} must be in [0, 1), got {p!r}")
        if proj_size < 0 or (proj_size > 0 and proj_size >= hidden_size):
            raise ValueError(f"{self.cell_name}: proj_size must be in [0, hidden_size), "
                             f"got {proj_size}")
        if impl not in IMPLS:
            raise ValueError(f"{self.cell_name}: impl must be one of {IMPLS}, got {impl!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.dropout, self.proj_size = float(dropout), proj_size
        self.layer_norm = layer_norm
        self.recurrent_dropout, self.zoneout = float(recurrent_dropout), float(zoneout)
        self.impl = impl
        self.last_impl: Optional[str] = None
        if checkpoint_every is not None:
            if checkpoint_every <= 0:
                raise ValueError(f"{self.cell_name}: checkpoint_every must be positive, got "
                                 f"{checkpoint_every}")
            if bidirectional:
                raise ValueError(f"{self.cell_name}: checkpoint_every runs the sequence in chunks "
                                 f"left to right, which a bidirectional layer cannot")
        self.checkpoint_every = checkpoint_every

        kw = {"device": device, "dtype": dtype}
        G, H_out = self.gates * hidden_size, proj_size or hidden_size
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else H_out * self.num_directions
            for suffix in self._suffixes(layer):
                # Registration order is torch's, so parameters() lists them in the same order.
                self.register_parameter(f"weight_ih{suffix}", nn.Parameter(torch.empty(G, layer_in, **kw)))
                self.register_parameter(f"weight_hh{suffix}", nn.Parameter(torch.empty(G, H_out, **kw)))
                if bias:
                    self.register_parameter(f"bias_ih{suffix}", nn.Parameter(torch.empty(G, **kw)))
                    self.register_parameter(f"bias_hh{suffix}", nn.Parameter(torch.empty(G, **kw)))
                if proj_size:
                    self.register_parameter(f"weight_hr{suffix}",
                                            nn.Parameter(torch.empty(proj_size, hidden_size, **kw)))
                self._add_extra_parameters(suffix, kw)

    # -- structure -------------------------------------------------------------------------------

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.num_directions]

    def _add_extra_parameters(self, suffix: str, kw: dict) -> None:
        """Cell-specific parameters beyond torch's (peepholes, layer norm)."""

    def reset_parameters(self) -> None:
        # torch's initialisation: U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias.
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        for layer in range(self.num_layers):
            for suffix in self._suffixes(layer):
                _reset_layer_norm(self, suffix)

    def flatten_parameters(self) -> None:
        """Accepted for drop-in compatibility with torch.nn; the fused path needs no flat buffer."""

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False), ("proj_size", 0), ("layer_norm", False),
                              ("recurrent_dropout", 0.0), ("zoneout", 0.0), ("impl", "auto")):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)!r}"
        return s

    # -- implementation choice ---------------------------------------------------------------------

    def fused_unsupported(self) -> Optional[str]:
        """Why torch's fused kernel cannot compute this configuration now (None if it can)."""
        if self.layer_norm:
            return "layer_norm"
        if self.recurrent_dropout and self.training:
            return "recurrent_dropout in train()"
        if self.zoneout:
            return "zoneout"  # its eval form (h = z·h_old + (1 - z)·h_new) is not torch's either
        return None

    def bptt_unsupported(self) -> Optional[str]:
        """Why the hand-written BPTT cannot compute this configuration (None if it can)."""
        return None

    def kernels_unsupported(self) -> Optional[str]:
        """Why bptt's compiled step kernels (``rnnkit.kernels``) cannot compute this
        configuration, which then runs its steps as torch ops (None if they can)."""
        return None

    def _choose_impl(self, x: Tensor) -> str:
        fused, bptt = self.fused_unsupported(), self.bptt_unsupported()
        for impl, reason, what in (("fused", fused, "torch's fused kernel"),
                                   ("bptt", bptt, "the hand-written BPTT")):
            if self.impl == impl and reason is not None:
                raise RuntimeError(f"{self.cell_name}: impl={impl!r} but {what} does not compute "
                                   f"{reason}; use impl='auto' or 'loop'")
        if self.impl != "auto":
            return self.impl
        # Measured (rnnkit bench, 2-core CPU): torch's LSTM kernel is oneDNN's and fastest;
        # its CPU GRU and RNN are not fused, and bptt trains them in 0.6–1.0 of their time, while
        # for inference alone (no backward) torch's C++ loop is as fast or faster. cuDNN fuses all.
        training = torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())
        # oneDNN's LSTM lays its weights out anew at every call: for one step per call that costs
        # more than the step itself (2×512 LSTM: 5.7 ms a step against bptt's 1.4 ms).
        one_step_lstm = self.cell_name == "LSTM" and x.shape[0] == 1 and bptt is None
        if fused is None and x.device.type == "cpu" and one_step_lstm:
            return "bptt"
        if fused is None and (self.cell_name == "LSTM" or x.device.type != "cpu" or not training):
            return "fused"
        return "bptt" if bptt is None else "fused" if fused is None else "loop"

    # -- forward -----------------------------------------------------------------------------------

    def forward(self, input: Union[Tensor, PackedSequence], hx: Optional[State] = None, *,
                lengths: Optional[Union[Tensor, list[int]]] = None):
        """Returns ``(output, h_n)`` (RNN, GRU) or ``(output, (h_n, c_n))`` (LSTM), as torch.nn.

        ``output`` is (T, B, D·H_out) — (B, T, D·H_out) with ``batch_first`` — or a PackedSequence
        for a packed input; states are (L·D, B, H_out) and, for LSTM, c (L·D, B, H).
        """
        packed = isinstance(input, PackedSequence)
        if packed:
            if lengths is not None:
                raise ValueError(f"{self.cell_name}: pass lengths= or a PackedSequence, not both")
            x, lengths = pad_packed_sequence(input)                       # (T, B, I), original order
            unbatched = False
        else:
            if input.dim() not in (2, 3):
                raise ValueError(f"{self.cell_name}: expected input of 3 dimensions (T, B, I) "
                                 f"or 2 (T, I) unbatched, got shape {tuple(input.shape)}")
            unbatched = input.dim() == 2
            x = input.unsqueeze(1) if unbatched else (
                input.transpose(0, 1) if self.batch_first else input)    # (T, B, I)
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{self.cell_name}: input has {x.shape[-1]} features in its last "
                             f"dimension, expected input_size={self.input_size}")
        T, B = x.shape[0], x.shape[1]
        if lengths is not None:
            lengths = check_lengths(lengths, T, B, x.device)
        state0 = self._initial_state(x, hx, unbatched)

        self.last_impl = self._choose_impl(x)
        run = {"fused": self._forward_fused, "bptt": self._forward_bptt,
               "loop": self._forward_loop}[self.last_impl]
        if self.last_impl == "bptt" and self.kernels_unsupported() is None:
            kernels = step_kernels(x)
            if kernels is not None:
                self.last_impl = "bptt+kernels"
                run = partial(self._forward_bptt, kernels=kernels)
        K = self.checkpoint_every
        if K and T > K and torch.is_grad_enabled():
            out, state = self._forward_checkpointed(run, x, state0, lengths, K)
        else:
            out, state = run(x, state0, lengths)                          # (T, B, D·H_out)

        if packed:
            # Re-pack in the input's own sorted order, so that data and batch_sizes line up with it.
            order = input.sorted_indices
            sorted_out = out if order is None else out.index_select(1, order)
            sorted_len = lengths.cpu() if order is None else lengths.cpu()[order.cpu()]
            data = pack_padded_sequence(sorted_out, sorted_len, enforce_sorted=True).data
            return PackedSequence(data, input.batch_sizes, input.sorted_indices,
                                  input.unsorted_indices), state
        if unbatched:
            return out.squeeze(1), map_state(lambda s: s.squeeze(1), state)
        return (out.transpose(0, 1) if self.batch_first else out), state

    def _forward_checkpointed(self, run, x: Tensor, state0: State, lengths: Optional[Tensor],
                              K: int):
        """Gradient checkpointing over time (the lectures' out-of-memory problem of long unrolls):
        the sequence runs in chunks of K steps, carrying the state; backward keeps only the states
        between chunks and re-runs one chunk at a time, so memory grows with T/K, not T, for one
        more forward pass. Same outputs and gradients (torch.utils.checkpoint restores the RNG
        state for dropout); a recurrent-dropout mask is drawn per chunk."""
        from torch.utils.checkpoint import checkpoint

        def chunk(xs: Tensor, chunk_lengths: Optional[Tensor], *state: Tensor):
            out, new = run(xs, state[0] if len(state) == 1 else state, chunk_lengths)
            return (out, new) if isinstance(new, Tensor) else (out, *new)

        out, state = None, (state0,) if isinstance(state0, Tensor) else tuple(state0)
        for start in range(0, x.shape[0], K):
            xs = x[start: start + K]                                       # (≤K, B, I)
            ls = None if lengths is None else (lengths - start).clamp(0, xs.shape[0])
            chunk_out, *state = checkpoint(chunk, xs, ls, *state, use_reentrant=False)
            if out is None:
                out = chunk_out.new_empty(x.shape[0], *chunk_out.shape[1:])  # (T, B, D·H_out)
            out = _WriteChunk.apply(out, chunk_out, start)
        return out, (state[0] if len(state) == 1 else tuple(state))

    def _initial_state(self, x: Tensor, hx: Optional[State], unbatched: bool) -> State:
        B, LD = x.shape[1], self.num_layers * self.num_directions
        shapes = self._state_shapes(LD, B)
        if hx is None:
            zeros = tuple(x.new_zeros(shape) for shape in shapes)
            return zeros if len(zeros) > 1 else zeros[0]
        parts = (hx,) if isinstance(hx, Tensor) else tuple(hx)
        if len(parts) != len(shapes):
            raise ValueError(f"{self.cell_name}: expected a hidden state of {len(shapes)} tensor(s), "
                             f"got {len(parts)}")
        checked = []
        for name, part, shape in zip(("h_0", "c_0"), parts, shapes):
            part = part.unsqueeze(1) if unbatched else part
            if tuple(part.shape) != shape:
                want = shape if not unbatched else (shape[0], shape[2])
                got = part.shape if not unbatched else part.squeeze(1).shape
                raise ValueError(f"{self.cell_name}: {name} has shape {tuple(got)}, expected {want} "
                                 f"(layers × directions, batch, hidden)")
            checked.append(part)
        return tuple(checked) if len(checked) > 1 else checked[0]

    def _state_shapes(self, LD: int, B: int) -> list[tuple[int, int, int]]:
        return [(LD, B, self.proj_size or self.hidden_size)]

    # -- the fused kernel ----------------------------------------------------------------------------

    def _flat_weights(self, layers) -> list[Tensor]:
        names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if self.bias else []) + \
                (["weight_hr"] if self.proj_size else [])
        return [getattr(self, n + s) for layer in layers for s in self._suffixes(layer) for n in names]

    def _fused_kernel(self):
        raise NotImplementedError

    def _forward_fused(self, x: Tensor, state0: State, lengths: Optional[Tensor]):
        if not (self.dropout and self.training and self.num_layers > 1):
            return self._fused_layers(x, state0, lengths, range(self.num_layers))
        # torch's kernel draws its inter-layer dropout mask with bernoulli_, which costs more than
        # a layer's GEMMs on this CPU (16 ms for a (100, 32, 256) output): run the layers one at a
        # time and drop between them as the other paths do.
        D, finals = self.num_directions, []
        for layer in range(self.num_layers):
            layer_state0 = map_state(lambda s: s[layer * D:(layer + 1) * D], state0)
            x, final = self._fused_layers(x, layer_state0, lengths, [layer])
            if layer < self.num_layers - 1:
                x = dropout(x, self.dropout)
            finals.append(final)
        return x, map_state(lambda *parts: torch.cat(parts), *finals)

    def _fused_layers(self, x: Tensor, state0: State, lengths: Optional[Tensor], layers):
        """torch's kernel over the given consecutive layers; state0 holds just theirs."""
        kernel = self._fused_kernel()
        as_arg = lambda s: s if isinstance(s, Tensor) else list(s)     # torch.lstm takes [h, c]
        args = (self._flat_weights(layers), self.bias, len(layers), self.dropout, self.training,
                self.bidirectional)
        if lengths is None:
            out, *state = kernel(x, as_arg(state0), *args, False)
            return out, (state[0] if len(state) == 1 else tuple(state))
        # Packing drops the padding, so the kernel never sees it. Zero-length rows cannot be packed:
        # they run one step on zeroed input, and their output and state are reset below.
        x = mask_padding(x, lengths)
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), enforce_sorted=False)
        order, unorder = packed.sorted_indices, packed.unsorted_indices
        hx_sorted = map_state(lambda s: s.index_select(1, order), state0)
        data, *state = kernel(packed.data, packed.batch_sizes, as_arg(hx_sorted), *args)
        out, _ = pad_packed_sequence(PackedSequence(data, packed.batch_sizes, order, unorder),
                                     total_length=x.shape[0])            # (T, B, D·H_out)
        state = tuple(s.index_select(1, unorder) for s in state)
        empty = (lengths == 0).view(1, -1, 1)
        if bool(empty.any()):
            out = out * time_mask(lengths, x.shape[0]).unsqueeze(-1)
            state = tuple(torch.where(empty, s0, s) for s, s0 in
                          zip(state, (state0,) if isinstance(state0, Tensor) else state0))
        return out, (state[0] if len(state) == 1 else state)

    # -- the readable loop ------------------------------------------------------------------------------

    def _step_fn(self, suffix: str, h_mask: Optional[Tensor], record: bool = False):
        """The cell's one-step function with this direction's weights bound:
        (x_proj, state) -> (output, state). The output is h, followed, with ``record``, by the
        values of ``gate_names`` concatenated on the last dimension (see :meth:`activations`)."""
        raise NotImplementedError

    def _forward_loop(self, x: Tensor, state0: State, lengths: Optional[Tensor],
                      record: Optional[list] = None):
        def direction(layer, d, suffix, x_proj, init):
            h_mask = self._recurrent_mask(init)         # masks drawn in the order bptt draws them
            keep = self._zoneout_keep(init, x_proj.shape[0])
            step = self._step_fn(suffix, h_mask, record is not None)
            out, final = unroll(self._with_zoneout(step, keep), x_proj, init, lengths=lengths,
                                reverse=d == 1)
            if record is not None:
                H_out = (final if isinstance(final, Tensor) else final[0]).shape[-1]
                out, *gates = out.split([H_out] + [self.hidden_size] * len(self.gate_names), -1)
                record.append({"layer": layer, "direction": d, "h": out,
                               **dict(zip(self.gate_names, gates))})
            return out, final
        return self._forward_stack(x, state0, lengths, direction)

    def _forward_bptt(self, x: Tensor, state0: State, lengths: Optional[Tensor], kernels=None):
        T, B = x.shape[0], x.shape[1]
        mask = None if lengths is None else time_mask(lengths, T).unsqueeze(-1)   # (T, B, 1)
        out_mask = None if mask is None else mask.to(x.dtype)
        frozen = None if mask is None else (~mask).to(x.dtype)     # keep = 1 past each length

        def direction(layer, d, suffix, x_proj, init):
            h_mask = self._recurrent_mask(init)
            # keep_t: 1 freezes the state past a row's length, zoneout's mask or z otherwise
            keep = self._zoneout_keep(init, T)
            if mask is not None:
                keep = tuple(torch.where(mask, k, 1.0) for k in keep) if keep is not None else \
                    (frozen,) * (1 if isinstance(init, Tensor) else 2)
            if d == 1:
                x_proj = reverse_within_lengths(x_proj, lengths)
            # Under autocast the input projection may come in bfloat16/float16; the recurrence
            # runs in the weights' precision, as the fused kernels do.
            with torch.autocast(x.device.type, enabled=False):
                out, final = self._bptt(suffix, x_proj.to(getattr(self, f"weight_hh{suffix}").dtype),
                                        init, keep, out_mask, h_mask, kernels)
            return (reverse_within_lengths(out, lengths) if d == 1 else out), final
        return self._forward_stack(x, state0, lengths, direction)

    def _forward_stack(self, x: Tensor, state0: State, lengths: Optional[Tensor], direction):
        """Layers × directions around ``direction(layer, d, suffix, x_proj, init) -> (out, final)``,
        which runs one direction's recurrence over its input projection (T, B, G)."""
        if lengths is not None:
            x = mask_padding(x, lengths)   # NaN padding must not reach the input-projection GEMM
        states0 = [s.unbind(0) for s in ((state0,) if isinstance(state0, Tensor) else state0)]
        finals, layer_input = [], x
        for layer in range(self.num_layers):
            outs = []
            for d, suffix in enumerate(self._suffixes(layer)):
                k = layer * self.num_directions + d
                init = tuple(s[k] for s in states0)
                init = init[0] if len(init) == 1 else init
                # All T input projections in one GEMM: (T, B, I) -> (T, B, G).
                ln = _layer_norm_params(self, suffix)
                x_proj = _norm(F.linear(layer_input, getattr(self, f"weight_ih{suffix}"),
                                        getattr(self, f"bias_ih{suffix}", None)), ln["ih"])
                out, final = direction(layer, d, suffix, x_proj, init)
                outs.append(out)                                          # (T, B, H_out)
                finals.append(final)
            layer_input = torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = dropout(layer_input, self.dropout)
        if isinstance(finals[0], Tensor):
            return layer_input, torch.stack(finals)
        return layer_input, tuple(torch.stack(parts) for parts in zip(*finals))

    def _bptt(self, suffix: str, x_proj: Tensor, init: State, keep, out_mask, h_mask, kernels):
        """One direction through this cell's function in ``bptt``."""
        raise NotImplementedError

    # -- one step at a time (generation) ---------------------------------------------------------

    @torch.no_grad()
    def stepper(self):
        """A function for generating one step at a time: ``step(x_t (B, I), state) -> (y_t (B,
        H_out), state)``, the state as forward's ((L, B, H) tensors, or None for zeros).

        In eval() on the CPU, for a unidirectional stack the compiled kernels compute (no layer
        norm, no projection), each layer's step is two GEMVs (x_t and h) and one kernel call, with
        none of forward()'s per-call work (a 2×512 LSTM LM samples 8× the characters per second
        of torch's LSTM at one step per call). Any other configuration steps through forward() with
        T = 1.
        ``step.impl`` says which: "step+kernels" or "forward".
        """
        w = self.weight_hh_l0
        kernels = step_kernels(w) if not (self.training or self.bidirectional or self.layer_norm
                                          or self.proj_size or self.bptt_unsupported()
                                          or self.kernels_unsupported()) else None
        if kernels is None:
            def through_forward(x_t: Tensor, state: Optional[State]):
                out, state = self(x_t.unsqueeze(0), state)
                return out[0], state
            through_forward.impl = "forward"
            return through_forward

        names = ("weight_ih", "bias_ih", "weight_hh", "bias_hh")
        layers = [tuple(getattr(self, f"{n}_l{k}", None) for n in names)
                  for k in range(self.num_layers)]
        keep = torch.full((1, 1), self.zoneout, dtype=w.dtype) if self.zoneout else None

        def step(x_t: Tensor, state: Optional[State]):
            if state is None:
                state = self._initial_state(x_t.unsqueeze(0), None, False)
            parts = [s.unbind(0) for s in ((state,) if isinstance(state, Tensor) else state)]
            new = []
            for k, (w_ih, b_ih, w_hh, b_hh) in enumerate(layers):
                s_k = tuple(p[k] for p in parts)
                x_proj = F.linear(x_t, w_ih, b_ih)                           # (B, G)
                a = F.linear(s_k[0], w_hh, b_hh)                             # (B, G)
                x_t, s_new = self._kernel_step(kernels, k, x_proj, a, s_k, keep)
                new.append(s_new)
            stacked = tuple(torch.stack(p) for p in zip(*new))
            return x_t, (stacked[0] if len(stacked) == 1 else stacked)
        step.impl = "step+kernels"
        return step

    def _kernel_step(self, kernels, layer: int, x_proj: Tensor, a: Tensor, state: tuple,
                     keep: Optional[Tensor]) -> tuple[Tensor, tuple]:
        """One layer's step through the compiled kernel: -> (h, the layer's new state parts)."""
        raise NotImplementedError

    # -- looking inside ----------------------------------------------------------------------------

    gate_names: tuple[str, ...] = ()     # the gates activations() reports, (T, B, H) each

    @torch.no_grad()
    def activations(self, input: Tensor, hx: Optional[State] = None, *,
                    lengths: Optional[Union[Tensor, list[int]]] = None
                    ) -> tuple[list[dict], State]:
        """Every unit's value at every step, from the readable loop in the current mode, and the
        final state (as forward's, so that a caller can go on step by step).

        One dict per layer and direction (layer-major, as the state): ``layer``, ``direction``,
        ``h`` (T, B, H_out) and each of ``gate_names`` (T, B, H) — LSTM i, f, g, o and the cell c;
        GRU r, z and the candidate n; RNN none. (B, T, ·) with ``batch_first``. Steps past a row's
        length are zero. The lab's gate statistics and the neuron viewer are built on this.
        """
        if input.dim() != 3 or input.shape[-1] != self.input_size:
            raise ValueError(f"{self.cell_name}.activations: expected a batched input (…, "
                             f"{self.input_size}) of 3 dimensions, got {tuple(input.shape)}")
        x = input.transpose(0, 1) if self.batch_first else input          # (T, B, I)
        if lengths is not None:
            lengths = check_lengths(lengths, x.shape[0], x.shape[1], x.device)
        records: list[dict] = []
        _, state = self._forward_loop(x, self._initial_state(x, hx, False), lengths, record=records)
        if self.batch_first:
            records = [{k: v.transpose(0, 1) if isinstance(v, Tensor) else v for k, v in r.items()}
                       for r in records]
        return records, state

    def _recurrent_mask(self, init: State) -> Optional[Tensor]:
        """One variational-dropout mask per sequence for the h entering the recurrent matmul."""
        if not (self.recurrent_dropout and self.training):
            return None
        h = init if isinstance(init, Tensor) else init[0]
        keep = 1.0 - self.recurrent_dropout
        return torch.bernoulli(torch.full_like(h, keep)) / keep

    def _zoneout_keep(self, init: State, T: int) -> Optional[tuple[Tensor, ...]]:
        """Zoneout (Krueger et al. 2017): each unit keeps its previous value with probability z.

        One weight per step for each state tensor, drawn before the loop in processing order, for
        s_t = lerp(s_new, s_old, keep_t): in train() a random 0/1 mask (T, B, H), in eval() the
        expectation z (T, 1, 1), i.e. s = z·s_old + (1 - z)·s_new.
        """
        z = self.zoneout
        if not z:
            return None
        states = (init,) if isinstance(init, Tensor) else init
        if self.training:
            return tuple((torch.rand(T, *s.shape, dtype=s.dtype, device=s.device) < z).to(s.dtype)
                         for s in states)
        return tuple(torch.full((T, 1, 1), z, dtype=s.dtype, device=s.device) for s in states)

    def _with_zoneout(self, step, keep: Optional[tuple[Tensor, ...]]):
        """The step function with zoneout's state update (see :meth:`_zoneout_keep`)."""
        if keep is None:
            return step
        steps = iter(zip(*(k.unbind(0) for k in keep)))

        def zoned(x_t: Tensor, state: State):
            out, new = step(x_t, state)
            k = next(steps)
            new = torch.lerp(new, state, k[0]) if isinstance(new, Tensor) else \
                tuple(torch.lerp(n, s, k_s) for n, s, k_s in zip(new, state, k))
            h = new if isinstance(new, Tensor) else new[0]
            # The output is the zoned h, followed by any recorded gates (activations()).
            return torch.cat([h, out[..., h.shape[-1]:]], -1), new

        return zoned


class RNN(_RecurrentLayer):
    """torch.nn.RNN drop-in (Elman network, tanh or relu), with lengths=, recurrent dropout, zoneout."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None, dtype=None, *,
                 recurrent_dropout: float = 0.0, zoneout: float = 0.0, impl: str = "auto",
                 checkpoint_every: Optional[int] = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype, recurrent_dropout=recurrent_dropout,
                         zoneout=zoneout, impl=impl, checkpoint_every=checkpoint_every)
        self.reset_parameters()

    def _fused_kernel(self):
        return torch.rnn_tanh if self.nonlinearity == "tanh" else torch.rnn_relu

    def _kernel_step(self, kernels, layer, x_proj, a, state, keep):
        h = torch.empty_like(state[0])
        kernels.rnn_forward(a, x_proj, state[0], keep, torch.empty_like(h), h,
                            self.nonlinearity == "relu")
        return h, (h,)

    def _bptt(self, suffix, x_proj, init, keep, out_mask, h_mask, kernels):
        return rnn_bptt(x_proj, init, getattr(self, f"weight_hh{suffix}"),
                        getattr(self, f"bias_hh{suffix}", None), nonlinearity=self.nonlinearity,
                        keep=None if keep is None else keep[0], out_mask=out_mask, h_mask=h_mask,
                        kernels=kernels)

    def _step_fn(self, suffix, h_mask, record=False):
        w_hh, b_hh = getattr(self, f"weight_hh{suffix}"), getattr(self, f"bias_hh{suffix}", None)

        def step(x_proj, h):        # an RNN has no gates: recording adds nothing to h
            h = rnn_step(x_proj, h, w_hh, b_hh, self.nonlinearity, h_mask)
            return h, h
        return step


class LSTM(_RecurrentLayer):
    """torch.nn.LSTM drop-in, plus ``peephole``, ``layer_norm``, ``forget_bias``, recurrent dropout,
    zoneout and ``lengths=``. Peephole weights are ``weight_c{i,f,o}{suffix}`` of shape (H,); layer-norm
    parameters are ``ln_{ih,hh,c}_{weight,bias}{suffix}``.
    """

    gates = 4
    gate_names = ("i", "f", "g", "o", "c")
    cell_name = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None, *, peephole: bool = False,
                 layer_norm: bool = False, forget_bias: float = 0.0,
                 recurrent_dropout: float = 0.0, zoneout: float = 0.0, impl: str = "auto",
                 checkpoint_every: Optional[int] = None) -> None:
        self.peephole, self.forget_bias = peephole, float(forget_bias)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype, layer_norm=layer_norm,
                         recurrent_dropout=recurrent_dropout, zoneout=zoneout, impl=impl,
                         checkpoint_every=checkpoint_every)
        self.reset_parameters()

    def _add_extra_parameters(self, suffix, kw):
        H = self.hidden_size
        if self.peephole:
            for gate in "ifo":
                self.register_parameter(f"weight_c{gate}{suffix}", nn.Parameter(torch.empty(H, **kw)))
        if self.layer_norm:
            _add_layer_norm(self, suffix, 4 * H, H, kw)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.bias and self.forget_bias:
            H = self.hidden_size
            with torch.no_grad():
                for layer in range(self.num_layers):
                    for suffix in self._suffixes(layer):
                        getattr(self, f"bias_ih{suffix}")[H:2 * H] += self.forget_bias

    def fused_unsupported(self):
        return "peephole" if self.peephole else super().fused_unsupported()

    def _state_shapes(self, LD, B):
        return [(LD, B, self.proj_size or self.hidden_size), (LD, B, self.hidden_size)]

    def _fused_kernel(self):
        return torch.lstm

    def bptt_unsupported(self):
        return "proj_size" if self.proj_size else None

    def _kernel_step(self, kernels, layer, x_proj, a, state, keep):
        (h, c), B, H = state, state[1].shape[0], self.hidden_size
        peep = [getattr(self, f"weight_c{g}_l{layer}", None) for g in "ifo"]
        h_new, c_new = torch.empty_like(c), torch.empty_like(c)
        kernels.lstm_forward(a, x_proj, h, c, *peep, None, None, None, None, keep, keep,
                             a.new_empty(B, 4 * H), torch.empty_like(c), torch.empty_like(c),
                             None, None, h_new, c_new)
        return h_new, (h_new, c_new)

    def _bptt(self, suffix, x_proj, init, keep, out_mask, h_mask, kernels):
        g = lambda name: getattr(self, f"{name}{suffix}", None)
        ln = _layer_norm_params(self, suffix)
        peepholes = (g("weight_ci"), g("weight_cf"), g("weight_co")) if self.peephole else None
        return lstm_bptt(x_proj, init, g("weight_hh"), g("bias_hh"), peepholes=peepholes,
                         ln_hh=ln["hh"], ln_c=ln["c"], keep=keep, out_mask=out_mask, h_mask=h_mask,
                         kernels=kernels)

    def _step_fn(self, suffix, h_mask, record=False):
        g = lambda name: getattr(self, f"{name}{suffix}", None)
        peep = (g("weight_ci"), g("weight_cf"), g("weight_co")) if self.peephole else (None,) * 3
        ln = _layer_norm_params(self, suffix)
        step_params = dict(weight_hh=g("weight_hh"), bias_hh=g("bias_hh"), weight_ci=peep[0],
                           weight_cf=peep[1], weight_co=peep[2], weight_hr=g("weight_hr"),
                           ln_hh=ln["hh"], ln_c=ln["c"], h_mask=h_mask)
        cell = partial(lstm_gates, **step_params)

        def step(x_proj, state):
            gates = cell(x_proj, state)
            h, c = gates["h"], gates["c"]
            out = torch.cat([h] + [gates[n] for n in self.gate_names], -1) if record else h
            return out, (h, c)
        return step


class GRU(_RecurrentLayer):
    """torch.nn.GRU drop-in, plus ``reset_after`` (False: Cho et al. 2014), ``layer_norm``, recurrent
    dropout, zoneout and ``lengths=``.
    """

    gates = 3
    gate_names = ("r", "z", "n")
    cell_name = "GRU"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, *, reset_after: bool = True, layer_norm: bool = False,
                 recurrent_dropout: float = 0.0, zoneout: float = 0.0, impl: str = "auto",
                 checkpoint_every: Optional[int] = None) -> None:
        self.reset_after = reset_after
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype, layer_norm=layer_norm,
                         recurrent_dropout=recurrent_dropout, zoneout=zoneout, impl=impl,
                         checkpoint_every=checkpoint_every)
        self.reset_parameters()

    def _add_extra_parameters(self, suffix, kw):
        if self.layer_norm:
            H = self.hidden_size
            # Cho's form normalises only W_h{r,z} h: the candidate's matmul waits for r.
            _add_layer_norm(self, suffix, 3 * H, None, kw, hh_size=(3 if self.reset_after else 2) * H)

    def fused_unsupported(self):
        return "reset_after=False" if not self.reset_after else super().fused_unsupported()

    def _fused_kernel(self):
        return torch.gru

    def kernels_unsupported(self):
        return None if self.reset_after else "reset_after=False"

    def _kernel_step(self, kernels, layer, x_proj, a, state, keep):
        h, (B, H) = state[0], state[0].shape
        h_new = torch.empty_like(h)
        kernels.gru_forward(a, x_proj, h, keep, h.new_empty(B, 2 * H), torch.empty_like(h),
                            torch.empty_like(h), h_new)
        return h_new, (h_new,)

    def _bptt(self, suffix, x_proj, init, keep, out_mask, h_mask, kernels):
        return gru_bptt(x_proj, init, getattr(self, f"weight_hh{suffix}"),
                        getattr(self, f"bias_hh{suffix}", None), reset_after=self.reset_after,
                        ln_hh=_layer_norm_params(self, suffix)["hh"],
                        keep=None if keep is None else keep[0], out_mask=out_mask, h_mask=h_mask,
                        kernels=kernels)

    def _step_fn(self, suffix, h_mask, record=False):
        w_hh, b_hh = getattr(self, f"weight_hh{suffix}"), getattr(self, f"bias_hh{suffix}", None)
        ln_hh = _layer_norm_params(self, suffix)["hh"]

        def step(x_proj, h):
            gates = gru_gates(x_proj, h, w_hh, b_hh, self.reset_after, ln_hh, h_mask)
            h = gates["h"]
            return (torch.cat([h] + [gates[n] for n in self.gate_names], -1) if record else h), h
        return step
