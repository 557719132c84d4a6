"""Sequence tagging data: named entities and parts of speech, one tag per token.

Every source returns a `Tagged` (parallel lists of token lists and tag lists):

    read_conll(path)             the user's CoNLL-style file: a token a line with its columns
                                 (CoNLL-2003 ``EU NNP B-NP B-ORG``, or two columns ``token tag``),
                                 a blank line between sentences, ``-DOCSTART-`` lines ignored
    generate_tagged(n, seed)     generated English news sentences whose NER (BIO) or universal POS
                                 tags are known by construction; ``names="test"`` draws person and
                                 company names from lists disjoint from training's (unseen words)

and the tools a tagger needs around them:

    scheme_of(tags)                 "BIOES", "BIO", "IO" or "none" (plain tags such as POS tags)
    entity_spans(tags)              [(type, start, end)] with seqeval's default (conlleval) chunking
    to_bio(tags) / to_bioes(tags)   one sentence's tags in IOB2 / BIOES (IOB1 input accepted)
    allowed_transition(a, b, s)     whether tag ``b`` may follow tag ``a`` in scheme ``s`` (CRF checks)
    tagging_metrics(gold, pred)     token accuracy and entity-level micro P/R/F1 with per-type scores

Entity tags are ``O`` or a prefix ``B-``, ``I-``, ``E-`` or ``S-`` followed by a non-empty type
(``B-PER``, ``I-NP``). Errors in a file are `DataError`s naming the file and the 1-based line (and,
for undecodable bytes, the byte column within the line); errors in arguments are `ValueError`s.
"""
from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence, Union

from .errors import DataError
from .text import decoded_lines

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class Tagged:
    """Tagged sentences: ``sentences[i]`` is a list of tokens and ``tags[i]`` holds one tag per token.

    Raises ValueError when the two lists differ in length, when a sentence and its tags differ in
    length, or when a sentence is empty.
    """

    sentences: list[list[str]]
    tags: list[list[str]]

    def __post_init__(self) -> None:
        if len(self.sentences) != len(self.tags):
            raise ValueError(f"Tagged: {len(self.sentences)} sentences but {len(self.tags)} tag lists")
        for i, (tokens, tags) in enumerate(zip(self.sentences, self.tags)):
            if len(tokens) != len(tags):
                raise ValueError(f"Tagged: sentences[{i}] has {len(tokens)} tokens "
                                 f"but tags[{i}] has {len(tags)} tags")
            if not tokens:
                raise ValueError(f"Tagged: sentences[{i}] is empty")

    def __len__(self) -> int:
        return len(self.sentences)

    def __iter__(self) -> Iterator[tuple[list[str], list[str]]]:
        return iter(zip(self.sentences, self.tags))

    def select(self, indices: Sequence[int]) -> "Tagged":
        """The sentences at ``indices`` (in that order) with their tags."""
        return Tagged([self.sentences[i] for i in indices], [self.tags[i] for i in indices])


# ---- CoNLL files ---------------------------------------------------------------------------------------

DOCSTART = "-DOCSTART-"
_FIELD_SEPARATOR = re.compile(r"[ \t]+")  # only spaces and tabs: other whitespace stays inside a token


def _columns(n: int) -> str:
    return f"{n} column{'s' if n != 1 else ''}"


def _check_column(path: Path, lineno: int, name: str, index: int, width: int) -> None:
    if not -width <= index < width:
        raise DataError(f"{path}, line {lineno}: {name} {index} is out of range for a line of {_columns(width)}")


def read_conll(path: PathLike, token_column: int = 0, tag_column: int = -1, encoding: str = "utf-8") -> Tagged:
    """Tagged sentences from a CoNLL-style file: a token a line, its columns separated by spaces or
    tabs, the token in ``token_column`` and its tag in ``tag_column`` (Python indices: -1 is the last
    column), a blank line between sentences.

    CoNLL-2003 (``EU NNP B-NP B-ORG``: token, POS, chunk, NER) reads with the defaults, a two-column
    ``token tag`` file too; ``tag_column=1`` reads CoNLL-2003's POS tags instead. Several blank lines
    in a row, a missing blank line at the end, CRLF line ends and a UTF-8 BOM are fine. A line whose
    token column (or first column) is ``-DOCSTART-`` ends the sentence before it and is otherwise
    ignored (its number of columns is not checked). Every other non-blank line must have as many
    columns as the first such line of the file. Raises `DataError` naming the file and line for a
    line with another number of columns, a column index out of range of the first line,
    ``token_column`` and ``tag_column`` naming the same column, bytes that are not valid ``encoding``
    (with the byte column), and a file without any sentence.
    """
    path = Path(path)
    sentences: list[list[str]] = []
    tags: list[list[str]] = []
    tokens: list[str] = []
    labels: list[str] = []
    width = 0  # columns of the file's first data line; 0 until it is read

    def end_sentence() -> None:
        nonlocal tokens, labels
        if tokens:
            sentences.append(tokens)
            tags.append(labels)
            tokens, labels = [], []

    for lineno, text in decoded_lines(path, encoding, "a CoNLL file"):
        if isinstance(text, DataError):
            raise text
        line = text.strip(" \t")
        if not line:
            end_sentence()
            continue
        fields = _FIELD_SEPARATOR.split(line)
        if fields[0] == DOCSTART or (-len(fields) <= token_column < len(fields)
                                     and fields[token_column] == DOCSTART):
            end_sentence()
            continue
        if not width:
            width = len(fields)
            _check_column(path, lineno, "token_column", token_column, width)
            _check_column(path, lineno, "tag_column", tag_column, width)
            if token_column % width == tag_column % width:
                raise DataError(f"{path}, line {lineno}: token_column {token_column} and tag_column {tag_column} "
                                f"are the same column of {_columns(width)} (a line needs a token and a tag)")
        elif len(fields) != width:
            raise DataError(f"{path}, line {lineno}: {_columns(len(fields))}, "
                            f"but the file's first line has {width}")
        tokens.append(fields[token_column])
        labels.append(fields[tag_column])
    end_sentence()
    if not sentences:
        raise DataError(f"{path}: no sentences (a CoNLL file has a token and its tag a line, "
                        f"a blank line between sentences)")
    return Tagged(sentences, tags)


# ---- tag schemes ---------------------------------------------------------------------------------------

SCHEMES = ("BIOES", "BIO", "IO", "none")
_PREFIXES = frozenset("BIES")


def _parse(tag: str) -> tuple[str, str] | None:
    """(prefix, type) of an entity tag: ("O", "") for ``O``, ("B", "PER") for ``B-PER``; None for a
    tag without that structure (a POS tag, ``B-`` with no type, ``X-PER``)."""
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[0] in _PREFIXES and tag[1] == "-":
        return tag[0], tag[2:]
    return None


def _split(tag: str, position: int) -> tuple[str, str]:
    parsed = _parse(tag)
    if parsed is None:
        raise ValueError(f"tag {tag!r} at position {position} is not an entity tag "
                         f"(O, or B-, I-, E-, S- followed by a type)")
    return parsed


def _flat(tags: Iterable[str] | Iterable[Sequence[str]]) -> Iterator[str]:
    for item in tags:
        if isinstance(item, str):
            yield item
        else:
            yield from item


def scheme_of(tags: Iterable[str] | Iterable[Sequence[str]]) -> str:
    """The tag scheme of a sentence's tags, of a corpus's (a list of tag lists) or of a tag set:

    ``"BIOES"`` when every tag is an entity tag and some start with ``S-`` or ``E-``; ``"BIO"`` when
    every tag is an entity tag, some ``B-`` and none ``S-``/``E-``; ``"IO"`` when the tags are only
    ``I-`` and ``O`` (all ``O`` included); ``"none"`` when some tag is not an entity tag (POS tags,
    say), so the tags have no prefix structure. IOB1 tags read as "BIO" (or "IO" without a ``B-``):
    `entity_spans` chunks IOB1 and IOB2 alike. Raises ValueError when there is no tag at all.
    """
    prefixes: set[str] = set()
    seen = False
    for tag in _flat(tags):
        seen = True
        parsed = _parse(tag)
        if parsed is None:
            return "none"
        prefixes.add(parsed[0])
    if not seen:
        raise ValueError("scheme_of: no tags")
    if prefixes & {"E", "S"}:
        return "BIOES"
    return "BIO" if "B" in prefixes else "IO"


def entity_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The entities of one sentence's tags, as (type, start, end) with ``end`` exclusive, in order.

    Chunking is seqeval's default mode, which is conlleval's, and reads IOB1, IOB2 (BIO), IO and
    BIOES alike. An entity ends before a tag when the tag before it was ``E-`` or ``S-``, when this
    tag is ``B-``, ``S-`` or ``O``, or when the type changes. A new entity starts at every tag that
    is not ``O`` and does not continue one (an ``I-``/``E-`` after ``B-``/``I-`` of its type):
    so ``O I-PER`` starts a PER entity, ``B-PER I-LOC`` is a PER entity then a LOC entity, ``E-`` and
    ``S-`` end the entity they belong to, and ``I-PER I-PER B-PER`` (IOB1) is two PER entities.
    Raises ValueError for a tag that is not an entity tag.
    """
    spans: list[tuple[str, int, int]] = []
    begin = -1                       # start of the open entity; -1 when none is open
    prev_prefix, prev_type = "O", ""
    for i, tag in enumerate([*tags, "O"]):   # the final "O" closes an entity open at the end
        prefix, type_ = _split(tag, i)
        if begin >= 0 and (prev_prefix in "ES" or prefix in "BSO" or type_ != prev_type):
            spans.append((prev_type, begin, i))
            begin = -1
        if prefix != "O" and begin < 0:
            begin = i
        prev_prefix, prev_type = prefix, type_
    return spans


def _render(spans: list[tuple[str, int, int]], length: int, bioes: bool) -> list[str]:
    out = ["O"] * length
    for type_, start, end in spans:
        if bioes and end - start == 1:
            out[start] = f"S-{type_}"
            continue
        out[start] = f"B-{type_}"
        for i in range(start + 1, end):
            out[i] = f"I-{type_}"
        if bioes:
            out[end - 1] = f"E-{type_}"
    return out


def to_bio(tags: Sequence[str]) -> list[str]:
    """One sentence's tags in BIO (IOB2): every entity starts with ``B-``, continues with ``I-``.

    The input may be BIOES, BIO, IO or IOB1 (``I-`` starts an entity, ``B-`` only marks an entity
    that directly follows another of the same type): its entities are read by `entity_spans` and
    written out again, so the result is always valid BIO, and an ill-formed input (an ``I-`` after
    ``O``) is repaired the way seqeval reads it."""
    return _render(entity_spans(tags), len(tags), bioes=False)


def to_bioes(tags: Sequence[str]) -> list[str]:
    """One sentence's tags in BIOES: ``S-`` for a one-token entity, else ``B-`` ``I-``... ``E-``.
    Accepts the same inputs as `to_bio` (BIO, IOB1, IO, BIOES); ``to_bio(to_bioes(t)) == t`` for
    valid BIO tags ``t``."""
    return _render(entity_spans(tags), len(tags), bioes=True)


def allowed_transition(prev_tag: str | None, tag: str | None, scheme: str) -> bool:
    """Whether ``tag`` may directly follow ``prev_tag`` in a valid ``scheme`` sequence.

    ``prev_tag=None`` asks whether ``tag`` may start a sentence, ``tag=None`` whether ``prev_tag``
    may end one. BIO: ``I-X`` only after ``B-X`` or ``I-X`` (so never first); ``O`` and ``B-`` after
    anything; anything last. BIOES: ``I-X`` and ``E-X`` only after ``B-X`` or ``I-X``; ``O``, ``B-``
    and ``S-`` only first or after ``O``, ``E-`` or ``S-``; only ``O``, ``E-`` and ``S-`` last. "IO"
    and "none" constrain nothing. Raises ValueError for an unknown scheme, both tags None, or a tag
    that does not belong to the scheme (``E-PER`` in BIO, ``NOUN`` in either).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    if prev_tag is None and tag is None:
        raise ValueError("allowed_transition: prev_tag and tag cannot both be None")
    if scheme in ("IO", "none"):
        return True
    valid = "BIO" if scheme == "BIO" else "BIOES"
    parts = []
    for t in (prev_tag, tag):
        if t is None:
            parts.append(None)
            continue
        parsed = _parse(t)
        if parsed is None or parsed[0] not in valid:
            raise ValueError(f"tag {t!r} is not a {scheme} tag")
        parts.append(parsed)
    before, after = parts
    if scheme == "BIO":
        if after is None or after[0] in "OB":
            return True
        return before is not None and before[0] in "BI" and before[1] == after[1]
    # BIOES: a boundary is only allowed where no entity is open.
    closed_before = before is None or before[0] in "OES"
    if after is None:
        return closed_before
    if after[0] in "OBS":
        return closed_before
    return before is not None and before[0] in "BI" and before[1] == after[1]


# ---- metrics ---------------------------------------------------------------------------------------------

def _prf(correct: int, predicted: int, actual: int) -> tuple[float, float, float]:
    precision = correct / predicted if predicted else 0.0
    recall = correct / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def tagging_metrics(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Scores of predicted tags against gold tags, sentence by sentence.

    Always ``token_accuracy`` (the fraction of tokens tagged right) and ``scheme`` (`scheme_of` all
    gold and predicted tags). When that scheme has entities (not "none"), also entity-level
    ``precision``, ``recall`` and ``f1``, micro-averaged over all entities with an exact match of
    span and type (seqeval's default mode, its classification report's "micro avg", conlleval's
    overall), and ``per_type``: ``{type: {"precision", "recall", "f1", "support"}}`` for every type
    found in gold or predicted tags, sorted by name, with ``support`` the number of gold entities.
    A ratio with a zero denominator is 0.0. Raises ValueError when the number of sentences or a
    sentence's length differs, or when there are no tags.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"tagging_metrics: {len(gold)} gold sentences but {len(predicted)} predicted")
    tokens = right = 0
    for i, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ValueError(f"tagging_metrics: gold[{i}] has {len(g)} tags but predicted[{i}] has {len(p)}")
        tokens += len(g)
        right += sum(a == b for a, b in zip(g, p))
    if not tokens:
        raise ValueError("tagging_metrics: no tags to score")
    scheme = scheme_of([*gold, *predicted])
    out: dict = {"token_accuracy": right / tokens, "scheme": scheme}
    if scheme == "none":
        return out
    gold_spans = {(i, *span) for i, tags in enumerate(gold) for span in entity_spans(tags)}
    pred_spans = {(i, *span) for i, tags in enumerate(predicted) for span in entity_spans(tags)}
    correct = gold_spans & pred_spans
    out["precision"], out["recall"], out["f1"] = _prf(len(correct), len(pred_spans), len(gold_spans))
    per_type: dict[str, dict[str, float | int]] = {}
    for type_ in sorted({s[1] for s in gold_spans | pred_spans}):
        n_gold = sum(s[1] == type_ for s in gold_spans)
        p, r, f = _prf(sum(s[1] == type_ for s in correct), sum(s[1] == type_ for s in pred_spans), n_gold)
        per_type[type_] = {"precision": p, "recall": r, "f1": f, "support": n_gold}
    out["per_type"] = per_type
    return out


# ---- a generated corpus --------------------------------------------------------------------------------
#
# Short news sentences from templates, with NER tags (BIO: PER, ORG, LOC; numbers, days and months
# are O as in CoNLL-2003) and universal POS tags (NOUN VERB PROPN NUM ADP DET PUNCT ADJ) known by
# construction. Person and company names come from two disjoint lists, "train" and "test"; places
# are shared. Several names are also places (Jordan, Washington, Paris, Austin, ...), so only the
# context tells PER from LOC: "Mr. Washington", "Jordan Miller", "flew to Jordan".

NER_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
POS_TAGS = ("NOUN", "VERB", "PROPN", "NUM", "ADP", "DET", "PUNCT", "ADJ")
TAGSETS = ("ner", "pos")
NAME_LISTS = ("train", "test")

FIRST_NAMES: dict[str, tuple[str, ...]] = {
    "train": ("James", "Mary", "John", "Linda", "Robert", "Susan", "Michael", "Karen", "David", "Nancy",
              "Richard", "Lisa", "Thomas", "Betty", "Daniel", "Sandra", "Paul", "Ashley", "Mark", "Emily",
              "Peter", "Anna", "Carlos", "Maria", "Ahmed", "Fatima", "Hiroshi", "Yuki", "Jim", "Helen",
              "Jordan", "Georgia", "Paris", "Chelsea", "Victoria"),
    "test": ("Oliver", "Grace", "Ethan", "Chloe", "Lucas", "Nadia", "Marco", "Ingrid", "Tobias", "Priya",
             "Rafael", "Leila", "Austin", "Florence", "Sydney", "Madison", "Charlotte"),
}
SURNAMES: dict[str, tuple[str, ...]] = {
    "train": ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Garcia", "Wilson",
              "Anderson", "Taylor", "Moore", "Martin", "Thompson", "White", "Harris", "Clark", "Lewis",
              "Walker", "Young", "Allen", "King", "Wright", "Scott", "Green", "Baker", "Nakamura",
              "Rossi", "Kumar", "Hassan", "Washington", "Jordan", "London"),
    "test": ("Fischer", "Novak", "Larsen", "Okafor", "Petrov", "Moreau", "Costa", "Lindqvist", "Yilmaz",
             "Kowalski", "Dubois", "Haddad", "Lincoln", "Houston", "Dallas"),
}
COMPANY_NAMES: dict[str, tuple[str, ...]] = {
    "train": ("Acme", "Globex", "Initech", "Umbrella", "Vandelay", "Wayne", "Stark", "Cyberdyne",
              "Tyrell", "Hooli", "Massive Dynamic", "Blue River", "Silver Lake", "Northern Star",
              "Apex", "Pinnacle", "Summit", "Phoenix", "Atlas", "Keystone"),
    "test": ("Zentrix", "Omnicorp", "Vortexa", "Quantica", "Red Harbor", "Golden Gate", "Helix",
             "Meridian", "Solstice", "Columbia"),
}
COMPANY_SUFFIXES = ("Corp", "Inc", "Ltd", "Group", "Holdings")
PLACES = ("Berlin", "Tokyo", "Cairo", "Lagos", "Mumbai", "Toronto", "Chicago", "Boston", "Denver",
          "Moscow", "Madrid", "Rome", "Vienna", "Oslo", "Lima", "Brazil", "Canada", "France", "Germany",
          "Kenya", "Japan", "China", "India", "Mexico", "Peru", "Egypt", "Spain",
          "New York", "Hong Kong", "Los Angeles", "South Africa", "New Zealand", "Buenos Aires",
          "Sri Lanka", "Abu Dhabi", "San Francisco", "Saudi Arabia", "Cape Town",
          # also names of people or companies in the lists above
          "Jordan", "Georgia", "Paris", "Chelsea", "Victoria", "Washington", "London", "Austin",
          "Florence", "Sydney", "Madison", "Charlotte", "Lincoln", "Houston", "Dallas", "Phoenix",
          "Columbia")
TITLES = ("Mr.", "Ms.", "Dr.")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")

# A template is tokens separated by spaces: ``word/POS`` (``a|b/POS``: one of the words, at random),
# or a slot ``{PER}`` ``{ORG}`` ``{LOC}`` (entities), ``{NUM}`` ``{YEAR}`` ``{PCT}`` ``{SCORE}``
# (numbers), ``{DAY}`` ``{MONTH}`` (proper nouns that are not entities).
_TEMPLATES = (
    "{PER} bought|sold/VERB {NUM} shares|bonds/NOUN of/ADP {ORG} in/ADP {YEAR} ./PUNCT",
    "{PER} visited|toured/VERB {LOC} on/ADP {DAY} ./PUNCT",
    "{ORG} opened|closed/VERB a/DET new|large|small/ADJ office|factory|store|warehouse/NOUN in/ADP {LOC} ./PUNCT",
    "{PER} ,/PUNCT the/DET chief/ADJ executive/NOUN of/ADP {ORG} ,/PUNCT met/VERB {PER} in/ADP {LOC} ./PUNCT",
    "In/ADP {LOC} {PER} met/VERB the/DET head/NOUN of/ADP {ORG} ./PUNCT",
    "{PER} works/VERB at/ADP the/DET {ORG} {LOC} office/NOUN ./PUNCT",
    "Shares/NOUN of/ADP {ORG} rose|fell|jumped|slipped/VERB {PCT} percent/NOUN on/ADP {DAY} ./PUNCT",
    "{PER} flew|travelled|drove/VERB from/ADP {LOC} to/ADP {LOC} on/ADP {DAY} ./PUNCT",
    "{PER} moved|returned/VERB to/ADP {LOC} in/ADP {YEAR} ./PUNCT",
    "The/DET new/ADJ mayor|governor|president/NOUN of/ADP {LOC} praised|criticised|thanked/VERB {PER} ./PUNCT",
    "{ORG} sold/VERB {NUM} trucks|cars|planes|computers|phones/NOUN to/ADP {ORG} "
    "for/ADP {NUM} dollars/NOUN ./PUNCT",
    "{ORG} hired/VERB {PER} from/ADP {ORG} last/ADJ {MONTH} ./PUNCT",
    "{PER} praised|criticised/VERB the/DET new|modern|old/ADJ "
    "stadium|museum|bridge|hospital|airport/NOUN in/ADP {LOC} ./PUNCT",
    "Police/NOUN in/ADP {LOC} arrested|questioned|released/VERB {NUM} men/NOUN on/ADP {DAY} ./PUNCT",
    "{LOC} beat/VERB {LOC} {SCORE} in/ADP {LOC} on/ADP {DAY} ./PUNCT",
)

_Token = tuple[str, str, str]  # (word, NER tag, POS tag)


def _entity(words: Sequence[str], type_: str) -> list[_Token]:
    return [(w, f"{'B' if i == 0 else 'I'}-{type_}", "PROPN") for i, w in enumerate(words)]


def _person(rng: random.Random, names: str) -> list[_Token]:
    first, last = rng.choice(FIRST_NAMES[names]), rng.choice(SURNAMES[names])
    form = rng.random()
    if form < 0.6:
        return _entity([first, last], "PER")
    if form < 0.8:  # the title is not part of the entity (as in CoNLL-2003)
        return [(rng.choice(TITLES), "O", "PROPN"), *_entity([last], "PER")]
    if form < 0.9:
        return _entity([first, f"{rng.choice('ABCDEFGHJKLMNPRSTW')}.", last], "PER")
    return _entity([last], "PER")


def _company(rng: random.Random, names: str) -> list[_Token]:
    words = rng.choice(COMPANY_NAMES[names]).split()
    if rng.random() < 0.8:
        words.append(rng.choice(COMPANY_SUFFIXES))
    return _entity(words, "ORG")


def _number(rng: random.Random) -> str:
    n = rng.choice((rng.randint(2, 99), rng.randint(100, 999), rng.randint(1000, 99999)))
    return f"{n:,}"


def _slot(name: str, rng: random.Random, names: str) -> list[_Token]:
    if name == "PER":
        return _person(rng, names)
    if name == "ORG":
        return _company(rng, names)
    if name == "LOC":
        return _entity(rng.choice(PLACES).split(), "LOC")
    if name == "DAY":
        return [(rng.choice(DAYS), "O", "PROPN")]
    if name == "MONTH":
        return [(rng.choice(MONTHS), "O", "PROPN")]
    if name == "SCORE":
        return [(str(rng.randint(0, 5)), "O", "NUM"), ("-", "O", "PUNCT"), (str(rng.randint(0, 5)), "O", "NUM")]
    text = {"NUM": _number, "YEAR": lambda r: str(r.randint(1950, 2025)),
            "PCT": lambda r: f"{r.randint(1, 30)}.{r.randint(0, 9)}"}[name](rng)
    return [(text, "O", "NUM")]


def _sentence(rng: random.Random, names: str) -> list[_Token]:
    out: list[_Token] = []
    for part in rng.choice(_TEMPLATES).split():
        if part.startswith("{"):
            out.extend(_slot(part[1:-1], rng, names))
        else:
            words, pos = part.rsplit("/", 1)
            out.append((rng.choice(words.split("|")), "O", pos))
    return out


def generate_tagged(n: int, seed: int, tagset: str = "ner", names: str = "train") -> Tagged:
    """``n`` generated sentences ("Jim Smith bought 300 shares of Acme Corp in 2006 .") with their
    ``tagset`` tags: ``"ner"``, BIO tags of PER, ORG and LOC entities (`NER_TAGS`), or ``"pos"``,
    universal POS tags (`POS_TAGS`). The same ``seed`` and ``names`` give the same sentences, whatever
    the tagset. ``names`` picks the person and company name lists: ``"train"`` or ``"test"``, which
    share no name, so a test set built with ``names="test"`` measures names never seen in training
    (places, templates and other words are shared)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if tagset not in TAGSETS:
        raise ValueError(f"tagset must be one of {', '.join(TAGSETS)}, got {tagset!r}")
    if names not in NAME_LISTS:
        raise ValueError(f"names must be one of {', '.join(NAME_LISTS)}, got {names!r}")
    rng = random.Random(seed)
    column = 1 if tagset == "ner" else 2
    sentences: list[list[str]] = []
    tags: list[list[str]] = []
    for _ in range(n):
        tokens = _sentence(rng, names)
        sentences.append([t[0] for t in tokens])
        tags.append([t[column] for t in tokens])
    return Tagged(sentences, tags)
