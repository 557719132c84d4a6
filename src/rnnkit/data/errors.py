"""Errors raised by rnnkit's data layer.

`DataError` is a `ValueError`: bad input data (a file that is not text, an empty corpus, a corrupt
download). The command line catches it and prints its message, which always names the file, the
package or the byte offset concerned, without a traceback.
"""
from __future__ import annotations


class DataError(ValueError):
    """The data given to rnnkit cannot be used; the message says which data and why."""


class FetchError(DataError):
    """A package file could not be fetched from the registry (offline, unknown version, pip failed)."""
