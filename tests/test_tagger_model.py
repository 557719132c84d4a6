"""The tagger's CRF against brute force, and padding that never changes a tag."""
from __future__ import annotations

import itertools

import pytest
import torch

from rnnkit.models.tagger import CRF, CharFeatures, Tagger, TaggerConfig


def crf_and_emissions(K: int = 3, T: int = 4, B: int = 2, seed: int = 0):
    torch.manual_seed(seed)
    crf = CRF(K)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
        crf.rules.normal_()                       # rule-outs are scores added like any other
    return crf, torch.randn(B, T, K)


@torch.no_grad()
def brute_force(crf: CRF, emissions, length: int):
    """Every tag sequence of the row's length: (log Σ exp score, best sequence)."""
    K = emissions.shape[-1]
    scores = {}
    for seq in itertools.product(range(K), repeat=length):
        s = crf.start[seq[0]] + emissions[0, seq[0]] + crf.end[seq[-1]]
        for t in range(1, length):
            s = s + crf.transitions[seq[t - 1], seq[t]] + emissions[t, seq[t]]
        scores[seq] = float(s)
    values = torch.tensor(list(scores.values()))
    return float(torch.logsumexp(values, 0)), list(max(scores, key=scores.get))


@pytest.mark.parametrize("seed", range(3))
def test_forward_algorithm_and_viterbi_equal_enumeration(seed):
    crf, emissions = crf_and_emissions(seed=seed)
    lengths = torch.tensor([4, 2])
    mask = torch.arange(4) < lengths.unsqueeze(1)
    log_z = crf.log_partition(emissions, mask)
    best = crf.viterbi(emissions, mask)
    for b, n in enumerate(lengths.tolist()):
        z, seq = brute_force(crf, emissions[b, :n], n)
        assert log_z[b].item() == pytest.approx(z, abs=1e-4)
        assert best[b, :n].tolist() == seq
        assert best[b, n:].eq(0).all()
        # The score of the Viterbi path is the largest, and p(best) ≤ 1.
        s = crf.score(emissions[b: b + 1, :n], best[b: b + 1, :n], mask[b: b + 1, :n])
        assert s.item() <= z + 1e-5


def test_nll_is_the_negative_log_probability_of_the_gold_sequence():
    crf, emissions = crf_and_emissions(K=2, T=3, B=1)
    tags = torch.tensor([[1, 0, 1]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    z, _ = brute_force(crf, emissions[0], 3)
    gold = (crf.start[1] + emissions[0, 0, 1] + crf.transitions[1, 0] + emissions[0, 1, 0]
            + crf.transitions[0, 1] + emissions[0, 2, 1] + crf.end[1])
    assert crf.nll(emissions, tags, mask).item() == pytest.approx(z - gold.item(), abs=1e-5)


def test_padded_positions_change_nothing_in_the_crf():
    crf, emissions = crf_and_emissions(T=5, B=1)
    mask = torch.tensor([[True, True, True, False, False]])
    other = emissions.clone()
    other[:, 3:] = 100.0                                    # what the padding holds
    assert torch.equal(crf.log_partition(emissions, mask), crf.log_partition(other, mask))
    assert torch.equal(crf.viterbi(emissions, mask), crf.viterbi(other, mask))
    tags = torch.tensor([[1, 2, 0, 2, 2]])
    assert torch.equal(crf.score(emissions, tags, mask), crf.score(other, tags * mask, mask))


def test_character_features_of_a_word_ignore_padding():
    torch.manual_seed(0)
    chars = CharFeatures(chars=10, embed=4, features=6, width=3, pad_id=0)
    word = torch.tensor([[[3, 4, 5, 0, 0, 0]]])
    short = torch.tensor([[[3, 4, 5]]])
    assert torch.allclose(chars(word), chars(short))
    assert torch.equal(chars(torch.zeros(1, 1, 4, dtype=torch.long)), torch.zeros(1, 1, 6))


@pytest.mark.parametrize("crf", [False, True])
def test_padding_never_changes_a_tag(crf):
    torch.manual_seed(1)
    model = Tagger(TaggerConfig(words=20, chars=15, tags=5, embed=8, char_embed=4, char_features=6,
                                hidden=8, crf=crf)).eval()
    rows = [[4, 5, 6, 7, 8], [9, 10], [11, 12, 13]]
    T = 5
    words = torch.zeros(3, T, dtype=torch.long)
    chars = torch.zeros(3, T, 4, dtype=torch.long)
    for i, r in enumerate(rows):
        words[i, : len(r)] = torch.tensor(r)
        chars[i, : len(r)] = torch.tensor(r).remainder(14).add(1).unsqueeze(1)
    words[1, 2:] = 19                                        # junk in the padding
    chars[1, 2:] = 7
    lengths = torch.tensor([len(r) for r in rows])
    mask = torch.arange(T) < lengths.unsqueeze(1)
    tags = model.decode(model(words, chars, lengths), mask)
    for i, r in enumerate(rows):
        n = len(r)
        alone = model.decode(model(words[i: i + 1, :n], chars[i: i + 1, :n], lengths[i: i + 1]),
                             mask[i: i + 1, :n])
        assert tags[i, :n].tolist() == alone[0].tolist()
        assert tags[i, n:].eq(0).all()
