"""Vocabularies: characters, and words with the special tokens the lectures use.

A vocabulary maps symbols to integer ids and back, and is saved as JSON beside every checkpoint so
that a run directory alone can rebuild its model. Ids are assigned in a fixed order (specials first,
then by descending count, ties broken by the symbol) so the same data always gives the same ids.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

PAD, UNK, NUM, URL = "<pad>", "<unk>", "<num>", "<url>"
GO, EOS = "<go>", "<eos>"


@dataclass
class CharVocab:
    """Every distinct character of the training text; no <unk>: an unseen character is an error."""

    chars: list[str]
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("CharVocab: duplicate characters")
        self.index = {ch: i for i, ch in enumerate(self.chars)}

    @classmethod
    def from_counts(cls, counts: Counter) -> "CharVocab":
        return cls(sorted(counts))

    def __len__(self) -> int:
        return len(self.chars)

    def unknown(self, text: str) -> list[str]:
        """The distinct characters of `text` that are not in the vocabulary, in order of appearance."""
        return list(dict.fromkeys(ch for ch in text if ch not in self.index))

    def encode(self, text: str) -> list[int]:
        missing = self.unknown(text)
        if missing:
            raise ValueError(f"characters not in the vocabulary: {''.join(missing)!r}")
        return [self.index[ch] for ch in text]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def encode_array(self, text: str) -> np.ndarray:
        """The ids of a whole corpus as int32 (4 bytes a character), without a Python int per char."""
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
        table = np.array(sorted(ord(ch) for ch in self.chars), dtype=np.uint32)
        pos = np.minimum(np.searchsorted(table, codes), len(table) - 1)
        if not np.array_equal(table[pos], codes):
            raise ValueError(f"characters not in the vocabulary: {''.join(self.unknown(text))!r}")
        rank_to_id = np.array([self.index[chr(c)] for c in table], dtype=np.int32)
        return rank_to_id[pos]

    def to_json(self) -> dict:
        return {"kind": "char", "symbols": self.chars}


_URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_NUM_RE = re.compile(r"^[+-]?(?:\d+(?:[.,]\d+)*|\d*\.\d+)(?:%|st|nd|rd|th)?$")
_TOKEN_RE = re.compile(r"(?:https?://|www\.)\S+|\w+(?:[-']\w+)*|[^\w\s]", re.UNICODE)


def tokenize(text: str, lower: bool = True) -> list[str]:
    """Words, numbers, URLs and single punctuation marks; lower-cased by default."""
    tokens = _TOKEN_RE.findall(text)
    return [t.lower() for t in tokens] if lower else tokens


def normalize_token(token: str) -> str:
    """Numbers become <num> and URLs <url>, as the lectures' preprocessing does."""
    if _URL_RE.fullmatch(token):
        return URL
    if _NUM_RE.match(token):
        return NUM
    return token


@dataclass
class WordVocab:
    """Words seen at least `min_count` times (at most `max_size`), plus <pad> <unk> <num> <url>."""

    words: list[str]
    index: dict[str, int] = field(init=False, repr=False)

    SPECIALS = (PAD, UNK, NUM, URL)
    KIND = "word"
    normalize = staticmethod(normalize_token)

    def __post_init__(self) -> None:
        if list(self.words[: len(self.SPECIALS)]) != list(self.SPECIALS):
            raise ValueError(f"{type(self).__name__} must start with {self.SPECIALS}")
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, token_lists: Iterable[list[str]], min_count: int = 1,
              max_size: int | None = None) -> "WordVocab":
        counts = Counter(cls.normalize(t) for tokens in token_lists for t in tokens)
        for special in cls.SPECIALS:
            counts.pop(special, None)
        kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        if max_size is not None:
            kept = kept[: max(0, max_size - len(cls.SPECIALS))]
        return cls(list(cls.SPECIALS) + kept)

    def __len__(self) -> int:
        return len(self.words)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    def encode(self, tokens: Iterable[str]) -> list[int]:
        return [self.index.get(self.normalize(t), self.unk_id) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.words[i] for i in ids]

    def to_json(self) -> dict:
        return {"kind": self.KIND, "symbols": self.words}


class TokenVocab(WordVocab):
    """Tokens as they are (no <num>/<url> mapping: a translation must copy numbers), plus
    <pad> <unk> and the decoder's <go> (its first input) and <eos> (its last output)."""

    SPECIALS = (PAD, UNK, GO, EOS)
    KIND = "token"
    pad_id, unk_id, go_id, eos_id = 0, 1, 2, 3      # class constants: the model config uses them

    @staticmethod
    def normalize(token: str) -> str:
        return token


def vocab_from_json(obj: dict) -> CharVocab | WordVocab | TokenVocab:
    kinds = {"char": CharVocab, "word": WordVocab, "token": TokenVocab}
    if obj.get("kind") not in kinds:
        raise ValueError(f"unknown vocabulary kind {obj.get('kind')!r}")
    return kinds[obj["kind"]](list(obj["symbols"]))
