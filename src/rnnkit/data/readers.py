"""Reading the user's own labelled files for sequence classification.

    read_text_table(path)     CSV/TSV with a header: one text and its label per row
        text,label
        "A gripping, well-acted film.",pos
        Dull.,neg

    read_series_table(path)   long-format CSV/TSV: one row per (sequence id, time step)
        id,time,x,y,label       rows of one id form one sequence (in file order, or sorted by the
        a,0,0.1,1.5,walk        time column when one is named); features are all columns except
        a,1,0.2,1.4,walk        id, time and label unless listed; sequences may differ in length
        b,0,0.9,0.3,run

    read_series_npz(path)     NumPy .npz: x (N, T, F) or (N, T) floats, y (N,) integers or strings,
                              optional lengths (N,): sequence i is x[i, :lengths[i]]

    read_series_ts(path)      the sktime/aeon .ts format (the UCR/UEA archives' files), see parse_ts


A CSV or TSV is told apart by extension: .tsv and .tab are tab-separated, anything else comma-separated.
Every problem raises `DataError` naming the file and the row (1-based, the header is row 1), line,
column or value concerned. Classes are the distinct labels, sorted (numerically when all are integers);
a file needs at least two.

Shape legend: N sequences, T time steps, F features per step.
"""
from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .errors import DataError, shown
from .labelled import LabelledData, encode_labels, sorted_classes
from .text import DEFAULT_CHUNK_SIZE, decoded_chunks, lookup_encoding, open_binary

_COLUMNS_SHOWN = 10  # header names listed in an error message


# --- shared helpers ---------------------------------------------------------------------------------

def _require_classes(labels: Sequence[str], where: str, unit: str = "rows") -> list[str]:
    classes = sorted_classes(labels)
    if len(classes) < 2:
        found = f"only {shown(classes[0])}" if classes else "none"
        raise DataError(f"{where}: classification needs at least two classes, found {found} "
                        f"in {len(labels)} {unit}")
    return classes


def _table_rows(path: Path, encoding: str) -> Iterator[tuple[int, list[str]]]:
    """(row number, fields) of a CSV/TSV, the header first as row 1; blank rows are skipped."""
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    number = 0
    lookup_encoding(encoding, path)
    try:
        with open_binary(path, "a CSV/TSV file") as raw, \
                io.TextIOWrapper(raw, encoding=encoding, newline="") as fh:
            for number, row in enumerate(csv.reader(fh, delimiter=delimiter), 1):
                if row:
                    yield number, row
    except UnicodeDecodeError as exc:
        # The text layer decodes ahead of the rows: find the first bad byte again, exactly.
        for _ in decoded_chunks(path, encoding, DEFAULT_CHUNK_SIZE):
            pass
        raise DataError(f"{path}: not valid {encoding} text ({exc.reason}); did the file change "
                        f"while it was read?") from None
    except csv.Error as exc:
        raise DataError(f"{path} row {number + 1}: {exc}") from None


def _header(path: Path, rows: Iterator[tuple[int, list[str]]]) -> list[str]:
    first = next(rows, None)
    if first is None:
        raise DataError(f"{path}: the file is empty; it needs a header row naming its columns")
    header = [name.strip() for name in first[1]]
    header[0] = header[0].lstrip("\ufeff")                           # the byte order mark Excel writes
    if len(set(header)) != len(header):
        twice = sorted({h for h in header if header.count(h) > 1})
        raise DataError(f"{path} row 1: the header names column {shown(twice[0])} more than once")
    return header


def _column(header: list[str], name: str, path: Path, what: str) -> int:
    if name not in header:
        listed = ", ".join(shown(h) for h in header[:_COLUMNS_SHOWN])
        more = f" and {len(header) - _COLUMNS_SHOWN} more" if len(header) > _COLUMNS_SHOWN else ""
        raise DataError(f"{path}: no {what} column {name!r} in the header; "
                        f"available columns: {listed}{more}")
    return header.index(name)


def _check_width(row: list[str], header: list[str], number: int, path: Path) -> None:
    if len(row) < len(header):
        raise DataError(f"{path} row {number}: {len(row)} fields, the header has {len(header)} "
                        f"(column {shown(header[len(row)])} is missing)")
    if len(row) > len(header):
        raise DataError(f"{path} row {number}: {len(row)} fields, the header has {len(header)} "
                        f"(an unquoted delimiter in a value?)")


def _nonempty(row: list[str], index: int, header: list[str], number: int, path: Path) -> str:
    value = row[index].strip()
    if not value:
        raise DataError(f"{path} row {number}, column {shown(header[index])}: the value is empty")
    return value


def _unlabelled(path: Path, series) -> LabelledData:
    """Sequences read for prediction: no classes, zero labels."""
    return LabelledData(path.name, "series", [], series, np.zeros(len(series), dtype=np.int64),
                        None, None, source=str(path))


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{where}: {shown(text)} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: the value {shown(text)} is not finite")
    return value


# --- text tables ------------------------------------------------------------------------------------

def read_text_table(path: str | os.PathLike, text_column: str = "text", label_column: str = "label",
                    encoding: str = "utf-8") -> LabelledData:
    """Texts and labels from a CSV/TSV with a header row; texts are kept as written."""
    path = Path(path)
    rows = _table_rows(path, encoding)
    header = _header(path, rows)
    text_i = _column(header, text_column, path, "text")
    label_i = _column(header, label_column, path, "label")
    texts: list[str] = []
    labels: list[str] = []
    for number, row in rows:
        _check_width(row, header, number, path)
        _nonempty(row, text_i, header, number, path)
        texts.append(row[text_i])
        labels.append(_nonempty(row, label_i, header, number, path))
    if not texts:
        raise DataError(f"{path}: a header but no data rows")
    classes = _require_classes(labels, str(path))
    return LabelledData(path.name, "text", classes, texts, encode_labels(labels, classes),
                        None, None, source=str(path))


# --- long-format series tables ----------------------------------------------------------------------

def read_series_table(path: str | os.PathLike, label_column: str | None = "label", id_column: str = "id",
                      time_column: str | None = None, feature_columns: Sequence[str] | None = None,
                      max_length: int | None = None, encoding: str = "utf-8") -> LabelledData:
    """Sequences (a list of (T_i, F) float32 arrays, in order of first appearance) from a long-format table.

    label_column=None reads sequences to classify (no labels): `classes` is empty and `train_y` zeros.
    """
    path = Path(path)
    rows = _table_rows(path, encoding)
    header = _header(path, rows)
    id_i = _column(header, id_column, path, "id")
    label_i = None if label_column is None else _column(header, label_column, path, "label")
    time_i = None if time_column is None else _column(header, time_column, path, "time")
    if feature_columns is None:
        feature_is = [c for c in range(len(header)) if c not in (id_i, label_i, time_i)]
    else:
        feature_is = [_column(header, name, path, "feature") for name in feature_columns]
    if not feature_is:
        raise DataError(f"{path}: no feature columns (the header has only id, time and label)")

    steps: dict[str, list[tuple[float, int, list[float]]]] = {}     # id -> [(time, row, features)]
    label_of: dict[str, tuple[str, int]] = {}                       # id -> (label, first row)
    for number, row in rows:
        _check_width(row, header, number, path)
        seq = _nonempty(row, id_i, header, number, path)
        label = "" if label_i is None else _nonempty(row, label_i, header, number, path)
        first_label, first_row = label_of.setdefault(seq, (label, number))
        if label != first_label:
            raise DataError(f"{path} row {number}, column {shown(header[label_i])}: sequence "
                            f"{shown(seq)} has label {shown(label)} here but {shown(first_label)} "
                            f"in row {first_row}")
        values = [_number(_nonempty(row, c, header, number, path), f"{path} row {number}, column "
                          f"{shown(header[c])}") for c in feature_is]
        time = 0.0 if time_i is None else _number(
            _nonempty(row, time_i, header, number, path),
            f"{path} row {number}, column {shown(header[time_i])}")
        steps.setdefault(seq, []).append((time, number, values))
    if not steps:
        raise DataError(f"{path}: a header but no data rows")

    series: list[np.ndarray] = []
    for seq, seq_steps in steps.items():
        if time_i is not None:
            seq_steps.sort(key=lambda step: step[0])                # stable: ties keep file order
            for (t0, row0, _), (t1, row1, _) in zip(seq_steps, seq_steps[1:]):
                if t0 == t1:
                    raise DataError(f"{path} row {row1}, column {shown(header[time_i])}: sequence "
                                    f"{shown(seq)} has "
                                    f"time {t1:g} twice (rows {row0} and {row1})")
        if max_length is not None and len(seq_steps) > max_length:
            raise DataError(f"{path}: sequence {shown(seq)} (from row {label_of[seq][1]}) has {len(seq_steps)} "
                            f"steps, more than max_length {max_length}")
        series.append(np.array([values for _, _, values in seq_steps], dtype=np.float32))  # (T_i, F)
    if label_i is None:
        return _unlabelled(path, series)
    labels = [label_of[seq][0] for seq in steps]
    classes = _require_classes(labels, f"{path} (column {shown(header[label_i])})", "sequences")
    return LabelledData(path.name, "series", classes, series, encode_labels(labels, classes),
                        None, None, source=str(path))


# --- .npz arrays ------------------------------------------------------------------------------------

def read_series_npz(path: str | os.PathLike, max_length: int | None = None,
                    labelled: bool = True) -> LabelledData:
    """Series from arrays x, y and optionally lengths; one (N, T, F) float32 array, or a list when lengths vary.

    labelled=False reads sequences to classify: y is not needed, `classes` is empty and `train_y` zeros.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except ValueError as exc:  # object arrays need pickle, which is never used
        raise DataError(f"{path}: cannot be read without unpickling ({exc}); store numeric or string "
                        f"arrays") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    for name in ("x", "y") if labelled else ("x",):
        if name not in arrays:
            raise DataError(f"{path}: no array {name!r}; it holds {sorted(arrays) or 'no arrays'} "
                            f"(needed: x (N, T, F) or (N, T), y (N,), optional lengths (N,))")
    x = arrays["x"]
    if x.ndim == 2:
        x = x[:, :, None]                                           # (N, T) -> (N, T, 1)
    if x.ndim != 3 or x.dtype.kind not in "fiu" or len(x) == 0 or x.shape[1] == 0:
        raise DataError(f"{path}: x has shape {arrays['x'].shape} and dtype {x.dtype}; expected numbers "
                        f"shaped (N, T, F) or (N, T) with N, T >= 1")
    n, t = x.shape[:2]
    y = arrays.get("y") if labelled else None
    if y is not None and y.shape != (n,):
        raise DataError(f"{path}: y has shape {y.shape}, expected ({n},) to match x {arrays['x'].shape}")
    if y is not None and y.dtype.kind not in "iuUS":
        raise DataError(f"{path}: y has dtype {y.dtype}; labels must be integers or strings")
    lengths = np.full(n, t, dtype=np.int64)
    if "lengths" in arrays:
        given = arrays["lengths"]
        if given.shape != (n,) or given.dtype.kind not in "iu":
            raise DataError(f"{path}: lengths has shape {given.shape} and dtype {given.dtype}, "
                            f"expected ({n},) integers")
        bad = np.flatnonzero((given < 1) | (given > t))
        if bad.size:
            raise DataError(f"{path}: lengths[{bad[0]}] = {given[bad[0]]} is out of range 1..{t} (T of x)")
        lengths = given.astype(np.int64)
    with np.errstate(over="ignore"):                                # too large for float32: caught below
        x = x.astype(np.float32)                                    # (N, T, F)
    valid = np.arange(t)[None, :] < lengths[:, None]                # (N, T): padding may hold anything
    bad = np.argwhere(~np.isfinite(x) & valid[:, :, None])
    if bad.size:
        i, step, f = bad[0]
        value = arrays["x"][(i, step, f)[:arrays["x"].ndim]]
        raise DataError(f"{path}: x[{i}, {step}, {f}] = {value} is not a finite float32; values must be finite")
    if max_length is not None and lengths.max() > max_length:
        i = int(np.argmax(lengths))
        raise DataError(f"{path}: sequence {i} has {lengths[i]} steps, more than max_length {max_length}")
    series = x if "lengths" not in arrays else [x[i, :lengths[i]] for i in range(n)]  # (N, T, F) | [(T_i, F)]
    if y is None:
        return _unlabelled(path, series)
    names = [v.decode() if isinstance(v, bytes) else str(v) for v in y.tolist()]
    classes = _require_classes(names, f"{path} (array 'y')", "sequences")
    return LabelledData(path.name, "series", classes, series, encode_labels(names, classes),
                        None, None, source=str(path))


# --- the sktime/aeon .ts format ---------------------------------------------------------------------

def parse_ts(text: str, source: str) -> tuple[list[np.ndarray], list[str]]:
    """Series (each a (T, F) float32 array) and their class labels from a .ts file's text.

    The format (https://www.aeon-toolkit.org, `load_from_ts_file`):
        # comment lines
        @problemName GunPoint          header lines: keyword, then values
        @timeStamps false              (time-stamped values are not supported)
        @univariate true
        @classLabel true 1 2           the declared labels (required: this reads classification data)
        @data
        -0.64,-0.64,-0.63:2            one series per line: dimensions separated by ":", the values of
        0.1,0.2:1.5,1.4:walk           a dimension by ",", the class label last; "?" marks a missing value
    All dimensions of a series must have the same length; series may differ in length. `source` names the
    file in errors, which give its line number.
    """
    declared: list[str] | None = None
    univariate: bool | None = None
    in_data = False
    series: list[np.ndarray] = []
    labels: list[str] = []
    dims = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source} line {number}"
        if line.startswith("@"):
            if in_data:
                raise DataError(f"{where}: header line {shown(line.split()[0])} after @data")
            keyword, *values = line.split()
            keyword = keyword.lower()
            flag = values[0].lower() if values else ""
            if keyword == "@data":
                if declared is None:
                    raise DataError(f"{where}: @data before an @classLabel line; this reader needs "
                                    f"labelled (classification) data")
                in_data = True
            elif keyword == "@timestamps" and flag == "true":
                raise DataError(f"{where}: time-stamped .ts data is not supported")
            elif keyword == "@univariate":
                univariate = flag == "true"
            elif keyword == "@classlabel":
                if flag != "true" or len(values) < 3:
                    raise DataError(f"{where}: '@classLabel true <label> <label> ...' is needed for "
                                    f"classification, got {shown(line)}")
                declared = values[1:]
            elif keyword == "@targetlabel" and flag == "true":
                raise DataError(f"{where}: a regression problem (@targetLabel), not classification")
            continue                                                # other headers are descriptive
        if not in_data:
            raise DataError(f"{where}: data before the @data line")
        *parts, label = line.split(":")
        label = label.strip()
        if not parts or not label:
            raise DataError(f"{where}: expected values, ':' and a class label, got {shown(line)}")
        if label not in declared:
            raise DataError(f"{where}: class label {shown(label)} is not among @classLabel "
                            f"{' '.join(declared)}")
        columns = []
        for d, part in enumerate(parts):
            values = [v.strip() for v in part.split(",")]
            if "?" in values:
                raise DataError(f"{where}: missing value '?' in dimension {d}, position {values.index('?')}")
            columns.append([_number(v, f"{where}, dimension {d}") for v in values])
        if univariate and len(columns) != 1:
            raise DataError(f"{where}: {len(columns)} dimensions in a file declared @univariate true")
        if dims is None:
            dims = len(columns)
        elif len(columns) != dims:
            raise DataError(f"{where}: {len(columns)} dimensions, earlier series have {dims}")
        if len({len(c) for c in columns}) != 1:
            raise DataError(f"{where}: the dimensions have different lengths {[len(c) for c in columns]}")
        series.append(np.array(columns, dtype=np.float32).T)        # (T, F)
        labels.append(label)
    if not series:
        raise DataError(f"{source}: no series (is the @data line missing?)")
    return series, labels


def read_series_ts(path: str | os.PathLike, max_length: int | None = None) -> LabelledData:
    """Series from a .ts file; one (N, T, F) float32 array when all have one length, else a list."""
    path = Path(path)
    series, labels = parse_ts(path.read_text(encoding="utf-8"), str(path))
    if max_length is not None:
        for i, s in enumerate(series):
            if len(s) > max_length:
                raise DataError(f"{path}: series {i} has {len(s)} steps, more than max_length {max_length}")
    classes = _require_classes(labels, str(path), "series")
    x = np.stack(series) if len({s.shape for s in series}) == 1 else series
    return LabelledData(path.name, "series", classes, x, encode_labels(labels, classes),
                        None, None, source=str(path))
