"""``rnnkit train word2vec`` / ``similar`` / ``analogy`` / ``eval`` / ``export`` end to end on corpora the
tests write: words that share their contexts end up nearest each other."""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import torch
import pytest

from rnnkit.cli import main
from rnnkit.data.embeddings import read_word2vec

PAIRS = 12
L = "abcdefghijkl"                       # the corpus tokeniser keeps letters only


def word(side: str, i: int) -> str:
    return f"p{side}{L[i]}"             # pair i: "paX" and "pbX"


def ctx(i: int, k: int) -> str:
    return f"cx{L[i]}{L[k]}"


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """Twelve pairs (paX, pbX): each pair has its own four context words, and both words of a pair
    appear only between them; nothing else ties one pair to another."""
    rng = random.Random(0)
    lines = []
    for _ in range(600):
        i = rng.randrange(PAIRS)
        left, right, last = rng.sample([ctx(i, k) for k in range(4)], 3)
        lines.append(f"{left} {word(rng.choice('ab'), i)} {right} {last}")
    path = tmp_path_factory.mktemp("data") / "planted.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def planted_run(planted, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "w2v"
    assert main(["train", "word2vec", "--text", str(planted), "--dim", "16", "--epochs", "30",
                 "--min-count", "1", "--sample", "0", "--window", "2", "--batch-size", "64",
                 "--out", str(run)]) == 0
    return run


def test_words_sharing_contexts_are_nearest_each_other(planted_run, capsys):
    for i in range(PAIRS):
        assert main(["similar", str(planted_run), word("a", i), "-n", "1", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)[0]["word"] == word("b", i)
    for name in ("config.json", "metrics.jsonl", "summary.json", "loss.png", "last.safetensors"):
        assert (planted_run / name).is_file()
    summary = json.loads((planted_run / "summary.json").read_text())
    assert summary["words_per_s"] > 0 and summary["final_train_loss"] < 2.0


@pytest.mark.parametrize("arch,loss", [("cbow", "negative"), ("skipgram", "nce")])
def test_cbow_and_nce_recover_the_planted_pairs_too(planted, tmp_path, capsys, arch, loss):
    run = tmp_path / arch
    assert main(["train", "word2vec", "--text", str(planted), "--dim", "16", "--epochs", "30",
                 "--min-count", "1", "--sample", "0", "--window", "2", "--batch-size", "64",
                 "--model", arch, "--loss", loss, "--out", str(run)]) == 0
    hits = 0
    for i in range(PAIRS):
        assert main(["similar", str(run), word("b", i), "-n", "1", "--json"]) == 0
        hits += json.loads(capsys.readouterr().out)[0]["word"] == word("a", i)
    assert hits >= PAIRS - 1


@pytest.mark.parametrize("binary", [False, True])
def test_export_round_trips_and_vectors_files_answer_queries(planted_run, tmp_path, capsys, binary):
    out = tmp_path / ("v.bin" if binary else "v.txt")
    assert main(["export", str(planted_run), str(out), *(["--binary"] if binary else [])]) == 0
    capsys.readouterr()
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask             # readable as any file written
    words, matrix = read_word2vec(out)
    from rnnkit.train.checkpoint import load_checkpoint
    weights, meta, _ = load_checkpoint(planted_run / "last.safetensors")
    assert words == meta["vocab"]["words"]
    np.testing.assert_array_equal(matrix, weights["w_in"].numpy())
    assert main(["similar", str(out), word("a", 3), "-n", "1", "--json"]) == 0   # a file, not a run
    assert json.loads(capsys.readouterr().out)[0]["word"] == word("b", 3)


def test_analogy_and_eval_on_user_files(planted_run, tmp_path, capsys):
    questions = tmp_path / "q.txt"
    questions.write_text(": pairs\n" + "".join(
        f"{word('a', i)} {word('b', i)} {word('a', j)} {word('b', j)}\n"
        for i in range(4) for j in range(4) if i != j) + "PAB PBB zzz PBC\n")   # any case
    pairs = tmp_path / "sim.tsv"
    pairs.write_text("# word pairs\n" + "".join(
        f"{word('a', i)}\t{word('b', i)}\t9.0\n{word('a', i)}\t{ctx((i + 1) % PAIRS, 0)}\t1.0\n"
        for i in range(PAIRS)))
    assert main(["eval", str(planted_run), "--analogies", str(questions), "--similarity", str(pairs),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    add = result["analogies"]["add"]
    assert add["total"] == 13 and add["asked"] == 12                  # zzz is out of vocabulary
    assert set(result["analogies"]) == {"add", "mul"}
    sim = result["similarity"]["sim.tsv"]
    assert sim["pairs"] == 2 * PAIRS and sim["spearman"] > 0.5
    query = [word("b", 1), word("a", 1), word("a", 2)]
    assert main(["analogy", str(planted_run), *query, "--json"]) == 0
    answers = json.loads(capsys.readouterr().out)
    assert set(query).isdisjoint(a["word"] for a in answers)


def test_bad_input_gives_clear_errors(planted, planted_run, tmp_path, capsys, fails):
    fails(["similar", str(planted_run), "pzz"], capsys, "'pzz' is not in the vocabulary")
    fails(["similar", str(planted_run), "pbx"], capsys, "did you mean 'pbl'")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    fails(["train", "word2vec", "--text", str(empty), "--out", str(tmp_path / "r1")], capsys, "empty")
    fails(["train", "word2vec", "--text", str(planted), "--min-count", "100000",
           "--out", str(tmp_path / "r2")], capsys, "--min-count 100000")
    fails(["eval", str(planted_run), "--analogies", str(planted)], capsys,
          "line 1: a question before the first ': section' line")
    questions = tmp_path / "q.txt"
    questions.write_text(": s\npaa pba pab pbb\n")
    fails(["eval", str(planted_run), "--analogies", str(questions), "--similarity", "nope.tsv"], capsys,
          "no such file, nor a bundled one")
    bad = tmp_path / "bad.txt"
    bad.write_text("2 3\nx 1 2 3\ny 1 two 3\n")
    fails(["similar", str(bad), "x"], capsys, "line 3")
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def test_weat_effect_size_and_p_value_by_hand():
    from rnnkit.models.word2vec import unit_rows
    from rnnkit.tasks.word2vec import weat
    # 2-D: targets X lean towards attribute A (x axis), Y towards B (y axis)
    unit = unit_rows(torch.tensor([[1.0, 0.1], [1.0, 0.3], [0.2, 1.0], [0.1, 1.0],   # X0 X1 Y0 Y1
                                   [1.0, 0.0], [0.0, 1.0]]))                           # A, B
    ids = {"X": torch.tensor([0, 1]), "Y": torch.tensor([2, 3]), "A": torch.tensor([4]),
           "B": torch.tensor([5])}
    result = weat(unit, ids, permutations=2000)
    s = (unit[:4] @ unit[4]) - (unit[:4] @ unit[5])
    expected = float((s[:2].mean() - s[2:].mean()) / s.std())
    assert result["effect_size"] == pytest.approx(expected) and expected > 1
    # of the 6 ways to split 4 words in two pairs, only the observed one reaches its statistic
    assert result["p_value"] == pytest.approx(1 / 6, abs=0.03)
    swapped = weat(unit, {**ids, "A": ids["B"], "B": ids["A"]}, permutations=2000)
    assert swapped["effect_size"] == pytest.approx(-expected)


def test_bias_and_word_map_on_a_trained_run(planted_run, tmp_path, capsys, fails):
    sets = tmp_path / "weat.txt"
    near = " ".join(ctx(i, k) for i in range(3) for k in range(4))
    far = " ".join(ctx(i, k) for i in range(9, 12) for k in range(4))
    sets.write_text("# pairs 0-2 against pairs 9-11\n"
                    f"X: {' '.join(word('a', i) for i in range(3))}\n"
                    f"Y: {' '.join(word('a', i) for i in range(9, 12))} unknownword\n"
                    f"A: {near}\nB: {far}\n")
    assert main(["bias", str(planted_run), "--words", str(sets)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["effect_size"] > 1.0 and result["p_value"] < 0.1
    assert result["out_of_vocabulary"]["Y"] == ["unknownword"] and result["sizes"]["Y"] == 3
    png = tmp_path / "map.png"
    assert main(["plot-words", str(planted_run), *[word("a", i) for i in range(5)], "--out",
                 str(png)]) == 0
    assert png.stat().st_size > 0 and len(json.loads(capsys.readouterr().out)["explained_variance"]) == 2
    bad = tmp_path / "bad.txt"
    bad.write_text("X: paa pab\nZ: oops\n")
    fails(["bias", str(planted_run), "--words", str(bad)], capsys, "line 2")
    bad.write_text("X: paa pab\nY: pba pbb\n")
    fails(["bias", str(planted_run), "--words", str(bad)], capsys, "no words for A, B")


def test_resume_after_a_crash_gives_the_same_vectors_and_curve(planted, tmp_path, monkeypatch, capsys,
                                                                fails):
    from rnnkit.models.word2vec import Word2Vec
    from rnnkit.train.checkpoint import load_checkpoint
    common = ["train", "word2vec", "--text", str(planted), "--dim", "8", "--epochs", "4",
              "--min-count", "1", "--window", "2", "--batch-size", "64", "--log-every", "1e9"]
    full, crashed = tmp_path / "full", tmp_path / "crashed"
    assert main([*common, "--out", str(full)]) == 0
    real_step, calls = Word2Vec.sgd_step, {"n": 0}

    def crash_in_epoch_three(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == int(2.5 * steps_per_epoch):
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    steps_per_epoch = json.loads((full / "summary.json").read_text())["steps"] // 4
    monkeypatch.setattr(Word2Vec, "sgd_step", crash_in_epoch_three)
    assert main([*common, "--out", str(crashed)]) == 130
    monkeypatch.setattr(Word2Vec, "sgd_step", real_step)
    assert main(["train", "word2vec", "--resume", str(crashed)]) == 0
    rows = lambda run: [{k: v for k, v in json.loads(line).items() if k not in ("seconds", "words_per_s")}
                        for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows(crashed) == rows(full) and len(rows(full)) == 4       # one row an epoch
    a, b = (load_checkpoint(run / "last.safetensors")[0]["w_in"] for run in (full, crashed))
    assert torch.equal(a, b)
    capsys.readouterr()
    fails(["train", "word2vec", "--resume", str(full)], capsys, "nothing to resume")


def test_a_minutes_budget_stops_training_and_keeps_the_vectors(planted, tmp_path, capsys):
    run = tmp_path / "budget"
    assert main(["train", "word2vec", "--text", str(planted), "--min-count", "1", "--epochs", "100000",
                 "--minutes", "0.02", "--out", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "time" and summary["seconds"] < 10
    assert main(["similar", str(run), word("a", 0), "-n", "1", "--json"]) == 0
