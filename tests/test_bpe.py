"""Byte-pair encoding: the merges are the greedy most-frequent-pair ones, segmenting replays them,
and joining the pieces gives back the words exactly."""
from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data.bpe import BPE, CONTINUATION, join_pieces, learn_merges


def brute_force_merges(word_counts: dict[str, int], merges: int, min_frequency: int = 2):
    """The textbook algorithm: recount every pair over every word before each merge."""
    words = {tuple(w[:-1]) + (w[-1] + "</w>",): n for w, n in word_counts.items()}
    learned = []
    for _ in range(merges):
        pairs = Counter()
        for w, n in words.items():
            for pair in zip(w, w[1:]):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < min_frequency:
            break
        learned.append(best)
        merged = {}
        for w, n in words.items():
            out, k = [], 0
            while k < len(w):
                if k + 1 < len(w) and (w[k], w[k + 1]) == best:
                    out.append(w[k] + w[k + 1])
                    k += 2
                else:
                    out.append(w[k])
                    k += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + n
        words = merged
    return learned


def test_the_papers_example_merges_the_most_frequent_pairs_first():
    # Sennrich et al. 2016's toy vocabulary: "es" (9), then "est</w>" (9), then "lo" (7)
    counts = {"low": 5, "lower": 2, "newest": 6, "widest": 3}
    merges = learn_merges(counts, 4)
    assert merges[:3] == [("e", "s"), ("es", "t</w>"), ("l", "o")]
    assert merges == brute_force_merges(counts, 4)


@pytest.mark.parametrize("seed", range(5))
def test_the_incremental_learner_equals_recounting_everything(seed):
    rng = random.Random(seed)
    letters = "abcde" if seed % 2 else "aab"              # few letters: many repeats and overlaps
    counts = {"".join(rng.choices(letters, k=rng.randint(1, 9))): rng.randint(1, 20)
              for _ in range(300)}
    assert learn_merges(counts, 60) == brute_force_merges(counts, 60)


def test_learning_stops_when_no_pair_is_frequent_enough():
    assert learn_merges({"ab": 1, "cd": 1}, 10) == []
    assert learn_merges({"ab": 2, "cd": 1}, 10) == [("a", "b</w>")]
    with pytest.raises(ValueError, match="merges must be >= 0, got -1"):
        learn_merges({"ab": 2}, -1)


def test_a_new_word_is_spelled_with_the_pieces_learned():
    bpe = BPE.learn(["newest"] * 6 + ["widest"] * 3 + ["low"] * 5 + ["lower"] * 2, 10)
    # "low" ends words only ("lo" + "w</w>"), so inside "lowest" the w stands alone; "est" ends it.
    assert bpe.word("lowest") == ["lo" + CONTINUATION, "w" + CONTINUATION, "est"]
    assert bpe.word("low") == ["low"]
    assert bpe.word("newest") == ["newest"]
    assert bpe.word("zzz") == ["z" + CONTINUATION, "z" + CONTINUATION, "z"]   # unseen letters
    assert bpe.segment(["low", "", "zz"]) == ["low", "z@@", "z"]


def test_merges_survive_json_and_bad_ones_are_refused():
    bpe = BPE.learn("der hund sieht die katze und die katze sieht den hund".split() * 3, 25)
    again = BPE.from_json(bpe.to_json())
    assert again.merges == bpe.merges
    assert again.segment(["katzenhund"]) == bpe.segment(["katzenhund"])
    with pytest.raises(ValueError, match="a merge is two non-empty strings"):
        BPE([["a", ""]])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1,
                        max_size=12), min_size=1, max_size=20),
       st.integers(0, 40))
def test_joining_the_pieces_gives_back_the_words(words, merges):
    words = [w for w in words if not w.endswith(CONTINUATION)]          # tokenize never makes them
    bpe = BPE.learn(words * 2, merges)
    pieces = bpe.segment(words)
    assert join_pieces(pieces) == [w for w in words if w]
    assert all(p and "</w>" not in p for p in pieces)


def test_a_decoder_that_stops_inside_a_word_keeps_what_it_spelled():
    assert join_pieces(["un@@", "believ@@", "able", "cat@@"]) == ["unbelievable", "cat"]
    assert join_pieces(["@@"]) == ["@@"]                                 # the mark alone is a word
