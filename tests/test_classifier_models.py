"""The classifier models, batching and metrics, on small synthetic data the tests make."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit.data.batching import BucketBatches, pad_sequences
from rnnkit.data.embeddings import read_word_vectors
from rnnkit.data.errors import DataError
from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier
from rnnkit.models.text_cnn import TextCNN, TextCNNConfig
from rnnkit.data.splits import stratified_folds, stratified_holdout
from rnnkit.tasks.classify import Encoded, classification_metrics, predict_encoded

CPU = torch.device("cpu")


def token_models():
    torch.manual_seed(0)
    for pooling in ("last", "mean", "max"):
        for bi in (False, True):
            for cell in ("lstm", "gru"):
                yield SequenceClassifier(ClassifierConfig(
                    num_classes=3, vocab_size=20, embed=8, hidden=12, layers=2, cell=cell,
                    bidirectional=bi, pooling=pooling))
    yield TextCNN(TextCNNConfig(vocab_size=20, num_classes=3, embed=8, widths=(2, 3, 5), maps=4))


@pytest.mark.parametrize("model", list(token_models()), ids=lambda m: type(m).__name__ + (
    f"-{m.config.cell}-{m.config.pooling}-bi{int(m.config.bidirectional)}"
    if hasattr(m.config, "pooling") else ""))
def test_padding_never_changes_a_prediction(model):
    """Each sentence alone gives exactly what it gives inside a longer padded batch."""
    model.eval()
    g = torch.Generator().manual_seed(1)
    seqs = [torch.randint(1, 20, (n,), generator=g).tolist() for n in (1, 4, 9, 2, 13)]
    x, lengths = pad_sequences(seqs)
    together = model(x, lengths)
    for i, s in enumerate(seqs):
        alone = model(torch.tensor([s]), torch.tensor([len(s)]))
        torch.testing.assert_close(together[i], alone[0], atol=1e-5, rtol=1e-5)
    # Garbage in the padding (any token id) changes nothing either.
    noisy = x.clone()
    noisy[torch.arange(x.shape[1]) >= lengths.unsqueeze(1)] = 7
    torch.testing.assert_close(model(noisy, lengths), together, atol=1e-5, rtol=1e-5)


def test_feature_input_is_standardised_and_padding_invariant():
    torch.manual_seed(0)
    model = SequenceClassifier(ClassifierConfig(num_classes=2, input_size=3, hidden=8,
                                                bidirectional=True, pooling="mean")).eval()
    model.set_input_scaling(torch.tensor([10.0, 0.0, -5.0]), torch.tensor([2.0, 1.0, 0.5]))
    x = torch.randn(2, 6, 3)
    lengths = torch.tensor([6, 3])
    x[1, 3:] = float("nan")                         # NaN padding must not leak
    out = model(x, lengths)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[1], model(x[1:, :3], torch.tensor([3]))[0])
    # The scaling is part of the model: a shifted/scaled input with matching scaling agrees.
    other = SequenceClassifier(model.config).eval()
    other.load_state_dict(model.state_dict())
    other.set_input_scaling(torch.tensor([20.0, 1.0, -10.0]), torch.tensor([4.0, 2.0, 1.0]))
    shifted = x[:1] * torch.tensor([2.0, 2.0, 2.0]) + torch.tensor([0.0, 1.0, 0.0])
    torch.testing.assert_close(other(shifted, lengths[:1]), out[:1], atol=1e-5, rtol=1e-5)


def test_last_pooling_takes_each_directions_own_final_state():
    torch.manual_seed(0)
    model = SequenceClassifier(ClassifierConfig(num_classes=2, vocab_size=10, embed=4, hidden=5,
                                                bidirectional=True, pooling="last")).eval()
    x, lengths = pad_sequences([[1, 2, 3, 4], [5, 6]])
    out, state = model.rnn(model.embedding(x), lengths=lengths)
    pooled = model.pool(out, state, lengths)                         # (2, 10)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(pooled[b, :5], out[b, n - 1, :5])   # forward: last valid step
        torch.testing.assert_close(pooled[b, 5:], out[b, 0, 5:])       # backward: first step


def test_textcnn_max_norm_caps_output_rows():
    model = TextCNN(TextCNNConfig(vocab_size=10, num_classes=4, embed=6, maps=3, max_norm=3.0))
    with torch.no_grad():
        model.output.weight.mul_(100)
        model.output.weight[0] = 0.01
    small = model.output.weight[0].clone()
    model.constrain_weights()
    norms = model.output.weight.detach().norm(dim=1)
    assert norms[1:].tolist() == pytest.approx([3.0] * 3, rel=1e-5)
    assert torch.equal(model.output.weight[0], small)              # rows under the cap untouched


def test_bucket_batches_cover_each_epoch_group_lengths_and_resume():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 200, (1000,), generator=g)
    batches = BucketBatches(lengths, batch_size=10, seed=3, pool=20)
    first = [next(batches) for _ in range(len(batches))]
    assert sorted(torch.cat(first).tolist()) == list(range(1000))    # every example once
    spread = np.mean([float(lengths[b].max() - lengths[b].min()) for b in first])
    plain = BucketBatches(lengths, batch_size=10, seed=3, bucket=False)
    plain_spread = np.mean([float(lengths[next(plain)].max() - lengths[next(plain)].min())
                            for _ in range(50)])
    assert spread < plain_spread / 5                                 # batches hold similar lengths
    second = [next(batches) for _ in range(7)]
    assert batches.epoch == 1 and not torch.equal(second[0], first[0])
    resumed = BucketBatches(lengths, batch_size=10, seed=3, pool=20)
    resumed.load_state_dict({"epoch": 1, "batch": 3})
    assert all(torch.equal(next(resumed), b) for b in second[3:])


def test_batching_and_batch_size_never_change_predictions():
    torch.manual_seed(0)
    model = SequenceClassifier(ClassifierConfig(num_classes=3, vocab_size=30, embed=6, hidden=7,
                                                pooling="max", bidirectional=True))
    g = torch.Generator().manual_seed(2)
    seqs = [torch.randint(1, 30, (int(n),), generator=g).tolist()
            for n in torch.randint(1, 40, (50,), generator=g)]
    x, lengths = pad_sequences(seqs)
    enc = Encoded(x, lengths, torch.randint(0, 3, (50,), generator=g))
    loss_a, probs_a = predict_encoded(model, enc, CPU, batch_size=7)
    loss_b, probs_b = predict_encoded(model, enc, CPU, batch_size=50)
    torch.testing.assert_close(probs_a, probs_b, atol=1e-6, rtol=1e-5)
    assert loss_a == pytest.approx(loss_b, rel=1e-6)
    expected = F.cross_entropy(torch.log(probs_b), enc.labels).item()
    assert loss_b == pytest.approx(expected, rel=1e-5)


def test_metrics_match_a_hand_count():
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    predicted = torch.tensor([0, 1, 0, 1, 1, 2, 0, 2, 1])
    m = classification_metrics(labels, predicted, ["a", "b", "c"])
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 1, 2]]
    assert m["accuracy"] == pytest.approx(6 / 9)
    f1 = {"a": 2 * (2 / 3) * (2 / 3) / (4 / 3), "b": 2 * 0.5 * 1.0 / 1.5, "c": 2 * 1.0 * 0.5 / 1.5}
    assert m["per_class_f1"] == pytest.approx(f1)
    assert m["macro_f1"] == pytest.approx(sum(f1.values()) / 3)


def test_stratified_splits_are_fixed_disjoint_and_keep_proportions():
    labels = np.array([0] * 70 + [1] * 30)
    kept, held = stratified_holdout(labels, 0.2, seed=0)
    assert len(held) == 20 and (labels[held] == 1).sum() == 6
    assert not set(kept) & set(held) and len(kept) + len(held) == 100
    again = stratified_holdout(labels, 0.2, seed=0)
    assert np.array_equal(again[1], held)
    folds = stratified_folds(labels, 10, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(100))
    assert all(len(f) == 10 and (labels[f] == 1).sum() == 3 for f in folds)


def _train(model, x, lengths, y, steps: int, lr: float, batch: int = 64, seed: int = 0):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(y), (batch,), generator=g)
        loss = F.cross_entropy(model(x[idx], lengths[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def test_learns_whether_a_sentence_contains_a_token():
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(2, 30, (int(n),), generator=g) for n in torch.randint(3, 25, (1200,), generator=g)]
    y = torch.randint(0, 2, (1200,), generator=g)
    for s, label in zip(seqs, y):
        s[s == 1] = 2
        if label:
            s[torch.randint(0, len(s), (1,), generator=g)] = 1                 # token X = 1
    x, lengths = pad_sequences([s.tolist() for s in seqs])
    torch.manual_seed(0)
    model = SequenceClassifier(ClassifierConfig(num_classes=2, vocab_size=30, embed=16, hidden=24,
                                                pooling="max"))
    _train(model, x[:1000], lengths[:1000], y[:1000], steps=150, lr=1e-2)
    accuracy = (model(x[1000:], lengths[1000:]).argmax(1) == y[1000:]).float().mean()
    assert accuracy >= 0.98


def test_lstm_learns_the_parity_of_a_bit_string():
    g = torch.Generator().manual_seed(0)
    n = 3000
    lengths = torch.randint(2, 11, (n,), generator=g)
    bits = torch.randint(0, 2, (n, 10), generator=g).float()
    bits[torch.arange(10) >= lengths.unsqueeze(1)] = 0
    y = (bits.sum(1) % 2).long()
    x = bits.unsqueeze(-1)                                                     # (N, T, 1)
    torch.manual_seed(0)
    model = SequenceClassifier(ClassifierConfig(num_classes=2, input_size=1, hidden=32))
    _train(model, x[:2500], lengths[:2500], y[:2500], steps=600, lr=1e-2)
    accuracy = (model(x[2500:], lengths[2500:]).argmax(1) == y[2500:]).float().mean()
    assert accuracy >= 0.98


def test_word_vectors_from_word2vec_and_glove_files(tmp_path):
    words = ["<pad>", "<unk>", "good", "Bad", "film", "absent"]
    w2v = tmp_path / "w2v.txt"
    w2v.write_text("3 2\ngood 1 2\nbad 3 4\nfilm 5 6\n", encoding="utf-8")
    glove = tmp_path / "glove.txt"
    glove.write_text("good 1 2\nbad 3 4\nBad 7 8\nfilm 5 6\n", encoding="utf-8")
    a = read_word_vectors(w2v, words, skip=2)
    b = read_word_vectors(glove, words, skip=2)
    assert (a.found, a.searched, a.dim) == (3, 4, 2) and b.found == 3
    assert a.matrix[2].tolist() == [1, 2] and a.matrix[4].tolist() == [5, 6]
    assert a.matrix[3].tolist() == [3, 4]              # "Bad" found lower-cased
    assert b.matrix[3].tolist() == [7, 8]              # an exact match beats the lower-cased one
    assert a.matrix[0].tolist() == [0, 0]              # <pad>
    assert np.isfinite(a.matrix[5]).all() and a.matrix[5].tolist() != [0, 0]


@pytest.mark.parametrize("text, message", [
    ("good 1 2\nbad 3\n", "line 2: 1 numbers after the word 'bad', expected 2"),
    ("good 1 2\nbad 3 x\n", "line 2: 'x' is not a number"),
    ("", "has no vectors"),
])
def test_word_vector_file_errors_name_the_line(tmp_path, text, message):
    path = tmp_path / "vec.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message) as err:
        read_word_vectors(path, ["<pad>", "<unk>", "good", "bad"], skip=2)
    assert str(path) in str(err.value)


def test_image_augmentation_is_an_exact_pixel_shift_without_rotation():
    from rnnkit.data.augment import random_affine
    torch.manual_seed(0)
    images = torch.rand(20, 10, 12)
    torch.testing.assert_close(random_affine(images, max_shift=0, max_degrees=0), images,
                               atol=1e-6, rtol=0)
    shifted = random_affine(images, max_shift=2, max_degrees=0)

    def shift(img, dx, dy):                      # move content by (dx, dy), fill with zeros
        out = torch.zeros_like(img)
        H, W = img.shape
        out[max(0, dy):H + min(0, dy), max(0, dx):W + min(0, dx)] = \
            img[max(0, -dy):H - max(0, dy), max(0, -dx):W - max(0, dx)]
        return out

    seen = set()
    for img, out in zip(images, shifted):
        matches = [(dx, dy) for dx in range(-2, 3) for dy in range(-2, 3)
                   if torch.allclose(out, shift(img, dx, dy), atol=1e-5)]
        assert len(matches) == 1, matches
        seen.add(matches[0])
    assert len(seen) > 5                          # the shifts really vary
    turned = random_affine(images, max_shift=0, max_degrees=8)
    assert not torch.allclose(turned, images, atol=1e-3)
    assert turned.sum() <= images.sum() * 1.05   # rotation moves mass, adds none (zero fill)
