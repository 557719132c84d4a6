"""``rnnkit train classify`` / ``predict`` / ``eval`` end to end, on small files the tests write."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.cli import main
from rnnkit.train.checkpoint import load_checkpoint

SMALL = ["--embed", "16", "--hidden", "16", "--log-every", "10", "--batch-size", "16", "--lr", "1e-2",
         "--dropout", "0", "--precision", "fp32"]
FILLER = "the a film movie story plot actor scene was is it this that and of very quite".split()


@pytest.fixture(scope="module")
def reviews(tmp_path_factory) -> Path:
    """400 sentences: positive exactly when one of the cue words appears."""
    rng = random.Random(0)
    rows = ["text,label"]
    for i in range(400):
        words = rng.choices(FILLER, k=rng.randint(3, 12))
        label = "pos" if i % 2 else "neg"
        words.insert(rng.randrange(len(words)), rng.choice(["great", "wonderful"]) if label == "pos"
                     else rng.choice(["awful", "boring"]))
        rows.append(f"\"{' '.join(words)}\",{label}")
    path = tmp_path_factory.mktemp("data") / "reviews.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path




def test_rnn_classifier_learns_evaluates_and_predicts(reviews, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "classify", "--csv", str(reviews), "--epochs", "8", "--out", str(run),
                 *SMALL]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["task"] == "classify" and summary["best_val_accuracy"] >= 0.95
    for name in ("config.json", "vocab.json", "metrics.jsonl", "summary.json", "loss.png",
                 "best.safetensors", "last.safetensors", "test.json", "confusion.png"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["sizes"] == {"train": 324, "valid": 36, "test": 40}   # stratified 10 % + 10 %
    capsys.readouterr()

    assert main(["eval", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] >= 0.95 and result["classes"] == ["neg", "pos"]
    matrix = np.array(result["confusion_matrix"])
    assert matrix.sum() == 40 and matrix.sum(1).tolist() == [20, 20]
    assert result["accuracy"] == pytest.approx(np.trace(matrix) / 40)

    assert main(["predict", str(run), "a wonderful film", "the plot was boring", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in rows] == ["pos", "neg"]
    assert all(sum(r["probabilities"].values()) == pytest.approx(1, abs=1e-5) for r in rows)
    lines = tmp_path / "lines.txt"
    lines.write_text("great acting\n\nawful\n", encoding="utf-8")
    assert main(["predict", str(run), "--file", str(lines)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [o.split("\t")[0] for o in out] == ["pos", "neg"]         # blank lines skipped


def test_textcnn_learns_the_same_task(reviews, tmp_path, capsys):
    run = tmp_path / "cnn"
    assert main(["train", "classify", "--model", "textcnn", "--csv", str(reviews), "--epochs", "6",
                 "--maps", "8", "--out", str(run), *SMALL]) == 0
    assert json.loads((run / "test.json").read_text())["accuracy"] >= 0.95
    config = json.loads((run / "config.json").read_text())
    assert config["model_kind"] == "textcnn" and config["model"]["widths"] == [3, 4, 5]
    weights, _, _ = load_checkpoint(run / "best.safetensors")
    assert float(weights["output.weight"].norm(dim=1).max()) <= 3.0 + 1e-5   # Kim's max-norm


def test_cross_validation_reports_mean_and_std_of_the_folds(reviews, tmp_path, capsys):
    run = tmp_path / "cv"
    assert main(["train", "classify", "--csv", str(reviews), "--cv", "3", "--epochs", "3",
                 "--out", str(run), *SMALL]) == 0
    summary = json.loads((run / "summary.json").read_text())
    folds = [json.loads((run / f"fold-0{k}" / "test.json").read_text()) for k in (1, 2, 3)]
    assert sum(f["examples"] for f in folds) == 400 == summary["examples"]   # every example once
    acc = [f["accuracy"] for f in folds]
    assert summary["fold_accuracy"] == acc
    assert summary["accuracy_mean"] == pytest.approx(np.mean(acc))
    assert summary["accuracy_std"] == pytest.approx(np.std(acc, ddof=1))
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fold_accuracy"] == pytest.approx(acc)


def test_embeddings_from_a_file_frozen_or_fine_tuned(reviews, tmp_path, capsys):
    vectors = tmp_path / "glove.txt"
    rng = np.random.default_rng(0)
    file_words = ["great", "awful", "film", "movie", "notinvocab"]
    table = {w: rng.normal(size=6).round(4) for w in file_words}
    vectors.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in table.items()))
    for freeze in (True, False):
        run = tmp_path / f"emb-{freeze}"
        assert main(["train", "classify", "--csv", str(reviews), "--epochs", "2", "--embeddings",
                     str(vectors), "--out", str(run), *SMALL, *(["--freeze"] if freeze else [])]) == 0
        config = json.loads((run / "config.json").read_text())
        assert config["embeddings"]["found"] == 4 and config["model"]["embed"] == 6
        assert "4 of" in capsys.readouterr().err                    # reported while training
        words = json.loads((run / "vocab.json").read_text())["symbols"]
        weights, _, _ = load_checkpoint(run / "last.safetensors")
        emb = weights["embedding.weight"]
        same = all(torch.allclose(emb[words.index(w)], torch.tensor(table[w], dtype=torch.float32))
                   for w in ("great", "awful", "film", "movie"))
        assert same == freeze


def test_numeric_series_from_npz_learned_and_predicted(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n, T = 300, 20
    lengths = rng.integers(5, T + 1, n)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, T, 2)).astype(np.float32)
    x[:, :, 0] += np.where(y == 1, 1.0, -1.0)[:, None]                 # class shifts feature 0
    x[np.arange(T) >= lengths[:, None]] = 0
    data = tmp_path / "series.npz"
    np.savez(data, x=x, y=np.array(["low", "high"])[y], lengths=lengths)
    run = tmp_path / "run"
    assert main(["train", "classify", "--series", str(data), "--epochs", "10", "--out", str(run),
                 *SMALL]) == 0
    assert json.loads((run / "test.json").read_text())["accuracy"] >= 0.95
    new = tmp_path / "new.npz"
    np.savez(new, x=np.stack([np.full((4, 2), 2.0), np.full((4, 2), -2.0)]).astype(np.float32))
    capsys.readouterr()
    assert main(["predict", str(run), "--file", str(new), "--json"]) == 0
    assert [json.loads(r)["label"] for r in capsys.readouterr().out.splitlines()] == ["high", "low"]


def test_resume_after_a_crash_continues_the_same_curve(reviews, tmp_path, monkeypatch):
    common = ["--csv", str(reviews), "--epochs", "3", "--dropout", "0.3", "--eval-every", "10",
              *SMALL]
    full, crashed = tmp_path / "full", tmp_path / "crashed"
    assert main(["train", "classify", *common, "--out", str(full)]) == 0
    from rnnkit.tasks.classify import ClassifyTask
    real_step, calls = ClassifyTask.train_step, {"n": 0}

    def crash_at_step_25(self, model):
        calls["n"] += 1
        if calls["n"] == 25:
            raise KeyboardInterrupt
        return real_step(self, model)

    monkeypatch.setattr(ClassifyTask, "train_step", crash_at_step_25)
    assert main(["train", "classify", *common, "--out", str(crashed)]) == 130
    monkeypatch.setattr(ClassifyTask, "train_step", real_step)
    assert main(["train", "classify", "--resume", str(crashed)]) == 0
    rows = lambda run: [{k: v for k, v in json.loads(line).items()
                         if k not in ("seconds", "examples_per_s")}
                        for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows(crashed) == rows(full)
    assert (crashed / "test.json").read_text() == (full / "test.json").read_text()


def test_bad_input_gives_clear_errors_and_touches_nothing(reviews, tmp_path, capsys, fails):
    run = tmp_path / "run"
    assert main(["train", "classify", "--csv", str(reviews), "--epochs", "1", "--out", str(run),
                 *SMALL]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    fails(["train", "classify", "--csv", str(reviews), "--epochs", "1", "--out", str(run)],
          capsys, "already exists and is not empty")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    fails(["train", "classify", "--csv", str(reviews), "--text-column", "review", "--epochs", "1"],
          capsys, "review")
    one = tmp_path / "one.csv"
    one.write_text("text,label\ngood,pos\nfine,pos\n")
    fails(["train", "classify", "--csv", str(one), "--epochs", "1"], capsys, "only 'pos'")
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\ngood,pos\n  ,neg\n")
    fails(["train", "classify", "--csv", str(empty), "--epochs", "1"], capsys, "row 3")
    fails(["train", "classify", "--csv", str(reviews), "--max-length", "5", "--epochs", "1",
           "--out", str(tmp_path / "long")], capsys, "more than --max-length 5")
    assert not (tmp_path / "long").exists()
    fails(["train", "classify", "--csv", str(reviews), "--freeze", "--epochs", "1"], capsys,
          "--freeze needs --embeddings")
    fails(["train", "classify", "--dataset", "gunpoint", "--model", "textcnn", "--epochs", "1"],
          capsys, "textcnn classifies text")
    fails(["sample", str(run)], capsys, "'classify' run")
    fails(["predict", str(run)], capsys, "nothing to classify")


def test_series_csv_errors_name_row_and_column(tmp_path, capsys, fails):
    bad = tmp_path / "visits.csv"
    bad.write_text("id,day,pulse,outcome\na,1,80,ok\na,2,eighty,ok\nb,1,90,ill\n")
    fails(["train", "classify", "--series", str(bad), "--label-column", "outcome", "--epochs", "1"],
          capsys, "row 3, column 'pulse': 'eighty' is not a number")
    long = tmp_path / "long.csv"
    long.write_text("id,x,label\n" + "".join(f"a,{i},p\n" for i in range(6)) + "b,1,q\n")
    fails(["train", "classify", "--series", str(long), "--max-length", "5", "--epochs", "1"],
          capsys, "sequence 'a'")


def test_bundled_series_eval_reports_the_1nn_dtw_baseline(tmp_path, capsys, monkeypatch):
    """A stand-in for a UCR set (no fetch): the baseline is recomputed on the very same split."""
    from rnnkit.data.labelled import LabelledData, dtw_1nn_accuracy
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 30, dtype=np.float32)

    def make(n):
        y = rng.integers(0, 2, n)
        x = np.stack([np.sin(2 * np.pi * (1 + label) * t) for label in y])[:, :, None]
        return (x + 0.3 * rng.normal(size=x.shape)).astype(np.float32), y

    (train_x, train_y), (test_x, test_y) = make(60), make(40)
    fake = LabelledData("gunpoint", "series", ["1", "2"], train_x, train_y, test_x, test_y,
                        source="synthetic", baseline={"1nn_dtw_accuracy": 0.5, "source": "test"})
    monkeypatch.setattr("rnnkit.tasks.classify.load_labelled", lambda name: fake)
    run = tmp_path / "ucr"
    assert main(["train", "classify", "--dataset", "gunpoint", "--epochs", "15", "--out", str(run),
                 *SMALL]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["examples"] == 40 and result["accuracy"] >= 0.9
    expected = dtw_1nn_accuracy(train_x, train_y, test_x, test_y)
    assert result["baseline"] == {"1nn_dtw_accuracy": 0.5, "source": "test",
                                  "1nn_dtw_accuracy_measured": expected}


def test_character_level_text_classifier(reviews, tmp_path, capsys):
    run = tmp_path / "chars"
    assert main(["train", "classify", "--csv", str(reviews), "--level", "char", "--epochs", "6",
                 "--out", str(run), *SMALL]) == 0
    symbols = json.loads((run / "vocab.json").read_text())["symbols"]
    assert "g" in symbols and "great" not in symbols                 # characters, not words
    assert json.loads((run / "test.json").read_text())["accuracy"] >= 0.9


def test_series_in_the_ucr_ts_format(tmp_path, capsys):
    """A user's .ts file (the UCR/UEA archive format) trains like the bundled UCR sets."""
    rng = np.random.default_rng(1)
    lines = ["@problemName Ramps", "@timeStamps false", "@univariate true",
             "@classLabel true up down", "@data"]
    for i in range(80):
        label = "up" if i % 2 else "down"
        ramp = np.linspace(-1, 1, 12) * (1 if label == "up" else -1) + 0.2 * rng.normal(size=12)
        lines.append(",".join(f"{v:.3f}" for v in ramp) + f":{label}")
    path = tmp_path / "ramps.ts"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "classify", "--series", str(path), "--epochs", "10", "--out", str(run),
                 *SMALL]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["classes"] == ["down", "up"] and config["model"]["input_size"] == 1
    assert json.loads((run / "test.json").read_text())["accuracy"] == 1.0
