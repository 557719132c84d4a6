"""checkpoint_every=K: gradient checkpointing over time chunks gives the plain layer's outputs,
final states and gradients (fused and loop paths, lengths, stacked layers), and with dropout the
gradients of the very masks its forward pass drew."""
from __future__ import annotations

import pytest
import torch

import rnnkit

F64 = dict(dtype=torch.float64)


def forward_backward(layer, x, **kw):
    x = x.clone().requires_grad_()
    out, state = layer(x, **kw)
    h = state if isinstance(state, torch.Tensor) else state[0]
    (out.sin().sum() + h.cos().sum()).backward()
    grads = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    return [out.detach(), h.detach(), x.grad] + grads


@pytest.mark.parametrize("cls", [rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN])
@pytest.mark.parametrize("impl", ["fused", "loop"])
def test_checkpointed_layer_equals_the_plain_one(cls, impl):
    torch.manual_seed(0)
    plain = cls(3, 5, num_layers=2, impl=impl, **F64)
    chunked = cls(3, 5, num_layers=2, impl=impl, checkpoint_every=4, **F64)
    chunked.load_state_dict(plain.state_dict())
    x, lengths = torch.randn(11, 4, 3, **F64), torch.tensor([11, 3, 0, 9])
    for kw in ({}, {"lengths": lengths}):
        for a, b in zip(forward_backward(plain, x, **kw), forward_backward(chunked, x, **kw)):
            torch.testing.assert_close(b, a, atol=1e-12, rtol=1e-10)


def test_with_dropout_the_recomputed_chunks_use_the_forward_masks():
    torch.manual_seed(1)
    layer = rnnkit.LSTM(3, 5, num_layers=3, dropout=0.5, checkpoint_every=4, **F64)
    x = torch.randn(10, 2, 3, **F64)
    torch.manual_seed(7)
    checkpointed = forward_backward(layer, x)
    # The same chunks run by hand without checkpointing, from the same random state.
    layer.checkpoint_every = None
    torch.manual_seed(7)
    xx = x.clone().requires_grad_()
    state, outs = None, []
    for start in range(0, 10, 4):
        out, state = layer(xx[start: start + 4], state)
        outs.append(out)
    out = torch.cat(outs)
    (out.sin().sum() + state[0].cos().sum()).backward()
    by_hand = [out.detach(), state[0].detach(), xx.grad] + [p.grad for p in layer.parameters()]
    for a, b in zip(by_hand, checkpointed):
        torch.testing.assert_close(b, a, atol=1e-12, rtol=1e-10)


def test_checkpoint_every_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="bidirectional"):
        rnnkit.GRU(3, 4, bidirectional=True, checkpoint_every=8)
    with pytest.raises(ValueError, match="must be positive"):
        rnnkit.LSTM(3, 4, checkpoint_every=0)
