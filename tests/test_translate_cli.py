"""``rnnkit train translate`` / ``translate`` / ``eval`` end to end, on pairs the tests write."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from rnnkit.cli import main
from rnnkit.tasks.translate import bleu_difference, score

SMALL = ["--embed", "24", "--hidden", "48", "--log-every", "50", "--batch-size", "16",
         "--lr", "1e-2", "--dropout", "0", "--precision", "fp32"]
LEXICON = {"der": "the", "hund": "dog", "katze": "cat", "sieht": "sees", "mag": "likes",
           "kleine": "small", "große": "big", "rote": "red", "maus": "mouse", "nicht": "not"}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    """600 'sentences' of 2–6 words and their word-by-word translations: learnable in seconds."""
    rng = random.Random(0)
    words = sorted(LEXICON)
    lines = set()
    while len(lines) < 600:
        source = rng.choices(words, k=rng.randint(2, 6))
        lines.add(f"{' '.join(source).capitalize()}.\t"
                  f"{' '.join(LEXICON[w] for w in source).capitalize()}.")
    path = tmp_path_factory.mktemp("data") / "pairs.tsv"
    path.write_text("\n".join(sorted(lines)) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(pairs, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "dot"
    assert main(["train", "translate", "--pairs", str(pairs), "--attention", "dot", "--epochs", "12",
                 "--out", str(run), *SMALL]) == 0
    return run


def test_training_writes_a_run_that_translates_its_test_split(trained):
    for name in ("config.json", "vocab.json", "metrics.jsonl", "summary.json", "best.safetensors",
                 "test.json", "attention.png", "loss.png"):
        assert (trained / name).is_file(), name
    result = json.loads((trained / "test.json").read_text())
    assert set(result["decoding"]) == {"greedy", "beam_5"}
    for scores in result["decoding"].values():
        assert scores["exact_match"] >= 0.9 and scores["bleu"] >= 90
    config = json.loads((trained / "config.json").read_text())
    assert config["sizes"]["test"] == result["pairs"] > 30


def test_eval_scores_the_decodings_asked(trained, capsys):
    capsys.readouterr()
    assert main(["eval", str(trained), "--json", "--beam", "1", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["decoding"]) == {"greedy", "beam_3"}
    assert 0 <= result["decoding"]["beam_3"]["chrf"] <= 100
    assert result["source_unknown_rate"] == 0.0
    versus = result["decoding"]["beam_3"]["vs_greedy"]
    assert versus["bleu_delta"] == pytest.approx(result["decoding"]["beam_3"]["bleu"]
                                                 - result["decoding"]["greedy"]["bleu"])
    assert versus["ci95"][0] <= versus["ci95"][1]


def test_paired_bootstrap_tells_a_real_difference_from_none():
    rng = random.Random(0)
    words = sorted(LEXICON.values())
    references = [rng.choices(words, k=rng.randint(4, 9)) for _ in range(400)]
    same = bleu_difference(references, [list(r) for r in references], references, "word")
    assert same == {"bleu_delta": 0.0, "ci95": [0.0, 0.0]}
    worse = [list(r) for r in references]
    for r in worse[:40]:                          # a tenth of the sentences lose a word
        r[1] = "zzz"
    result = bleu_difference(references, worse, references, "word")
    expected = score(worse, references, "word")["bleu"] - 100
    assert result["bleu_delta"] == pytest.approx(expected) and expected < -1
    assert result["ci95"][0] < expected < result["ci95"][1] < 0
    # Two halves of the same quality: the test set cannot tell them apart.
    other = [list(r) for r in references]
    for r in other[200:240]:
        r[1] = "zzz"
    tie = bleu_difference(worse, other, references, "word")
    assert tie["ci95"][0] < 0 < tie["ci95"][1]


def test_translate_prints_translations_and_reports_unknown_words(trained, tmp_path, capsys):
    capsys.readouterr()
    assert main(["translate", str(trained), "Der hund sieht die katze.", "Die kleine maus."]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("the dog sees") and len(lines) == 2
    assert "unknown words (read as <unk>): die" in err
    png = tmp_path / "att.png"
    assert main(["translate", str(trained), "--json", "--beam", "4", "--plot-attention", str(png),
                 "Der rote hund mag die katze nicht."]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["translation"].startswith("the red dog likes") and row["unknown"] == ["die"]
    assert png.read_bytes().startswith(b"\x89PNG")
    sentences = tmp_path / "in.txt"
    sentences.write_text("Der hund.\n\nDie katze.\n", encoding="utf-8")
    assert main(["translate", str(trained), "--file", str(sentences)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_bpe_pieces_are_learned_read_and_joined_back_into_words(pairs, tmp_path, capsys):
    """With 20 merges most words are split into pieces; the model still learns the lexicon, and
    what it prints and scores are whole words."""
    run = tmp_path / "bpe"
    assert main(["train", "translate", "--pairs", str(pairs), "--tokens", "bpe", "--bpe-merges", "20",
                 "--label-smoothing", "0.1", "--attention", "dot", "--epochs", "12", "--out", str(run),
                 *SMALL]) == 0
    vocab = json.loads((run / "vocab.json").read_text())
    assert 0 < len(vocab["bpe"]) <= 20
    assert any(piece.endswith("@@") for piece in vocab["target"]["symbols"])
    result = json.loads((run / "test.json").read_text())
    assert result["decoding"]["greedy"]["exact_match"] >= 0.9
    capsys.readouterr()
    assert main(["translate", str(run), "--json", "Der rote hund mag die katze nicht."]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["translation"].startswith("the red dog likes") and "@@" not in row["translation"]
    assert row["unknown"] == ["die"]        # reported as the word, though only its "d@@" is unknown


def test_a_run_without_attention_has_no_attention_to_plot(pairs, tmp_path, fails, capsys):
    run = tmp_path / "plain"
    assert main(["train", "translate", "--pairs", str(pairs), "--attention", "none",
                 "--reverse-source", "--bidirectional", "--epochs", "2", "--out", str(run),
                 *SMALL]) == 0
    assert not (run / "attention.png").exists()
    fails(["translate", str(run), "der hund", "--plot-attention", str(tmp_path / "a.png")], capsys,
          "trained without attention")


def test_bad_pairs_files_name_the_line(tmp_path, fails, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("ein hund\ta dog\nzwei hunde two dogs\n", encoding="utf-8")
    fails(["train", "translate", "--pairs", str(bad), "--out", str(tmp_path / "r")], capsys,
          "bad.tsv, line 2: no tab")
    bad.write_text("ein hund\ta dog\n\t two\n", encoding="utf-8")
    fails(["train", "translate", "--pairs", str(bad), "--out", str(tmp_path / "r")], capsys,
          "bad.tsv, line 2: empty source")
    bad.write_bytes("ein hund\ta dog\n".encode() * 3 + b"gr\xfcn\tgreen\n")
    fails(["train", "translate", "--pairs", str(bad), "--out", str(tmp_path / "r")], capsys,
          "bad.tsv, line 4, column 3: not valid utf-8")
    assert not (tmp_path / "r").exists()           # nothing was created for a run that failed


def test_skip_bad_lines_counts_what_it_skipped(pairs, tmp_path, capsys):
    noisy = tmp_path / "noisy.tsv"
    noisy.write_bytes(pairs.read_bytes() + b"no tab here\n\xff\xfe\tjunk\n")
    run = tmp_path / "run"
    assert main(["train", "translate", "--pairs", str(noisy), "--skip-bad-lines", "--epochs", "1",
                 "--out", str(run), *SMALL]) == 0
    assert "2 bad lines skipped" in capsys.readouterr().err
    assert json.loads((run / "config.json").read_text())["skipped_lines"] == 2


def test_an_existing_run_is_never_overwritten_and_changed_data_is_refused(pairs, trained, tmp_path,
                                                                        fails, capsys):
    before = (trained / "best.safetensors").read_bytes()
    fails(["train", "translate", "--pairs", str(pairs), "--out", str(trained)], capsys, "already exists")
    assert (trained / "best.safetensors").read_bytes() == before
    changed = tmp_path / "changed.tsv"
    lines = pairs.read_text(encoding="utf-8").splitlines()
    changed.write_text("\n".join(lines[:-50]) + "\n", encoding="utf-8")
    config = json.loads((trained / "config.json").read_text())
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in trained.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    config["data"]["pairs"] = str(changed)
    (copy / "config.json").write_text(json.dumps(config), encoding="utf-8")
    fails(["train", "translate", "--resume", str(copy)], capsys, "pairs have changed")


def test_bad_flags_are_refused(pairs, tmp_path, fails, capsys):
    out = ["--out", str(tmp_path / "r")]
    fails(["train", "translate", *out], capsys, "--dataset de-en|dates or --pairs")
    fails(["train", "translate", "--pairs", str(pairs), "--sampling-rate", "2", *out], capsys,
          "--sampling-rate must be in [0, 1]")
    fails(["train", "translate", "--pairs", str(pairs), "--max-length", "0", *out], capsys,
          "--max-length must be at least 1")
    fails(["train", "translate", "--pairs", str(pairs), "--hidden", "15", "--bidirectional", *out], capsys,
          "hidden must be even")
    fails(["train", "translate", "--pairs", str(pairs), "--tokens", "bpe", "--bpe-merges", "-1", *out],
          capsys, "--bpe-merges must be >= 0, got -1")
    fails(["train", "translate", "--pairs", str(pairs), "--label-smoothing", "1", *out], capsys,
          "--label-smoothing must be in [0, 1), got 1.0")


def test_resume_after_a_crash_continues_the_same_curve(pairs, tmp_path, monkeypatch):
    common = ["--pairs", str(pairs), "--epochs", "2", "--eval-every", "15",
              "--sampling-rate", "0.25", "--label-smoothing", "0.1", "--tokens", "bpe",
              "--bpe-merges", "20", *SMALL]
    full, crashed = tmp_path / "full", tmp_path / "crashed"
    assert main(["train", "translate", *common, "--out", str(full)]) == 0
    from rnnkit.tasks.translate import TranslateTask
    real_step, calls = TranslateTask.train_step, {"n": 0}

    def crash_at_step_40(self, model):
        calls["n"] += 1
        if calls["n"] == 40:
            raise KeyboardInterrupt
        return real_step(self, model)

    monkeypatch.setattr(TranslateTask, "train_step", crash_at_step_40)
    assert main(["train", "translate", *common, "--out", str(crashed)]) == 130
    monkeypatch.setattr(TranslateTask, "train_step", real_step)
    assert main(["train", "translate", "--resume", str(crashed)]) == 0
    rows = lambda run: [{k: v for k, v in json.loads(line).items()
                         if k not in ("seconds", "words_per_s")}
                        for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows(crashed) == rows(full)
    assert (crashed / "test.json").read_text() == (full / "test.json").read_text()


@pytest.mark.slow
def test_dates_reach_99_percent_exact_match_on_held_out_formats(tmp_path):
    """The README figure: the dates recipe (about 3 minutes here)."""
    run = tmp_path / "dates"
    assert main(["train", "translate", "--dataset", "dates", "--out", str(run)]) == 0
    for scores in json.loads((run / "test.json").read_text())["decoding"].values():
        assert scores["exact_match_held_out_formats"] >= 0.99
        assert scores["exact_match_seen_formats"] >= 0.99
