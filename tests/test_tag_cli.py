"""``rnnkit train tag`` / ``tag`` / ``eval`` end to end, on CoNLL files written from the generated
corpus (its validation and test sentences use person and company names unseen in training)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnnkit.cli import main
from rnnkit.data.tagging import Tagged, generate_tagged
from rnnkit.train.checkpoint import load_checkpoint

SMALL = ["--embed", "32", "--hidden", "32", "--char-features", "24", "--batch-size", "16",
         "--lr", "1e-2", "--dropout", "0.2", "--log-every", "50", "--precision", "fp32"]


def write_conll(path: Path, data: Tagged) -> Path:
    blocks = ["\n".join(f"{w}\t{t}" for w, t in zip(words, tags)) for words, tags in data]
    path.write_text("-DOCSTART- O\n\n" + "\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("conll")
    files = {}
    for tagset in ("ner", "pos"):
        files[f"{tagset}-train"] = write_conll(d / f"{tagset}-train.txt", generate_tagged(500, 0, tagset))
        files[f"{tagset}-dev"] = write_conll(d / f"{tagset}-dev.txt", generate_tagged(100, 1, tagset, "test"))
        files[f"{tagset}-test"] = write_conll(d / f"{tagset}-test.txt", generate_tagged(200, 2, tagset, "test"))
    return files


def conll_args(corpus, tagset: str) -> list[str]:
    return ["--conll", str(corpus[f"{tagset}-train"]), "--dev", str(corpus[f"{tagset}-dev"]),
            "--test", str(corpus[f"{tagset}-test"])]


@pytest.fixture(scope="module")
def crf_run(corpus, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "crf"
    assert main(["train", "tag", *conll_args(corpus, "ner"), "--crf", "--epochs", "8",
                 "--out", str(run), *SMALL]) == 0
    return run


def test_a_crf_tagger_finds_unseen_names_and_never_breaks_the_scheme(crf_run, capsys):
    result = json.loads((crf_run / "test.json").read_text())
    assert result["scheme"] == "BIO" and result["sentences"] == 200
    assert result["f1"] >= 0.8 and result["token_accuracy"] >= 0.95
    assert result["forbidden_transitions"] == 0
    assert set(result["per_type"]) == {"PER", "ORG", "LOC"}
    capsys.readouterr()
    assert main(["eval", str(crf_run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["f1"] == result["f1"]


def test_tag_prints_tags_and_entity_spans(crf_run, capsys):
    capsys.readouterr()
    assert main(["tag", str(crf_run), "--json", "Jim Smith bought 300 shares of Acme Corp in 2006 ."]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["tokens"][:2] == ["Jim", "Smith"] and len(row["tags"]) == len(row["tokens"])
    entities = {(e["type"], e["text"]) for e in row["entities"]}
    assert ("PER", "Jim Smith") in entities
    for e in row["entities"]:
        assert " ".join(row["tokens"][e["start"]:e["end"]]) == e["text"]
    assert main(["tag", str(crf_run), "Anna Berg moved to Berlin ."]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Anna/B-PER Berg/I-PER") and "LOC: Berlin" in out[1]


def test_an_unconstrained_crf_learns_that_i_never_follows_o(corpus, tmp_path):
    run = tmp_path / "free"
    assert main(["train", "tag", *conll_args(corpus, "ner"), "--crf", "--no-constrain",
                 "--epochs", "4", "--out", str(run), *SMALL]) == 0
    weights, meta, _ = load_checkpoint(run / "best.safetensors")
    tags = meta["vocab"]["tags"]
    T, start = weights["crf.learned_transitions"], weights["crf.learned_start"]
    o = tags.index("O")
    for kind in ("PER", "ORG", "LOC"):
        b, i = tags.index(f"B-{kind}"), tags.index(f"I-{kind}")
        assert T[o, i] < T[o, b] - 0.5          # after O: B-X, never I-X
        assert start[i] < start[b]              # a sentence never starts inside an entity
        assert T[b, i] > T[o, i] + 0.5          # I-X follows B-X


def test_parts_of_speech_and_bioes(corpus, tmp_path, capsys, fails):
    pos = tmp_path / "pos"
    assert main(["train", "tag", *conll_args(corpus, "pos"), "--epochs", "4", "--out", str(pos),
                 *SMALL]) == 0
    result = json.loads((pos / "test.json").read_text())
    assert result["scheme"] == "none" and "f1" not in result and result["token_accuracy"] >= 0.95
    capsys.readouterr()
    assert main(["tag", str(pos), "--json", "Anna Berg moved to Berlin ."]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["tags"][2:5] == ["VERB", "ADP", "PROPN"] and row["entities"] == []
    fails(["train", "tag", *conll_args(corpus, "pos"), "--scheme", "bioes",
           "--out", str(tmp_path / "x")], capsys, "no B-/I- entity prefixes")
    bioes = tmp_path / "bioes"
    assert main(["train", "tag", *conll_args(corpus, "ner"), "--scheme", "bioes", "--crf",
                 "--epochs", "3", "--out", str(bioes), *SMALL]) == 0
    result = json.loads((bioes / "test.json").read_text())
    assert result["scheme"] == "BIOES" and result["forbidden_transitions"] == 0
    assert "S-LOC" in json.loads((bioes / "vocab.json").read_text())["tags"]


def test_bad_conll_files_name_the_line(corpus, tmp_path, capsys, fails):
    bad = tmp_path / "bad.txt"
    bad.write_text("Jim B-PER\nSmith I-PER\nsold O x\n", encoding="utf-8")
    fails(["train", "tag", "--conll", str(bad), "--out", str(tmp_path / "r")], capsys,
          "bad.txt, line 3: 3 columns, but the file's first line has 2")
    odd = write_conll(tmp_path / "odd.txt", Tagged([["Jim", "sold"]], [["B-PER", "B-MISC"]]))
    fails(["train", "tag", "--conll", str(corpus["ner-train"]), "--test", str(odd),
           "--out", str(tmp_path / "r")], capsys, "the tag 'B-MISC', which the training data never uses")
    fails(["train", "tag", "--out", str(tmp_path / "r")], capsys, "--conll FILE or --dataset")
    assert not (tmp_path / "r").exists()


def test_a_run_whose_test_file_changed_is_refused(crf_run, corpus, capsys, fails):
    test_file = corpus["ner-test"]
    original = test_file.read_text(encoding="utf-8")
    try:
        # Without its first sentence (the first block is the -DOCSTART- line).
        test_file.write_text("\n\n".join(original.split("\n\n")[2:]), encoding="utf-8")
        fails(["eval", str(crf_run)], capsys, "the data has changed since this run was trained")
    finally:
        test_file.write_text(original, encoding="utf-8")       # the module's other tests read it
    assert main(["eval", str(crf_run), "--json"]) == 0
