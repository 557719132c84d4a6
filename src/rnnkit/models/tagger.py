"""A sequence tagger (synced many-to-many): one tag per word, from a bidirectional RNN over the
sentence, with character-level word features and an optional CRF output layer.

Shapes: B batch, T words (padded), C characters per word (padded), E word embedding, F character
features, H hidden size per direction, K tags.

    words (B, T) ─embed─────────────────────────────┐
    chars (B, T, C) ─embed─► conv over C ─► max ─────┴─► (B, T, E + F) ─► biRNN ─► (B, T, 2H)
                                                                                      │ dense
                                        tags (B, T) ◄── softmax or CRF (Viterbi) ◄── scores (B, T, K)

* Character features (Ma & Hovy 2016: a convolution over each word's characters, max-pooled) give
  a vector to words never seen in training — capitals, digits, suffixes such as "-ville" or "Corp".
* The softmax layer picks each tag alone. The CRF (Lample et al. 2016) scores whole tag sequences:
  score(y) = Σ_t emission[t, y_t] + Σ_t transition[y_{t-1}, y_t] + start[y_0] + end[y_last],
  trained by the log-likelihood log p(y) = score(y) − log Σ_y' exp score(y') (the forward
  algorithm sums over all K^T sequences in O(T·K²)), decoded by Viterbi (the best sequence, same
  cost). It learns that some transitions never happen (I-PER after O): their scores fall. As the
  likelihood only pushes them down as far as the emissions need, an unseen word can still tip the
  balance, so the transitions a tag scheme forbids can also be ruled out outright (``forbidden``:
  a score of -10⁴, in training and decoding alike, as AllenNLP's constrained CRF does).
* Padding never changes a tag: the RNN stops at each row's length, and the CRF's recursions keep
  each row's state unchanged past its end.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import GRU, LSTM, RNN

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


@dataclass(frozen=True)
class TaggerConfig:
    words: int                        # word vocabulary size
    chars: int                        # character vocabulary size (0: no character features)
    tags: int                         # K
    cell: str = "lstm"
    embed: int = 100                  # E
    char_embed: int = 25
    char_features: int = 50           # F: convolution filters
    char_width: int = 3               # characters a filter sees
    hidden: int = 100                 # H per direction
    layers: int = 1
    dropout: float = 0.5              # on the word vectors and on the RNN's outputs
    crf: bool = False
    forbidden: tuple = ()             # CRF: (previous, next) tag pairs ruled out; -1 = start / end
    pad_id: int = 0

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {self.cell!r}")
        for name in ("words", "tags", "embed", "hidden", "layers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        object.__setattr__(self, "forbidden", tuple(tuple(pair) for pair in self.forbidden))

    def to_json(self) -> dict:
        return asdict(self)


class CharFeatures(nn.Module):
    """Each word's characters → one vector: embeddings, a convolution, max over the word."""

    def __init__(self, chars: int, embed: int, features: int, width: int, pad_id: int) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.embedding = nn.Embedding(chars, embed, padding_idx=pad_id)
        self.conv = nn.Conv1d(embed, features, width, padding=width // 2)

    def forward(self, chars: Tensor) -> Tensor:
        """chars (B, T, C) ids → (B, T, F)."""
        B, T, C = chars.shape
        x = self.embedding(chars.view(B * T, C)).transpose(1, 2)          # (B·T, E_c, C)
        h = self.conv(x)[..., :C]                                         # (B·T, F, C)
        real = (chars.view(B * T, 1, C) != self.pad_id)
        h = h.masked_fill(~real, float("-inf")).amax(-1)                  # (B·T, F)
        return torch.where(torch.isfinite(h), h, torch.zeros_like(h)).view(B, T, -1)  # empty: 0


class CRF(nn.Module):
    """A linear-chain conditional random field over K tags."""

    FORBIDDEN = -1e4                  # finite: a row with every transition ruled out stays a number

    def __init__(self, tags: int, forbidden: tuple = ()) -> None:
        super().__init__()
        self.learned_transitions = nn.Parameter(torch.zeros(tags, tags))   # [previous, next]
        self.learned_start = nn.Parameter(torch.zeros(tags))
        self.learned_end = nn.Parameter(torch.zeros(tags))
        # The rule-outs, added to the learned scores (K + 1 rows/columns: the last is start / end).
        rules = torch.zeros(tags + 1, tags + 1)
        for prev, nxt in forbidden:
            rules[prev, nxt] = self.FORBIDDEN
        self.register_buffer("rules", rules, persistent=False)

    @property
    def transitions(self) -> Tensor:
        return self.learned_transitions + self.rules[:-1, :-1]

    @property
    def start(self) -> Tensor:
        return self.learned_start + self.rules[-1, :-1]

    @property
    def end(self) -> Tensor:
        return self.learned_end + self.rules[:-1, -1]

    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """The score of the given tag sequences: (B, T, K), (B, T), (B, T) → (B,)."""
        first = self.start[tags[:, 0]] + emissions[:, 0].gather(1, tags[:, :1]).squeeze(1)
        step = (self.transitions[tags[:, :-1], tags[:, 1:]]
                + emissions[:, 1:].gather(2, tags[:, 1:].unsqueeze(2)).squeeze(2))   # (B, T-1)
        last = tags.gather(1, (mask.sum(1) - 1).unsqueeze(1)).squeeze(1)
        return first + (step * mask[:, 1:]).sum(1) + self.end[last]

    def log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """log Σ over all tag sequences of exp(score), by the forward algorithm: (B,)."""
        alpha = self.start + emissions[:, 0]                                  # (B, K)
        for t in range(1, emissions.shape[1]):
            # alpha'[j] = logsumexp_i(alpha[i] + transition[i, j]) + emission[t, j]
            nxt = torch.logsumexp(alpha.unsqueeze(2) + self.transitions, 1) + emissions[:, t]
            alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)         # padding: unchanged
        return torch.logsumexp(alpha + self.end, 1)

    def nll(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Mean negative log-likelihood per sentence."""
        return (self.log_partition(emissions, mask) - self.score(emissions, tags, mask)).mean()

    @torch.no_grad()
    def viterbi(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """The best tag sequence of each row (B, T); positions past a row's length are 0."""
        B, T, K = emissions.shape
        best = self.start + emissions[:, 0]                                   # (B, K)
        back = []
        for t in range(1, T):
            total = best.unsqueeze(2) + self.transitions                      # (B, K prev, K next)
            value, arg = total.max(1)
            back.append(torch.where(mask[:, t].unsqueeze(1), arg,           # padding: stay put
                                    torch.arange(K, device=arg.device).expand(B, K)))
            best = torch.where(mask[:, t].unsqueeze(1), value + emissions[:, t], best)
        tag = (best + self.end).argmax(1)                                     # (B,) at each row's end
        path = [tag]
        for arg in reversed(back):
            tag = arg.gather(1, tag.unsqueeze(1)).squeeze(1)
            path.append(tag)
        return torch.stack(path[::-1], 1) * mask


class Tagger(nn.Module):
    def __init__(self, config: TaggerConfig) -> None:
        super().__init__()
        self.config = c = config
        self.word_embedding = nn.Embedding(c.words, c.embed, padding_idx=c.pad_id)
        self.char_features = (CharFeatures(c.chars, c.char_embed, c.char_features, c.char_width,
                                           c.pad_id) if c.chars else None)
        features = c.embed + (c.char_features if c.chars else 0)
        self.rnn = CELLS[c.cell](features, c.hidden, c.layers, batch_first=True, bidirectional=True,
                                 dropout=c.dropout if c.layers > 1 else 0.0)
        self.drop = nn.Dropout(c.dropout)
        self.output = nn.Linear(2 * c.hidden, c.tags)
        self.crf = CRF(c.tags, c.forbidden) if c.crf else None

    def forward(self, words: Tensor, chars: Tensor, lengths: Tensor) -> Tensor:
        """words (B, T), chars (B, T, C), lengths (B,) → tag scores (B, T, K)."""
        x = self.word_embedding(words)                                        # (B, T, E)
        if self.char_features is not None:
            x = torch.cat([x, self.char_features(chars)], -1)                 # (B, T, E + F)
        h, _ = self.rnn(self.drop(x), lengths=lengths)                        # (B, T, 2H)
        return self.output(self.drop(h))

    def loss(self, scores: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        if self.crf is not None:
            return self.crf.nll(scores.float(), tags, mask)
        return F.cross_entropy(scores[mask].float(), tags[mask])

    def decode(self, scores: Tensor, mask: Tensor) -> Tensor:
        """The predicted tags (B, T); 0 past each row's length."""
        if self.crf is not None:
            return self.crf.viterbi(scores.float(), mask)
        return scores.argmax(-1) * mask
