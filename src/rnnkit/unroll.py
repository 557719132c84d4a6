"""The time loop: one generic unroll that any cell plugs into, with variable lengths.

Shapes: T time, B batch, F features of a step's input (any trailing shape), H hidden size.

A *step function* is ``step_fn(x_t, state) -> (y_t, new_state)`` where ``x_t`` is (B, F…), ``state`` a
tensor or a tuple of tensors whose first dimension is B, and ``y_t`` is (B, H). With ``lengths``:

* outputs past a row's length are zero, and the row's state stops changing there, so the final state
  is the state at the row's last valid step (the initial state for a zero-length row);
* ``reverse=True`` runs each row backwards from its *own* last valid element (not from T - 1) and
  returns the outputs in input time order;
* padding never reaches the cell: it is replaced by zeros before the first step, so not even NaN in
  the padding can change a valid output or a gradient (0 · NaN would be NaN in the backward pass).
"""
from __future__ import annotations

from typing import Callable, Sequence, Union

import torch
from torch import Tensor

__all__ = ["unroll", "check_lengths", "time_mask", "mask_padding", "reverse_within_lengths",
           "detach_state", "map_state", "State"]

State = Union[Tensor, tuple[Tensor, ...]]
StepFn = Callable[[Tensor, State], tuple[Tensor, State]]


def map_state(fn: Callable[..., Tensor], *states: State) -> State:
    """Apply ``fn`` to a state that is a tensor or a tuple of tensors (element-wise across states)."""
    if isinstance(states[0], Tensor):
        return fn(*states)
    return tuple(fn(*parts) for parts in zip(*states))


def detach_state(state: State) -> State:
    """Cut the graph at a chunk boundary (truncated BPTT): values carried on, gradients stopped."""
    return map_state(lambda s: s.detach(), state)


def check_lengths(lengths: Union[Tensor, Sequence[int]], T: int, B: int,
                  device: Union[torch.device, str, None] = None) -> Tensor:
    """Validate ``lengths`` (B,) against a padded batch of T steps; returns a LongTensor on ``device``."""
    lengths = torch.as_tensor(lengths)
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool or lengths.is_complex():
        raise TypeError(f"lengths must be integers, got dtype {lengths.dtype}")
    if lengths.dim() != 1 or lengths.shape[0] != B:
        raise ValueError(f"lengths must have shape ({B},) for a batch of {B}, "
                         f"got {tuple(lengths.shape)}")
    bad = ((lengths < 0) | (lengths > T)).nonzero()
    if bad.numel():
        i = int(bad[0, 0])
        raise ValueError(f"lengths[{i}] = {int(lengths[i])} is outside [0, {T}] "
                         f"(the padded input has {T} time steps)")
    return lengths.to(device=device, dtype=torch.long)


def time_mask(lengths: Tensor, T: int) -> Tensor:
    """(T, B) bool: True where t < lengths[b]."""
    return torch.arange(T, device=lengths.device).unsqueeze(1) < lengths.unsqueeze(0)


def mask_padding(x: Tensor, lengths: Tensor) -> Tensor:
    """Zero every padded step of a time-major (T, B, …) tensor (NaN included)."""
    mask = time_mask(lengths, x.shape[0]).view(*x.shape[:2], *([1] * (x.dim() - 2)))
    return torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))


def reverse_within_lengths(x: Tensor, lengths: Union[Tensor, None]) -> Tensor:
    """Reverse each row of a time-major (T, B, …) tensor within its own length; padding stays put.

    Row b becomes x[L_b - 1], …, x[0], x[L_b], …, x[T - 1]; applying it twice is the identity.
    """
    if lengths is None:
        return x.flip(0)
    T = x.shape[0]
    t = torch.arange(T, device=x.device).unsqueeze(1)                    # (T, 1)
    index = torch.where(t < lengths, lengths - 1 - t, t)                  # (T, B)
    index = index.view(T, -1, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, index)


def unroll(step_fn: StepFn, inputs: Tensor, initial_state: State, *,
           lengths: Union[Tensor, Sequence[int], None] = None, reverse: bool = False,
           batch_first: bool = False) -> tuple[Tensor, State]:
    """Run ``step_fn`` over time; returns ``(outputs, final_state)``.

    ``inputs`` is (T, B, F…) or (B, T, F…) with ``batch_first``; ``outputs`` comes back in the same
    layout, (T, B, H) or (B, T, H), in input time order also when ``reverse=True``.
    """
    x = inputs.transpose(0, 1) if batch_first else inputs                # (T, B, F…)
    T, B = x.shape[0], x.shape[1]
    mask = None
    if lengths is not None:
        lengths = check_lengths(lengths, T, B, x.device)
        x = mask_padding(x, lengths)
        mask = time_mask(lengths, T)                                      # (T, B)
    if reverse:
        x = reverse_within_lengths(x, lengths)

    state, outputs = initial_state, []
    # unbind, not x[t]: indexing inside the loop costs a (T, B, F) zero tensor per step in backward.
    for t, x_t in enumerate(x.unbind(0)):
        y_t, new_state = step_fn(x_t, state)
        if mask is not None:
            # (B, 1, …) per tensor: states may have trailing dims beyond (B, H).
            m = lambda like: mask[t].view(-1, *([1] * (like.dim() - 1)))
            new_state = map_state(lambda new, old: torch.where(m(new), new, old), new_state, state)
            y_t = torch.where(m(y_t), y_t, torch.zeros((), dtype=y_t.dtype, device=y_t.device))
        state = new_state
        outputs.append(y_t)

    if not outputs:
        raise ValueError("unroll: the input has no time steps (T = 0)")
    out = torch.stack(outputs)                                            # (T, B, H)
    if reverse:
        out = reverse_within_lengths(out, lengths)
    return (out.transpose(0, 1) if batch_first else out), state
