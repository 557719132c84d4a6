"""Reading users' text files, and the train/validation split shared by every text corpus.

`read_text` streams each file through an incremental decoder (never `read()` of a whole file at once
as bytes-then-text), so a file that is not valid text is reported with the exact byte offset of the
first bad byte, even when that byte sits in a multi-byte character cut by a chunk boundary.
Newlines are translated as Python's text mode does ("\\r\\n" and "\\r" become "\\n").
"""
from __future__ import annotations

import codecs
import io
import os
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Union

from .errors import DataError

PathLike = Union[str, "os.PathLike[str]"]

DEFAULT_CHUNK_SIZE = 1 << 20


def _as_path_list(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    out = [Path(p) for p in paths]
    if not out:
        raise DataError("no text files given")
    return out


def open_binary(path: Path, what: str) -> BinaryIO:
    """``open(path, "rb")``, with a `DataError` naming the path when it is missing, a directory or
    unreadable; ``what`` says what the file should have been ("a text file")."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise DataError(f"is a directory, not {what}: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot open {path}: {exc.strerror or exc}") from None


def lookup_encoding(encoding: str, path: Path) -> codecs.CodecInfo:
    """The codec of ``encoding``; a `DataError` naming ``path`` when there is none, or when it is
    not a text encoding (base64, zlib: str.encode refuses those)."""
    try:
        info = codecs.lookup(encoding)
        "".encode(info.name)
    except LookupError:
        raise DataError(f"unknown text encoding {encoding!r} (reading {path})") from None
    return info


def decoded_chunks(path: Path, encoding: str, chunk_size: int) -> Iterator[str]:
    """A file's text, decoded chunk by chunk with newlines translated; errors name the file and the
    absolute offset of the bad byte. The last chunk yielded may be empty."""
    decoder = lookup_encoding(encoding, path).incrementaldecoder(errors="strict")
    # The newline decoder wraps the byte decoder exactly as TextIOWrapper does, so a "\r" at the end
    # of one chunk and a "\n" at the start of the next become one newline.
    text_decoder = io.IncrementalNewlineDecoder(decoder, translate=True)
    offset = 0  # bytes of the file handed to the decoder so far
    with open_binary(path, "a text file") as fh:
        while True:
            chunk = fh.read(chunk_size)
            final = not chunk
            # Bytes from the previous chunk still held inside the decoder (an unfinished character):
            # a decode error's `start` counts from the beginning of those bytes, not of this chunk.
            pending = len(decoder.getstate()[0])
            try:
                yield text_decoder.decode(chunk, final=final)
            except UnicodeDecodeError as exc:
                bad = offset - pending + exc.start
                shown = exc.object[exc.start:exc.end][:4]
                raise DataError(
                    f"{path}: not valid {encoding} text: byte offset {bad} "
                    f"(bytes {shown.hex(' ')}: {exc.reason})"
                ) from None
            if final:
                return
            offset += len(chunk)


def decoded_lines(path: Path, encoding: str, what: str) -> Iterator[tuple[int, str | DataError]]:
    """(1-based line number, text without its line ending) for each line of a file; a line whose bytes
    are not valid ``encoding`` yields a DataError (line and byte column) instead, so the caller can
    raise it or skip the line. A UTF-8 BOM at the start of the file is dropped."""
    info = lookup_encoding(encoding, path)
    # Lines are split on the byte b"\n" before decoding; that is only right for encodings that write
    # "\n" as that single byte (UTF-8, Latin-1, cp1252, ...), not for UTF-16/32.
    if "\n".encode(info.name) != b"\n":
        raise DataError(f"{path}: encoding {encoding!r} is not supported for line-by-line reading "
                        f"(use an ASCII-compatible encoding such as utf-8)")
    with open_binary(path, what) as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                text = raw.decode(info.name)
            except UnicodeDecodeError as exc:
                shown = raw[exc.start:exc.end][:4]
                yield lineno, DataError(
                    f"{path}, line {lineno}, column {exc.start + 1}: not valid {encoding} "
                    f"(bytes {shown.hex(' ')}: {exc.reason})")
                continue
            if lineno == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield lineno, text.rstrip("\n").rstrip("\r")


def read_text(paths: PathLike | Iterable[PathLike], encoding: str = "utf-8",
              chunk_size: int = DEFAULT_CHUNK_SIZE) -> str:
    """The text of one file or of several files in the given order.

    Files are joined with a newline where one does not already end with one, so the last line of
    a file never runs into the first line of the next. Raises `DataError` naming the file for a
    missing file, a directory, or bytes that are not valid `encoding` (with the byte offset of the
    first bad byte), and "no text in ..." when the result is empty.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    files = _as_path_list(paths)
    texts: list[str] = []
    for path in files:
        text = "".join(decoded_chunks(path, encoding, chunk_size))
        if texts and texts[-1] and not texts[-1].endswith("\n"):
            texts.append("\n")
        texts.append(text)
    result = "".join(texts)
    if not result:
        names = ", ".join(str(p) for p in files)
        raise DataError(f"no text in {names}")
    return result


def split_train_valid(text: str, valid_fraction: float = 0.05, boundary: str = "\n") -> tuple[str, str]:
    """Split `text` into (train, valid) with about `valid_fraction` of the characters in valid.

    The cut is placed right after an occurrence of `boundary` (a line boundary by default; the
    Shakespeare corpus uses "\\n\\n", the start of a speech): the first such place at or after the
    nominal cut point, or, when there is none, the last one before it. `train + valid == text`.
    Raises `DataError` when no boundary leaves both parts non-empty.
    """
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    if not boundary:
        raise ValueError("boundary must be a non-empty string")
    n = len(text)
    nominal = int(round(n * (1.0 - valid_fraction)))
    # Search for the boundary ending at or after the nominal cut, then before it.
    found = text.find(boundary, max(0, nominal - len(boundary)))
    cut = found + len(boundary) if found != -1 else -1
    if not 0 < cut < n:
        found = text.rfind(boundary, 0, nominal)
        cut = found + len(boundary) if found != -1 else -1
    if not 0 < cut < n:
        raise DataError(
            f"cannot split {n} characters into train and valid at a {boundary!r} boundary "
            f"(the text needs at least two lines)"
        )
    return text[:cut], text[cut:]
