"""Bad input, everywhere: random and adversarial files for every reader, through the real CLI.

One property-based test per reader (text, CSV, TSV pairs, CoNLL, captions). Each example writes a
file built from that format's lines, often mostly valid, then damaged the ways real files are: other
encodings (UTF-16 with its BOM, Latin-1), a UTF-8 BOM, CRLF, NUL and stray bytes, ragged rows, a line
or a field of 100 kB or 1 MB, an empty file, random binary. The command must exit with status 2 and
one short stderr line ``rnnkit: error: ...`` that names the file (or, for input that is fine,
refuses the existing ``--out``), never a traceback, and the existing run directory given as
``--out`` must be untouched: every command here fails before it would write anything.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from rnnkit.cli import main

EXAMPLES = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])
LONGEST_MESSAGE = 600          # characters of an error line beside the paths it names

# Any character but lone surrogates (which no file can hold): control characters, tabs, quotes, RTL.
CHARACTER = st.characters(blacklist_categories=("Cs",))
FIELD = st.text(CHARACTER, max_size=12)
WORD = st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd")), min_size=1, max_size=8)
ENCODINGS = ("utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1")    # mostly readable
STRAY_BYTES = (b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\r", b"\t", b"\n\n", b'"')


@st.composite
def damaged_file(draw, line: st.SearchStrategy[str], valid: list[str]) -> bytes:
    """A file of ``line``s, after the format's ``valid`` lines or not, damaged at random."""
    shape = draw(st.sampled_from(["lines", "lines", "lines", "empty", "binary", "long"]))
    if shape == "empty":
        return b""
    if shape == "binary":
        return draw(st.binary(min_size=1, max_size=2048))
    lines = (valid if draw(st.booleans()) else []) + draw(st.lists(line, max_size=12))
    if shape == "long":                  # a line of its own, or the end of another
        size = draw(st.sampled_from([100_000, 1 << 20]))
        long = (draw(WORD) * size)[:size]
        at = draw(st.integers(0, len(lines)))
        if at < len(lines) and draw(st.booleans()):
            lines[at] += long
        else:
            lines.insert(at, long)
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines) + draw(st.sampled_from(["\n", ""]))
    data = text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 3]))):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from(STRAY_BYTES)) + data[at:]
    return data


@pytest.fixture(scope="module")
def existing_run(tmp_path_factory) -> Path:
    """A run directory with files in it: every command below names it as --out."""
    run = tmp_path_factory.mktemp("existing") / "run"
    run.mkdir()
    (run / "config.json").write_text('{"task": "lm"}\n')
    (run / "metrics.jsonl").write_text('{"step": 10, "val_loss": 1.5}\n')
    (run / "last.safetensors").write_bytes(bytes(range(256)))
    return run


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Where each example's file is written; captions' images (two PNGs, one broken) beside it."""
    folder = tmp_path_factory.mktemp("inputs")
    images = folder / "images"
    images.mkdir()
    for name, colour in (("red.png", (255, 0, 0)), ("blue.png", (0, 0, 255))):
        Image.fromarray(np.full((8, 8, 3), colour, dtype=np.uint8)).save(images / name)
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    return folder


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Decoded images are cached: in a folder of the tests' own, not the user's."""
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def snapshot(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir())}


def assert_one_clear_error(argv: list[str], data_file: Path, run: Path, capsys,
                           other_inputs: tuple[Path, ...] = ()) -> None:
    """Exit status 2 and one line ``rnnkit: error: ...`` naming the data file (or a file it names,
    in ``other_inputs``), or, when the data was fine, refusing the existing run directory; no
    traceback; the run directory untouched."""
    before = snapshot(run)
    status = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("rnnkit: error: "), err[:2000]
    line = lines[0]
    assert any(named.name in line for named in (data_file, *other_inputs)) or \
        line.startswith(f"rnnkit: error: {run} already exists"), line
    assert len(line.replace(str(data_file), "").replace(str(run), "")) < LONGEST_MESSAGE, line[:2000]
    assert snapshot(run) == before


# ---- one test per reader ------------------------------------------------------------------------

def csv_line(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


TEXT_LINE = st.text(CHARACTER, max_size=60)
VALID_TEXT = ["abcdefgh"] * 40

CSV_LINE = st.one_of(st.lists(FIELD, max_size=4).map(csv_line), FIELD)    # ragged rows, raw junk
VALID_CSV = ["text,label"] + [f"{w} film,{label}" for w in ("good", "bad", "fine", "dull")
                              for label in ("pos", "neg")] * 4

PAIR_LINE = st.tuples(FIELD, st.sampled_from(["\t", "\t\t", " ", ""]), FIELD).map("".join)
VALID_PAIRS = [f"{w} {i}\t{w.upper()} {i}" for i in range(8) for w in ("one", "two", "three")]

CONLL_LINE = st.one_of(st.just(""), st.lists(st.one_of(WORD, FIELD), min_size=1, max_size=4)
                       .map(" ".join))
VALID_CONLL = [line for i in range(12)
               for line in (f"Paris{i} B-LOC", "is O", "nice O", "")]

IMAGE_NAME = st.one_of(st.sampled_from(["red.png", "blue.png", "broken.png", "missing.png",
                                        "red.png#2", "../red.png", "/etc/hostname", "images"]), FIELD)
CAPTION_LINE = st.tuples(IMAGE_NAME, st.sampled_from(["\t", ""]), FIELD).map("".join)
VALID_CAPTIONS = [f"{name}\ta {colour} square" for name, colour in (("red.png", "red"),
                                                                      ("blue.png", "blue"))] * 6


@EXAMPLES
@given(data=damaged_file(TEXT_LINE, VALID_TEXT))
def test_text_reader(data, inputs, existing_run, capsys):
    path = inputs / "corpus.txt"
    path.write_bytes(data)
    assert_one_clear_error(["train", "lm", "--text", str(path), "--epochs", "1",
                            "--out", str(existing_run)], path, existing_run, capsys)


@EXAMPLES
@given(data=damaged_file(CSV_LINE, VALID_CSV))
def test_csv_reader(data, inputs, existing_run, capsys):
    path = inputs / "reviews.csv"
    path.write_bytes(data)
    assert_one_clear_error(["train", "classify", "--csv", str(path), "--epochs", "1",
                            "--out", str(existing_run)], path, existing_run, capsys)


@EXAMPLES
@given(data=damaged_file(PAIR_LINE, VALID_PAIRS))
def test_tsv_pairs_reader(data, inputs, existing_run, capsys):
    path = inputs / "pairs.tsv"
    path.write_bytes(data)
    assert_one_clear_error(["train", "translate", "--pairs", str(path), "--epochs", "1",
                            "--out", str(existing_run)], path, existing_run, capsys)


@EXAMPLES
@given(data=damaged_file(CONLL_LINE, VALID_CONLL))
def test_conll_reader(data, inputs, existing_run, capsys):
    path = inputs / "train.conll"
    path.write_bytes(data)
    assert_one_clear_error(["train", "tag", "--conll", str(path), "--epochs", "1",
                            "--out", str(existing_run)], path, existing_run, capsys)


@EXAMPLES
@given(data=damaged_file(CAPTION_LINE, VALID_CAPTIONS))
def test_captions_reader(data, inputs, existing_run, capsys):
    path = inputs / "captions.tsv"
    path.write_bytes(data)
    assert_one_clear_error(["train", "caption", "--images", str(inputs / "images"), "--captions",
                            str(path), "--epochs", "1", "--out", str(existing_run)],
                           path, existing_run, capsys, other_inputs=(inputs / "images",))
