"""Sentence pairs for sequence-to-sequence tasks (translation, date normalisation).

Three sources of pairs, all returned as `Pairs` (parallel lists of source and target strings):

    read_pairs(path)          the user's TSV file, one ``source<TAB>target`` pair a line
    load_de_en()              German–English sentences from Debian's ``trans-de-en`` package
                              (Frank Richter's Ding dictionary, /usr/share/trans/de-en)
    generate_dates(n, seed)   generated: human-written dates ("Tuesday, March 4th 2014") -> ISO
                              ("2014-03-04"); `dates_splits` holds some formats out of training to
                              test compositional generalisation

and the helpers a translation model needs around them:

    sentence_tokens(text, level)   word (tokenize's words and punctuation) or character tokens
    detokenize(tokens, level)      tokens back to display text (and for BLEU on detokenized text)
    split_pairs(pairs)             a train/valid/test split fixed by a hash of each pair's source

Errors in the data are `DataError`s naming the file and the 1-based line (and, for undecodable
bytes, the byte column within the line).
"""
from __future__ import annotations

import datetime as dt
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence, Union

from .errors import DataError, shown
from .splits import hash_split
from .text import decoded_lines
from .vocab import tokenize

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class Pairs:
    """Parallel lists of source and target sentences.

    ``skipped`` counts the bad lines `read_pairs(..., skip_bad_lines=True)` left out; ``tags`` holds
    one label per pair where the source has one (the format name of a generated date), else None.
    """

    sources: list[str]
    targets: list[str]
    skipped: int = 0
    tags: list[str] | None = None

    def __post_init__(self) -> None:
        if len(self.sources) != len(self.targets):
            raise ValueError(f"Pairs: {len(self.sources)} sources but {len(self.targets)} targets")
        if self.tags is not None and len(self.tags) != len(self.sources):
            raise ValueError(f"Pairs: {len(self.sources)} pairs but {len(self.tags)} tags")

    def __len__(self) -> int:
        return len(self.sources)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(zip(self.sources, self.targets))

    def select(self, indices: Sequence[int]) -> "Pairs":
        """The pairs at ``indices`` (in that order), with their tags; ``skipped`` is not carried."""
        return Pairs([self.sources[i] for i in indices], [self.targets[i] for i in indices],
                     tags=None if self.tags is None else [self.tags[i] for i in indices])


# ---- the user's TSV files ----------------------------------------------------------------------------

def read_pairs(path: PathLike, encoding: str = "utf-8", skip_bad_lines: bool = False) -> Pairs:
    """Sentence pairs from a TSV file: ``source<TAB>target`` a line.

    Further tab-separated columns are ignored (Tatoeba/Anki exports carry an attribution column).
    Both sides are stripped of surrounding whitespace; blank lines are ignored; CRLF line ends and a
    UTF-8 BOM are accepted. A line without a tab, with an empty side or with bytes that are not valid
    ``encoding`` raises a `DataError` naming the file and line, or, with ``skip_bad_lines``, is left
    out and counted in ``Pairs.skipped``. A file without any pair is a `DataError` too.
    """
    path = Path(path)
    sources: list[str] = []
    targets: list[str] = []
    skipped = 0
    for lineno, text in decoded_lines(path, encoding, "a TSV file of sentence pairs"):
        if isinstance(text, DataError):
            problem: str | DataError = text
        elif not text.strip():
            continue
        elif "\t" not in text:
            problem = f"no tab between source and target: {shown(text.strip())}"
        else:
            source, target = (side.strip() for side in text.split("\t")[:2])
            if source and target:
                sources.append(source)
                targets.append(target)
                continue
            problem = "empty source side" if not source else "empty target side"
        if skip_bad_lines:
            skipped += 1
            continue
        if isinstance(problem, DataError):
            raise problem
        raise DataError(f"{path}, line {lineno}: {problem}")
    if not sources:
        note = f" ({skipped} bad line{'s' if skipped != 1 else ''} skipped)" if skipped else ""
        raise DataError(f"{path}: no sentence pairs{note}")
    return Pairs(sources, targets, skipped=skipped)


# ---- tokens --------------------------------------------------------------------------------------------

LEVELS = ("word", "char")

# detokenize: no space before closing punctuation, none after opening brackets. Apostrophe tokens
# (tokenize keeps "don't" whole but splits a typographic "that’s" into that ’ s) attach to both sides.
_NO_SPACE_BEFORE = frozenset(".,!?;:)]}")
_NO_SPACE_AFTER = frozenset("([{")
_APOSTROPHES = frozenset("'’")


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")


def sentence_tokens(text: str, level: str = "word", lower: bool = True) -> list[str]:
    """The tokens of a sentence: ``word``: words, numbers and single punctuation marks (`tokenize`;
    numbers stay as written, a translation must copy them); ``char``: every character, spaces
    included. Lower-cased when ``lower``."""
    _check_level(level)
    if level == "word":
        return tokenize(text, lower=lower)
    return list(text.lower() if lower else text)


def detokenize(tokens: Sequence[str], level: str) -> str:
    """Display text from tokens: ``char``: joined as they are. ``word``: joined with single spaces,
    except none before ``. , ! ? ; : ) ] }``, none after ``( [ {``, and none on either side of an
    apostrophe token (``'`` or ``’``), so ``that ’ s`` becomes ``that’s``. Quotes and other marks
    keep their spaces. Lossy by design (the tokens do not record spacing); only for display and
    BLEU on detokenized text."""
    _check_level(level)
    if level == "char":
        return "".join(tokens)
    out: list[str] = []
    glue = True  # no space before the first token
    for token in tokens:
        if not (glue or token in _NO_SPACE_BEFORE or token in _APOSTROPHES):
            out.append(" ")
        out.append(token)
        glue = token in _NO_SPACE_AFTER or token in _APOSTROPHES
    return "".join(out)


# ---- German–English sentences from Debian's trans-de-en ------------------------------------------------

DE_EN_PATH = Path("/usr/share/trans/de-en")
DE_EN_INSTALL = "apt-get install trans-de-en"
# sha256 of /usr/share/trans/de-en in trans-de-en 1.9-6 (Ding "devel 2023-01-30"), the version the
# figures below were measured on. Not checked by load_de_en: an installed newer version is fine.
DE_EN_VERSION = "1.9-6"
DE_EN_SHA256 = "34052c6021d09eadfee7a893a789204265954df70fe9c36d38fa00058d79d326"

DE_EN_MAX_WORDS = 30

# Annotations that are not part of the text: {m} {pl} {+Gen.} (grammar), [ugs.] [Br.] (usage),
# <Aalmolch> (extra search keywords).
_ANNOTATION_RE = re.compile(r"\{[^{}]*\}|\[[^\[\]]*\]|<[^<>]*>")
_SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+(?=[.,!?])")  # left behind when "gut [ugs.]." loses [ugs.]
_OPEN_QUOTES = "\"'„“”‚‘’»«"
_CLOSE_QUOTES = "\"'“”‘’»«"
_SENTENCE_END = ".!?"


def _clean(text: str) -> str:
    text = " ".join(_ANNOTATION_RE.sub(" ", text).split())
    return _SPACE_BEFORE_PUNCT_RE.sub("", text)


def _ends_sentence(text: str) -> bool:
    if text and text[-1] in _CLOSE_QUOTES:
        text = text[:-1]
    return bool(text) and text[-1] in _SENTENCE_END


def _starts_sentence(text: str) -> bool:
    return bool(text) and (text[0].isupper() or text[0].isdigit() or text[0] in _OPEN_QUOTES)


def _is_sentence(text: str) -> bool:
    """Starts with a capital, a digit or an opening quote, ends with . ! ? (and maybe a closing
    quote), and has at least two words."""
    return len(text.split()) >= 2 and _starts_sentence(text) and _ends_sentence(text)


def _alternatives(text: str) -> list[str]:
    """``text`` cut at each "; " (or " ; ") outside parentheses: "(Druck; Vakuum)" stays whole."""
    pieces, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch == ";" and depth <= 0 and text[i + 1:i + 2] == " ":
            pieces.append(text[start:i].rstrip())
            start = i + 2
    pieces.append(text[start:])
    return pieces


def _first_sentence(side: str) -> str | None:
    """The first alternative of a cleaned sub-entry when it is a whole sentence, else None.

    Alternatives are separated by "; ", but a sentence may itself contain "; " ("To copy from one book
    is plagiarism; to copy from ten is research."). So a "; " separates alternatives only where the
    text before it ends a sentence ("Das Spiel endete unentschieden.; Das Spiel ging ...") or the
    text after it starts one ("Das bleibt dir überlassen; Das liegt bei dir.": the first alternative
    has no full stop, is not a sentence, and the sub-entry is skipped)."""
    pieces = _alternatives(side)
    first = pieces[0]
    for piece in pieces[1:]:
        if _ends_sentence(first) or _starts_sentence(piece):
            break
        first = f"{first}; {piece}"
    return first if _is_sentence(first) else None


_PAREN_ALTERNATIVES_RE = re.compile(r"\([^()]*;[^()]*\)")


def _keep(text: str) -> bool:
    # "…" marks an incomplete sentence; "/" ("will/muss") and "(Kanadier; Deutscher)" offer
    # alternatives, which are not a translation to learn.
    return ("…" not in text and "..." not in text and "/" not in text
            and not _PAREN_ALTERNATIVES_RE.search(text) and len(text.split()) <= DE_EN_MAX_WORDS)


def parse_ding_line(line: str) -> list[tuple[str, str]]:
    """The (German, English) sentence pairs of one line of a Ding dictionary ("de :: en"); none for
    comments, words and phrases. Sub-entries are aligned by " | "; a line whose two sides have a
    different number of sub-entries cannot be aligned and gives nothing."""
    if line.startswith("#") or " :: " not in line:
        return []
    german, english = line.split(" :: ", 1)
    de_parts, en_parts = german.split(" | "), english.split(" | ")
    if len(de_parts) != len(en_parts):
        return []
    pairs = []
    for de_part, en_part in zip(de_parts, en_parts):
        de = _first_sentence(_clean(de_part))
        en = _first_sentence(_clean(en_part)) if de else None
        if de and en and _keep(de) and _keep(en):
            pairs.append((de, en))
    return pairs


def load_de_en(path: PathLike = DE_EN_PATH) -> Pairs:
    """German→English sentence pairs: the example sentences of the Ding dictionary shipped by Debian's
    ``trans-de-en`` package (GPL-2+), at /usr/share/trans/de-en.

    Each line is ``GERMAN :: ENGLISH``; both sides split into aligned sub-entries at " | ", and a
    sub-entry's alternatives are separated by "; " (see `_first_sentence` for a "; " inside a
    sentence). A sub-entry pair is kept when, after removing the {…} [...] <…> annotations, the
    first alternative of both sides is a whole sentence (a capital, digit or quote first; . ! ? last,
    optionally followed by a closing quote; two words or more), neither contains "…", "...", "/" or
    alternatives in parentheses "(a; b)", and neither has more than 30 words. Exact duplicate pairs
    are dropped, file order is kept.

    trans-de-en 1.9-6 (sha256 `DE_EN_SHA256`) gives 17,526 pairs (17,378 distinct German
    sentences; `split_pairs` defaults: 14,913 train, 860 valid, 1,753 test). The file is not
    verified against that sha256: another installed version works too, with a slightly different
    count.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} not found: the German–English pairs come from Debian's trans-de-en "
                        f"package; install it with: sudo {DE_EN_INSTALL}")
    seen: set[tuple[str, str]] = set()
    sources: list[str] = []
    targets: list[str] = []
    for _, text in decoded_lines(path, "utf-8", "the trans-de-en dictionary"):
        if isinstance(text, DataError):
            raise text
        for pair in parse_ding_line(text):
            if pair not in seen:
                seen.add(pair)
                sources.append(pair[0])
                targets.append(pair[1])
    if not sources:
        raise DataError(f"{path}: no sentence pairs (is it a Ding dictionary, 'GERMAN :: ENGLISH' a line?)")
    return Pairs(sources, targets)


# ---- a split fixed by each pair's source ---------------------------------------------------------------

def split_pairs(pairs: Pairs, valid_fraction: float = 0.05, test_fraction: float = 0.1) -> dict[str, Pairs]:
    """``{"train", "valid", "test"}`` fixed by a hash of each pair's source (`hash_split`): equal
    sources land together, and a pair never changes split when other pairs come or go."""
    parts = hash_split(pairs.sources, valid_fraction, test_fraction, "sentence pairs")
    return {name: pairs.select(idx) for name, idx in parts.items()}


# ---- generated dates -----------------------------------------------------------------------------------

DATE_FIRST = dt.date(1900, 1, 1)
DATE_LAST = dt.date(2099, 12, 31)

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# Component styles. Numeric months are ambiguous between day-month and month-day orders, so they are
# used only in DMY formats with "." and YMD formats (a 4-digit year first): never numeric MDY.
DAY_STYLES = ("plain", "zero", "ordinal")                 # 3 / 03 / 3rd
MONTH_STYLES = ("name", "abbr", "abbr.", "num", "zero")   # March / Mar / Mar. / 3 / 03
ORDERS = ("DMY", "MDY", "YMD")
CASES = ("lower", "title", "upper")                       # applied at random to every example


def ordinal(day: int) -> str:
    """1st 2nd 3rd 4th ... 11th 12th 13th ... 21st 22nd 23rd ... 31st."""
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


@dataclass(frozen=True)
class DateFormat:
    """How a date is written: the order of day, month and year, the style of each, the separator
    after the first and after the second field, and whether a weekday ("Tuesday, ") comes first."""

    name: str
    order: str
    day: str
    month: str
    seps: tuple[str, str]
    weekday: bool = False

    def components(self) -> dict[str, object]:
        """The components compositional generalisation is about: a held-out format shows only
        components that some training format has, in a new combination."""
        return {"order": self.order, "day": self.day, "month": self.month, "seps": self.seps,
                "weekday": self.weekday}

    def render(self, date: dt.date) -> str:
        """In title case ("Tuesday, March 4th 2014"); `generate_dates` applies the case variant."""
        day = {"plain": str(date.day), "zero": f"{date.day:02d}", "ordinal": ordinal(date.day)}[self.day]
        name = _MONTHS[date.month - 1]
        month = {"name": name, "abbr": name[:3], "abbr.": name[:3] + ".", "num": str(date.month),
                 "zero": f"{date.month:02d}"}[self.month]
        fields = {"D": day, "M": month, "Y": f"{date.year:04d}"}
        a, b, c = (fields[k] for k in self.order)
        text = f"{a}{self.seps[0]}{b}{self.seps[1]}{c}"
        return f"{_WEEKDAYS[date.weekday()]}, {text}" if self.weekday else text


_S, _C = " ", ", "
DATE_FORMATS: tuple[DateFormat, ...] = (
    DateFormat("d_month_y", "DMY", "plain", "name", (_S, _S)),             # 4 March 2014
    DateFormat("d0_month_y", "DMY", "zero", "name", (_S, _S)),             # 04 March 2014
    DateFormat("dth_month_y", "DMY", "ordinal", "name", (_S, _S)),         # 4th March 2014
    DateFormat("d_mon_y", "DMY", "plain", "abbr", (_S, _S)),               # 4 Mar 2014
    DateFormat("d_mon._y", "DMY", "plain", "abbr.", (_S, _S)),             # 4 Mar. 2014
    DateFormat("d0-mon-y", "DMY", "zero", "abbr", ("-", "-")),             # 04-Mar-2014
    DateFormat("d.m.y", "DMY", "plain", "num", (".", ".")),                # 4.3.2014
    DateFormat("d0.m0.y", "DMY", "zero", "zero", (".", ".")),              # 04.03.2014
    DateFormat("month_d,_y", "MDY", "plain", "name", (_S, _C)),            # March 4, 2014
    DateFormat("month_dth,_y", "MDY", "ordinal", "name", (_S, _C)),        # March 4th, 2014
    DateFormat("mon._d,_y", "MDY", "plain", "abbr.", (_S, _C)),            # Mar. 4, 2014
    DateFormat("mon_d_y", "MDY", "plain", "abbr", (_S, _S)),               # Mar 4 2014
    DateFormat("y/m/d", "YMD", "plain", "num", ("/", "/")),                # 2014/3/4
    DateFormat("y-m0-d0", "YMD", "zero", "zero", ("-", "-")),              # 2014-03-04
    DateFormat("y-mon-d0", "YMD", "zero", "abbr", ("-", "-")),             # 2014-Mar-04
    DateFormat("y_month_d", "YMD", "plain", "name", (_S, _S)),             # 2014 March 4
    DateFormat("wd,_month_dth_y", "MDY", "ordinal", "name", (_S, _S), True),   # Tuesday, March 4th 2014
    DateFormat("wd,_d_month_y", "DMY", "plain", "name", (_S, _S), True),       # Tuesday, 4 March 2014
    DateFormat("wd,_d0.m0.y", "DMY", "zero", "zero", (".", "."), True),        # Tuesday, 04.03.2014
    # Held out of training (DATE_HELD_OUT): new combinations of the components above.
    DateFormat("wd,_month_d,_y", "MDY", "plain", "name", (_S, _C), True),      # Tuesday, March 4, 2014
    DateFormat("dth_mon._y", "DMY", "ordinal", "abbr.", (_S, _S)),             # 4th Mar. 2014
    DateFormat("y.m0.d0", "YMD", "zero", "zero", (".", ".")),                  # 2014.03.04
    DateFormat("wd,_d_mon_y", "DMY", "plain", "abbr", (_S, _S), True),         # Tuesday, 4 Mar 2014
)
DATE_FORMAT_BY_NAME: dict[str, DateFormat] = {f.name: f for f in DATE_FORMATS}
DATE_HELD_OUT: tuple[str, ...] = ("wd,_month_d,_y", "dth_mon._y", "y.m0.d0", "wd,_d_mon_y")
DATE_TRAIN_FORMATS: tuple[str, ...] = tuple(f.name for f in DATE_FORMATS if f.name not in DATE_HELD_OUT)


def format_of(pairs: Pairs, i: int) -> DateFormat:
    """The format the i-th generated date was written in."""
    if pairs.tags is None:
        raise ValueError("these pairs carry no format tags (they were not generated by generate_dates)")
    return DATE_FORMAT_BY_NAME[pairs.tags[i]]


def _check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    formats = tuple(formats)
    if not formats:
        raise ValueError("no date formats given")
    unknown = [f for f in formats if f not in DATE_FORMAT_BY_NAME]
    if unknown:
        raise ValueError(f"unknown date format(s) {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(DATE_FORMAT_BY_NAME)}")
    return formats


def _date_example(rng: random.Random, formats: tuple[str, ...]) -> tuple[str, str, str]:
    """One (source, ISO target, format name): a uniform date, a uniform format, a uniform case."""
    date = dt.date.fromordinal(rng.randint(DATE_FIRST.toordinal(), DATE_LAST.toordinal()))
    name = rng.choice(formats)
    text = DATE_FORMAT_BY_NAME[name].render(date)
    case = rng.choice(CASES)
    text = text.lower() if case == "lower" else text.upper() if case == "upper" else text
    return text, date.isoformat(), name


def generate_dates(n: int, seed: int, formats: Sequence[str] | None = None) -> Pairs:
    """``n`` generated (written date, ISO date) pairs, the same for the same seed; dates uniform in
    1900-01-01..2099-12-31, formats uniform over ``formats`` (default: `DATE_TRAIN_FORMATS`), case
    variants (lower, Title, UPPER) uniform. ``tags`` holds each pair's format name."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    names = _check_formats(DATE_TRAIN_FORMATS if formats is None else formats)
    rng = random.Random(seed)
    examples = [_date_example(rng, names) for _ in range(n)]
    return Pairs([e[0] for e in examples], [e[1] for e in examples], tags=[e[2] for e in examples])


def _new_dates(n: int, rng: random.Random, formats: tuple[str, ...], taken: set[str]) -> Pairs:
    """``n`` examples whose sources are not in ``taken`` nor repeated (``taken`` grows)."""
    out: list[tuple[str, str, str]] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 100 * n + 1000:  # cannot happen with the built-in formats; guards a tiny format set
            raise DataError(f"cannot generate {n} new dates of {', '.join(formats)}: too many repeats")
        example = _date_example(rng, formats)
        if example[0] not in taken:
            taken.add(example[0])
            out.append(example)
    return Pairs([e[0] for e in out], [e[1] for e in out], tags=[e[2] for e in out])


def dates_splits(n_train: int = 20000, seed: int = 0, n_valid: int = 1000, n_test: int = 2000) -> dict[str, Pairs]:
    """The date task's splits. ``train``: `generate_dates(n_train, seed)` (training formats only);
    ``valid``: ``n_valid`` new examples of the training formats; ``test``: ``n_test`` examples, the
    first half of training formats, the second half of the held-out formats `DATE_HELD_OUT`. No
    source string of valid or test occurs in train or twice across valid and test."""
    train = generate_dates(n_train, seed)
    taken = set(train.sources)
    # A random stream per split, derived from the seed: valid and test do not shift with n_train
    # (except where a draw collides with a training source and is redrawn).
    valid = _new_dates(n_valid, random.Random(f"dates-valid-{seed}"), DATE_TRAIN_FORMATS, taken)
    rng = random.Random(f"dates-test-{seed}")
    seen = _new_dates(n_test - n_test // 2, rng, DATE_TRAIN_FORMATS, taken)
    held = _new_dates(n_test // 2, rng, DATE_HELD_OUT, taken)
    test = Pairs(seen.sources + held.sources, seen.targets + held.targets, tags=seen.tags + held.tags)
    return {"train": train, "valid": valid, "test": test}
