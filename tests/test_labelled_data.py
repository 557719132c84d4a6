"""The data layer of sequence classification: the user's files (readers.py), the .ts parser, the bundled
labelled sets' converters and cache (labelled.py), the restricted unpickler and the 1-NN DTW baseline.

Only the test marked slow fetches anything; the others write small files into tmp_path.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers import error, write
from rnnkit.data import fetch, labelled
from rnnkit.data.fetch import arrays_sha256
from rnnkit.data.labelled import (LABELLED_SETS, LabelledData, dtw_1nn_accuracy,
                                  dtw_distances, load_labelled, read_mnist_pickle, sorted_classes,
                                  unpickle_arrays)
from rnnkit.data.readers import (parse_ts, read_series_npz, read_series_table, read_series_ts,
                                 read_text_table)




# ---- LabelledData and class order -------------------------------------------------------------------

def test_class_order_is_numeric_for_integers_else_by_name():
    assert sorted_classes(["10", "2", "1", "2"]) == ["1", "2", "10"]
    assert sorted_classes(["pos", "neg", "Neutral"]) == ["Neutral", "neg", "pos"]
    assert sorted_classes(["2", "b", "10"]) == ["10", "2", "b"]


def test_labelled_data_repr_is_short():
    data = LabelledData("big", "series", ["a", "b"], np.zeros((1000, 50, 3), np.float32),
                        np.zeros(1000, np.int64), None, None, source="here")
    text = repr(data)
    assert len(text) < 200 and "train=1000" in text and "shape=(50, 3)" in text
    assert data.num_classes == 2 and data.num_features == 3


# ---- text tables ------------------------------------------------------------------------------------

def test_text_table_csv_and_tsv(tmp_path):
    csv_path = write(tmp_path / "reviews.csv",
                     'text,label\n"Great, really great.",pos\nDull.,neg\n\n"Line one\nline two", pos \n')
    data = read_text_table(csv_path)
    assert data.kind == "text" and data.name == "reviews.csv" and data.classes == ["neg", "pos"]
    assert data.train_x == ["Great, really great.", "Dull.", "Line one\nline two"]
    assert data.train_y.tolist() == [1, 0, 1] and data.train_y.dtype == np.int64
    assert data.test_x is None and data.test_y is None and data.source == str(csv_path)

    tsv_path = write(tmp_path / "tweets.tsv", "stars\tbody\n5\tlove it, truly\n1\tmeh\n10\tbest\n")
    data = read_text_table(tsv_path, text_column="body", label_column="stars")
    assert data.train_x == ["love it, truly", "meh", "best"]
    assert data.classes == ["1", "5", "10"] and data.train_y.tolist() == [1, 0, 2]


@pytest.mark.parametrize("content, expected", [
    ("", ["empty", "header"]),
    ("sentence,label\nhi,pos\n", ["no text column 'text'", "'sentence', 'label'"]),
    ("text,label\nok,pos\nonly text\n", ["row 3", "1 fields", "'label' is missing"]),
    ("text,label\nok,pos\nsplit, unquoted,neg\n", ["row 3", "3 fields", "unquoted"]),
    ("text,label\nok,pos\n   ,neg\n", ["row 3", "column 'text'", "empty"]),
    ("text,label\nok,pos\nfine,\n", ["row 3", "column 'label'", "empty"]),
    ("text,label\na,pos\nb,pos\nc,pos\n", ["at least two classes", "only 'pos' in 3 rows"]),
    ("text,label\n", ["no data rows"]),
])
def test_text_table_errors_name_file_row_and_column(tmp_path, content, expected):
    path = write(tmp_path / "bad.csv", content)
    message = error(read_text_table, path)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_text_table_wrong_encoding_is_named(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncaf\u00e9,a\nb,b\n".encode("latin-1"))
    message = error(read_text_table, path)
    assert str(path) in message and "utf-8" in message
    assert read_text_table(path, encoding="latin-1").train_x[0] == "caf\u00e9"
    bom = tmp_path / "excel.csv"
    bom.write_bytes(b"\xef\xbb\xbftext,label\nx,a\ny,b\n")      # Excel's UTF-8 byte order mark
    assert read_text_table(bom).train_x == ["x", "y"]


# ---- long-format series tables ----------------------------------------------------------------------

SERIES_CSV = """id,x,y,label
a,0.1,1.0,walk
a,0.2,2.0,walk
b,5,6,run
a,0.3,3.0,walk
c,7,8,walk
c,9,10,walk
"""


def test_series_table_groups_rows_by_id_in_file_order(tmp_path):
    data = read_series_table(write(tmp_path / "s.csv", SERIES_CSV))
    assert data.kind == "series" and data.classes == ["run", "walk"]
    assert [s.shape for s in data.train_x] == [(3, 2), (1, 2), (2, 2)]
    assert data.train_x[0].dtype == np.float32
    np.testing.assert_array_equal(data.train_x[0], np.float32([[0.1, 1], [0.2, 2], [0.3, 3]]))
    assert data.train_y.tolist() == [1, 0, 1] and data.num_features == 2
    only_y = read_series_table(tmp_path / "s.csv", feature_columns=["y"])
    assert only_y.train_x[2].tolist() == [[8.0], [10.0]]
    unlabelled = write(tmp_path / "u.csv", "id,x,y\na,1,2\nb,3,4\nb,5,6\n")   # sequences to classify
    data = read_series_table(unlabelled, label_column=None)
    assert [s.shape for s in data.train_x] == [(1, 2), (2, 2)] and data.classes == []


def test_series_table_sorts_by_time_column(tmp_path):
    path = write(tmp_path / "t.tsv", "seq\tt\tv\tcls\nq\t2\t20\t1\nq\t0\t0\t1\nq\t1\t10\t1\nr\t5\t1\t2\n")
    data = read_series_table(path, id_column="seq", time_column="t", label_column="cls")
    assert data.train_x[0][:, 0].tolist() == [0, 10, 20] and data.train_x[1].shape == (1, 1)
    assert data.classes == ["1", "2"]


@pytest.mark.parametrize("content, options, expected", [
    ("id,x,label\na,1,p\na,oops,p\nb,2,q\n", {}, ["row 3", "column 'x'", "'oops' is not a number"]),
    ("id,x,label\na,1,p\na,,p\nb,2,q\n", {}, ["row 3", "column 'x'", "empty"]),
    ("id,x,label\na,1,p\na,nan,p\nb,2,q\n", {}, ["row 3", "column 'x'", "not finite"]),
    ("id,x,label\na,1,p\nb,2,q\na,3,q\n", {}, ["row 4", "column 'label'", "'a'", "'q'", "'p' in row 2"]),
    ("id,x,label\na,1,p\na,2,p\na,3,p\nb,2,q\n", {"max_length": 2}, ["sequence 'a'", "3 steps", "max_length 2"]),
    ("id,x,label\na,1,p\n", {"feature_columns": ["z"]}, ["no feature column 'z'", "'id', 'x', 'label'"]),
    ("seq,x,label\na,1,p\n", {}, ["no id column 'id'"]),
    ("id,t,x,label\na,0,1,p\na,1,2,p\na,0,3,p\nb,0,1,q\n", {"time_column": "t"},
     ["row 4", "column 't'", "time 0 twice", "rows 2 and 4"]),
    ("id,x,label\na,1,p\nb,2,p\n", {}, ["at least two classes", "only 'p' in 2 sequences"]),
    ("id,x,label\na,1,p\nb,2\n", {}, ["row 3", "'label' is missing"]),
])
def test_series_table_errors_name_file_row_column_and_value(tmp_path, content, options, expected):
    path = write(tmp_path / "bad.csv", content)
    message = error(read_series_table, path, **options)
    assert str(path) in message
    for part in expected:
        assert part in message


# ---- .npz arrays ------------------------------------------------------------------------------------

def test_series_npz_fixed_and_variable_lengths(tmp_path):
    x = np.arange(24, dtype=np.float64).reshape(4, 3, 2)
    np.savez(tmp_path / "fixed.npz", x=x, y=np.array([1, 0, 1, 2]))
    data = read_series_npz(tmp_path / "fixed.npz")
    assert isinstance(data.train_x, np.ndarray) and data.train_x.dtype == np.float32
    assert data.train_x.shape == (4, 3, 2) and data.classes == ["0", "1", "2"]
    assert data.train_y.tolist() == [1, 0, 1, 2]

    x = np.zeros((3, 4), np.float32)
    x[0, 3] = np.nan                                     # padding past lengths[0] may hold anything
    np.savez(tmp_path / "var.npz", x=x, y=np.array(["up", "down", "up"]), lengths=np.array([3, 4, 1]))
    data = read_series_npz(tmp_path / "var.npz")
    assert [s.shape for s in data.train_x] == [(3, 1), (4, 1), (1, 1)]
    assert data.classes == ["down", "up"] and data.train_y.tolist() == [1, 0, 1]
    np.savez(tmp_path / "unlabelled.npz", x=np.ones((2, 5)))            # sequences to classify
    data = read_series_npz(tmp_path / "unlabelled.npz", labelled=False)
    assert data.train_x.shape == (2, 5, 1) and data.classes == [] and data.train_y.tolist() == [0, 0]


@pytest.mark.parametrize("arrays, options, expected", [
    ({"x": np.zeros((2, 3))}, {}, ["no array 'y'", "['x']"]),
    ({"x": np.zeros((2, 3)), "y": np.array([0, 1, 1])}, {}, ["y has shape (3,)", "(2,)"]),
    ({"x": np.zeros(3), "y": np.array([0, 1, 1])}, {}, ["x has shape (3,)"]),
    ({"x": np.array([[0, 1], [2, np.inf]]), "y": np.array([0, 1])}, {}, ["x[1, 1, 0]", "inf", "finite"]),
    ({"x": np.zeros((2, 3)), "y": np.array([0, 1]), "lengths": np.array([3, 4])}, {},
     ["lengths[1] = 4", "out of range 1..3"]),
    ({"x": np.zeros((2, 3)), "y": np.array([0, 1]), "lengths": np.array([0, 2])}, {}, ["lengths[0] = 0"]),
    ({"x": np.zeros((2, 3)), "y": np.array([5, 5])}, {}, ["at least two classes", "only '5'"]),
    ({"x": np.zeros((2, 3)), "y": np.array([0, 1]), "lengths": np.array([1, 3])}, {"max_length": 2},
     ["sequence 1 has 3 steps", "max_length 2"]),
    ({"x": np.zeros((2, 3)), "y": np.array([0.5, 1.0])}, {}, ["labels must be integers or strings"]),
])
def test_series_npz_errors(tmp_path, arrays, options, expected):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    message = error(read_series_npz, path, **options)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_series_npz_never_unpickles(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, x=np.zeros((2, 2)), y=np.array([{"a": 1}, {"b": 2}], dtype=object))
    assert "without unpickling" in error(read_series_npz, path)


# ---- the .ts format ---------------------------------------------------------------------------------

TS_UNIVARIATE = """# a comment
@problemName Toy
@timeStamps false
@univariate true
@classLabel true 1 2 10
@data
1.0,2.0,3.0:2
4,5,6:10
7,8:1
"""

TS_MULTIVARIATE = """@problemName Toy2
@univariate false
@classLabel true walk run
@data
0.1,0.2,0.3:1.1,1.2,1.3:walk
0.5,0.6:1.5,1.6:run
"""


def test_parse_ts_univariate_and_multivariate(tmp_path):
    series, labels = parse_ts(TS_UNIVARIATE, "toy.ts")
    assert labels == ["2", "10", "1"]
    assert [s.shape for s in series] == [(3, 1), (3, 1), (2, 1)] and series[0].dtype == np.float32
    assert series[1][:, 0].tolist() == [4, 5, 6]
    series, labels = parse_ts(TS_MULTIVARIATE, "toy2.ts")
    assert labels == ["walk", "run"] and series[0].shape == (3, 2)
    np.testing.assert_array_equal(series[1], np.float32([[0.5, 1.5], [0.6, 1.6]]))

    data = read_series_ts(write(tmp_path / "toy.ts", TS_UNIVARIATE))
    assert data.classes == ["1", "2", "10"] and data.train_y.tolist() == [1, 2, 0]
    assert isinstance(data.train_x, list)               # lengths differ
    equal = read_series_ts(write(tmp_path / "eq.ts", TS_UNIVARIATE.replace("7,8:1", "7,8,9:1")))
    assert isinstance(equal.train_x, np.ndarray) and equal.train_x.shape == (3, 3, 1)


@pytest.mark.parametrize("bad_line, expected", [
    ("1.0,?,3.0:2", ["line 10", "missing value '?'", "dimension 0, position 1"]),
    ("1.0,x,3.0:2", ["line 10", "'x' is not a number"]),
    ("1.0,2.0:3", ["line 10", "class label '3'"]),
    ("1.0:2.0:2", ["line 10", "2 dimensions", "@univariate true"]),
])
def test_parse_ts_errors_name_the_line(bad_line, expected):
    message = error(parse_ts, TS_UNIVARIATE + bad_line + "\n", "toy.ts")
    assert message.startswith("toy.ts line 10")
    for part in expected:
        assert part in message


def test_parse_ts_header_errors():
    assert "@classLabel" in error(parse_ts, "@problemName X\n@data\n1,2:a\n", "x.ts")
    assert "time-stamped" in error(parse_ts, "@timeStamps true\n@classLabel true a\n@data\n", "x.ts")
    assert "different lengths" in error(parse_ts, TS_MULTIVARIATE + "1,2:3:walk\n", "x.ts")
    assert "no series" in error(parse_ts, "@classLabel true a b\n@data\n", "x.ts")


# ---- DTW --------------------------------------------------------------------------------------------

def brute_force_dtw(x: list, y: list, window=None) -> float:
    """Textbook O(n m) DTW in pure Python: squared-difference cost, Sakoe-Chiba band widened to |n - m|."""
    n, m = len(x), len(y)
    band = None if window is None else max(window, abs(n - m))
    inf = float("inf")
    D = [[inf] * (m + 1) for _ in range(n + 1)]
    D[0][0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            if band is not None and abs(i - j) > band:
                continue
            cost = sum((p - q) ** 2 for p, q in zip(x[i - 1], y[j - 1]))
            D[i][j] = cost + min(D[i - 1][j], D[i][j - 1], D[i - 1][j - 1])
    return D[n][m]


@pytest.mark.parametrize("features", [1, 3])
@pytest.mark.parametrize("window", [None, 0, 1, 3])
def test_dtw_matches_brute_force_on_variable_lengths(features, window):
    rng = np.random.default_rng(features * 10 + (window or 7))
    queries = [rng.normal(size=(rng.integers(2, 10), features)) for _ in range(6)]
    refs = [rng.normal(size=(rng.integers(2, 10), features)) for _ in range(5)]
    expected = [[brute_force_dtw(q.tolist(), r.tolist(), window) for r in refs] for q in queries]
    np.testing.assert_allclose(dtw_distances(queries, refs, window), expected, rtol=1e-12)


def test_dtw_window_zero_is_squared_euclidean_and_1nn_accuracy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 12)), rng.normal(size=(3, 12))                 # (N, T): F = 1
    np.testing.assert_allclose(dtw_distances(a, b, window=0),
                               ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1), rtol=1e-12)
    assert (dtw_distances(a, b) <= dtw_distances(a, b, window=0) + 1e-12).all()
    # one bump vs two bumps, the test series shifted in time: DTW gets both right, Euclidean neither
    t = np.linspace(0, 1, 40)
    bump = lambda c: np.exp(-((t - c) / 0.05) ** 2)
    train_x, train_y = np.stack([bump(0.25), bump(0.25) + bump(0.75)]), np.array([0, 1])
    test_x, test_y = np.stack([bump(0.75), bump(0.15) + bump(0.6)]), np.array([0, 1])
    assert dtw_1nn_accuracy(train_x, train_y, test_x, test_y) == 1.0
    assert dtw_1nn_accuracy(train_x, train_y, test_x, test_y, window=0) == 0.0


# ---- the restricted unpickler and the MNIST pickle --------------------------------------------------

EVIL_PICKLE = b"cos\nsystem\n(S'echo hi'\ntR."


def test_unpickler_refuses_anything_but_numpy_arrays(capfd):
    message = error(unpickle_arrays, EVIL_PICKLE, "evil.pkl")
    assert "evil.pkl" in message and "os.system" in message
    assert "hi" not in capfd.readouterr().out
    builtin = pickle.dumps(print, protocol=4)                       # STACK_GLOBAL goes the same way
    assert "builtins.print" in error(unpickle_arrays, builtin, "b.pkl")
    assert "not a readable pickle" in error(unpickle_arrays, b"\x80\x02(", "cut.pkl")


def test_unpickler_loads_numpy_arrays_under_both_module_names():
    x, y = np.arange(6, dtype=np.float32).reshape(2, 3), np.array([3, 1], dtype=np.int64)
    data = pickle.dumps((x, y), protocol=3)
    for raw in (data, data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")):
        got_x, got_y = unpickle_arrays(raw, "ok.pkl")
        np.testing.assert_array_equal(got_x, x)
        np.testing.assert_array_equal(got_y, y)


def test_mnist_pickle_is_hashed_before_unpickling(monkeypatch):
    payload = gzip.compress(EVIL_PICKLE)
    monkeypatch.setattr(labelled, "unpickle_arrays", lambda *a: pytest.fail("unpickled unverified bytes"))
    message = error(read_mnist_pickle, payload, "mnist/data/mnist.pkl.gz")
    assert "sha256 mismatch" in message and labelled.MNIST_PICKLE_SHA256 in message
    monkeypatch.undo()
    good = hashlib.sha256(payload).hexdigest()                      # a matching hash still only allows arrays
    assert "os.system" in error(read_mnist_pickle, payload, "m.pkl.gz", sha256=good)


# ---- converters and the converted-array cache (fake archives, no network) ----------------------------

def test_rated_sentences_sign_labels_drop_zeros_and_unescape():
    text = "1\t2.5\tGood &amp; fun \r\n2\t0\tmeh\r\n3\t-0.1\tbad &lt;3\r\n"
    sentences, labels = labelled.parse_rated_sentences(text, "m.txt")
    assert sentences == ["Good & fun", "bad <3"] and labels == [1, 0]
    assert "m.txt line 2" in error(labelled.parse_rated_sentences, "1\t1\tok\r\n2\tbroken\r\n", "m.txt")
    assert "'x' is not a number" in error(labelled.parse_rated_sentences, "1\tx\tok\n", "m.txt")


def test_sentiment_archive_inside_the_sdist_is_verified(tmp_path):
    sdist = tmp_path / "vaderSentiment-3.3.2.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        info = tarfile.TarInfo(labelled.HUTTO_MEMBER)
        info.size = 3
        tf.addfile(info, io.BytesIO(b"bad"))
    message = error(labelled.build_sentiment, "tweets", sdist)
    assert "sha256 mismatch" in message and labelled.HUTTO_SHA256 in message


def test_digits_split_is_the_last_fifth_of_each_class(tmp_path):
    rows = [[d % 17] * 64 + [d] for d in range(10) for _ in range(10)]   # 10 images per digit
    rows[3][64] = 1                                                       # digit 0 now has 9, digit 1 11
    csv_gz = gzip.compress("\n".join(",".join(map(str, r)) for r in rows).encode())
    wheel = tmp_path / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(labelled.DIGITS_MEMBER, csv_gz)
    arrays = labelled.build_digits(wheel)
    assert arrays["train_x"].shape == (80, 8, 8) and arrays["test_x"].dtype == np.uint8
    assert np.bincount(arrays["test_y"]).tolist() == [2, 2] + [2] * 8
    assert arrays["test_y"][:2].tolist() == [0, 0]                       # the last two zeros, in file order
    assert np.bincount(arrays["train_y"]).tolist() == [7, 9] + [8] * 8
    rows[5][10] = 17
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(labelled.DIGITS_MEMBER, gzip.compress("\n".join(",".join(map(str, r)) for r in rows).encode()))
    assert "line 6" in error(labelled.build_digits, wheel)


def test_converted_arrays_are_cached_and_verified(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    arrays = {"classes": np.array(["neg", "pos"]), "train_x": np.array(["a", "bcd"]),
              "train_y": np.array([0, 1], dtype=np.int64)}
    pinned = arrays_sha256(arrays)
    builds = []

    def build():
        builds.append(1)
        return {k: v.copy() for k, v in arrays.items()}

    first = labelled._cached_arrays("toy", pinned, build)
    second = labelled._cached_arrays("toy", pinned, build)
    assert len(builds) == 1 and second["train_x"].tolist() == ["a", "bcd"]
    assert sorted(first) == sorted(second)
    (tmp_path / "labelled" / "toy.npz").write_bytes(b"torn")          # a corrupt cache is rebuilt
    labelled._cached_arrays("toy", pinned, build)
    assert len(builds) == 2
    message = error(labelled._cached_arrays, "other", "0" * 64, build)  # a converter change is caught
    assert pinned in message and "0" * 64 in message
    assert not (tmp_path / "labelled" / "other.npz").exists()


def test_arrays_digest_sees_values_dtypes_and_names():
    base = {"x": np.arange(4, dtype=np.int64)}
    assert arrays_sha256(base) == arrays_sha256({"x": np.arange(4, dtype=np.int64)})
    assert arrays_sha256(base) != arrays_sha256({"x": np.arange(4, dtype=np.int32)})
    assert arrays_sha256(base) != arrays_sha256({"y": np.arange(4, dtype=np.int64)})
    assert arrays_sha256(base) != arrays_sha256({"x": np.arange(4, dtype=np.int64).reshape(2, 2)})


def test_ucr_converter_on_a_fake_wheel(tmp_path):
    wheel = tmp_path / "aeon.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for part, body in (("TRAIN", "1,2,3:1\n4,5,6:2\n"), ("TEST", "7,8,9:2\n")):
            zf.writestr(f"aeon/datasets/data/GunPoint/GunPoint_{part}.ts",
                        "@univariate true\n@classLabel true 1 2\n@data\n" + body)
    arrays = labelled.build_ucr("gunpoint", wheel)
    assert arrays["train_x"].shape == (2, 3, 1) and arrays["test_y"].tolist() == [1]
    assert arrays["classes"].tolist() == ["1", "2"]


def test_fetch_passes_pip_args(tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        (Path(cmd[cmd.index("-d") + 1]) / "p-1.0-cp311-cp311-manylinux2014_x86_64.whl").write_bytes(b"w")

        class Done:
            returncode, stdout = 0, "Saved"
        return Done()

    monkeypatch.setattr(fetch.subprocess, "run", fake_run)
    pinned = fetch.PinnedPackage("p", "1.0", "p-1.0-cp311-cp311-manylinux2014_x86_64.whl",
                                 hashlib.sha256(b"w").hexdigest(), pip_args=("--platform", "manylinux2014_x86_64"))
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    assert pinned.fetch().read_bytes() == b"w"
    assert calls[0][calls[0].index("--platform") + 1] == "manylinux2014_x86_64" and "p==1.0" in calls[0]


def test_load_labelled_rejects_unknown_names():
    with pytest.raises(ValueError, match="known: mnist, digits"):
        load_labelled("cifar")


# ---- the bundled sets (fetches on first use) --------------------------------------------------------

@pytest.mark.slow
def test_bundled_labelled_sets_have_their_documented_counts():
    expected = {  # name: (kind, classes, train, valid, test, shape of one input)
        "mnist": ("series", [str(d) for d in range(10)], 50_000, 10_000, 10_000, (28, 28)),
        "digits": ("series", [str(d) for d in range(10)], 1_438, None, 359, (8, 8)),
        "movie-reviews": ("text", ["negative", "positive"], 10_568, None, None, None),
        "tweets": ("text", ["negative", "positive"], 4_196, None, None, None),
        "gunpoint": ("series", ["1", "2"], 50, None, 150, (150, 1)),
        "italy-power": ("series", ["1", "2"], 67, None, 1_029, (24, 1)),
    }
    assert set(expected) == set(LABELLED_SETS)
    sets = {}
    for name, (kind, classes, n_train, n_valid, n_test, shape) in expected.items():
        data = sets[name] = load_labelled(name)
        assert (data.kind, data.classes, len(data.train_x)) == (kind, classes, n_train), name
        assert (None if data.valid_x is None else len(data.valid_x)) == n_valid, name
        assert (None if data.test_x is None else len(data.test_x)) == n_test, name
        assert data.train_y.dtype == np.int64 and len(data.train_y) == n_train
        if kind == "series":
            assert data.train_x.shape[1:] == shape and data.train_x.dtype == np.float32
            if name in ("mnist", "digits"):
                assert data.train_x.min() == 0 and data.train_x.max() == 1
        else:
            assert isinstance(data.train_x[0], str)
    assert np.bincount(sets["mnist"].test_y)[1] == 1135
    assert int(sets["movie-reviews"].train_y.sum()) == 5_242 and int(sets["tweets"].train_y.sum()) == 2_897
    assert sets["tweets"].train_x[2].startswith("We were 17 deep last night & the love")
    assert np.bincount(sets["digits"].test_y).tolist() == [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]
    # the published 1-NN baselines are reproduced on the very same splits
    for name in ("gunpoint", "italy-power"):
        data = sets[name]
        args = (data.train_x, data.train_y, data.test_x, data.test_y)
        assert round(dtw_1nn_accuracy(*args), 3) == data.baseline["1nn_dtw_accuracy"], name
        assert round(dtw_1nn_accuracy(*args, window=0), 3) == data.baseline["1nn_euclidean_accuracy"], name
