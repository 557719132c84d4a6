"""The n-gram baseline from the lectures: a Markov chain of order N over characters (or word tokens).

Shapes: V vocabulary size, N order (symbols of context), K = N + 1 (n-gram length), n text length.

The probability of the next symbol w after the context h = x_1..x_N is interpolated down to the
unigram and a uniform floor 1/V, so every symbol of the vocabulary has non-zero probability:

    p_0(w)     = 1 / V
    p_k(w | h) = a_k(h_k w) / t_k(h_k)  +  gamma_k(h_k) * p_(k-1)(w | h)      k = 1 .. K
               (= p_(k-1)(w | h) when the context h_k, the last k-1 symbols of h, was never followed)

Interpolated modified Kneser-Ney (Chen & Goodman 1998), the default:
    c_k(g)      raw count of the n-gram g at the top order k = K; at lower orders the continuation
                count N1+(. g), the number of distinct symbols seen before g
    a_k(g)      = c_k(g) - D_k(c_k(g)), with three discounts D_k1, D_k2, D_k3+ per order estimated
                  from the counts of counts n_1..n_4: Y = n1/(n1+2 n2), D_r = r - (r+1) Y n_(r+1)/n_r
    t_k(h)      = sum_w c_k(h w)
    gamma_k(h)  = (D_k1 N1(h .) + D_k2 N2(h .) + D_k3+ N3+(h .)) / t_k(h)   (the mass the discounts freed)
Interpolated Witten-Bell (`smoothing="witten-bell"`): raw counts at every order, a = c, the
denominator t(h) + T(h) and gamma = T(h) / (t(h) + T(h)), T(h) the number of distinct followers of h.

Counting uses NumPy: the n-grams of each order are the nodes of a trie, numbered in sorted order, each
with key = parent id * V + symbol, so one `np.unique` per order builds the trie and one
`np.searchsorted` per order looks up every position of an evaluation text at once.

The model is saved as JSON (gzip-compressed, never pickled): the config, the vocabulary, the counts of
the top-order n-grams and the last N symbols of the training text. Every lower-order count is a sum of
those, so a loaded model rebuilds exactly the same tables and gives bit-identical probabilities.
"""
from __future__ import annotations

import gzip
import json
import math
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np

from ..data.errors import DataError
from ..files import atomic_write_bytes
from ..data.vocab import CharVocab, WordVocab, tokenize, vocab_from_json

FORMAT = "rnnkit.markov"
FORMAT_VERSION = 1
FILENAME = "markov.json.gz"
SMOOTHINGS = ("kneser-ney", "witten-bell")
_MIN_DISCOUNT = 0.05  # keeps every discount inside (0, r) so gamma > 0 and the floor is reached

Vocab = Union[CharVocab, WordVocab]
Seed = Union[int, np.random.Generator, None]


@dataclass(frozen=True)
class MarkovConfig:
    order: int = 5                   # N, the number of context symbols
    smoothing: str = "kneser-ney"    # or "witten-bell"

    def __post_init__(self) -> None:
        if not isinstance(self.order, int) or self.order < 0:
            raise ValueError(f"MarkovConfig.order must be an integer >= 0, got {self.order!r}")
        if self.smoothing not in SMOOTHINGS:
            raise ValueError(f"MarkovConfig.smoothing must be one of {SMOOTHINGS}, got {self.smoothing!r}")


def _lookup(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Positions of `query` in the sorted array `keys`, -1 where absent."""
    pos = np.searchsorted(keys, query)
    pos = np.minimum(pos, len(keys) - 1) if len(keys) else np.zeros_like(pos)
    found = (keys[pos] == query) if len(keys) else np.zeros(query.shape, bool)
    return np.where(found, pos, -1)


def _unique_inverse(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(key, return_inverse=True)` for non-negative int64 keys, about 4x faster here.

    The row index is packed into the low bits of each key so a plain `np.sort` (vectorised, unlike
    `argsort`) yields both the sorted keys and the permutation. Falls back to `np.unique` when the
    packed value would not fit in 63 bits (huge vocabularies).
    """
    n = len(key)
    shift = max(1, (n - 1).bit_length())
    if n == 0 or int(key.max()) >= (1 << (62 - shift)):
        return np.unique(key, return_inverse=True)
    packed = np.sort((key << shift) | np.arange(n, dtype=np.int64))
    sorted_keys, order = packed >> shift, packed & ((1 << shift) - 1)
    first = np.empty(n, dtype=bool)
    first[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=first[1:])
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return sorted_keys[first], inverse


def _kn_discounts(counts: np.ndarray) -> np.ndarray:
    """(0, D1, D2, D3+) from the counts of counts of one order (Chen & Goodman's estimates)."""
    n = [int(np.count_nonzero(counts == r)) for r in range(1, 5)]
    y = n[0] / (n[0] + 2 * n[1]) if n[0] > 0 and n[1] > 0 else 0.5
    d = [0.0]
    for r in (1, 2, 3):
        est = r - (r + 1) * y * n[r] / n[r - 1] if n[r - 1] > 0 else r / 2
        d.append(min(max(est, _MIN_DISCOUNT), r - _MIN_DISCOUNT))
    return np.array(d)


class MarkovModel:
    """A smoothed order-N Markov chain. `MarkovModel(config).fit(text, vocab)`, then score or sample."""

    def __init__(self, config: MarkovConfig = MarkovConfig()) -> None:
        self.config = config
        self.vocab: Optional[Vocab] = None
        self.speakers: dict[str, int] = {}  # "NAME" -> number of speeches, from "NAME:" lines
        self.discounts: list[list[float]] = []
        self._fitted = False

    # ---- symbols ------------------------------------------------------------------------------------

    @property
    def level(self) -> str:
        return "word" if isinstance(self.vocab, WordVocab) else "char"

    @property
    def K(self) -> int:
        return self.config.order + 1

    def _require_fit(self) -> None:
        if not self._fitted:
            raise RuntimeError("MarkovModel: call fit(text) or MarkovModel.load(dir) first")

    def _encode(self, text: str) -> np.ndarray:
        """Symbol ids of `text`, (n,) int64; characters outside the vocabulary are an error naming them."""
        assert self.vocab is not None
        if isinstance(self.vocab, WordVocab):
            return np.asarray(self.vocab.encode(tokenize(text, lower=False)), dtype=np.int64)
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        vocab_codes = np.array([ord(c) for c in self.vocab.chars], dtype=np.uint32)
        order = np.argsort(vocab_codes)
        pos = _lookup(vocab_codes[order], codes)
        if (pos < 0).any():
            missing = list(dict.fromkeys(chr(c) for c in codes[pos < 0]))
            shown = ", ".join(repr(c) for c in missing[:20]) + (" ..." if len(missing) > 20 else "")
            raise DataError(f"characters not in the model's vocabulary ({len(missing)}): {shown}")
        return order[pos].astype(np.int64)

    def _decode_symbol(self, i: int) -> str:
        assert self.vocab is not None
        return self.vocab.chars[i] if isinstance(self.vocab, CharVocab) else self.vocab.words[i]

    # ---- fitting ------------------------------------------------------------------------------------

    def fit(self, text: str, vocab: Optional[Vocab] = None) -> "MarkovModel":
        """Count every n-gram of `text` up to length N+1. Without `vocab`, a CharVocab of the text."""
        if not text:
            raise DataError("MarkovModel.fit: the training text is empty")
        self.vocab = vocab if vocab is not None else CharVocab.from_counts(Counter(text))
        seq = self._encode(text)
        if seq.size == 0:
            raise DataError("MarkovModel.fit: the training text has no tokens")
        K = self.K
        if len(seq) >= K:
            windows = np.lib.stride_tricks.sliding_window_view(seq, K)     # (n-K+1, K), no copy
            weights = np.ones(len(windows), dtype=np.int64)
        else:
            windows, weights = np.zeros((0, K), np.int64), np.zeros(0, np.int64)
        tail = seq[max(0, len(seq) - K + 1):]
        self.speakers = find_speakers(text) if self.level == "char" else {}
        self._build(windows, weights, tail)
        return self

    def _build(self, rows: np.ndarray, weights: np.ndarray, tail: np.ndarray) -> None:
        """Build the per-order tables from weighted top-order rows plus the suffixes of `tail`.

        The k-grams of the training text are exactly the length-k prefixes of the rows (every text
        position but the last N) and of the suffixes of the tail (the last N positions).
        """
        assert self.vocab is not None
        V, K, kn = len(self.vocab), self.K, self.config.smoothing == "kneser-ney"
        m, L = len(rows), len(tail)
        tail_rows = np.full((L, K), -1, dtype=np.int64)                    # tail[j:] padded with -1
        for j in range(L):
            tail_rows[j, : L - j] = tail[j:]
        tail_len = L - np.arange(L)
        all_weights = np.concatenate([weights, np.ones(L, np.int64)])
        parent_ids = np.zeros(m + L, dtype=np.int64)                       # every row starts at the root
        keys: list[np.ndarray] = [np.zeros(1, np.int64)]                   # order 0: the root
        raw: list[np.ndarray] = [np.array([all_weights.sum()])]
        for k in range(1, K + 1):
            live = np.concatenate([np.ones(m, bool), tail_len >= k])       # rows at least k long
            sym = np.concatenate([rows[:, k - 1], tail_rows[:, k - 1]])[live]
            key = parent_ids[live] * V + sym
            uniq, inv = _unique_inverse(key)
            keys.append(uniq)
            raw.append(np.bincount(inv, weights=all_weights[live], minlength=len(uniq)).astype(np.int64))
            new_ids = np.full(m + L, -1, dtype=np.int64)
            new_ids[live] = inv
            parent_ids = new_ids

        # Suffix links: the id of g = x1..xk without x1, at order k-1. suffix(x1..xk) is the child
        # xk of suffix(x1..x(k-1)); every suffix of a text n-gram is itself a text n-gram.
        suffix: list[np.ndarray] = [np.zeros(1, np.int64), np.zeros(len(keys[1]), np.int64)]
        for k in range(2, K + 1):
            parent, sym = keys[k] // V, keys[k] % V
            suffix.append(_lookup(keys[k - 1], suffix[k - 1][parent] * V + sym))
            assert (suffix[k] >= 0).all()

        self._keys = keys
        self._top_counts = raw[K]
        self._tail = tail.astype(np.int64)
        self._a, self._inv, self._gamma = [None], [None], [None]            # index k = 1..K
        self.discounts = []
        for k in range(1, K + 1):
            if kn and k < K:   # continuation counts: distinct left extensions of each k-gram
                counts = np.bincount(suffix[k + 1], minlength=len(keys[k])).astype(np.int64)
            else:
                counts = raw[k]
            parent = keys[k] // V
            n_ctx = len(keys[k - 1])
            total = np.bincount(parent, weights=counts, minlength=n_ctx)
            if kn:
                d = _kn_discounts(counts)
                disc = np.where(counts > 0, d[np.minimum(counts, 3)], 0.0)
                a = counts - disc
                denom = total
                freed = np.bincount(parent, weights=disc, minlength=n_ctx)
                self.discounts.append([float(x) for x in d[1:]])
            else:
                a = counts.astype(np.float64)
                distinct = np.bincount(parent, weights=(counts > 0), minlength=n_ctx)
                denom = total + distinct
                freed = distinct
            with np.errstate(divide="ignore", invalid="ignore"):
                inv = np.where(denom > 0, 1.0 / denom, 0.0)
                gamma = np.where(denom > 0, freed / denom, 1.0)
            # A trailing sentinel: id -1 (an unseen n-gram or context) reads a = 0, inv = 0, gamma = 1.
            self._a.append(np.append(a, 0.0))
            self._inv.append(np.append(inv, 0.0))
            self._gamma.append(np.append(gamma, 1.0))
        self._fitted = True

    # ---- scoring ------------------------------------------------------------------------------------

    def _position_probs(self, seq: np.ndarray) -> np.ndarray:
        """p(seq[i] | seq[max(0,i-N):i]) for every i, (n,) float64, all orders at once."""
        V, K = len(self.vocab), self.K  # type: ignore[arg-type]
        n = len(seq)
        p = np.full(n, 1.0 / V)
        prev_ids = np.zeros(n, dtype=np.int64)        # context node (order k-1) ending at i-1: root
        for k in range(1, K + 1):
            ctx = prev_ids
            key = np.where(ctx >= 0, ctx * V + seq, -1)
            ids = np.where(ctx >= 0, _lookup(self._keys[k], key), -1)   # n-gram seq[i-k+1..i]
            p = self._a[k][ids] * self._inv[k][ctx] + self._gamma[k][ctx] * p
            prev_ids = np.concatenate([[-1], ids[:-1]])                 # shift: ends at i-1
        return p

    def log_prob_text(self, text: str, context: str = "") -> float:
        """Total natural-log probability of `text` (nats), each symbol given up to N before it.

        `context` is read first and conditions the start of `text`, but is not scored.
        """
        self._require_fit()
        seq = self._encode(context + text) if context else self._encode(text)
        skip = len(self._encode(context)) if context else 0
        if len(seq) - skip <= 0:
            return 0.0
        probs = self._position_probs(seq)[skip:]
        return float(np.log(probs).sum())

    def evaluate(self, text: str, context: str = "") -> dict:
        """{"loss": nats per symbol, "bpc": bits per character, "chars": n} (word models: per token)."""
        self._require_fit()
        n = len(self._encode(text))
        if n == 0:
            raise DataError("MarkovModel.evaluate: no text to evaluate")
        loss = -self.log_prob_text(text, context) / n + 0.0   # + 0.0: no "-0.0"
        if self.level == "char":
            return {"loss": loss, "bpc": loss / math.log(2), "chars": n}
        return {"loss": loss, "bits_per_token": loss / math.log(2), "perplexity": math.exp(loss),
                "tokens": n}

    # ---- next-symbol distributions and sampling -----------------------------------------------------

    def _advance(self, ctx: list[int], s: int) -> list[int]:
        """Context ids after one more symbol `s`: the suffix of length j now ends with s."""
        V = len(self.vocab)  # type: ignore[arg-type]
        new = [0]
        for j in range(1, self.config.order + 1):
            parent, keys = ctx[j - 1], self._keys[j]
            if parent < 0:
                new.append(-1)
                continue
            query = parent * V + s
            i = int(keys.searchsorted(query))
            new.append(i if i < len(keys) and keys[i] == query else -1)
        return new

    def _context_ids(self, seq) -> list[int]:
        """Node ids of the suffixes of length 0..N of `seq` (index j: length j); -1 if unseen or
        longer than `seq`, exactly as `_position_probs` treats the start of a text."""
        ctx = [0] + [-1] * self.config.order
        for s in list(seq)[max(0, len(seq) - self.config.order):]:
            ctx = self._advance(ctx, int(s))
        return ctx

    def _dist_from_context_ids(self, ctx_ids: list[int]) -> np.ndarray:
        V = len(self.vocab)  # type: ignore[arg-type]
        p = np.full(V, 1.0 / V)
        for k in range(1, self.K + 1):
            h = ctx_ids[k - 1]
            if h < 0 or self._inv[k][h] == 0.0:
                continue          # unseen context at this order: p_k = p_(k-1)
            keys = self._keys[k]
            lo, hi = int(keys.searchsorted(h * V)), int(keys.searchsorted((h + 1) * V))
            p = self._gamma[k][h] * p
            p[keys[lo:hi] - h * V] += self._a[k][lo:hi] * self._inv[k][h]
        return p

    def next_probs(self, context: str) -> np.ndarray:
        """The distribution over the vocabulary (V,) of the symbol after `context` (sums to 1)."""
        self._require_fit()
        return self._dist_from_context_ids(self._context_ids(self._encode(context)))

    def sample(self, prime: str = "", length: int = 1000, temperature: float = 1.0,
               seed: Seed = None) -> Iterator[str]:
        """Stream `length` new symbols after `prime` (not repeated). Same seed, same text.

        `temperature` rescales p ** (1 / temperature); 0 picks the most probable symbol.
        `seed` may be an int or a `numpy.random.Generator` (which is then advanced).
        """
        self._require_fit()
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        if temperature < 0 or not math.isfinite(temperature):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
        rng = np.random.default_rng(seed)
        V = len(self.vocab)  # type: ignore[arg-type]
        history = list(self._encode(prime)) if prime else []
        ctx = self._context_ids(history)
        sep = " " if self.level == "word" else ""
        for step in range(length):
            p = self._dist_from_context_ids(ctx)
            if temperature == 0:
                s = int(np.argmax(p))
            else:
                if temperature != 1.0:
                    logp = np.log(p) / temperature
                    p = np.exp(logp - logp.max())
                cdf = np.cumsum(p)
                s = int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), V - 1))
            ctx = self._advance(ctx, s)
            token = self._decode_symbol(s)
            yield (sep + token) if (sep and (step or prime)) else token

    # ---- save / load --------------------------------------------------------------------------------

    def _top_grams(self) -> np.ndarray:
        """The top-order n-grams as symbol ids, (m, K), in the trie's (sorted) order."""
        V, K = len(self.vocab), self.K  # type: ignore[arg-type]
        out = np.zeros((len(self._keys[K]), K), dtype=np.int64)
        node = np.arange(len(self._keys[K]))
        for k in range(K, 0, -1):
            key = self._keys[k][node]
            out[:, k - 1] = key % V
            node = key // V
        return out

    def _symbols_to_json(self, ids: np.ndarray):
        if isinstance(self.vocab, CharVocab):
            codes = np.array([ord(c) for c in self.vocab.chars], dtype="<u4")[ids.ravel()]
            return codes.tobytes().decode("utf-32-le", "surrogatepass")
        return [int(i) for i in ids.ravel()]

    def _symbols_from_json(self, value) -> np.ndarray:
        if isinstance(value, str):
            return self._encode(value) if value else np.zeros(0, np.int64)
        return np.asarray(value, dtype=np.int64)

    def to_json(self) -> dict:
        """The JSON document `save` writes: the top-order counts grouped by count value, each group
        the concatenation of its n-grams (fixed width K, sorted), plus the last N training symbols."""
        self._require_fit()
        grams = self._top_grams()
        counts = self._top_counts
        order = np.argsort(counts, kind="stable")          # by count, then trie (sorted) order
        values, starts = np.unique(counts[order], return_index=True)
        groups = {str(int(c)): self._symbols_to_json(grams[idx])
                  for c, idx in zip(values, np.split(order, starts[1:]))}
        return {
            "format": FORMAT, "version": FORMAT_VERSION,
            "config": asdict(self.config),
            "vocab": self.vocab.to_json(),  # type: ignore[union-attr]
            "speakers": self.speakers,
            "discounts": self.discounts,     # informative only: recomputed on load
            "ngram_length": self.K,
            "counts": groups,
            "tail": self._symbols_to_json(self._tail),
        }

    @classmethod
    def from_json(cls, obj: dict) -> "MarkovModel":
        if obj.get("format") != FORMAT or obj.get("version") != FORMAT_VERSION:
            raise DataError(f"not an rnnkit Markov model (format {obj.get('format')!r} "
                            f"version {obj.get('version')!r}; expected {FORMAT!r} {FORMAT_VERSION})")
        try:
            model = cls(MarkovConfig(**obj["config"]))
            model.vocab = vocab_from_json(obj["vocab"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"Markov model file: bad config or vocabulary ({exc})") from None
        model.speakers = {str(k): int(v) for k, v in obj.get("speakers", {}).items()}
        K = model.K
        if obj.get("ngram_length") != K:
            raise DataError(f"Markov model file: n-gram length {obj.get('ngram_length')} != order + 1 = {K}")
        blocks, weights = [np.zeros((0, K), np.int64)], [np.zeros(0, np.int64)]
        for count, grams in obj["counts"].items():
            ids = model._symbols_from_json(grams)
            if ids.size % K:
                raise DataError(f"Markov model file: count group {count} is not a whole number of {K}-grams")
            blocks.append(ids.reshape(-1, K))
            weights.append(np.full(ids.size // K, int(count), np.int64))
        model._build(np.concatenate(blocks), np.concatenate(weights), model._symbols_from_json(obj["tail"]))
        return model

    def save(self, directory: str | os.PathLike) -> Path:
        """Write `directory/markov.json.gz` atomically (temp file in the same directory, fsync, replace)."""
        path = Path(directory) / FILENAME
        data = json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        # mtime=0 keeps the file byte-identical for identical models
        atomic_write_bytes(path, gzip.compress(data, compresslevel=6, mtime=0))
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "MarkovModel":
        path = Path(directory) / FILENAME
        if not path.is_file():
            raise DataError(f"no Markov model at {path}")
        with gzip.open(path, "rb") as fh:
            return cls.from_json(json.loads(fh.read().decode("utf-8")))


# ---- plays -------------------------------------------------------------------------------------------

_SPEAKER_LINE_RE = re.compile(r"(?:\A|\n\n)([A-Z][A-Za-z'.-]*(?: [A-Za-z'.-]+){0,3}):\n(?=\S)")


def find_speakers(text: str) -> dict[str, int]:
    """Speaker names in play text: a line "NAME:" at the start of the text or after a blank line,
    followed by a line of speech. Returns {name: number of speeches}, most frequent first."""
    counts = Counter(_SPEAKER_LINE_RE.findall(text))
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _roman(n: int) -> str:
    out = ""
    for value, numeral in ((10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while n >= value:
            out += numeral
            n -= value
    return out


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _speech(model: MarkovModel, speaker: str, rng: np.random.Generator, temperature: float,
            max_chars: int, names: dict[str, int]) -> str:
    """Lines sampled after "SPEAKER:\\n" up to the end of the speech (a blank line), whole lines."""
    for _ in range(5):
        text = ""
        for ch in model.sample(f"\n\n{speaker}:\n", max_chars, temperature, rng):
            text += ch
            if text.endswith("\n\n"):
                break
        lines = [line.rstrip() for line in text.split("\n")]
        if not text.endswith("\n\n") and len(lines) > 1:
            lines = lines[:-1]                      # drop a line cut by max_chars
        # A line "NAME:" of a known speaker would read as a new speech: keep the speech ours.
        lines = [line for line in lines if line.strip() and line[:-1] not in names]
        if lines:
            return "\n".join(lines)
    return "..."


def iter_play(model: MarkovModel, seed: Seed = 0, acts: int = 3, scenes: tuple[int, int] = (2, 3),
              cast: tuple[int, int] = (2, 5), speeches: tuple[int, int] = (6, 12),
              temperature: float = 0.8, max_speech_chars: int = 400,
              speakers: Optional[dict[str, int]] = None) -> Iterator[str]:
    """Stream a structured play: a title, acts, scenes; each scene a cast of speakers who enter, speak
    in turn (never twice in a row while another is present), exit with "[Exit NAME]" and never speak
    again in that scene. Speeches are sampled from the chain after "NAME:". Deterministic for a seed.

    `scenes`, `cast` and `speeches` are inclusive (low, high) ranges drawn per act/scene.
    Speakers default to the names seen in the training text (lines "NAME:"), weighted by speeches.
    """
    model._require_fit()
    if model.level != "char":
        raise DataError("write_play needs a character-level Markov model")
    pool = dict(speakers if speakers is not None else model.speakers)
    pool = {name: n for name, n in pool.items() if not model.vocab.unknown(name)}  # type: ignore[union-attr]
    if len(pool) < 2:
        raise DataError("write_play needs at least two speaker names (lines 'NAME:' after a blank "
                        "line in the training text)")
    rng = np.random.default_rng(seed)
    names = list(pool)
    weights = np.array([pool[n] for n in names], dtype=np.float64)
    weights /= weights.sum()

    def draw(lo_hi: tuple[int, int]) -> int:
        return int(rng.integers(lo_hi[0], lo_hi[1] + 1))

    hero = names[int(rng.choice(len(names), p=weights))]
    yield f"THE TRAGEDY OF {hero.upper()}\n\n"
    for act in range(1, acts + 1):
        yield f"ACT {_roman(act)}\n\n"
        for scene in range(1, draw(scenes) + 1):
            yield f"SCENE {_roman(scene)}.\n\n"
            size = min(max(2, draw(cast)), len(names))
            members = [names[i] for i in rng.choice(len(names), size=size, replace=False, p=weights)]
            n_first = max(2, int(rng.integers(2, size + 1)))
            present, waiting, exited = members[:n_first], members[n_first:], []
            yield f"[Enter {_names(present)}]\n\n"
            last = None
            for _ in range(draw(speeches)):
                choices = [p for p in present if p != last] or present
                speaker = choices[int(rng.integers(len(choices)))]
                assert speaker not in exited
                yield f"{speaker}:\n{_speech(model, speaker, rng, temperature, max_speech_chars, pool)}\n\n"
                last = speaker
                roll = rng.random()
                if waiting and roll < 0.25:
                    newcomer = waiting.pop(0)
                    present.append(newcomer)
                    yield f"[Enter {newcomer}]\n\n"
                elif len(present) > 2 and roll > 0.8:
                    leaving = present.pop(int(rng.integers(len(present))))
                    exited.append(leaving)
                    yield f"[Exit {leaving}]\n\n"
            yield (f"[Exit {present[0]}]\n\n" if len(present) == 1 else
                   f"[Exeunt {_names(present)}]\n\n")


def write_play(model: MarkovModel, seed: Seed = 0, **options) -> str:
    """The whole play as one string; see `iter_play` for the options."""
    return "".join(iter_play(model, seed, **options))
