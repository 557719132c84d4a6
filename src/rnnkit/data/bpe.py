"""Byte-pair encoding (Sennrich, Haddow & Birch 2016): subword units learned from the training text,
so that a rare or unseen word is spelled out of known pieces instead of becoming <unk>.

Learning: every word starts as its characters, the last one marked as ending the word; the adjacent
pair of symbols most frequent over the corpus (word frequencies) becomes one symbol, again and again,
N times. Segmenting a word replays those merges in the order they were learned. A piece that does not
end its word carries the continuation mark ``@@`` (as subword-nmt writes it), so that joining the
pieces back into words is exact: ``unbelievable`` → ``un@@ believ@@ able``.

Learning is incremental: the pair counts are updated only in the words that contain the merged pair,
and the most frequent pair comes off a heap, so N merges cost far less than N recounts.
"""
from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from typing import Iterable, Mapping, Sequence

__all__ = ["BPE", "learn_merges", "join_pieces", "CONTINUATION"]

CONTINUATION = "@@"
_END = "</w>"         # marks a word's last symbol while learning and segmenting; never in a piece


def _symbols(word: str) -> tuple[str, ...]:
    return tuple(word[:-1]) + (word[-1] + _END,)


def _merge(symbols: tuple[str, ...], a: str, b: str) -> tuple[str, ...]:
    """Every (a, b) in ``symbols`` made one symbol, left to right (``a a a`` with (a, a): ``aa a``)."""
    out, k = [], 0
    while k < len(symbols):
        if k + 1 < len(symbols) and symbols[k] == a and symbols[k + 1] == b:
            out.append(a + b)
            k += 2
        else:
            out.append(symbols[k])
            k += 1
    return tuple(out)


def learn_merges(word_counts: Mapping[str, int], merges: int, min_frequency: int = 2
                 ) -> list[tuple[str, str]]:
    """Up to ``merges`` merges, most frequent pair first (ties: the pair that sorts first), stopping
    early when no pair occurs ``min_frequency`` times."""
    if merges < 0:
        raise ValueError(f"the number of merges must be >= 0, got {merges}")
    words = [_symbols(w) for w in word_counts if w]
    counts = [n for w, n in word_counts.items() if w]
    pairs: Counter = Counter()
    holders: dict[tuple[str, str], set[int]] = defaultdict(set)   # pair -> words that have (had) it
    for i, (w, n) in enumerate(zip(words, counts)):
        for pair in zip(w, w[1:]):
            pairs[pair] += n
            holders[pair].add(i)
    heap = [(-n, pair) for pair, n in pairs.items()]
    heapq.heapify(heap)
    learned: list[tuple[str, str]] = []
    while len(learned) < merges:
        while heap and pairs.get(heap[0][1], 0) != -heap[0][0]:    # an outdated count: drop it
            heapq.heappop(heap)
        if not heap or -heap[0][0] < min_frequency:
            break
        _, best = heapq.heappop(heap)
        learned.append(best)
        changed: set = set()
        for i in holders.pop(best):
            old, n = words[i], counts[i]
            new = _merge(old, *best)
            if new == old:
                continue
            for pair in zip(old, old[1:]):
                pairs[pair] -= n
                changed.add(pair)
            for pair in zip(new, new[1:]):
                pairs[pair] += n
                holders[pair].add(i)
                changed.add(pair)
            words[i] = new
        pairs.pop(best, None)
        for pair in changed - {best}:
            if pairs[pair] > 0:
                heapq.heappush(heap, (-pairs[pair], pair))
            else:
                del pairs[pair]
    return learned


class BPE:
    """Segments words with learned merges; ``to_json``/``from_json`` keep them with a run."""

    def __init__(self, merges: Iterable[Sequence[str]]) -> None:
        self.merges = [tuple(m) for m in merges]
        for m in self.merges:
            if len(m) != 2 or not all(isinstance(s, str) and s for s in m):
                raise ValueError(f"a merge is two non-empty strings, got {m!r}")
        self.rank = {m: r for r, m in enumerate(self.merges)}
        self._cache: dict[str, list[str]] = {}

    @classmethod
    def learn(cls, words: Iterable[str], merges: int) -> "BPE":
        return cls(learn_merges(Counter(words), merges))

    def word(self, word: str) -> list[str]:
        """The pieces of one word, all but the last ending in ``@@``."""
        if word not in self._cache:
            symbols = _symbols(word)
            while len(symbols) > 1:
                rank, pair = min((self.rank.get(p, len(self.rank)), p)
                                 for p in zip(symbols, symbols[1:]))
                if rank == len(self.rank):          # no learned merge applies any more
                    break
                symbols = _merge(symbols, *pair)
            self._cache[word] = [s[: -len(_END)] if s.endswith(_END) else s + CONTINUATION
                                 for s in symbols]
        return self._cache[word]

    def segment(self, words: Iterable[str]) -> list[str]:
        return [piece for w in words if w for piece in self.word(w)]

    def to_json(self) -> list[list[str]]:
        return [list(m) for m in self.merges]

    @classmethod
    def from_json(cls, obj: list) -> "BPE":
        return cls(obj)


def join_pieces(pieces: Iterable[str]) -> list[str]:
    """Words from pieces: each ``x@@`` glues onto what follows. A decoder may stop after a
    continuation piece; that unfinished word is kept as spelled so far."""
    words, pending = [], ""
    for piece in pieces:
        if piece.endswith(CONTINUATION) and len(piece) > len(CONTINUATION):
            pending += piece[: -len(CONTINUATION)]
        else:
            words.append(pending + piece)
            pending = ""
    if pending:
        words.append(pending)
    return words
