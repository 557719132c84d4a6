"""ABC -> notes -> MIDI (rnnkit.data.abc_midi): pitches, lengths in beats, repeats, leniency, the file.

Beats are quarter notes; at L:1/8 an unmarked note lasts 1/2 beat. The MIDI file is read back with
the small independent reader below (chunks, variable-length deltas, note on/off pairs).
"""
from __future__ import annotations

import random
import struct
from fractions import Fraction as F

import pytest

from rnnkit.data.abc_midi import abc_to_midi, key_signature, parse_abc
from rnnkit.data.errors import DataError

HEADER = "X:1\nT:Test\nM:4/4\nL:1/8\nK:{key}\n"


def tune(body: str, key: str = "C", header: str = HEADER):
    [t] = parse_abc(header.format(key=key) + body + "\n")
    return t


def pitches(body: str, key: str = "C") -> list:
    return [p for _, _, p in tune(body, key).notes]


def lengths(body: str, header: str = HEADER) -> list:
    return [length for _, length, _ in tune(body, header=header).notes]


def test_c_major_scale_is_midi_60_to_72_in_eighths():
    t = tune("CDEFGABc|")
    assert [p for _, _, p in t.notes] == [60, 62, 64, 65, 67, 69, 71, 72]
    assert [start for start, _, _ in t.notes] == [F(i, 2) for i in range(8)]
    assert (t.title, t.key, t.meter, t.unit_length, t.tempo_qpm, t.skipped) == \
        ("Test", "C", "4/4", F(1, 8), 120.0, 0)


@pytest.mark.parametrize("key, body, expected", [
    ("G", "FGf", [66, 67, 78]), ("F", "BE", [70, 64]), ("Bb", "BEA", [70, 63, 69]),
    ("Em", "FC", [66, 60]), ("E Minor", "FC", [66, 60]), ("Dmix", "FC", [66, 60]),
    ("D", "FC", [66, 61]), ("Ador", "FCB", [66, 60, 71]), ("F#m", "FCGD", [66, 61, 68, 62]),
    ("A Mixolydian", "FCG", [66, 61, 67]), ("Gm", "BEA", [70, 63, 69]), ("none", "FB", [65, 71]),
    ("HP", "F", [65]),
])
def test_key_signatures_and_modes(key, body, expected):
    assert pitches(body, key) == expected


def test_key_signature_table():
    assert key_signature("G") == {"F": 1}
    assert key_signature("Eb") == {"B": -1, "E": -1, "A": -1}
    assert key_signature("C#") == dict.fromkeys("FCGDAEB", 1)
    assert key_signature("none") == {} and key_signature("") == {}


def test_an_accidental_lasts_to_the_bar_line_and_is_cancelled_by_a_natural():
    assert pitches("^FF=FF|F") == [66, 66, 65, 65, 65]
    assert pitches("_BB|B") == [70, 70, 71]
    assert pitches("=FF|F", key="G") == [65, 65, 66]
    assert pitches("^Ff ^^C __E") == [66, 77, 62, 62]     # only for the same octave


def test_octave_marks():
    assert pitches("c' C, C,, c'' B,") == [84, 48, 36, 96, 59]


def test_lengths_are_in_quarter_note_beats():
    assert lengths("A2 A/2 A/ A// A3/2 A3/ A A4") == \
        [1, F(1, 4), F(1, 4), F(1, 8), F(3, 4), F(3, 4), F(1, 2), 2]
    assert lengths("A A2", header="X:1\nL:1/4\nK:C\n") == [1, 2]


def test_unit_length_defaults_from_the_metre():
    assert tune("A", header="X:1\nM:2/4\nK:C\n").unit_length == F(1, 16)
    assert tune("A", header="X:1\nM:6/8\nK:C\n").unit_length == F(1, 8)
    assert tune("A", header="X:1\nK:C\n").unit_length == F(1, 8)
    assert lengths("A", header="X:1\nM:2/4\nK:C\n") == [F(1, 4)]


def test_broken_rhythm():
    assert lengths("A>B") == [F(3, 4), F(1, 4)]
    assert lengths("A<B") == [F(1, 4), F(3, 4)]
    assert lengths("A>>B") == [F(7, 8), F(1, 8)]
    assert [start for start, _, _ in tune("A>Bc").notes] == [0, F(3, 4), 1]


def test_triplets_fit_three_notes_in_the_time_of_two():
    t = tune("(3ABc d")
    assert [length for _, length, _ in t.notes] == [F(1, 3)] * 3 + [F(1, 2)]
    assert t.notes[3][0] == 1
    assert lengths("(2AB") == [F(3, 4), F(3, 4)]      # 2 in the time of 3
    assert lengths("(3:2:2AB c") == [F(1, 3), F(1, 3), F(1, 2)]


def test_ties_merge_notes_of_the_same_pitch():
    assert tune("A2-A2 B").notes == [(0, 2, 69), (2, F(1, 2), 71)]
    assert tune("A-|A").notes == [(0, 1, 69)]
    assert tune("A-B").notes == [(0, F(1, 2), 69), (F(1, 2), F(1, 2), 71)]


def test_chords_rests_and_inline_fields():
    assert tune("[ceg]2 A").notes == [(0, 1, 72), (0, 1, 76), (0, 1, 79), (1, F(1, 2), 69)]
    assert lengths("[c2e]") == [1, 1]
    assert tune("z2 A").notes == [(0, 1, None), (1, F(1, 2), 69)]
    assert lengths("Z x A") == [4, F(1, 2), F(1, 2)]       # Z: a bar of 4/4; x: a rest too
    assert pitches("F[K:G]F|") == [65, 66]
    assert lengths("A[L:1/4]A") == [F(1, 2), 1]
    assert pitches("C\nK:D\nC") == [60, 61]


def test_repeats_are_played_twice_with_first_and_second_endings():
    assert pitches("|:AB:|") == [69, 71, 69, 71]
    assert pitches("AB:|c") == [69, 71, 69, 71, 72]
    assert pitches("C|:AB:|c") == [60, 69, 71, 69, 71, 72]
    assert pitches("|:A|1B:|2c|]") == [69, 71, 69, 72]
    assert pitches("|:A[1B:|[2c|]") == [69, 71, 69, 72]
    assert pitches("|:A::B:|") == [69, 69, 71, 71]


def test_decorations_grace_notes_and_chord_symbols_are_skipped_silently():
    t = tune('"Am"~A.B{g}c!trill!d +fermata+e (AB) uGvG|\\')
    assert [p for _, _, p in t.notes] == [69, 71, 72, 74, 76, 69, 71, 67, 67]
    assert t.skipped == 0


def test_garbage_is_skipped_and_counted_never_raised():
    t = tune("A#B*C")
    assert [p for _, _, p in t.notes] == [69, 71, 60] and t.skipped == 2
    assert tune('A/0 B "unclosed {grace [ceg').skipped >= 4
    assert parse_abc("X:1\nabc\nK:C\nC|\n")[0].skipped == 3     # a note line before K:
    rng = random.Random(0)
    alphabet = "ABCDEFGabcdefgzZx^_=',/0123456789|:[]()<>-{}\"!+~.#*&@KML \\"
    for _ in range(300):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60)))
        try:
            parse_abc(HEADER.format(key="G") + line + "\n")
        except DataError:
            pass


def test_tunes_are_split_and_headers_read():
    a, b = parse_abc("X:1\nT:One\nM:6/8\nL:1/8\nQ:3/8=60\nK:D\nABc|\n\n"
                     "X:2\nT:Two\nT:alt\nM:C|\nQ:1/4=90\nK:Gm\n% comment\nd2|\n")
    assert (a.title, a.meter, a.key, a.tempo_qpm, a.bar_beats) == ("One", "6/8", "D", 90.0, 3)
    assert (b.title, b.meter, b.key, b.tempo_qpm, b.bar_beats) == ("Two", "C|", "Gm", 90.0, 4)
    assert [p for _, _, p in b.notes] == [74]


def test_no_tune_with_a_note_is_a_data_error():
    for text in ["", "X:1\nT:only a header\nK:C\n", "X:1\nK:G\nz4|\n", "CDE|\n", "X:1\nCDE\n"]:
        with pytest.raises(DataError, match="no ABC tune"):
            parse_abc(text)


# --- the MIDI file, read back --------------------------------------------------------------------------

def read_vlq(data: bytes, i: int) -> tuple[int, int]:
    n = 0
    while True:
        n, i = (n << 7) | (data[i] & 0x7F), i + 1
        if data[i - 1] < 0x80:
            return n, i


def read_midi(path) -> dict:
    """Header fields, the tempo changes and the notes as (start_tick, length_ticks, pitch)."""
    data = path.read_bytes()
    assert data[:4] == b"MThd"
    size, fmt, n_tracks, division = struct.unpack(">IHHH", data[4:14])
    assert data[14:18] == b"MTrk"
    (track_size,) = struct.unpack(">I", data[18:22])
    assert (size, 22 + track_size) == (6, len(data))
    track, i, tick = data[22:], 0, 0
    sounding, notes, tempos, programs, meta = {}, [], [], [], []
    while i < len(track):
        delta, i = read_vlq(track, i)
        tick += delta
        status = track[i]
        if status == 0xFF:
            kind, (length, i) = track[i + 1], read_vlq(track, i + 2)
            body, i = track[i:i + length], i + length
            if kind == 0x51:
                tempos.append((tick, int.from_bytes(body, "big")))
            meta.append((kind, body))
        elif status & 0xF0 == 0xC0:
            programs.append(track[i + 1])
            i += 2
        else:
            assert status & 0xF0 in (0x80, 0x90), hex(status)
            pitch, velocity, i = track[i + 1], track[i + 2], i + 3
            if status & 0xF0 == 0x90 and velocity:
                assert pitch not in sounding
                sounding[pitch] = tick
            else:
                start = sounding.pop(pitch)
                notes.append((start, tick - start, pitch))
    assert not sounding and meta[-1] == (0x2F, b"")
    return {"format": fmt, "tracks": n_tracks, "division": division, "tempos": tempos,
            "programs": programs, "notes": sorted(notes), "end": tick,
            "markers": [body.decode() for kind, body in meta if kind == 0x06]}


def test_midi_file_holds_the_notes_in_ticks(tmp_path):
    path = tmp_path / "out.mid"
    report = abc_to_midi("X:1\nT:Reel\nM:4/4\nL:1/8\nQ:1/4=120\nK:G\nA2 B F/2 [ce]|\n", path)
    assert report == {"tunes": 1, "notes": 5, "skipped": 0, "seconds": 1.125}
    midi = read_midi(path)
    assert (midi["format"], midi["tracks"], midi["division"]) == (0, 1, 480)
    assert midi["tempos"] == [(0, 500_000)] and midi["programs"] == [0] and midi["markers"] == ["Reel"]
    assert midi["notes"] == [(0, 480, 69), (480, 240, 71), (720, 120, 66), (840, 240, 72),
                             (840, 240, 76)]
    assert midi["end"] == 1080


def test_midi_tunes_follow_each_other_after_a_bar_and_long_deltas_are_encoded(tmp_path):
    path = tmp_path / "two.mid"
    text = ("X:1\nT:A\nM:4/4\nL:1/4\nK:C\nC2|\n\n"               # 2 beats, then a 4-beat bar's gap
            "X:2\nT:B\nM:3/4\nL:1/4\nQ:1/4=60\nK:C\nZ12 D|\n")   # 36 beats' rest: a 3-byte delta
    report = abc_to_midi(text, path, program=73)
    midi = read_midi(path)
    assert midi["programs"] == [73] and midi["markers"] == ["A", "B"]
    assert midi["tempos"] == [(0, 500_000), (2880, 1_000_000)]
    assert midi["notes"] == [(0, 960, 60), (2880 + 36 * 480, 480, 62)]
    assert report == {"tunes": 2, "notes": 2, "skipped": 0, "seconds": 3.0 + 37.0}
    with pytest.raises(ValueError):
        abc_to_midi(text, tmp_path / "bad.mid", program=128)
    assert not (tmp_path / "bad.mid").exists()


def test_cli_sample_midi_writes_the_streamed_abc(tmp_path, monkeypatch, capsys):
    from types import SimpleNamespace

    from rnnkit import cli
    pieces = {"good": ["\n", "X:1\nT:T\nK:D\n", "FGA|\n"], "bad": ["\n", "hello world\n"]}
    monkeypatch.setattr(cli, "_run_task", lambda run_dir: SimpleNamespace(
        sample=lambda args: iter(pieces[run_dir.name])))
    path = tmp_path / "s.mid"
    assert cli.main(["sample", str(tmp_path / "good"), "--midi", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == "\nX:1\nT:T\nK:D\nFGA|\n\n" and '"tunes": 1, "notes": 3' in err
    assert read_midi(path)["notes"] == [(0, 240, 66), (240, 240, 67), (480, 240, 69)]
    assert cli.main(["sample", str(tmp_path / "bad"), "--midi", str(tmp_path / "b.mid")]) == 2
    assert "rnnkit: error: no ABC tune" in capsys.readouterr().err
