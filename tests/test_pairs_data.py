"""The sentence-pair data layer (rnnkit.data.pairs): TSV files, the Ding (trans-de-en) parser on a small
synthetic dictionary, tokens, the source-hash split and the generated date task.

Every file is written into tmp_path with bytes the test controls; nothing reads /usr/share.
"""
from __future__ import annotations

import calendar
import datetime as dt
import re

import pytest

from helpers import error, write
from rnnkit.data.pairs import (DATE_FORMAT_BY_NAME, DATE_FORMATS, DATE_HELD_OUT, DATE_TRAIN_FORMATS,
                               DE_EN_INSTALL, Pairs, dates_splits, detokenize, format_of,
                               generate_dates, load_de_en, ordinal, read_pairs, sentence_tokens,
                               split_pairs)


# ---- Pairs ------------------------------------------------------------------------------------------

def test_pairs_checks_lengths_and_selects_with_tags():
    with pytest.raises(ValueError, match="2 sources but 1 targets"):
        Pairs(["a", "b"], ["x"])
    pairs = Pairs(["a", "b", "c"], ["x", "y", "z"], skipped=4, tags=["p", "q", "r"])
    assert len(pairs) == 3 and list(pairs) == [("a", "x"), ("b", "y"), ("c", "z")]
    picked = pairs.select([2, 0])
    assert (picked.sources, picked.targets, picked.tags, picked.skipped) == (["c", "a"], ["z", "x"], ["r", "p"], 0)


# ---- read_pairs ----------------------------------------------------------------------------------------

def test_read_pairs_bom_crlf_blank_lines_and_extra_columns(tmp_path):
    path = write(tmp_path / "pairs.tsv",
                 b"\xef\xbb\xbfHallo\tHello\tCC-BY 2.0 (France) Attribution: tatoeba.org #380701\r\n"
                 b"\r\n"
                 b"   \t  \r\n"
                 b"  Wie geht's? \t How are you?  \r\n"
                 + "Grüß Gott!\tHi!".encode("utf-8"))         # no newline at the end
    pairs = read_pairs(path)
    assert pairs.sources == ["Hallo", "Wie geht's?", "Grüß Gott!"]
    assert pairs.targets == ["Hello", "How are you?", "Hi!"]
    assert pairs.skipped == 0 and pairs.tags is None


def test_read_pairs_other_encoding(tmp_path):
    path = write(tmp_path / "latin.tsv", b"M\xfcnchen\tMunich\n")
    assert list(read_pairs(path, encoding="latin-1")) == [("München", "Munich")]
    assert error(read_pairs, path) == f"{path}, line 1, column 2: not valid utf-8 (bytes fc: invalid start byte)"


def test_read_pairs_missing_tab_names_the_line(tmp_path):
    path = write(tmp_path / "pairs.tsv", "Hallo\tHello\n\nHallo Welt\nJa\tYes\n")
    assert error(read_pairs, path) == f"{path}, line 3: no tab between source and target: 'Hallo Welt'"


def test_read_pairs_long_bad_line_is_shortened(tmp_path):
    path = write(tmp_path / "pairs.tsv", "x" * 100 + "\n")
    assert error(read_pairs, path) == f"{path}, line 1: no tab between source and target: '{'x' * 60}...'"


def test_read_pairs_empty_sides(tmp_path):
    path = write(tmp_path / "pairs.tsv", "Hallo\tHello\nDanke\t  \n")
    assert error(read_pairs, path) == f"{path}, line 2: empty target side"
    path = write(tmp_path / "pairs2.tsv", "Hallo\tHello\r\n\r\nJa\tYes\r\n \tThanks\r\n")
    assert error(read_pairs, path) == f"{path}, line 4: empty source side"


def test_read_pairs_bad_bytes_name_line_and_column(tmp_path):
    path = write(tmp_path / "pairs.tsv", b"a\tb\nc\td\nabcd\xff\tx\n")
    assert error(read_pairs, path) == f"{path}, line 3, column 5: not valid utf-8 (bytes ff: invalid start byte)"
    path = write(tmp_path / "cut.tsv", b"caf\xc3\tcafe\n")        # a 2-byte character cut short
    assert error(read_pairs, path) == f"{path}, line 1, column 4: not valid utf-8 (bytes c3: invalid continuation byte)"


def test_read_pairs_skip_bad_lines_counts_them(tmp_path):
    path = write(tmp_path / "pairs.tsv",
                 b"eins\tone\nkein tab\nzwei\t \n\xff\tx\n\n  \ndrei\tthree\n\tfour\n")
    pairs = read_pairs(path, skip_bad_lines=True)
    assert list(pairs) == [("eins", "one"), ("drei", "three")]
    assert pairs.skipped == 4


def test_read_pairs_without_pairs(tmp_path):
    empty = write(tmp_path / "empty.tsv", b"")
    assert error(read_pairs, empty) == f"{empty}: no sentence pairs"
    blank = write(tmp_path / "blank.tsv", b"\n \r\n\t\n")
    assert error(read_pairs, blank) == f"{blank}: no sentence pairs"
    bad = write(tmp_path / "bad.tsv", b"no tab\n\xff\tx\n")
    assert error(read_pairs, bad) == f"{bad}, line 1: no tab between source and target: 'no tab'"
    assert error(read_pairs, bad, skip_bad_lines=True) == f"{bad}: no sentence pairs (2 bad lines skipped)"
    one = write(tmp_path / "one.tsv", b"no tab\n")
    assert error(read_pairs, one, skip_bad_lines=True) == f"{one}: no sentence pairs (1 bad line skipped)"


def test_read_pairs_missing_file_directory_and_encoding(tmp_path):
    assert error(read_pairs, tmp_path / "nope.tsv") == f"no such file: {tmp_path / 'nope.tsv'}"
    assert error(read_pairs, tmp_path) == f"is a directory, not a TSV file of sentence pairs: {tmp_path}"
    path = write(tmp_path / "pairs.tsv", "a\tb\n")
    assert error(read_pairs, path, encoding="klingon") == f"unknown text encoding 'klingon' (reading {path})"
    assert "not supported for line-by-line reading" in error(read_pairs, path, encoding="utf-16")


# ---- tokens ----------------------------------------------------------------------------------------------

def test_sentence_tokens_words_keep_numbers():
    assert sentence_tokens("Er hat 2 Äpfel, nicht 3!") == ["er", "hat", "2", "äpfel", ",", "nicht", "3", "!"]
    assert sentence_tokens("Don't stop (now).", lower=False) == ["Don't", "stop", "(", "now", ")", "."]


def test_sentence_tokens_chars_keep_spaces():
    assert sentence_tokens("Ab c!", level="char") == ["a", "b", " ", "c", "!"]
    assert sentence_tokens("Ab c", level="char", lower=False) == ["A", "b", " ", "c"]
    with pytest.raises(ValueError, match="level must be one of word, char"):
        sentence_tokens("x", level="bpe")


def test_detokenize_round_trips_simple_sentences():
    for text in ["Hello, world! (It's fine.)", "That’s it: [ok] {x}; yes?", "Wie geht’s dir?"]:
        assert detokenize(sentence_tokens(text, lower=False), "word") == text
    assert detokenize(["a", "-", "b", '"', "c", '"'], "word") == 'a - b " c "'   # other marks keep spaces
    text = "Grüß Gott, 3 Leute."
    assert detokenize(sentence_tokens(text, "char", lower=False), "char") == text
    with pytest.raises(ValueError):
        detokenize(["a"], "chars")


# ---- load_de_en on a small dictionary in the Ding format -----------------------------------------------------

LONG_DE = "Das " + " ".join(["sehr"] * 28) + " gute Haus."   # 31 words
DING = f"""\
# Version :: test 2023-01-30
# Ein Kommentar. Mit Punkt. :: A comment. With a full stop.
Haus {{n}} | Häuser {{pl}} :: house | houses
Haus {{n}} | Das Haus ist groß. :: house | The house is big.
gehen {{vi}} [ugs.] | Wir gehen nach Hause.; Wir gehen heim. :: to go | We are going home.; We go home [coll.].
Das ist mir wurscht [ugs.]. :: I couldn't care less [coll.].
Der Hund {{m}} bellt. <Hundegebell> :: The dog {{n}} barks.
Das bleibt dir überlassen; Das liegt bei dir. :: It's up to you.
Du musst klopfen, die Klingel geht nicht. :: You'll have to knock; the bell is broken.
Er will/muss gehen. :: He wants to go.
Sie ist nett. :: She is nice/kind.
Es war einmal … :: Once upon a time …
Warte mal... :: Wait a moment...
Ich bin Amerikaner (Kanadier; Deutscher). :: I am an American (a Canadian; a German).
Das Haus ist groß. :: The house is big.
Das Haus ist groß. :: The house is large.
Satz eins. | Satz zwei. :: Sentence one.
etw. tun. :: to do sth.
Hallo! :: Hello!
„Ja“, sagte er. :: "Yes," he said.
Er rief: „Komm!“ :: He called: "Come!"
3 Leute kamen. :: 3 people came.
Kein Problem! :: no problem!
{LONG_DE} :: A very good house.
Schön! | Schön, dich zu sehen!; Freut mich! :: Nice! | Good to see you!; Nice to see you!
"""


def test_load_de_en_keeps_whole_sentence_pairs(tmp_path):
    path = write(tmp_path / "de-en", DING)
    pairs = load_de_en(path)
    assert list(pairs) == [
        ("Das Haus ist groß.", "The house is big."),                      # sub-entry 2, deduplicated below
        ("Wir gehen nach Hause.", "We are going home."),                  # first alternatives
        ("Das ist mir wurscht.", "I couldn't care less."),                # annotations removed
        ("Der Hund bellt.", "The dog barks."),
        ("Du musst klopfen, die Klingel geht nicht.", "You'll have to knock; the bell is broken."),
        ("Das Haus ist groß.", "The house is large."),                    # same German, new English
        ('„Ja“, sagte er.', '"Yes," he said.'),
        ("Er rief: „Komm!“", 'He called: "Come!"'),
        ("3 Leute kamen.", "3 people came."),
        ("Schön, dich zu sehen!", "Good to see you!"),
    ]
    assert pairs.skipped == 0 and pairs.tags is None


def test_load_de_en_errors(tmp_path):
    missing = tmp_path / "de-en"
    message = error(load_de_en, missing)
    assert message == (f"{missing} not found: the German–English pairs come from Debian's trans-de-en "
                       f"package; install it with: sudo apt-get install trans-de-en")
    assert DE_EN_INSTALL in message
    words = write(tmp_path / "words", "Haus {n} :: house\n")
    assert error(load_de_en, words).startswith(f"{words}: no sentence pairs")
    bad = write(tmp_path / "bad", b"Das ist gut. :: That is good.\nDas ist \xe4. :: x.\n")
    assert error(load_de_en, bad) == f"{bad}, line 2, column 9: not valid utf-8 (bytes e4: invalid continuation byte)"


# ---- split_pairs ---------------------------------------------------------------------------------------------

def _normal(source: str) -> str:
    return " ".join(source.lower().split())


def _many_pairs(n: int = 400) -> Pairs:
    sources = [f"Sentence number {i}." for i in range(n)]
    # The same sources again, differently spaced and cased, with other targets: they must stay together.
    sources += [f"  SENTENCE   number {i}. " for i in range(0, n, 7)]
    return Pairs(sources, [f"target {i}" for i in range(len(sources))], tags=[str(i) for i in range(len(sources))])


def test_split_pairs_is_fixed_by_the_source_and_disjoint():
    pairs = _many_pairs()
    split = split_pairs(pairs)
    again = split_pairs(pairs)
    assert {k: (v.sources, v.targets) for k, v in split.items()} == {k: (v.sources, v.targets) for k, v in again.items()}
    assert sorted(split) == ["test", "train", "valid"]
    seen = {name: {_normal(s) for s in part.sources} for name, part in split.items()}
    assert not seen["train"] & seen["valid"] and not seen["train"] & seen["test"] and not seen["valid"] & seen["test"]
    # Every pair lands in exactly one split, in file order, with its tag.
    assert sorted(int(t) for part in split.values() for t in part.tags) == list(range(len(pairs)))
    for part in split.values():
        assert [int(t) for t in part.tags] == sorted(int(t) for t in part.tags)
        assert all(pairs.targets[int(t)] == target for t, target in zip(part.tags, part.targets))
    n = len(pairs)
    assert 0.05 * n < len(split["test"]) < 0.15 * n and 0.01 * n < len(split["valid"]) < 0.09 * n


def test_split_pairs_is_stable_when_pairs_are_removed():
    pairs = _many_pairs()
    where = {tag: name for name, part in split_pairs(pairs).items() for tag in part.tags}
    fewer = pairs.select(range(0, len(pairs), 3))
    for name, part in split_pairs(fewer).items():
        assert all(where[tag] == name for tag in part.tags)


def test_split_pairs_refuses_an_empty_train_or_test_split():
    message = error(split_pairs, Pairs(["Nur ein Satz."], ["Only one sentence."]))
    assert re.fullmatch(r"cannot split 1 sentence pairs: the (train|test) split is empty \(give more\)", message)
    with pytest.raises(ValueError):
        split_pairs(_many_pairs(), valid_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError):
        split_pairs(_many_pairs(), test_fraction=0.0)


# ---- generated dates -------------------------------------------------------------------------------------------

_MONTH_NAMES = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTH_ABBRS = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_SUFFIX = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}   # every other day: th


def parse_date(source: str, fmt) -> dt.date:
    """Read a generated date back, written independently of the generator, checking every component
    style of its format along the way (and the weekday against the calendar)."""
    text = source.lower()
    weekday = None
    if fmt.weekday:
        weekday, text = text.split(", ", 1)
    fields = re.split(r"[ /.,-]+", text.strip(" ."))
    assert len(fields) == 3, source
    day_s, month_s, year_s = (fields[fmt.order.index(k)] for k in "DMY")
    assert re.fullmatch(r"\d{4}", year_s), source
    if fmt.day == "ordinal":
        day = int(day_s[:-2])
        assert day_s[-2:] == _SUFFIX.get(day, "th") and str(day) == day_s[:-2], source
    else:
        day = int(day_s)
        assert day_s == (f"{day:02d}" if fmt.day == "zero" else str(day)), source
    if fmt.month in ("num", "zero"):
        month = int(month_s)
        assert month_s == (f"{month:02d}" if fmt.month == "zero" else str(month)), source
    else:
        month = (_MONTH_NAMES if fmt.month == "name" else _MONTH_ABBRS)[month_s]
        assert (fmt.month == "abbr.") == (f"{month_s}." in text), source
    date = dt.date(int(year_s), month, day)
    if fmt.weekday:
        assert weekday == calendar.day_name[date.weekday()].lower(), source
    else:
        assert not any(name.lower() in text for name in calendar.day_name), source
    return date


def test_ordinal_suffixes():
    assert [ordinal(d) for d in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 24, 30, 31)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "24th", "30th", "31st"]


def test_date_formats_are_well_formed():
    names = [f.name for f in DATE_FORMATS]
    assert len(set(names)) == len(names) and 16 <= len(names) <= 24
    assert 3 <= len(DATE_HELD_OUT) <= 5 and set(DATE_HELD_OUT) <= set(names)
    assert set(DATE_TRAIN_FORMATS) == set(names) - set(DATE_HELD_OUT)
    # A numeric month is ambiguous between day-month and month-day: never numeric with MDY.
    numeric_orders = {f.order for f in DATE_FORMATS if f.month in ("num", "zero")}
    assert "MDY" not in numeric_orders and numeric_orders
    example = DATE_FORMAT_BY_NAME["wd,_month_dth_y"].render(dt.date(2014, 3, 4))
    assert example == "Tuesday, March 4th 2014"


def test_held_out_formats_recombine_training_components():
    training = [DATE_FORMAT_BY_NAME[n].components() for n in DATE_TRAIN_FORMATS]
    for name in DATE_HELD_OUT:
        held = DATE_FORMAT_BY_NAME[name].components()
        for key, value in held.items():
            assert any(c[key] == value for c in training), (name, key, value)
        assert held not in training, name   # only the combination is new


def test_generate_dates_targets_are_the_dates_the_sources_describe():
    pairs = generate_dates(3000, seed=5, formats=[f.name for f in DATE_FORMATS])
    assert len(pairs) == 3000 and set(pairs.tags) == set(DATE_FORMAT_BY_NAME)
    cases = set()
    for i, (source, target) in enumerate(pairs):
        date = parse_date(source, format_of(pairs, i))
        assert target == date.isoformat() and dt.date.fromisoformat(target) == date
        assert dt.date(1900, 1, 1) <= date <= dt.date(2099, 12, 31)
        if any(ch.isalpha() for ch in source):   # all-numeric formats have no case
            cases.add("lower" if source == source.lower() else "upper" if source == source.upper() else "title")
    assert cases == {"lower", "upper", "title"}
    years = {p[:4] for p in pairs.targets}
    assert min(years) < "1920" and max(years) > "2080"


def test_generate_dates_is_deterministic_and_uses_the_given_formats():
    a, b = generate_dates(200, seed=3), generate_dates(200, seed=3)
    assert (a.sources, a.targets, a.tags) == (b.sources, b.targets, b.tags)
    assert generate_dates(200, seed=4).sources != a.sources
    assert set(a.tags) <= set(DATE_TRAIN_FORMATS) and not set(a.tags) & set(DATE_HELD_OUT)
    only = generate_dates(50, seed=0, formats=["y.m0.d0"])
    assert set(only.tags) == {"y.m0.d0"} and all(re.fullmatch(r"\d{4}\.\d\d\.\d\d", s) for s in only.sources)
    assert len(generate_dates(0, seed=0)) == 0
    with pytest.raises(ValueError, match="unknown date format"):
        generate_dates(5, seed=0, formats=["dd/mm/yy"])
    with pytest.raises(ValueError):
        format_of(Pairs(["a"], ["b"]), 0)


def test_dates_splits_hold_formats_out_and_share_no_source():
    splits = dates_splits()
    train, valid, test = splits["train"], splits["valid"], splits["test"]
    assert (len(train), len(valid), len(test)) == (20000, 1000, 2000)
    assert train.sources == generate_dates(20000, seed=0).sources
    assert set(train.tags) == set(DATE_TRAIN_FORMATS) and set(valid.tags) <= set(DATE_TRAIN_FORMATS)
    assert set(test.tags[:1000]) <= set(DATE_TRAIN_FORMATS)
    assert set(test.tags[1000:]) == set(DATE_HELD_OUT)
    in_train = set(train.sources)
    assert not in_train & set(valid.sources) and not in_train & set(test.sources)
    assert not set(valid.sources) & set(test.sources)
    for i, (source, target) in enumerate(test):
        assert parse_date(source, format_of(test, i)).isoformat() == target
    other = dates_splits(n_train=500, seed=1)
    assert other["test"].sources != test.sources and not set(other["train"].sources) & set(other["test"].sources)
