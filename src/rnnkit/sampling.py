"""Choosing the next symbol from a model's logits: temperature, top-k and nucleus (top-p) sampling;
and decoding a whole output sequence from a step function: greedy and beam search, both batched.

Shapes: B batch, K beam width, N = B·K rows, V vocabulary, T output steps.

A decoder plugs in through two functions:
    step(tokens (N,), state) -> (log-probabilities (N, V), new state)   one output step
    reorder(state, index (N',)) -> state                                  rows picked/repeated
so these searches know nothing of RNNs, attention or vocabularies.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import Tensor


def check_sampling(temperature: float, top_k: Optional[int] = None,
                   top_p: Optional[float] = None) -> None:
    """Raise ValueError naming the bad setting; shared by the CLI and the library."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top-k must be at least 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top-p must be in (0, 1], got {top_p}")


def filter_logits(logits: Tensor, top_k: Optional[int] = None,
                  top_p: Optional[float] = None) -> Tensor:
    """Set to -inf every logit outside the top-k and outside the smallest set of mass ≥ top-p."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]                # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)      # (B, V)
        probs = sorted_logits.softmax(-1)
        # Drop a symbol when the mass *before* it already reaches top_p; the first always stays.
        drop_sorted = probs.cumsum(-1) - probs >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(logits: Tensor, temperature: float = 1.0, top_k: Optional[int] = None,
                top_p: Optional[float] = None,
                generator: Optional[torch.Generator] = None) -> Tensor:
    """logits (B, V) → sampled ids (B,)."""
    check_sampling(temperature, top_k, top_p)
    logits = filter_logits(logits.float() / temperature, top_k, top_p)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


Step = Callable[[Tensor, Any], tuple[Tensor, Any]]
Reorder = Callable[[Any, Tensor], Any]


def _strip(rows: Tensor, eos_id: int) -> list[list[int]]:
    """(B, T) ids → one list per row, cut before the first <eos>."""
    out = []
    for row in rows.tolist():
        out.append(row[: row.index(eos_id)] if eos_id in row else row)
    return out


@torch.no_grad()
def greedy_decode(step: Step, state: Any, batch: int, go_id: int, eos_id: int, max_len: int,
                  device: torch.device | str = "cpu") -> list[list[int]]:
    """Feed back the most likely symbol until every row has output <eos> (or max_len symbols);
    returns each row's symbols without the <eos>."""
    tokens = torch.full((batch,), go_id, dtype=torch.long, device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    out = []
    for _ in range(max_len):
        log_probs, state = step(tokens, state)                        # (B, V)
        tokens = log_probs.argmax(-1).masked_fill(done, eos_id)       # (B,)
        out.append(tokens)
        done |= tokens == eos_id
        if bool(done.all()):
            break
    return _strip(torch.stack(out, 1), eos_id) if out else [[] for _ in range(batch)]


def length_penalty(lengths: Tensor, alpha: float) -> Tensor:
    """GNMT's ((5 + |Y|) / 6)^α (Wu et al. 2016): 0 ranks by total log-probability, which favours
    short outputs; larger α favours longer ones (1 is close to the mean log-probability per symbol)."""
    return ((5.0 + lengths.float()) / 6.0) ** alpha


@torch.no_grad()
def beam_search(step: Step, reorder: Reorder, state: Any, batch: int, beam: int, go_id: int,
                eos_id: int, max_len: int, alpha: float = 0.6,
                device: torch.device | str = "cpu") -> list[list[int]]:
    """The K best partial outputs of every row are extended by every symbol, and the K best of those
    kept. A hypothesis that outputs <eos> is finished: it stays in the beam with its score frozen
    (extended only by <eos> at no cost), so it competes with the live ones to the end. The search
    stops when every beam is finished or after max_len symbols, and each row's answer is its beam's
    best score / length_penalty. With K = 1 this is exactly greedy decoding.

    ``state`` holds B rows; it is repeated K times here (row b's beams are rows b·K … b·K + K - 1)."""
    if beam < 1:
        raise ValueError(f"beam width must be at least 1, got {beam}")
    B, K = batch, beam
    state = reorder(state, torch.arange(B, device=device).repeat_interleave(K))
    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0                            # K copies of one start: only the first may expand
    tokens = torch.full((B * K,), go_id, dtype=torch.long, device=device)
    finished = torch.zeros(B, K, dtype=torch.bool, device=device)
    lengths = torch.zeros(B, K, dtype=torch.long, device=device)   # symbols output, <eos> included
    history: list[tuple[Tensor, Tensor]] = []     # per step: (backpointer (B, K), symbol (B, K))
    offsets = (torch.arange(B, device=device) * K).unsqueeze(1)    # (B, 1)
    for _ in range(max_len):
        log_probs, state = step(tokens, state)                            # (N, V)
        V = log_probs.shape[-1]
        log_probs = log_probs.float().view(B, K, V)
        ended = torch.full((V,), float("-inf"), device=device)
        ended[eos_id] = 0.0
        log_probs = torch.where(finished.unsqueeze(-1), ended, log_probs)
        candidates = (scores.unsqueeze(-1) + log_probs).view(B, K * V)   # (B, K·V)
        scores, flat = candidates.topk(K, dim=1)                          # (B, K)
        back, symbol = flat // V, flat % V
        was_finished = finished.gather(1, back)
        lengths = lengths.gather(1, back) + (~was_finished).long()
        finished = was_finished | (symbol == eos_id)
        history.append((back, symbol))
        tokens = symbol.view(-1)
        state = reorder(state, (back + offsets).view(-1))
        if bool(finished.all()):
            break
    if not history:
        return [[] for _ in range(B)]
    best = (scores / length_penalty(lengths, alpha)).argmax(1)           # (B,)
    # Follow the backpointers from each row's best final beam to the start.
    symbols = []
    k = best
    for back, symbol in reversed(history):
        symbols.append(symbol.gather(1, k.unsqueeze(1)).squeeze(1))
        k = back.gather(1, k.unsqueeze(1)).squeeze(1)
    return _strip(torch.stack(symbols[::-1], 1), eos_id)
