"""The RNN decoder that writes a sentence word by word, with optional attention over a memory:
the second half of the encoder–decoder (translation) and of the captioner (image → sentence).

Shapes: B batch, T output words, S memory positions (source words, image regions), E embedding,
H hidden size, L layers, V vocabulary.

    <go> y_1 … y_{T-1} (B, T) ─embed─► RNN, started from the encoder's state ─► h_t (B, T, H)
                                                                                    │
                    memory (B, S, H) ── attention(h_t, memory) ─► c_t (B, T, H) ────┤
                                                                                    ▼
                                   logits (B, T, V) ◄── dense ◄── tanh(W_c [c_t; h_t])

The attention follows Luong et al. (2015): the RNN's output h_t queries the memory and the context
c_t joins h_t in the attentional state (with additive scores this is Bahdanau et al.'s scoring in
Luong's place). The context does not feed back into the RNN, so with teacher forcing the whole
target is one RNN call, and the teacher-forced pass over a decoded output reproduces exactly the
attention weights the decoding used. Without attention the starting state is all the decoder
knows of its input.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import Attention
from .layers import GRU, LSTM, RNN
from .sampling import beam_search, greedy_decode
from .unroll import State, map_state

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def teacher_inputs(targets: Tensor, go_id: int) -> Tensor:
    """The decoder's inputs under teacher forcing: <go>, then the target shifted right by one.
    targets (B, T) = y_1 … y_T (each row ending in <eos>, then padding) → (B, T)."""
    return torch.cat([torch.full_like(targets[:, :1], go_id), targets[:, :-1]], 1)


@dataclass
class DecoderState:
    """What one decoding step needs: the memory and the decoder RNN's state."""

    memory: Tensor                     # (B, S, H) what the attention reads
    keys: Optional[Tensor]             # (B, S, H) the attention's precomputed memory side
    mask: Tensor                       # (B, S) True on real positions
    rnn: State                         # (L, B, H), or a tuple (h, c) of them for an LSTM

    def select(self, index: Tensor) -> "DecoderState":
        """Rows ``index`` (N',) of the batch, in that order (repeated, for beams)."""
        return DecoderState(self.memory.index_select(0, index),
                            None if self.keys is None else self.keys.index_select(0, index),
                            self.mask.index_select(0, index),
                            map_state(lambda t: t.index_select(1, index), self.rnn))


class Decoder(nn.Module):
    def __init__(self, vocab: int, embed: int, hidden: int, layers: int = 1, cell: str = "lstm",
                 attention: str = "none", dropout: float = 0.0, pad_id: int = 0, go_id: int = 2,
                 eos_id: int = 3) -> None:
        super().__init__()
        self.pad_id, self.go_id, self.eos_id = pad_id, go_id, eos_id
        self.embedding = nn.Embedding(vocab, embed, padding_idx=pad_id)
        self.rnn = CELLS[cell](embed, hidden, layers, dropout=dropout, batch_first=True)
        self.attention = None if attention == "none" else Attention(attention, hidden)
        self.combine = None if attention == "none" else nn.Linear(2 * hidden, hidden)
        self.drop = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, vocab)

    def start(self, memory: Tensor, mask: Tensor, rnn: State) -> DecoderState:
        """The state before the first word: memory (B, S, H), mask (B, S), the RNN's first state."""
        keys = None if self.attention is None else self.attention.keys(memory)
        return DecoderState(memory, keys, mask, rnn)

    def forward(self, inputs: Tensor, state: DecoderState
                ) -> tuple[Tensor, DecoderState, Optional[Tensor]]:
        """inputs (B, T) previous words → logits (B, T, V), the state after them, attention
        weights (B, T, S) or None."""
        h, rnn = self.rnn(self.drop(self.embedding(inputs)), state.rnn)             # (B, T, H)
        weights = None
        if self.attention is not None:
            context, weights = self.attention(h, state.memory, state.mask, state.keys)
            h = torch.tanh(self.combine(torch.cat([context, h], -1)))              # (B, T, H)
        state = DecoderState(state.memory, state.keys, state.mask, rnn)
        return self.output(self.drop(h)), state, weights

    def teacher_forced(self, inputs: Tensor, state: DecoderState, sampling_rate: float = 0.0
                       ) -> tuple[Tensor, Optional[Tensor]]:
        """inputs (B, T) = <go> y_1 … y_{T-1} → logits (B, T, V) for y_1 … y_T and the attention
        weights (B, T, S) (None without attention).

        With ``sampling_rate`` p > 0 while training (scheduled sampling, Bengio et al. 2015) each
        input after <go> is instead, with probability p, a word sampled from the model's own
        previous output — what it will read at test time — and the RNN runs a step at a time."""
        if not (self.training and sampling_rate > 0):
            logits, _, weights = self(inputs, state)
            return logits, weights
        logits, weights = [], []
        word = inputs[:, :1]                                                        # (B, 1) <go>
        for t in range(inputs.shape[1]):
            step_logits, state, step_weights = self(word, state)
            logits.append(step_logits)
            weights.append(step_weights)
            if t + 1 < inputs.shape[1]:
                sampled = torch.multinomial(step_logits[:, 0].detach().float().softmax(-1), 1)
                use_model = torch.rand(sampled.shape, device=sampled.device) < sampling_rate
                word = torch.where(use_model, sampled, inputs[:, t + 1: t + 2])
        return torch.cat(logits, 1), None if self.attention is None else torch.cat(weights, 1)

    def loss(self, logits: Tensor, targets: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """Mean cross-entropy per real target word (the padding after each <eos> is masked); with
        ``label_smoothing`` ε against (1 - ε)·one-hot + ε/V (Szegedy et al. 2016), for training."""
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(),
                               ignore_index=self.pad_id, label_smoothing=label_smoothing)

    @torch.no_grad()
    def validation_scores(self, batches: Iterable[tuple[Tensor, Tensor]]) -> dict[str, float]:
        """Loss per real target word and the rate of words predicted right, over the
        (logits (B, T, V), targets (B, T)) of teacher-forced batches."""
        loss_sum, right, words = 0.0, 0, 0
        for logits, targets in batches:
            real = targets != self.pad_id
            n = int(real.sum())
            loss_sum += float(self.loss(logits, targets)) * n
            right += int(((logits.argmax(-1) == targets) & real).sum())
            words += n
        return {"val_loss": loss_sum / words, "val_word_accuracy": right / words}

    # ---- one word at a time: the step and reorder functions of sampling.py's searches ----------

    def step(self, words: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """words (N,) → log-probabilities of the next word (N, V), new state."""
        logits, state, _ = self(words.unsqueeze(1), state)
        return logits[:, 0].float().log_softmax(-1), state

    @staticmethod
    def reorder(state: DecoderState, index: Tensor) -> DecoderState:
        return state.select(index)

    def search(self, state: DecoderState, batch: int, beam: int, max_len: int,
               alpha: float = 0.6) -> list[list[int]]:
        """Each row's output words (without <eos>): greedy when beam = 1, else beam search."""
        device = state.memory.device
        if beam == 1:
            return greedy_decode(self.step, state, batch, self.go_id, self.eos_id, max_len, device)
        return beam_search(self.step, self.reorder, state, batch, beam, self.go_id, self.eos_id,
                           max_len, alpha, device)
