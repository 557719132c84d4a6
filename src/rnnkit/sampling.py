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
    """Keep the K most likely unfinished outputs of every row; each step extends them by every
    symbol and keeps the K best extensions. An extension ending in <eos> (or cut at max_len) is a
    finished output: it leaves the beam, whose slot the next step refills, and competes for the row's
    answer by log P / length_penalty. (Leaving finished outputs in the beam instead lets short ones
    crowd out the longer ones the length penalty is there to favour.) A row is done when no live
    output can still beat its best finished one; with K = 1 this is exactly greedy decoding.

    ``state`` holds B rows; it is repeated K times here (row b's beams are rows b·K … b·K + K - 1)."""
    if beam < 1:
        raise ValueError(f"beam width must be at least 1, got {beam}")
    if alpha < 0:
        raise ValueError(f"length penalty α must be >= 0, got {alpha}")
    B, K = batch, beam
    state = reorder(state, torch.arange(B, device=device).repeat_interleave(K))
    scores = torch.full((B, K), float("-inf"), device=device)   # log P of the live outputs
    scores[:, 0] = 0.0                            # K copies of one start: only the first may expand
    tokens = torch.full((B * K,), go_id, dtype=torch.long, device=device)
    best = torch.full((B,), float("-inf"), device=device)        # best finished log P / penalty
    best_step = torch.zeros(B, dtype=torch.long, device=device)  # ... the step it ended at
    best_beam = torch.zeros(B, dtype=torch.long, device=device)  # ... and its slot there
    history: list[tuple[Tensor, Tensor]] = []     # per step: (backpointer (B, K), symbol (B, K))
    offsets = (torch.arange(B, device=device) * K).unsqueeze(1)    # (B, 1)
    longest = length_penalty(torch.tensor(max_len), alpha).item()
    for t in range(max_len):
        log_probs, state = step(tokens, state)                            # (N, V)
        V = log_probs.shape[-1]
        candidates = (scores.unsqueeze(-1) + log_probs.float().view(B, K, V)).view(B, K * V)
        top, flat = candidates.topk(K, dim=1)                             # (B, K)
        back, symbol = flat // V, flat % V
        history.append((back, symbol))
        ends = symbol == eos_id
        finished = ends | (t == max_len - 1)
        normalized = (top / length_penalty(torch.tensor(t + 1), alpha)).masked_fill(~finished,
                                                                                     float("-inf"))
        row_best, row_beam = normalized.max(1)                            # (B,)
        better = row_best > best
        best = torch.where(better, row_best, best)
        best_step = torch.where(better, t, best_step)
        best_beam = torch.where(better, row_beam, best_beam)
        scores = top.masked_fill(ends, float("-inf"))
        # A live log P s ≤ 0 only falls, and the penalty grows to at most its value at max_len, so
        # s / penalty(max_len) bounds every output the row can still finish.
        if bool((scores.max(1).values / longest <= best).all()):
            break
        tokens = symbol.view(-1)
        state = reorder(state, (back + offsets).view(-1))
    if not history:
        return [[] for _ in range(B)]
    # Follow the backpointers from each row's best finished output to the start.
    symbols = []
    k = best_beam
    for t in range(len(history) - 1, -1, -1):
        back, symbol = history[t]
        ended = t <= best_step                       # steps after a row's answer ended output <eos>
        symbols.append(torch.where(ended, symbol.gather(1, k.unsqueeze(1)).squeeze(1), eos_id))
        k = torch.where(ended, back.gather(1, k.unsqueeze(1)).squeeze(1), k)
    return _strip(torch.stack(symbols[::-1], 1), eos_id)
