"""Images with captions, for image captioning.

Three sources, all returned as `Captioned` (an image array and one or more reference captions per
image):

    read_captions(images_dir, captions_file, size)   the user's images and a captions file,
                              ``image_name<TAB>caption`` a line (Flickr8k's ``name.jpg#0`` too)
    generate_shapes(n, seed)  generated: one or two coloured shapes ("a red circle above a blue
                              square"); `shapes_splits` holds some (colour, shape) combinations out
                              of training to test compositional generalisation
    load_tuxpaint()           the ~800 captioned PNG stamps of Debian's ``tuxpaint-stamps-default``
                              package (/usr/share/tuxpaint/stamps), decoded once and cached

and the helpers around them:

    load_image(path, size)    one image file as a (3, size, size) float32 array in [0, 1]: transparent
                              parts composited on white, letterboxed onto a white square
    image_from_bytes(data, size)  the same for an image held in memory (an upload)
    load_images(paths, size)  many of them, optionally cached as .npz
    caption_tokens(text)      a caption's tokens (lower-cased words and punctuation, no final ".")

Shapes: N images, C channels (3: RGB), H = W = ``size`` pixels; rows run top to bottom.

Errors in the data are `DataError`s naming the file (and, in a captions file, the 1-based line and,
for undecodable bytes, the byte column within the line).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Sequence, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..files import atomic_write
from .errors import DataError, shown
from .fetch import cache_dir
from .splits import hash_split
from .text import decoded_lines, open_binary
from .vocab import tokenize

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class Captioned:
    """Images and their reference captions.

    ``images``: (N, 3, H, W) float32 in [0, 1]; ``captions[i]``: the one or more reference captions
    (display text; `caption_tokens` tokenizes one) of image i; ``names[i]``: where image i came from
    (a file name relative to its directory, or a generated id); ``tags``: one label per image where
    the source has one (the Tux Paint category; "seen"/"held_out" for generated shapes), else None.
    ``skipped`` counts the files a loader left out, by reason (not carried by `select`).
    """

    images: np.ndarray
    captions: list[list[str]]
    names: list[str]
    tags: list[str] | None = None
    skipped: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(f"Captioned: images must be (N, C, H, W), got shape {self.images.shape}")
        n = self.images.shape[0]
        if len(self.captions) != n:
            raise ValueError(f"Captioned: {n} images but {len(self.captions)} caption lists")
        if len(self.names) != n:
            raise ValueError(f"Captioned: {n} images but {len(self.names)} names")
        if self.tags is not None and len(self.tags) != n:
            raise ValueError(f"Captioned: {n} images but {len(self.tags)} tags")
        empty = [i for i, refs in enumerate(self.captions) if not refs]
        if empty:
            raise ValueError(f"Captioned: image {self.names[empty[0]]!r} has no caption")

    def __len__(self) -> int:
        return self.images.shape[0]

    def select(self, indices: Sequence[int]) -> "Captioned":
        """The images at ``indices`` (in that order) with their captions, names and tags."""
        idx = [int(i) for i in indices]
        return Captioned(self.images[np.asarray(idx, dtype=np.intp)], [list(self.captions[i]) for i in idx],
                         [self.names[i] for i in idx],
                         tags=None if self.tags is None else [self.tags[i] for i in idx])


def caption_tokens(text: str) -> list[str]:
    """A caption's tokens: `tokenize`'s lower-cased words, numbers and single punctuation marks, with
    a final full stop dropped ("A red circle." -> ["a", "red", "circle"])."""
    tokens = tokenize(text, lower=True)
    if tokens and tokens[-1] == ".":
        tokens.pop()
    return tokens


# ---- one image file ------------------------------------------------------------------------------------

# Larger images are refused before decoding (a "decompression bomb": a small file that decodes to
# gigabytes). rnnkit checks this itself instead of changing Pillow's global Image.MAX_IMAGE_PIXELS.
MAX_IMAGE_PIXELS = 64_000_000

_WHITE = (255, 255, 255)
# What a broken file can make Pillow raise while decoding (truncated data, a bad chunk, a corrupt
# zlib stream, a header that lies about its size).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error,
                  Image.DecompressionBombError)


def _on_white(im: Image.Image) -> Image.Image:
    """RGB; an image with an alpha channel or a transparent colour (RGBA, LA, PA, P or RGB/L with a
    tRNS chunk) is composited on white first, so transparent pixels become white."""
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, _WHITE + (255,))
        canvas.alpha_composite(rgba)
        return canvas.convert("RGB")
    return im.convert("RGB")


def _letterbox(im: Image.Image, size: int) -> Image.Image:
    """``im`` (RGB) scaled to fit a size × size square, keeping its aspect ratio, centred on white."""
    w, h = im.size
    scale = size / max(w, h)
    nw, nh = max(1, min(size, round(w * scale))), max(1, min(size, round(h * scale)))
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), Image.Resampling.LANCZOS, reducing_gap=3.0)
    square = Image.new("RGB", (size, size), _WHITE)
    square.paste(im, ((size - nw) // 2, (size - nh) // 2))
    return square


def _decode_pixels(fh: BinaryIO, size: int, name: str,
                   formats: Sequence[str] | None = None) -> np.ndarray:
    """(3, size, size) uint8 from an open binary stream, in one of Pillow's ``formats`` (None: any);
    errors are `DataError`s naming ``name``."""
    try:
        with Image.open(fh, formats=formats) as im:
            w, h = im.size
            if w * h > MAX_IMAGE_PIXELS:
                raise DataError(f"{name}: not a readable image ({w}×{h} pixels is more than the limit "
                                f"of {MAX_IMAGE_PIXELS:,}; rnnkit.data.images.MAX_IMAGE_PIXELS)")
            im.load()  # decode now: a truncated or corrupt file fails here, not later
            square = _letterbox(_on_white(im), size)
    except DataError:                  # the size limit's, above (a DataError is a ValueError)
        raise
    except UnidentifiedImageError:
        raise DataError(f"{name}: not a readable image (not in an image format Pillow knows)") from None
    except _DECODE_ERRORS as exc:
        reason = str(exc) or type(exc).__name__
        raise DataError(f"{name}: not a readable image ({reason})") from None
    return np.asarray(square, dtype=np.uint8).transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)


def _load_pixels(path: Path, size: int) -> np.ndarray:
    """(3, size, size) uint8: `load_image` before the division by 255."""
    with open_binary(path, "an image") as fh:   # DataError when missing, a directory, unreadable
        return _decode_pixels(fh, size, str(path))


def _to_float(pixels: np.ndarray) -> np.ndarray:
    return pixels.astype(np.float32) / np.float32(255.0)


def _check_size(size: int) -> None:
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size!r}")


def load_image(path: PathLike, size: int) -> np.ndarray:
    """One image file as a (3, size, size) float32 array in [0, 1] (RGB, rows top to bottom).

    Any format Pillow reads. Transparent parts (an alpha channel, or a palette/colour-key
    transparency as in Tux Paint's PNG stamps) are composited on a white background; the image is
    then scaled (Lanczos) to fit the square keeping its aspect ratio, and centred on white
    (letterboxing). Only the first frame of an animation is used. A missing file, a file that is not
    an image, a truncated or corrupt one, or one of more than `MAX_IMAGE_PIXELS` pixels raises a
    `DataError` naming the file (``"<path>: not a readable image (<reason>)"``).
    """
    _check_size(size)
    return _to_float(_load_pixels(Path(path), size))


def image_from_bytes(data: bytes, size: int, name: str = "image",
                     formats: Sequence[str] | None = None) -> np.ndarray:
    """`load_image` for an image already in memory (an upload): decoded from ``data`` alone, no
    file is read or written; only Pillow's ``formats`` (e.g. ``("PNG", "JPEG")``; None: any) are
    accepted; errors name ``name``."""
    _check_size(size)
    return _to_float(_decode_pixels(io.BytesIO(data), size, name, formats))


# ---- many image files, cached ------------------------------------------------------------------------------

CACHE_KIND = "captions"   # decoded images are cached under cache_dir() / CACHE_KIND
_CACHE_VERSION = "rnnkit-images-1"   # bump when the decoding (compositing, resampling) changes


def images_cache_key(paths: Sequence[Path], size: int) -> str:
    """sha256 over the image size and, for each file in order, its absolute path, byte size and
    modification time (ns): any added, removed, renamed, rewritten or touched file changes it."""
    digest = hashlib.sha256(f"{_CACHE_VERSION}\nsize={size}\n".encode())
    for path in paths:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise DataError(f"no such image file: {path}") from None
        entry = f"{os.path.abspath(path)}\x00{st.st_size}\x00{st.st_mtime_ns}\n"
        digest.update(entry.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _cache_path(paths: Sequence[Path], size: int) -> Path:
    return cache_dir() / CACHE_KIND / f"images-{size}px-{images_cache_key(paths, size)[:32]}.npz"


def _read_cache(path: Path, files: np.ndarray, size: int) -> np.ndarray | None:
    """The cached uint8 pixels when ``path`` holds them for exactly ``files``, else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            pixels, cached_files = npz["pixels"], npz["files"]
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile):
        return None  # torn or foreign: rebuilt
    if (pixels.dtype != np.uint8 or pixels.shape != (len(files), 3, size, size)
            or cached_files.shape != files.shape or not np.array_equal(cached_files, files)):
        return None
    return pixels


def _write_cache(path: Path, pixels: np.ndarray, files: np.ndarray) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a temp name
            np.savez(fh, pixels=pixels, files=files)
    try:
        atomic_write(path, write)
    except OSError as exc:  # a read-only or full cache is not fatal: the images are in memory
        print(f"rnnkit: could not cache decoded images at {path}: {exc}", file=sys.stderr)


def load_images(paths: Sequence[PathLike], size: int, cache: bool = False) -> np.ndarray:
    """The images at ``paths`` as one (N, 3, size, size) float32 array in [0, 1] (`load_image` each).

    With ``cache``, the decoded pixels are kept (uint8, so exactly what decoding gives) in
    ``cache_dir()/captions/images-<size>px-<key>.npz``, the key being `images_cache_key` (the file
    list, each file's size and mtime, and ``size``): a second call on unchanged files only reads that
    file. Stale cache files are not deleted; removing the directory is always safe.
    """
    _check_size(size)
    paths = [Path(p) for p in paths]
    files = np.array([os.path.abspath(p) for p in paths], dtype=str).reshape(len(paths))
    target = _cache_path(paths, size) if cache else None
    pixels = _read_cache(target, files, size) if target is not None else None
    if pixels is None:
        pixels = np.empty((len(paths), 3, size, size), dtype=np.uint8)   # (N, 3, H, W)
        for i, path in enumerate(paths):
            pixels[i] = _load_pixels(path, size)
        if target is not None:
            _write_cache(target, pixels, files)
    return _to_float(pixels)


# ---- the user's captions file ------------------------------------------------------------------------------

_CAPTION_NUMBER = re.compile(r"#\d+$")   # Flickr8k: "1000268201_693b08cb0e.jpg#0"
_NAME_SHOWN = 300   # characters of an image name (a relative path) quoted in an error message


def _is_file(path: Path) -> bool:
    """``path.is_file()``, and False for a name the system cannot even look up (too long)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _outside(name: str) -> bool:
    """Whether an image name could leave the images directory: absolute (also "C:..." or a leading
    backslash) or with a ".." component (with "/" or "\\" as separator)."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return True
    return ".." in PurePosixPath(name.replace("\\", "/")).parts


def read_captions(images_dir: PathLike, captions_file: PathLike, size: int, encoding: str = "utf-8",
                  cache: bool = False) -> Captioned:
    """The user's captioned images: ``captions_file`` has one caption a line, ``image_name<TAB>caption``,
    the name relative to ``images_dir`` (subfolders allowed: ``birds/owl.png``).

    Flickr8k's ``name.jpg#k<TAB>caption`` is accepted too: a final ``#<digits>`` (the caption's number)
    is dropped from the name. Several lines for the same image give it several reference captions, in
    file order; images come in order of their first line. Both sides are stripped and runs of
    whitespace in a caption collapsed to one space; blank lines are ignored; CRLF line ends and a
    UTF-8 BOM are accepted. Each image is read once with `load_image` (letterboxed to ``size``; with
    ``cache``, through `load_images`' cache).

    A line without a tab, with an empty image name or an empty caption (no word in it), a name that
    leaves ``images_dir`` (absolute, or with ``..``), a name not found there, or bytes that are not
    valid ``encoding`` raise a `DataError` naming the file and the 1-based line; an image that cannot
    be read raises one naming the image. A file without any caption is a `DataError` too.
    """
    _check_size(size)
    images_dir, captions_file = Path(images_dir), Path(captions_file)
    if not images_dir.is_dir():
        raise DataError(f"no such directory: {images_dir} (the images directory)")
    refs: dict[str, list[str]] = {}
    for lineno, text in decoded_lines(captions_file, encoding, "a captions file"):
        if isinstance(text, DataError):
            raise text
        if not text.strip():
            continue
        where = f"{captions_file}, line {lineno}"
        if "\t" not in text:
            raise DataError(f"{where}: no tab between image name and caption: {shown(text.strip())}")
        name, caption = text.split("\t", 1)
        name = _CAPTION_NUMBER.sub("", name.strip())
        caption = " ".join(caption.split())
        if not name:
            raise DataError(f"{where}: no image name before the tab")
        if not caption_tokens(caption):
            quoted = f": {shown(caption)}" if caption else ""
            raise DataError(f"{where}: no caption after the tab{quoted}")
        if _outside(name):
            raise DataError(f"{where}: image name {shown(name, _NAME_SHOWN)} is outside the images "
                            f"directory (names must be relative to {images_dir}, without '..')")
        if name not in refs:
            if not _is_file(images_dir / name):
                raise DataError(f"{where}: image {shown(name, _NAME_SHOWN)} not found in {images_dir}")
            refs[name] = []
        refs[name].append(caption)
    if not refs:
        raise DataError(f"{captions_file}: no captions (expected 'image_name<TAB>caption' a line)")
    names = list(refs)
    images = load_images([images_dir / name for name in names], size, cache=cache)
    return Captioned(images, [refs[name] for name in names], names)


# ---- generated shapes ---------------------------------------------------------------------------------------

SHAPE_COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.12, 0.12),
    "green": (0.12, 0.62, 0.18),
    "blue": (0.15, 0.25, 0.88),
    "yellow": (0.95, 0.80, 0.10),
}
SHAPE_KINDS = ("circle", "square", "triangle", "cross")
SHAPE_RELATIONS = ("above", "left of")
SHAPE_COMBOS: tuple[tuple[str, str], ...] = tuple((c, s) for c in SHAPE_COLOURS for s in SHAPE_KINDS)
# Never drawn in training or validation images; every colour and every shape still appears there with
# other partners, so naming a held-out object needs only known words in a new combination.
SHAPES_HELD_OUT: tuple[tuple[str, str], ...] = (("green", "triangle"), ("yellow", "circle"),
                                                ("red", "cross"))
SHAPES_TRAIN: tuple[tuple[str, str], ...] = tuple(c for c in SHAPE_COMBOS if c not in SHAPES_HELD_OUT)

SHAPES_ONE_FRACTION = 0.25   # of generated images show a single shape; the others two
_SUPERSAMPLE = 3             # sub-pixels per pixel side for anti-aliased edges
_NOISE = 0.03                # standard deviation of the per-pixel Gaussian noise


def _coverage(kind: str, cx: float, cy: float, r: float, size: int) -> np.ndarray:
    """(size, size) in [0, 1]: the fraction of each pixel inside the shape (centre cx, cy and
    half-extent r, in pixels; a pixel's sub-samples are averaged)."""
    s = _SUPERSAMPLE
    t = (np.arange(size * s, dtype=np.float64) + 0.5) / s
    y, x = t[:, None], t[None, :]
    dx, dy = x - cx, y - cy
    if kind == "circle":
        inside = dx * dx + dy * dy <= r * r
    elif kind == "square":
        h = 0.9 * r                                   # about the circle's area
        inside = (np.abs(dx) <= h) & (np.abs(dy) <= h)
    elif kind == "triangle":                          # pointing up, apex at cy - r, base at cy + r
        r = 1.15 * r
        inside = (dy <= r) & (np.abs(dx) <= (dy + r) / 2.0)
    elif kind == "cross":                             # a plus sign
        a = 0.38 * r
        inside = ((np.abs(dx) <= r) & (np.abs(dy) <= a)) | ((np.abs(dy) <= r) & (np.abs(dx) <= a))
    else:
        raise ValueError(f"unknown shape {kind!r}; known: {', '.join(SHAPE_KINDS)}")
    return inside.reshape(size, s, size, s).mean(axis=(1, 3))


def _draw(objects: list[tuple[str, str, float, float, float]], size: int,
          rng: np.random.Generator) -> np.ndarray:
    """(3, size, size) float32: a light grey-white background, the objects (colour, shape, cx, cy, r;
    colours jittered a little), Gaussian noise, clipped to [0, 1]."""
    image = np.full((3, size, size), 1.0 - rng.uniform(0.0, 0.08), dtype=np.float64)
    for colour, kind, cx, cy, r in objects:
        rgb = np.clip(np.array(SHAPE_COLOURS[colour]) + rng.uniform(-0.05, 0.05, 3), 0.0, 1.0)
        cover = _coverage(kind, cx, cy, r, size)[None]              # (1, H, W)
        image = image * (1.0 - cover) + rgb[:, None, None] * cover
    image += rng.normal(0.0, _NOISE, image.shape)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _phrase(colour: str, kind: str) -> str:
    return f"a {colour} {kind}"


def _shape_example(rng: np.random.Generator, size: int, combos: Sequence[tuple[str, str]],
                   must: Sequence[tuple[str, str]] | None = None
                   ) -> tuple[np.ndarray, str, list[tuple[str, str]]]:
    """One (image, caption, its (colour, shape) objects). Objects are drawn from ``combos``; with
    ``must``, one of the objects (either, at random) is drawn from ``must`` instead.

    Geometry, in units of ``size``: half-extents 0.10–0.17; one shape: centre 0.5 ± 0.15 on each axis.
    Two shapes, "X above Y": X's centre row in 0.20–0.30, Y's in 0.70–0.80, columns each 0.5 ± 0.15,
    so the vertical gap (≥ 0.40) always exceeds the horizontal offset (≤ 0.30) and the shapes never
    touch; "X left of Y" is the same with rows and columns swapped.
    """
    n_objects = 1 if rng.random() < SHAPES_ONE_FRACTION else 2
    slot = int(rng.integers(n_objects)) if must else -1
    picked: list[tuple[str, str]] = []
    for k in range(n_objects):
        pool = [c for c in (must if k == slot else combos) if c not in picked]
        picked.append(pool[int(rng.integers(len(pool)))])
    radii = rng.uniform(0.10, 0.17, n_objects) * size
    if n_objects == 1:
        cx, cy = rng.uniform(0.35, 0.65, 2) * size
        objects = [(picked[0][0], picked[0][1], cx, cy, radii[0])]
        caption = _phrase(*picked[0])
    else:
        relation = SHAPE_RELATIONS[int(rng.integers(len(SHAPE_RELATIONS)))]
        along = np.array([rng.uniform(0.20, 0.30), rng.uniform(0.70, 0.80)]) * size   # first, second
        across = rng.uniform(0.35, 0.65, 2) * size
        if relation == "above":      # the first-mentioned shape is the upper one
            centres = [(across[0], along[0]), (across[1], along[1])]
        else:                        # "left of": the first-mentioned shape is the left one
            centres = [(along[0], across[0]), (along[1], across[1])]
        objects = [(c, s, x, y, r) for (c, s), (x, y), r in zip(picked, centres, radii)]
        caption = f"{_phrase(*picked[0])} {relation} {_phrase(*picked[1])}"
    return _draw(objects, size, rng), caption, picked


def _check_combos(combos: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    combos = [tuple(c) for c in combos]
    if len(combos) < 2:
        raise ValueError("give at least two (colour, shape) combinations (two-shape images need two)")
    unknown = [c for c in combos if c not in SHAPE_COMBOS]
    if unknown:
        raise ValueError(f"unknown (colour, shape) combination {unknown[0]!r}; colours: "
                         f"{', '.join(SHAPE_COLOURS)}; shapes: {', '.join(SHAPE_KINDS)}")
    return list(dict.fromkeys(combos))  # type: ignore[arg-type]


def _tag(objects: list[tuple[str, str]]) -> str:
    return "held_out" if any(o in SHAPES_HELD_OUT for o in objects) else "seen"


def _shapes(n: int, rng: np.random.Generator, size: int, combos: Sequence[tuple[str, str]],
            must: Sequence[tuple[str, str]] | None, prefix: str) -> Captioned:
    images = np.empty((n, 3, size, size), dtype=np.float32)   # (N, 3, H, W)
    captions: list[list[str]] = []
    tags: list[str] = []
    for i in range(n):
        images[i], caption, objects = _shape_example(rng, size, combos, must)
        captions.append([caption])
        tags.append(_tag(objects))
    return Captioned(images, captions, [f"{prefix}-{i}" for i in range(n)], tags=tags)


def generate_shapes(n: int, seed: int, size: int = 32,
                    combos: Sequence[tuple[str, str]] | None = None) -> Captioned:
    """``n`` generated images of one or two coloured shapes, the same for the same seed
    (``np.random.default_rng(seed)``), each with its one caption.

    Colours `SHAPE_COLOURS` (red, green, blue, yellow), shapes `SHAPE_KINDS` (circle, square,
    triangle, cross); objects are drawn uniformly from ``combos`` (default: `SHAPES_TRAIN`, i.e. no
    `SHAPES_HELD_OUT` combination), the two of an image distinct. A quarter of the images show one
    shape ("a red circle"), the others two in a relation, each relation half the time:
    "a red circle above a blue square" (the first-mentioned shape is the upper one) or
    "a red circle left of a blue square" (the first-mentioned shape is the left one). "below" and
    "right of" are never used, so each image has exactly one true caption. Position, size and colour
    are jittered and the pixels noisy (see `_shape_example`). ``tags``: "held_out" when an image
    shows a held-out combination, else "seen"; ``names``: "shapes-<i>".
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    _check_size(size)
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels for shapes, got {size}")
    pool = _check_combos(SHAPES_TRAIN if combos is None else combos)
    return _shapes(n, np.random.default_rng(seed), size, pool, None, "shapes")


def _concat(parts: Sequence[Captioned]) -> Captioned:
    return Captioned(np.concatenate([p.images for p in parts]), [c for p in parts for c in p.captions],
                     [m for p in parts for m in p.names], tags=[t for p in parts for t in (p.tags or [])])


def shapes_splits(n_train: int = 8000, n_valid: int = 500, n_test: int = 1000, seed: int = 0,
                  size: int = 32) -> dict[str, Captioned]:
    """The shapes task's splits. ``train``: `generate_shapes(n_train, seed)`; ``valid``: ``n_valid``
    more images of the training combinations; ``test``: ``n_test`` images, the first half ("seen")
    of training combinations only, the second half ("held_out", ``n_test // 2``) each showing at
    least one `SHAPES_HELD_OUT` combination (its partner, if any, from all combinations). valid and
    test come from their own random streams, (seed, 1) and (seed, 2), so they do not change with
    ``n_train``. Names are unique across the splits."""
    for what, n in (("n_train", n_train), ("n_valid", n_valid), ("n_test", n_test)):
        if n < 0:
            raise ValueError(f"{what} must be >= 0, got {n}")
    train = generate_shapes(n_train, seed, size)
    train.names = [f"train-{i}" for i in range(n_train)]
    valid = _shapes(n_valid, np.random.default_rng((seed, 1)), size, SHAPES_TRAIN, None, "valid")
    rng = np.random.default_rng((seed, 2))
    n_held = n_test // 2
    seen = _shapes(n_test - n_held, rng, size, SHAPES_TRAIN, None, "test")
    held = _shapes(n_held, rng, size, SHAPE_COMBOS, SHAPES_HELD_OUT, "test")
    test = _concat([seen, held])
    test.names = [f"test-{i}" for i in range(n_test)]
    return {"train": train, "valid": valid, "test": test}


# ---- Tux Paint stamps -------------------------------------------------------------------------------------

TUXPAINT_DIR = Path("/usr/share/tuxpaint/stamps")
TUXPAINT_INSTALL = "apt-get install tuxpaint-stamps-default"


def _tuxpaint_caption(txt: Path) -> str:
    """The English description: the first line of a stamp's .txt (later lines are translations,
    ``fr.utf8=...``), whitespace collapsed; "" when the file or its first line is empty."""
    with contextlib.closing(decoded_lines(txt, "utf-8", "a Tux Paint stamp description")) as lines:
        for _, text in lines:
            if isinstance(text, DataError):
                raise text
            return " ".join(text.split())
    return ""


def load_tuxpaint(root: PathLike = TUXPAINT_DIR, size: int = 64, cache: bool = True) -> Captioned:
    """The Tux Paint stamps (Debian's ``tuxpaint-stamps-default``) under ``root``: every
    ``<name>.png`` with a ``<name>.txt`` beside it, captioned with the .txt's first line (its English
    description; the other lines are translations), sorted by path.

    ``names``: the PNG's path relative to ``root`` ("animals/birds/penguin.png"); ``tags``: its
    top-level folder ("animals", "vehicles", ...; "other" for a PNG directly in ``root``). Left out and
    counted in ``skipped``: "svg_only" (a stamp drawn only as SVG: rnnkit does not rasterise SVG; an
    SVG beside a PNG of the same stamp is not counted), "no_caption" (a PNG without .txt: in the
    package these are the ``*_mirror.png`` mirrored variants of another stamp), "empty_caption"
    (a .txt whose first line is blank). Images are letterboxed to ``size`` on white (`load_image`);
    with ``cache`` (default) the decoded pixels are cached (`load_images`), so only the first load
    decodes the ~800 PNGs. A .txt with bytes that are not UTF-8, or a PNG that cannot be read, raises
    a `DataError` naming the file.

    tuxpaint-stamps-default 2022.06.04-1 gives 785 captioned PNGs in 16 categories, and skips 165
    SVG-only stamps and 11 mirror images.
    """
    _check_size(size)
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} not found: the Tux Paint stamps come from Debian's "
                        f"tuxpaint-stamps-default package; install it with: sudo {TUXPAINT_INSTALL}")
    skipped = {"svg_only": 0, "no_caption": 0, "empty_caption": 0}
    pngs: list[Path] = []
    captions: list[list[str]] = []
    for path in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix()):
        suffix = path.suffix.lower()
        if suffix == ".svg" and path.is_file():
            if not path.with_suffix(".png").is_file():
                skipped["svg_only"] += 1
            continue
        if suffix != ".png" or not path.is_file():
            continue
        txt = path.with_suffix(".txt")
        if not txt.is_file():
            skipped["no_caption"] += 1
            continue
        caption = _tuxpaint_caption(txt)
        if not caption_tokens(caption):
            skipped["empty_caption"] += 1
            continue
        pngs.append(path)
        captions.append([caption])
    if not pngs:
        raise DataError(f"{root}: no captioned PNG stamps (<name>.png with <name>.txt beside it)")
    names = [p.relative_to(root).as_posix() for p in pngs]
    tags = [n.split("/", 1)[0] if "/" in n else "other" for n in names]
    if cache and not _cache_path(pngs, size).is_file():
        print(f"rnnkit: decoding {len(pngs)} Tux Paint stamps (cached afterwards) ...", file=sys.stderr,
              flush=True)
    images = load_images(pngs, size, cache=cache)
    return Captioned(images, captions, names, tags=tags, skipped=skipped)


def split_captioned(data: Captioned, valid_fraction: float = 0.1, test_fraction: float = 0.1,
                    seed: int = 0) -> dict[str, Captioned]:
    """``{"train", "valid", "test"}`` fixed by a hash of each image's first caption (`hash_split`).
    Images with the same caption always land together (Tux Paint's letters "The letter a." come in
    four drawings), so a test caption is never a training caption."""
    parts = hash_split([refs[0] for refs in data.captions], valid_fraction, test_fraction,
                       "captioned images", seed)
    return {name: data.select(idx) for name, idx in parts.items()}


def tuxpaint_splits(seed: int = 0, size: int = 64, root: PathLike = TUXPAINT_DIR) -> dict[str, Captioned]:
    """`load_tuxpaint` split 80/10/10 into train/valid/test by `split_captioned` (a hash of each
    caption and ``seed``: fixed for a seed, and the same caption never in two splits)."""
    return split_captioned(load_tuxpaint(root, size), valid_fraction=0.1, test_fraction=0.1, seed=seed)
