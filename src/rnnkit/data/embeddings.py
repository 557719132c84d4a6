"""Word vectors in files: word2vec's text and binary formats, and GloVe's text format.

word2vec text:    a header line "<count> <dim>", then one line per word: "word v1 v2 ... v_dim"
                  (the C tool ends each line with " \\n", gensim with "\\n": both are read)
word2vec binary:  the same header line (ASCII, ending in "\\n"), then per word: the word's UTF-8 bytes, one
                  space, dim little-endian float32 (4 * dim bytes) and a "\\n". The original C tool writes
                  that newline; gensim's `save_word2vec_format(binary=True)` leaves it out. Its reader
                  (`load_word2vec_format(binary=True)`) and ours skip newlines before a word, so both
                  forms are read, and the files written here (with the newline) are read by both.
GloVe:            no header, the same lines as word2vec text

    write_word2vec(path, words, matrix, binary)   a whole vocabulary and its (V, E) matrix, atomically
    read_word2vec(path, binary=None)              -> (words, (V, E) float32); binary=None: detected
    is_word2vec_binary(path)                      the detection: the header, then the first record
    read_word_vectors(path, words, skip)          only the vectors of a given vocabulary (any format)

Text files are written with the shortest decimal that reads back to the same float32 (numpy's repr of a
float32, as gensim writes them), checked value by value, so a text round trip is bit-exact like a binary
one. Words must be non-empty and hold no whitespace: neither format could store them.

`read_word_vectors` keeps only the vectors of words in the vocabulary (a GloVe file has hundreds of
thousands of words; the classifier's vocabulary a few thousand). A word missing from the file is looked
up lower-cased too; words still missing keep a random vector with the found vectors' scale. The caller
reports how many were found: out-of-vocabulary rates matter when comparing embeddings.

Errors raise `DataError` naming the file and the line (text) or the word's index and byte offset (binary).

Shape legend: V words, E vector size (dim).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Sequence

import numpy as np

from ..files import atomic_write
from .errors import DataError
from .text import open_binary

_CHUNK = 1 << 20            # bytes read at a time from a binary file
_WRITE_ROWS = 4096          # rows formatted at a time when writing
_HEADER_MAX = 256           # a header "<count> <dim>\n" is far shorter


@dataclass(frozen=True)
class LoadedVectors:
    matrix: np.ndarray          # (V, E) float32, row i for vocabulary word i
    found: int                  # vocabulary words (specials excluded) that had a vector in the file
    searched: int               # vocabulary words looked up (specials excluded)
    dim: int                    # E


# --- writing ------------------------------------------------------------------------------------------

def _check_words_and_matrix(words: Sequence[str], matrix) -> np.ndarray:
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[1] < 1:
        raise ValueError(f"the matrix must be (V, E) with E >= 1, got shape {matrix.shape}")
    if matrix.shape[0] != len(words):
        raise ValueError(f"{len(words)} words but {matrix.shape[0]} matrix rows")
    if not (np.issubdtype(matrix.dtype, np.floating) or np.issubdtype(matrix.dtype, np.integer)):
        raise ValueError(f"the matrix must hold numbers, not {matrix.dtype}")
    seen: dict[str, int] = {}
    for i, word in enumerate(words):
        if not isinstance(word, str) or not word or any(ch.isspace() for ch in word):
            raise ValueError(f"word {i} ({word!r}) cannot be stored in a word2vec file: a word must be "
                             f"a non-empty string without whitespace")
        if word in seen:
            raise ValueError(f"word {i} ({word!r}) repeats word {seen[word]}")
        seen[word] = i
    return np.ascontiguousarray(matrix, dtype=np.float32)    # (V, E)


def float32_text(values: np.ndarray) -> np.ndarray:
    """Each float32 as the shortest decimal that reads back (via float64) to the same float32 bits.

    numpy's float32 repr is that decimal; every value is parsed back to check it, and a value that would
    not come back exactly (none is known) is written with 9 significant digits, which always does.
    """
    values = np.asarray(values, dtype=np.float32)
    text = values.astype(str)
    back = text.astype(np.float64).astype(np.float32)
    wrong = (back.view(np.uint32) != values.view(np.uint32)) & ~np.isnan(values)
    if wrong.any():
        text = text.astype(object)
        text[wrong] = [f"{float(v):.9g}" for v in values[wrong]]
    return text


def write_word2vec(path: str | os.PathLike, words: Sequence[str], matrix, binary: bool) -> None:
    """Write `words` and their (V, E) vectors in the word2vec text or binary format, atomically.

    The vectors are stored as float32 (a float64 matrix is rounded to float32). Rows are written in the
    order given. Raises `ValueError` for a word that cannot be stored (empty, containing whitespace, or
    repeated) or a matrix of the wrong shape.
    """
    matrix = _check_words_and_matrix(words, matrix)          # (V, E) float32
    count, dim = matrix.shape
    header = f"{count} {dim}\n".encode("ascii")

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(header)
            for start in range(0, count, _WRITE_ROWS):
                block = matrix[start:start + _WRITE_ROWS]    # (rows, E)
                names = words[start:start + _WRITE_ROWS]
                if binary:
                    raw = block.astype("<f4", copy=False)
                    fh.write(b"".join(w.encode("utf-8") + b" " + row.tobytes() + b"\n"
                                      for w, row in zip(names, raw)))
                else:
                    rows = float32_text(block).tolist()
                    fh.write("".join(f"{w} {' '.join(row)}\n" for w, row in zip(names, rows))
                             .encode("utf-8"))

    atomic_write(path, write)


# --- reading: shared ------------------------------------------------------------------------------

def _open(path: Path) -> BinaryIO:
    return open_binary(path, "an embeddings file")


def _parse_header(line: bytes) -> tuple[int, int] | None:
    """(count, dim) of a word2vec header line, or None when the line is not one."""
    parts = line.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        count, dim = int(parts[0]), int(parts[1])
        if dim >= 1:
            return count, dim
    return None


def _first_line(fh: BinaryIO) -> bytes:
    """The first line (without its newline) of at most `_HEADER_MAX` bytes; the file is left after it."""
    head = fh.readline(_HEADER_MAX)
    return head[:-1] if head.endswith(b"\n") else head


def _looks_like_text_record(data: bytes, dim: int) -> bool:
    line = data.split(b"\n", 1)[0]
    try:
        parts = line.decode("utf-8").rstrip().split(" ")
    except UnicodeDecodeError:
        return False
    if len(parts) != dim + 1:
        return False
    try:
        [float(p) for p in parts[1:]]
    except ValueError:
        return False
    return True


def is_word2vec_binary(path: str | os.PathLike) -> bool:
    """True for a word2vec binary file: a "<count> <dim>" header and a first record that is not a text
    line of a word and dim numbers. A file without such a header (GloVe, or not vectors at all) is False."""
    path = Path(path)
    with _open(path) as fh:
        header = _parse_header(_first_line(fh))
        if header is None or header[0] == 0:
            return False
        dim = header[1]
        return not _looks_like_text_record(fh.read(24 * dim + 4096), dim)


# --- reading: text --------------------------------------------------------------------------------

def _text_lines(path: Path, fh: BinaryIO, first: int, encoding: str) -> Iterator[tuple[int, str]]:
    """(line number, line without trailing whitespace) of the non-blank lines from the file's position
    on, the first numbered `first`; bad bytes are reported with the line and the byte offset in the file."""
    offset = fh.tell()
    for line_no, raw in enumerate(fh, start=first):
        try:
            line = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}, line {line_no}: not valid {encoding} text: byte offset "
                            f"{offset + exc.start} (bytes {raw[exc.start:exc.end][:4].hex(' ')}: "
                            f"{exc.reason})") from None
        except LookupError:
            raise DataError(f"unknown text encoding {encoding!r} (reading {path})") from None
        offset += len(raw)
        line = line.rstrip()
        if line:
            yield line_no, line


def _parse_vector(path: Path, line_no: int, word: str, fields: list[str]) -> np.ndarray:
    try:
        return np.asarray(fields, dtype=np.float64).astype(np.float32)    # (E,)
    except ValueError:
        bad = next(p for p in fields if not _is_float(p))
        raise DataError(f"{path}, line {line_no}: {bad!r} is not a number (word {word!r})") from None


def _text_records(path: Path, fh: BinaryIO, header: tuple[int, int] | None,
                  encoding: str) -> Iterator[tuple[int, str, list[str]]]:
    """(line number, word, its dim number fields, not yet parsed) of each line after the header (or
    from line 1 of a GloVe file, whose first line sets dim); lines that do not fit are errors."""
    dim = header[1] if header else None
    records = 0
    for line_no, line in _text_lines(path, fh, 2 if header else 1, encoding):
        parts = line.split(" ")
        if len(parts) < 2:
            raise DataError(f"{path}, line {line_no}: expected a word and its vector, got {line[:40]!r}")
        word = parts[0]
        if not word:
            raise DataError(f"{path}, line {line_no}: the line starts with a space, so it has no word")
        if dim is None:
            dim = len(parts) - 1                             # GloVe: the first line sets the size
        if len(parts) - 1 != dim:
            raise DataError(f"{path}, line {line_no}: {len(parts) - 1} numbers after the word {word!r}, "
                            f"expected {dim}")
        if header and records == header[0]:
            raise DataError(f"{path}, line {line_no}: more words than the {header[0]} of the header "
                            f"(line 1)")
        records += 1
        yield line_no, word, parts[1:]


def _read_text(path: Path, fh: BinaryIO, header: tuple[int, int] | None,
               encoding: str) -> tuple[list[str], np.ndarray]:
    words: list[str] = []
    where: dict[str, int] = {}
    rows: list[np.ndarray] = []
    for line_no, word, fields in _text_records(path, fh, header, encoding):
        rows.append(_parse_vector(path, line_no, word, fields))
        if word in where:
            raise DataError(f"{path}, line {line_no}: the word {word!r} is already on line {where[word]}")
        where[word] = line_no
        words.append(word)
    if header and len(words) != header[0]:
        raise DataError(f"{path}: the header (line 1) says {header[0]} words, the file has {len(words)}")
    if rows:
        return words, np.stack(rows)                                  # (V, E)
    if header is None:
        raise DataError(f"{path}: the embeddings file has no vectors")
    return words, np.zeros((0, header[1]), dtype=np.float32)          # "0 E": an empty vocabulary


# --- reading: binary ------------------------------------------------------------------------------

class _Bytes:
    """A forward-only byte reader over a file that knows the file offset of what it returns."""

    def __init__(self, fh: BinaryIO, offset: int) -> None:
        self.fh, self.buf, self.pos, self.base = fh, b"", 0, offset

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def _more(self) -> bool:
        chunk = self.fh.read(_CHUNK)
        if not chunk:
            return False
        self.buf, self.base, self.pos = self.buf[self.pos:] + chunk, self.base + self.pos, 0
        return True

    def skip(self, byte: bytes) -> None:
        """Skip any run of `byte` (one byte) at the current position."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] == byte[0]:
                self.pos += 1
            if self.pos < len(self.buf) or not self._more():
                return

    def until(self, byte: bytes) -> bytes | None:
        """The bytes up to the next `byte`, which is consumed too; None when the file ends first."""
        scanned = 0
        while True:
            j = self.buf.find(byte, self.pos + scanned)
            if j != -1:
                out, self.pos = self.buf[self.pos:j], j + 1
                return out
            scanned = len(self.buf) - self.pos
            if not self._more():
                return None

    def take(self, n: int) -> bytes | None:
        while len(self.buf) - self.pos < n:
            if not self._more():
                return None
        out, self.pos = self.buf[self.pos:self.pos + n], self.pos + n
        return out

    def rest_is(self, byte: bytes) -> int | None:
        """The offset of the first byte other than `byte` from here on, or None when there is none."""
        self.skip(byte)
        return self.offset if self.pos < len(self.buf) else None


def _binary_records(path: Path, fh: BinaryIO, count: int, dim: int,
                    encoding: str) -> Iterator[tuple[str, np.ndarray]]:
    """(word, (E,) float32) for each of the `count` records after the header, checked to the last byte."""
    reader = _Bytes(fh, fh.tell())
    nbytes = 4 * dim
    for i in range(1, count + 1):
        reader.skip(b"\n")                                   # the C tool's newline after each vector
        start = reader.offset
        raw = reader.until(b" ")
        if raw is None:
            left = len(reader.buf) - reader.pos
            if not left:
                raise DataError(f"{path}: the file ends at byte offset {start} after {i - 1} of the header's "
                                f"{count} words")
            raise DataError(f"{path}: word {i} of {count} from byte offset {start} has no space after it "
                            f"before the end of the file (byte offset {start + left})")
        if not raw or b"\n" in raw:
            raise DataError(f"{path}: word {i} of {count} at byte offset {start} is "
                            f"{'empty' if not raw else 'cut by a newline'}: the file is damaged, "
                            f"the header's dim ({dim}) is wrong, or this is not a word2vec binary file")
        try:
            word = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: word {i} of {count} at byte offset {start} is not valid {encoding} "
                            f"(bytes {raw[exc.start:exc.end][:4].hex(' ')} at byte offset "
                            f"{start + exc.start})") from None
        data = reader.take(nbytes)
        if data is None:
            raise DataError(f"{path}: the file ends inside the vector of word {i} of {count} ({word!r}): "
                            f"{nbytes} bytes were expected from byte offset {reader.offset}")
        yield word, np.frombuffer(data, dtype="<f4").astype(np.float32)    # (E,)
    extra = reader.rest_is(b"\n")
    if extra is not None:
        raise DataError(f"{path}: bytes after the last of the header's {count} vectors, from byte offset "
                        f"{extra}: the header's count is too small, or this is not a word2vec binary file")


def _read_binary(path: Path, fh: BinaryIO, count: int, dim: int,
                 encoding: str) -> tuple[list[str], np.ndarray]:
    words: list[str] = []
    where: dict[str, int] = {}
    matrix = np.empty((count, dim), dtype=np.float32)                # (V, E)
    for i, (word, vector) in enumerate(_binary_records(path, fh, count, dim, encoding)):
        if word in where:
            raise DataError(f"{path}: word {i + 1} of {count} ({word!r}) repeats word {where[word] + 1}")
        where[word] = i
        words.append(word)
        matrix[i] = vector
    return words, matrix


def read_word2vec(path: str | os.PathLike, binary: bool | None = None,
                  encoding: str = "utf-8") -> tuple[list[str], np.ndarray]:
    """(words, (V, E) float32 matrix) of a word2vec text or binary file; `binary=None` detects which.

    A text file without a header (GloVe) is read too. Every word must be different. Raises `DataError`
    for a missing file, a bad header, a line or record that does not fit, or a count in the header that
    differs from the number of words, naming the line (text) or the word and byte offset (binary).
    """
    path = Path(path)
    if binary is None:
        binary = is_word2vec_binary(path)
    with _open(path) as fh:
        first = _first_line(fh)
        header = _parse_header(first)
        if binary:
            if header is None:
                raise DataError(f"{path}: line 1 is not a word2vec header \"<count> <dim>\": "
                                f"{first[:40].decode('utf-8', 'replace')!r}")
            return _read_binary(path, fh, header[0], header[1], encoding)
        if header is None:
            fh.seek(0)                                               # GloVe: line 1 is a word
        return _read_text(path, fh, header, encoding)


# --- vectors for a vocabulary -----------------------------------------------------------------------

def read_word_vectors(path: str | Path, words: list[str], skip: int = 0, seed: int = 0,
                      encoding: str = "utf-8") -> LoadedVectors:
    """Vectors for ``words`` (the vocabulary, in id order) from a word2vec (text or binary) or GloVe
    file; its first ``skip`` (special tokens such as <pad> <unk>) are never looked up: <pad> (id 0)
    gets zeros, the others random vectors."""
    path = Path(path)
    wanted: dict[str, int] = {}
    for i, w in enumerate(words[skip:], start=skip):
        wanted.setdefault(w, i)
    lowered = {w.lower(): i for w, i in reversed(list(wanted.items()))}
    exact: dict[int, np.ndarray] = {}
    by_lower: dict[int, np.ndarray] = {}

    def table_for(word: str) -> tuple[int | None, dict[int, np.ndarray]]:
        return (wanted.get(word), exact) if word in wanted else (lowered.get(word.lower()), by_lower)

    dim = None
    binary = is_word2vec_binary(path)
    with _open(path) as fh:
        header = _parse_header(_first_line(fh))
        if binary:
            records = ((None, word, vector) for word, vector in
                       _binary_records(path, fh, header[0], header[1], encoding))
        else:
            if header is None:
                fh.seek(0)                                   # GloVe: line 1 is a word
            records = _text_records(path, fh, header, encoding)
        for line_no, word, vector in records:
            dim = len(vector)
            target, table = table_for(word)
            if target is not None and target not in table:   # text: parse only the wanted vectors
                table[target] = vector if binary else _parse_vector(path, line_no, word, vector)
    if dim is None:
        raise DataError(f"{path}: the embeddings file has no vectors")
    vectors = {**by_lower, **exact}                     # an exact match beats a lower-cased one
    scale = float(np.std(np.stack(list(vectors.values())))) if vectors else 0.1
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, scale or 0.1, size=(len(words), dim)).astype(np.float32)
    if skip:
        matrix[0] = 0.0                                 # <pad>
    for i, v in vectors.items():
        matrix[i] = v
    searched = len(words) - skip
    found = sum(1 for i in range(skip, len(words)) if i in vectors)
    return LoadedVectors(matrix, found, searched, dim)


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
