"""ABC notation to MIDI, for the folk-tunes samples (``rnnkit sample RUN_DIR --midi FILE``).

Pure Python. Reads the subset of ABC 2.1 that the folk-tunes corpus uses (see
``rnnkit.data.corpora.abc_tunes``) and is lenient: a model's samples are imperfect, so whatever a
note line holds that cannot be read is skipped and counted in ``Tune.skipped``, never raised.

Shapes and units
    text            str: tunes start at an ``X:`` line or after a blank line, their notes after the
                    ``K:`` line (a line before it that is not a field is skipped); ``%`` starts a comment
    Tune.notes      list of (start_beats, duration_beats, midi_pitch) in time order, repeats played
                    out; a chord gives one entry per pitch, all with the same start; a rest has pitch None
    beats           quarter notes (MIDI's unit, whatever the metre), exact ``Fraction``s:
                    at L:1/8 ``A2`` lasts 1 beat, ``A/2`` 1/4 beat, ``(3ABC`` 1/3 beat each
    midi_pitch      int: ABC ``C`` (middle C) = 60, ``c`` = 72, ``c'`` = 84, ``C,`` = 48
    unit_length     Fraction of a whole note (L:1/8 -> 1/8); from M: when L: is missing, as ABC 2.1 says
    tempo_qpm       quarter notes per minute (Q:1/4=120, Q:3/8=60 -> 90, Q:120 in L: units); default 120
    MIDI file       SMF format 0 (one track, channel 0), 480 ticks per quarter note: the tunes one after
                    another, each opening with its tempo and a marker holding its title, one bar of its
                    metre (4 beats at M:none) of silence after each tune but the last
    report          {"tunes": n, "notes": pitched notes (a chord: one each), "skipped": unread symbols,
                     "seconds": playing time}

Tune, key, meter, unit_length and tempo_qpm are the header's values; inline or mid-tune fields
(``[K:D]``, ``[M:3/4]``, ``[L:1/4]``, a ``K:`` line in the body) change the notes that follow them.
Repeats: a section between ``|:`` (or ``||``, or the start) and ``:|`` is played twice; with first and
second endings the first is left out of the second pass. Skipped without counting: spaces, slurs ``( )``,
``\\``, decorations ``~ . H L M O P S T u v !..! +..+``, chord symbols ``"Am"``, grace notes ``{..}`` and
inline fields other than K, M, L (``[V:2]``: voices are played one after the other).
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional, Sequence

from ..files import PathLike, atomic_write_bytes
from .errors import DataError

TICKS_PER_QUARTER = 480
DEFAULT_QPM = 120.0
_PITCH = {"C": 60, "D": 62, "E": 64, "F": 65, "G": 67, "A": 69, "B": 71}
_FIFTHS = {"F": -1, "C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5}   # sharps in the major key
_MODES = {"maj": 0, "ion": 0, "mix": -1, "dor": -2, "min": -3, "aeo": -3, "m": -3, "phr": -4,
          "lyd": 1, "loc": -5}
_ACCIDENTAL = {"^^": 2, "^": 1, "=": 0, "_": -1, "__": -2}
_TUPLET_TIME = {2: 3, 3: 2, 4: 3, 6: 2, 8: 3}    # (p: p notes in the time of q; other p: q = 2

_FIELD_LINE = re.compile(r"([A-Za-z]):(.*)")
_KEY = re.compile(r"\s*([A-Ga-g])([#b]?)\s*([A-Za-z]*)")
_LENGTH = re.compile(r"(\d*)(/*)(\d*)")
_NOTE = r"(?:\^\^|\^|__|_|=)?[A-Ga-g][',]*"
_PARTS = re.compile(r"(\^\^|\^|__|_|=)?([A-Ga-g])([',]*)")
_CHORD_NOTE = re.compile(rf"({_NOTE})(\d*/*\d*)")
_TOKEN = re.compile(rf"""
    (?P<note>{_NOTE}) (?P<length>\d*/*\d*)
  | (?P<rest>[zxZX]) (?P<rest_length>\d*/*\d*)
  | (?P<field>\[[A-Za-z]:[^\]]*\])                         # inline field [K:G]
  | (?P<bar>:*\[?\|+\]?:*|::+) (?P<bar_ending>\[?\d+(?:[,-]\d+)*)?
  | (?P<ending>\[\d+(?:[,-]\d+)*)                        # [1  [2  [1,3
  | (?P<chord>\[[^\]\[|]*\]) (?P<chord_length>\d*/*\d*)
  | (?P<tuplet>\((?P<p>\d+)(?::(?P<q>\d*))?(?::(?P<r>\d*))?)
  | (?P<broken>>+|<+)
  | (?P<tie>-)
  | (?P<skip>"[^"]*"|![^!]*!|\+[^+]*\+|\{{[^}}]*\}}|[\s\\()`~.HLMOPSTuv])
""", re.X)


@dataclass
class Tune:
    title: str = ""
    key: str = "C"
    meter: str = "none"
    unit_length: Fraction = Fraction(1, 8)
    tempo_qpm: float = DEFAULT_QPM
    notes: list = field(default_factory=list)   # (start_beats, duration_beats, midi_pitch | None)
    skipped: int = 0

    @property
    def beats(self) -> Fraction:
        return max((start + length for start, length, _ in self.notes), default=Fraction(0))

    @property
    def bar_beats(self) -> Fraction:
        return 4 * (_bar_length(self.meter) or 1)


def _bar_length(meter: str) -> Optional[Fraction]:
    """In whole notes: "6/8" -> 3/4, "C" -> 1, "C|" -> 1, "2+3/8" -> 5/8; None for "none"."""
    if meter.strip() in ("C", "C|"):
        return Fraction(1)
    m = re.search(r"(\d+(?:\+\d+)*)/(\d+)", meter)
    if not m or int(m.group(2)) == 0:
        return None
    return Fraction(sum(map(int, m.group(1).split("+"))), int(m.group(2)))


def _length(text: str) -> Fraction:
    """An ABC length in units of L: "2", "3/2", "/2", "/", "//", "3/"; 0 when unreadable ("/0", "x")."""
    m = _LENGTH.fullmatch(text.replace(" ", ""))
    if not m:
        return Fraction(0)
    num, slashes, den = m.groups()
    d = (int(den) if den else 2) * 2 ** (len(slashes) - 1) if slashes else 1
    return Fraction(int(num) if num else 1, d) if d else Fraction(0)


def key_signature(key: str) -> dict[str, int]:
    """The semitone shift of each letter: "G" -> {"F": 1}, "Ador" -> {"F": 1}, "Bb" -> {"B": -1, "E": -1}.

    Tonic, optional # or b, mode ("m", "min", "Mix", " Dorian", ...: the first three letters count;
    unknown words count as major). K:none, K:HP and anything without a tonic: no accidentals.
    """
    m = _KEY.match(key)
    if not m:
        return {}
    mode = m.group(3).lower()
    mode = "maj" if not mode else "m" if mode == "m" else mode[:3]
    fifths = _FIFTHS[m.group(1).upper()] + {"#": 7, "b": -7, "": 0}[m.group(2)] + _MODES.get(mode, 0)
    fifths = max(-7, min(7, fifths))
    if fifths >= 0:
        return {letter: 1 for letter in "FCGDAEB"[:fifths]}
    return {letter: -1 for letter in "BEADGCF"[:-fifths]}


def _tempo(text: str, unit: Fraction) -> float:
    """Q:1/4=120 -> 120, Q:3/8=60 -> 90, Q:"Allegro" 1/4=132 -> 132, Q:120 (units of L) -> 120*4*L."""
    m = re.search(r"(\d+)/(\d+)\s*=\s*(\d+(?:\.\d+)?)", text)
    if m and int(m.group(2)) and float(m.group(3)) > 0:
        return float(m.group(3)) * 4 * int(m.group(1)) / int(m.group(2))
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*", text)
    return float(m.group(1)) * 4 * float(unit) if m and float(m.group(1)) > 0 else DEFAULT_QPM


class _TuneReader:
    """Reads one tune, field line by note line, into events; `finish()` plays the repeats out."""

    def __init__(self) -> None:
        self.tune = Tune()
        self.unit: Optional[Fraction] = None        # set by L:, else at the body's start
        self.bar: Optional[Fraction] = None         # bar length in whole notes; None at M:none
        self.key: dict[str, int] = {}
        self.bar_accidentals: dict[tuple[str, int], int] = {}   # (letter, octave) -> shift
        self.events: list = []      # [beats, pitches] (() for a rest), "|:", ":|", "||", ending number
        self.last: Optional[int] = None             # index in events of the last note, chord or rest
        self.in_body = self.tie = False
        self.broken = Fraction(1)                   # factor for the next note's length, left by > or <
        self.tuplet_left, self.tuplet_factor = 0, Fraction(1)

    def field(self, name: str, value: str) -> None:
        value, header = value.strip(), not self.in_body
        if name == "T" and header and not self.tune.title:
            self.tune.title = value
        elif name == "M":
            self.bar = _bar_length(value)
            if header:
                self.tune.meter = value
        elif name == "L" and value and _length(value):
            self.unit = _length(value)
            if header:
                self.tune.unit_length = self.unit
        elif name == "Q" and header:
            self.tune.tempo_qpm = _tempo(value, self.unit or self.tune.unit_length)
        elif name == "K":
            self.key, self.bar_accidentals = key_signature(value), {}
            if header:
                self.tune.key = value or "C"
                self.start_body()

    def start_body(self) -> None:
        if self.unit is None:                       # ABC 2.1: L:1/16 below 3/4 time, else 1/8
            small = self.bar is not None and self.bar < Fraction(3, 4)
            self.unit = self.tune.unit_length = Fraction(1, 16) if small else Fraction(1, 8)
        self.in_body = True

    def pitch(self, note: str) -> int:
        accidental, letter, marks = _PARTS.fullmatch(note).groups()
        octave = letter.islower() + marks.count("'") - marks.count(",")
        letter = letter.upper()
        if accidental:                              # lasts to the bar line, for this octave
            self.bar_accidentals[letter, octave] = _ACCIDENTAL[accidental]
        return _PITCH[letter] + 12 * octave + self.bar_accidentals.get((letter, octave),
                                                                       self.key.get(letter, 0))

    def add(self, pitches: tuple, beats: Fraction) -> None:
        beats, self.broken = beats * self.broken, Fraction(1)
        if self.tuplet_left:
            beats, self.tuplet_left = beats * self.tuplet_factor, self.tuplet_left - 1
        if beats <= 0 or not all(0 <= p <= 127 for p in pitches):
            self.tune.skipped += 1
        elif self.tie and pitches and self.last is not None and self.events[self.last][1] == pitches:
            self.events[self.last][0] += beats      # tied: the same pitches sound on
        else:
            self.events.append([beats, pitches])
            self.last = len(self.events) - 1
        self.tie = False

    def line(self, s: str) -> None:
        if not self.in_body:                        # not ABC before K: (prose, a model's stray text)
            self.tune.skipped += len(s.strip())
            return
        i = 0
        while i < len(s):
            m = _TOKEN.match(s, i)
            if m is None:                           # unreadable: skip one character
                self.tune.skipped += 1
                i += 1
                continue
            i = m.end()
            if m["note"]:
                self.add((self.pitch(m["note"]),), _length(m["length"]) * self.unit * 4)
            elif m["rest"]:                         # Z and X: whole bars
                n = _length(m["rest_length"])
                self.add((), n * 4 * (self.bar or 1) if m["rest"] in "ZX" else n * self.unit * 4)
            elif m["field"]:
                name, value = m["field"][1:-1].split(":", 1)
                if name in "KML":
                    self.field(name, value)
            elif m["bar"]:
                self.barline(m["bar"])
                if m["bar_ending"]:
                    self.events.append(int(re.search(r"\d+", m["bar_ending"]).group()))
            elif m["ending"]:
                self.events.append(int(re.search(r"\d+", m["ending"]).group()))
            elif m["chord"]:
                self.chord(m["chord"], m["chord_length"])
            elif m["tuplet"]:                       # (p:q:r  p notes in the time of q, for r notes
                p = int(m["p"])
                q = int(m["q"]) if m["q"] else _TUPLET_TIME.get(p, 2)
                if p and q:
                    self.tuplet_factor, self.tuplet_left = Fraction(q, p), int(m["r"] or p)
            elif m["broken"] and self.last is not None:     # A>B: 3/2 and 1/2, A>>B: 7/4 and 1/4
                short = Fraction(1, 2 ** len(m["broken"]))
                first, self.broken = (2 - short, short) if m["broken"][0] == ">" else (short, 2 - short)
                self.events[self.last][0] *= first
            elif m["tie"]:
                self.tie = True

    def barline(self, token: str) -> None:
        self.bar_accidentals = {}
        if token.startswith(":"):
            self.events.append(":|")
        if "||" in token or "[" in token or "]" in token:
            self.events.append("||")
        if token.endswith(":"):
            self.events.append("|:")

    def chord(self, chord: str, length: str) -> None:
        """``[ceg]2``: every note sounds together, for the first one's length times the chord's."""
        notes = _CHORD_NOTE.findall(chord)
        if not notes:
            self.tune.skipped += 1
            return
        pitches = tuple(dict.fromkeys(self.pitch(note) for note, _ in notes))
        self.add(pitches, _length(notes[0][1]) * _length(length) * self.unit * 4)
        self.tie = "-" in chord

    def finish(self) -> Tune:
        """Play repeats out (first endings once) and lay the notes out in time."""
        played: list = []
        section, first_ending = 0, None     # where the section that ":|" repeats starts in `played`
        for event in self.events:
            if event in ("|:", "||"):
                section, first_ending = len(played), None
            elif event == ":|":
                played += played[section:first_ending]
                section, first_ending = len(played), None
            elif isinstance(event, int):
                first_ending = len(played) if event == 1 else first_ending
            else:
                played.append(event)
        start = Fraction(0)
        for beats, pitches in played:
            self.tune.notes += [(start, beats, p) for p in pitches or (None,)]
            start += beats
        return self.tune


def parse_abc(text: str) -> list[Tune]:
    """Every tune in `text` that has at least one note; DataError when none has."""
    tunes: list[Tune] = []
    reader: Optional[_TuneReader] = None
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.split("%", 1)[0].rstrip()
        field_line = _FIELD_LINE.fullmatch(line)
        if not line.strip() and raw.strip():        # a line that held only a comment
            continue
        if not line.strip() or (field_line and field_line.group(1) == "X"):
            if reader:
                tunes.append(reader.finish())
            reader = None
            if not line.strip():
                continue
        reader = reader or _TuneReader()
        if field_line:
            reader.field(*field_line.groups())
        else:
            reader.line(line)
    if reader:
        tunes.append(reader.finish())
    tunes = [t for t in tunes if any(pitch is not None for _, _, pitch in t.notes)]
    if not tunes:
        raise DataError(f"no ABC tune with a note in the text ({len(text)} characters; "
                        "a tune's notes follow its K: line)")
    return tunes


# --- MIDI ---------------------------------------------------------------------------------------------

def _vlq(n: int) -> bytes:
    """MIDI variable-length quantity: 7 bits a byte, most significant first, high bit on all but the last."""
    out = [n & 0x7F]
    while n > 0x7F:
        n >>= 7
        out.append(0x80 | (n & 0x7F))
    return bytes(reversed(out))


def _ticks(beats: Fraction) -> int:
    return round(beats * TICKS_PER_QUARTER)


def _seconds(tunes: Sequence[Tune]) -> float:
    """Playing time: each tune, then a bar's gap before the next, at the tune's tempo."""
    beats = [t.beats + (t.bar_beats if i < len(tunes) - 1 else 0) for i, t in enumerate(tunes)]
    return sum(float(b) * 60 / t.tempo_qpm for b, t in zip(beats, tunes))


def midi_bytes(tunes: Sequence[Tune], program: int = 0, velocity: int = 80) -> bytes:
    """SMF format 0: one track on channel 0, the tunes one after another, a bar of silence between."""
    if not (0 <= program <= 127 and 1 <= velocity <= 127):
        raise ValueError(f"MIDI program must be 0..127 and velocity 1..127, got {program}, {velocity}")
    # (tick, order, bytes); at one tick: tempo, marker and program first, then note-offs, then note-ons
    events = [(0, 0, bytes([0xC0, program]))]
    start = end = 0
    for tune in tunes:
        tempo = max(1, min(0xFFFFFF, round(60_000_000 / tune.tempo_qpm)))     # microseconds a quarter
        title = tune.title.encode("utf-8")
        events += [(start, 0, b"\xff\x51\x03" + tempo.to_bytes(3, "big")),
                   (start, 0, b"\xff\x06" + _vlq(len(title)) + title)]
        for beat, beats, pitch in tune.notes:
            on, off = start + _ticks(beat), start + _ticks(beat + beats)
            if pitch is not None and off > on:
                events += [(on, 2, bytes([0x90, pitch, velocity])), (off, 1, bytes([0x80, pitch, 0]))]
        end = start + _ticks(tune.beats)
        start = end + _ticks(tune.bar_beats)
    events.sort(key=lambda e: (e[0], e[1]))
    track, now = bytearray(), 0
    for tick, _, data in events + [(end, 3, b"\xff\x2f\x00")]:          # end of track
        track += _vlq(tick - now) + data
        now = tick
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_QUARTER)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def write_midi(tunes: Sequence[Tune], path: PathLike, program: int = 0) -> None:
    """Write `tunes` to a MIDI file, atomically. program: General MIDI, 0 piano, 73 flute, 40 violin."""
    atomic_write_bytes(path, midi_bytes(tunes, program))


def abc_to_midi(text: str, path: PathLike, program: int = 0) -> dict:
    """Parse ABC `text`, write its tunes to the MIDI file `path`; returns what was written."""
    tunes = parse_abc(text)
    write_midi(tunes, path, program)
    return {"tunes": len(tunes),
            "notes": sum(pitch is not None for t in tunes for _, _, pitch in t.notes),
            "skipped": sum(t.skipped for t in tunes),
            "seconds": round(_seconds(tunes), 3)}
