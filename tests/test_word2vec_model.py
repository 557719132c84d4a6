"""word2vec: hand-written sparse updates equal autograd's, examples drawn as the original draws them,
subsampling and noise probabilities, analogy scoring."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from rnnkit import kernels
from rnnkit.data.errors import DataError
from rnnkit.data.word_pairs import (cbow_examples, count_words, encode, keep_probabilities,
                                    noise_distribution, skipgram_pairs, subsample)
from rnnkit.models.word2vec import Word2Vec, Word2VecConfig, analogy_scores, nearest, unit_rows


@pytest.mark.parametrize("path", ["kernels", "torch-ops"])
@pytest.mark.parametrize("arch", ["skipgram", "cbow"])
@pytest.mark.parametrize("loss", ["negative", "nce"])
@pytest.mark.parametrize("share", [1, 2])
def test_sgd_step_is_minus_lr_times_the_autograd_gradient(arch, loss, share, path, monkeypatch):
    """Through the compiled step (w2v_sgd) and through torch ops alike."""
    if path == "torch-ops":
        monkeypatch.setenv("RNNKIT_KERNELS", "0")
    elif kernels.load() is None:
        pytest.skip(f"no compiled kernels here: {kernels.build_error()}")
    model = Word2Vec(Word2VecConfig(20, 6, arch, loss, negatives=3), seed=1)
    g = torch.Generator().manual_seed(0)
    model.w_out.data.normal_(generator=g)
    model.b_out.data.normal_(generator=g)
    model.set_noise(torch.rand(20, generator=g) / 10)
    inputs = (torch.randint(0, 20, (4,), generator=g) if arch == "skipgram" else
              torch.tensor([[1, 2, -1, 3], [4, 4, 5, -1], [0, -1, -1, -1], [7, 8, 9, 9]]))  # −1: padding
    positive = torch.tensor([3, 3, 11, 0])                           # repeated rows add up
    noise = torch.randint(0, 20, (4 // share, 3), generator=g)
    tables = (model.w_in, model.w_out, model.b_out)
    for p in tables:
        p.requires_grad_(True)
    loss_value = model.loss(inputs, positive, noise)
    loss_value.backward()
    # sgd_step sums the per-example gradients (the loss is their mean), as the original does
    expected = [p.detach() - 0.1 * 4 * (p.grad if p.grad is not None else 0) for p in tables]
    for p in tables:
        p.requires_grad_(False)
    bias_before = model.b_out.detach().clone()
    reported = model.sgd_step(inputs, positive, noise, lr=0.1)
    assert reported == pytest.approx(float(loss_value.detach()), rel=1e-6)
    for p, e in zip(tables, expected):
        torch.testing.assert_close(p.detach(), e, atol=1e-6, rtol=1e-5)
    if loss == "negative":
        assert torch.equal(model.b_out, bias_before)              # the bias is NCE's alone


def test_shared_noise_words_score_like_each_example_having_its_own_copy():
    model = Word2Vec(Word2VecConfig(10, 4, negatives=2), seed=3)
    model.w_out.data.normal_(generator=torch.Generator().manual_seed(1))
    inputs, positive = torch.tensor([1, 2, 3, 4]), torch.tensor([5, 6, 7, 8])
    shared = torch.tensor([[0, 9], [2, 2]])                          # examples 0,1 and 2,3
    own = shared.repeat_interleave(2, dim=0)                          # the same words, one row each
    torch.testing.assert_close(model.loss(inputs, positive, shared), model.loss(inputs, positive, own))


def test_nce_scores_are_corrected_by_the_noise_probability():
    model = Word2Vec(Word2VecConfig(4, 2, loss="nce", negatives=2))
    model.set_noise(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    model.w_in.data.zero_()                                        # u·v = 0: only the correction is left
    s_pos, s_neg, _, _ = model._scores(model.w_in[torch.tensor([0])], torch.tensor([1]),
                                       torch.tensor([[3, 2]]))
    torch.testing.assert_close(s_pos, -torch.log(2 * torch.tensor([0.2])))
    torch.testing.assert_close(s_neg, -torch.log(2 * torch.tensor([[[0.4, 0.3]]])))


def test_skipgram_pairs_follow_the_dynamic_window_inside_sentences():
    ids = np.arange(10)
    sentence = np.array([0] * 6 + [1] * 4)
    rng = np.random.default_rng(0)
    centres, contexts = skipgram_pairs(ids, sentence, 3, rng)
    b = np.random.default_rng(0).integers(1, 4, size=10)          # the windows it drew
    expected = sorted((c, o) for c in range(10) for o in range(10)
                      if o != c and abs(o - c) <= b[c] and sentence[o] == sentence[c])
    assert sorted(zip(centres.tolist(), contexts.tolist())) == expected


def test_cbow_examples_hold_the_same_windows():
    ids = np.array([5, 6, 7, 8, 9])
    sentence = np.zeros(5, dtype=np.int64)
    centres, contexts = cbow_examples(ids, sentence, 2, np.random.default_rng(3))
    b = np.random.default_rng(3).integers(1, 3, size=5)
    for centre, row in zip(centres, contexts):
        c = int(centre) - 5
        want = sorted(ids[o] for o in range(5) if o != c and abs(o - c) <= b[c])
        assert sorted(x for x in row.tolist() if x >= 0) == want


def test_nearer_words_are_paired_more_often():
    ids = np.arange(2000) % 50
    centres, contexts = skipgram_pairs(ids, np.zeros(2000, dtype=np.int64), 5, np.random.default_rng(1))
    distance = Counter(np.abs((contexts - centres + 25) % 50 - 25).tolist())
    # offset d is used when b >= d: probability (W - d + 1) / W
    for d in range(1, 6):
        assert distance[d] / (2 * 2000) == pytest.approx((5 - d + 1) / 5, abs=0.03)


def test_subsampling_keeps_each_word_with_the_original_probability():
    counts = np.array([9000, 900, 90, 10])
    keep = keep_probabilities(counts, 1e-2)
    f = counts / counts.sum()
    np.testing.assert_allclose(keep, np.minimum(1, (np.sqrt(f / 1e-2) + 1) * 1e-2 / f))
    assert keep[0] < keep[1] < 1 and keep[3] == 1
    ids = np.repeat(np.arange(4), counts)
    kept, _ = subsample(ids, np.zeros(len(ids), dtype=np.int64), keep, np.random.default_rng(0))
    observed = np.bincount(kept, minlength=4) / counts
    np.testing.assert_allclose(observed, keep, atol=0.03)
    np.testing.assert_array_equal(keep_probabilities(counts, 0), 1)


def test_noise_distribution_is_the_three_quarter_power_of_the_counts():
    p = noise_distribution(np.array([16, 1]))
    np.testing.assert_allclose(p, np.array([8, 1]) / 9)
    from rnnkit.tasks.word2vec import noise_table
    table = noise_table(np.array([0.5, 0.3, 0.2]), size=1000)
    assert len(table) == 1000 and np.bincount(table.numpy()).tolist() == [500, 300, 200]


def test_vocabulary_counts_and_errors():
    vocab = count_words([["a", "b", "a"], ["c", "a", "b"]], min_count=2)
    assert vocab.words == ["a", "b"] and vocab.counts.tolist() == [3, 2]
    ids, sentence = encode([["a", "c", "b"], ["b"]], vocab)
    assert ids.tolist() == [0, 1, 1] and sentence.tolist() == [0, 0, 1]    # "c" dropped
    with pytest.raises(DataError, match="empty"):
        count_words([[], []], 1)
    with pytest.raises(DataError, match="--min-count 5"):
        count_words([["a", "b", "a"]], 5)


def test_analogy_scores_find_the_planted_parallelogram():
    # king − man + woman = queen, exactly, in a toy space
    vectors = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0],
                            [0.3, -1.0, 0.2]])          # king, man, woman, queen, noise
    unit = unit_rows(vectors)
    for method in ("add", "mul"):
        scores = analogy_scores(unit, torch.tensor([1]), torch.tensor([0]), torch.tensor([2]), method)
        assert int(scores.argmax()) == 3
        assert torch.isinf(scores[0, :3]).all()                      # the query words are excluded
    assert nearest(unit, unit[0], 2, exclude=[0])[0][0] in (1, 3)
