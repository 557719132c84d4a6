"""Errors raised by rnnkit's data layer.

`DataError` is a `ValueError`: bad input data (a file that is not text, an empty corpus, a corrupt
download). The command line catches it and prints its message, which always names the file, the
package or the byte offset concerned, without a traceback. A value quoted from the data goes through
`shown`, so that a 1 MB line makes a short message, still one line.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


SHOWN = 60  # characters of a bad value quoted in an error message


class DataError(ValueError):
    """The data given to rnnkit cannot be used; the message says which data and why."""


def shown(text: str, limit: int = SHOWN) -> str:
    """``text`` quoted for an error message: its repr (newlines and control characters escaped),
    cut after ``limit`` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


@contextmanager
def data_from(source: str) -> Iterator[None]:
    """Name ``source`` (the file or files the data came from) in front of the message of a
    `DataError` raised inside: for problems found after reading (too little text for the batch
    shape, a split left empty), where the data no longer knows its file."""
    try:
        yield
    except DataError as exc:
        raise DataError(f"{source}: {exc}") from None


class FetchError(DataError):
    """A package file could not be fetched from the registry (offline, unknown version, pip failed)."""
