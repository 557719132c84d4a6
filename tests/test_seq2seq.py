"""The encoder–decoder, attention and decoding: invariants and small tasks learned to 100 %."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from rnnkit.attention import Attention
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.sampling import beam_search, greedy_decode, length_penalty
from rnnkit.decoder import teacher_inputs

PAD, GO, EOS = 0, 2, 3


def model(**kw) -> Seq2Seq:
    torch.manual_seed(kw.pop("seed", 0))
    cfg = dict(source_vocab=12, target_vocab=11, embed=8, hidden=16)
    return Seq2Seq(Seq2SeqConfig(**{**cfg, **kw})).eval()


def padded(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(r) for r in rows])
    out = torch.full((len(rows), int(lengths.max())), PAD)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r)
    return out, lengths


SOURCES = [[4, 5, 6, 7, 8], [9, 4], [5, 5, 6, 10, 11, 4, 7], [6]]
CONFIGS = [dict(attention="none"), dict(attention="dot"), dict(attention="additive"),
           dict(attention="dot", bidirectional=True, reverse_source=True, layers=2, cell="gru"),
           dict(attention="additive", reverse_source=True, cell="rnn")]


# ---- attention ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["additive", "dot"])
def test_attention_weights_sum_to_one_and_are_zero_on_padding(kind):
    torch.manual_seed(0)
    att = Attention(kind, 6)
    memory, query = torch.randn(3, 5, 6), torch.randn(3, 4, 6)
    mask = torch.arange(5) < torch.tensor([5, 2, 1]).unsqueeze(1)            # (B, S)
    context, weights = att(query, memory, mask)
    assert torch.allclose(weights.sum(-1), torch.ones(3, 4))
    padding = ~mask.unsqueeze(1).expand_as(weights)
    assert (weights[padding] == 0).all() and (weights[~padding] > 0).all()
    # What the padding holds never reaches the context.
    context2, weights2 = att(query, memory.masked_fill(~mask.unsqueeze(-1), 1e4), mask)
    assert torch.equal(weights2, weights) and torch.allclose(context2, context)


def test_dot_attention_is_luong_dot_product():
    torch.manual_seed(1)
    att = Attention("dot", 4)
    q, m = torch.randn(1, 1, 4), torch.randn(1, 3, 4)
    context, w = att(q, m, torch.ones(1, 3, dtype=torch.bool))
    expected = torch.softmax(m[0] @ q[0, 0], 0)
    assert torch.allclose(w[0, 0], expected)
    assert torch.allclose(context[0, 0], expected @ m[0])


# ---- the model ------------------------------------------------------------------------------------

def test_teacher_inputs_are_go_then_the_target_shifted_right():
    targets = torch.tensor([[5, 6, 7, EOS], [8, EOS, PAD, PAD]])
    assert teacher_inputs(targets, GO).tolist() == [[GO, 5, 6, 7], [GO, 8, EOS, PAD]]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_teacher_forcing_equals_feeding_the_true_previous_word_step_by_step(cfg):
    m = model(**cfg)
    source, lengths = padded(SOURCES)
    targets = torch.tensor([[5, 6, 7, EOS], [8, 4, 9, EOS], [4, 4, EOS, PAD], [10, EOS, PAD, PAD]])
    logits, weights = m(source, lengths, teacher_inputs(targets, GO))
    state = m.encode(source, lengths)
    words = torch.full((4,), GO)
    for t in range(targets.shape[1]):
        log_probs, state = m.decoder.step(words, state)
        assert torch.allclose(log_probs, logits[:, t].log_softmax(-1), atol=1e-5)
        words = targets[:, t]
    if cfg["attention"] == "none":
        assert weights is None
    else:
        assert torch.allclose(weights.sum(-1), torch.ones(4, 4), atol=1e-6)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_padding_never_changes_a_row(cfg):
    m = model(**cfg)
    source, lengths = padded(SOURCES)
    targets = torch.tensor([[5, 6, 7, EOS]] * 4)
    logits, _ = m(source, lengths, teacher_inputs(targets, GO))
    for i, row in enumerate(SOURCES):
        alone, _ = m(torch.tensor([row]), torch.tensor([len(row)]), teacher_inputs(targets[i: i + 1], GO))
        assert torch.allclose(logits[i], alone[0], atol=1e-5)


def test_reversed_source_reads_the_row_backwards_within_its_length():
    m = model(attention="dot", reverse_source=True)
    plain = model(attention="dot")                      # same seed: same weights
    plain.load_state_dict(m.state_dict())
    source, lengths = padded(SOURCES)
    reversed_rows, _ = padded([row[::-1] for row in SOURCES])
    a, b = m.encode(source, lengths), plain.encode(reversed_rows, lengths)
    assert torch.allclose(a.rnn[0], b.rnn[0]) and torch.allclose(a.rnn[1], b.rnn[1])
    for i, row in enumerate(SOURCES):           # outputs come back in the source's own order
        n = len(row)
        assert torch.allclose(a.memory[i, :n], b.memory[i, :n].flip(0))


def test_bidirectional_encoder_hands_the_decoder_both_directions():
    m = model(bidirectional=True, layers=2)
    source, lengths = padded(SOURCES)
    state = m.encode(source, lengths)
    _, (h, _) = m.encoder(m.source_embedding(source), lengths=lengths)     # (2L, B, H/2)
    assert state.rnn[0].shape == (2, 4, 16)
    assert torch.equal(state.rnn[0][1, :, :8], h[2]) and torch.equal(state.rnn[0][1, :, 8:], h[3])


def test_scheduled_sampling():
    m = model(attention="dot").train()       # no dropout: training mode changes nothing else
    source, lengths = padded(SOURCES)
    targets = torch.tensor([[5, 6, 7, 8, 9, EOS]] * 4)
    forced, _ = m(source, lengths, teacher_inputs(targets, GO))
    torch.manual_seed(0)
    same, _ = m(source, lengths, teacher_inputs(targets, GO), sampling_rate=0.0)
    assert torch.equal(forced, same)
    torch.manual_seed(0)
    sampled, weights = m(source, lengths, teacher_inputs(targets, GO), sampling_rate=1.0)
    assert torch.allclose(sampled[:, 0], forced[:, 0], atol=1e-6)      # the first input is <go>
    assert not torch.allclose(sampled[:, 1:], forced[:, 1:], atol=1e-3)
    assert weights.shape == (4, 6, 7)


# ---- decoding ------------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", CONFIGS)
def test_beam_of_one_is_greedy(cfg):
    m = model(**cfg, seed=3)
    source, lengths = padded(SOURCES)
    greedy = greedy_decode(m.decoder.step, m.encode(source, lengths), 4, GO, EOS, 12)
    beam = beam_search(m.decoder.step, m.decoder.reorder, m.encode(source, lengths), 4, 1, GO, EOS, 12)
    assert greedy == beam
    assert any(len(g) > 0 for g in greedy)


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("beam", [1, 3])
def test_batched_decoding_equals_one_by_one(cfg, beam):
    m = model(**cfg, seed=4)
    source, lengths = padded(SOURCES)
    batched = beam_search(m.decoder.step, m.decoder.reorder, m.encode(source, lengths), 4, beam, GO, EOS, 10)
    for i, row in enumerate(SOURCES):
        state = m.encode(torch.tensor([row]), torch.tensor([len(row)]))
        assert beam_search(m.decoder.step, m.decoder.reorder, state, 1, beam, GO, EOS, 10) == [batched[i]]
    assert greedy_decode(m.decoder.step, m.encode(source, lengths), 4, GO, EOS, 10) == \
        [greedy_decode(m.decoder.step, m.encode(torch.tensor([r]), torch.tensor([len(r)])), 1, GO, EOS, 10)[0]
         for r in SOURCES]


class TableLM:
    """A toy decoder: log P(next | previous word, position) from a fixed random table."""

    def __init__(self, V: int, T: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.table = (torch.randn(T, V, V, generator=g) * 2).log_softmax(-1)

    def step(self, words, state):
        position = state
        return self.table[position, words], position + 1

    @staticmethod
    def reorder(state, index):
        return state.index_select(0, index)

    def score(self, seq: list[int]) -> float:
        prev, total = GO, 0.0
        for t, w in enumerate(seq):
            total += float(self.table[t, prev, w])
            prev = w
        return total


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
@pytest.mark.parametrize("seed", range(4))
def test_a_beam_wide_enough_finds_the_best_output_exhaustively(alpha, seed):
    """V = 5, T = 3: a beam of 125 keeps every hypothesis, so it must return the argmax over all
    outputs (ended by <eos>, or cut at T) of log P / length penalty, found here by enumeration."""
    V, T = 5, 3
    lm = TableLM(V, T, seed)
    best, best_score = None, -math.inf
    for n in range(1, T + 1):
        for seq in itertools.product(range(V), repeat=n):
            if EOS in seq[:-1] or (n < T and seq[-1] != EOS):
                continue                                   # not a complete output
            s = lm.score(list(seq)) / float(length_penalty(torch.tensor(n), alpha))
            if s > best_score:
                best, best_score = list(seq), s
    found = beam_search(lm.step, lm.reorder, torch.zeros(1, dtype=torch.long), 1, V ** T, GO, EOS,
                        T, alpha)
    assert found == [best[:-1] if best[-1] == EOS else best]


def test_beam_search_escapes_the_greedy_trap():
    """Greedy takes the likely first word into a dead end; beam 2 keeps the other path."""
    table = torch.full((2, 6, 6), -20.0)
    table[0, GO, 4], table[0, GO, 5] = math.log(0.55), math.log(0.45)
    table[1, 4, :] = math.log(1 / 6)                    # after 4: anything, nothing likely
    table[1, 5, EOS] = 0.0                              # after 5: <eos> for sure
    lm = TableLM(6, 2, 0)
    lm.table = table
    start = torch.zeros(1, dtype=torch.long)
    assert greedy_decode(lm.step, start, 1, GO, EOS, 2) == [[4, 0]]     # ties: the first word
    assert beam_search(lm.step, lm.reorder, start, 1, 2, GO, EOS, 2, alpha=0.0) == [[5]]


# ---- learning --------------------------------------------------------------------------------------

def _learn(task: str, attention: str, steps: int) -> float:
    """Train on random sequences of 3–8 symbols; exact-match rate of greedy decoding on new ones."""
    torch.manual_seed(0)
    m = Seq2Seq(Seq2SeqConfig(source_vocab=12, target_vocab=12, embed=32, hidden=96,
                              attention=attention))
    opt = torch.optim.Adam(m.parameters(), lr=5e-3)
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1 - step / steps)

    def batch(n: int, g: torch.Generator):
        lengths = torch.randint(3, 9, (n,), generator=g)
        rows = [torch.randint(4, 12, (int(k),), generator=g).tolist() for k in lengths]
        outs = [r if task == "copy" else r[::-1] for r in rows]
        source, _ = padded(rows)
        targets, _ = padded([o + [EOS] for o in outs])
        return source, lengths, targets, outs

    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        source, lengths, targets, _ = batch(64, g)
        logits, _ = m(source, lengths, teacher_inputs(targets, GO))
        opt.zero_grad()
        m.decoder.loss(logits, targets).backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        decay.step()
    m.eval()
    source, lengths, _, outs = batch(300, torch.Generator().manual_seed(99))
    decoded = greedy_decode(m.decoder.step, m.encode(source, lengths), 300, GO, EOS, 12)
    return sum(d == o for d, o in zip(decoded, outs)) / len(outs)


@pytest.mark.parametrize("task", ["copy", "reverse"])
def test_copy_and_reverse_are_learned_to_100_percent(task):
    assert _learn(task, "dot", 400) == 1.0
