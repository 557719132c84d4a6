"""Small helpers the data tests share: write a file, catch a DataError's message."""
from __future__ import annotations

from pathlib import Path

import pytest

from rnnkit.data.errors import DataError


def write(path: Path, text: str | bytes) -> Path:
    """Write ``text`` (UTF-8) or ``bytes`` to ``path`` and return the path."""
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def error(call, *args, **kwargs) -> str:
    """The message of the DataError that ``call(*args, **kwargs)`` must raise."""
    with pytest.raises(DataError) as info:
        call(*args, **kwargs)
    return str(info.value)
