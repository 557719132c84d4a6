"""The image-captioning data layer (rnnkit.data.images): loading and letterboxing images, the user's
captions file, the generated shapes task and the Tux Paint stamps loader on a small fake tree.

Every image is a tiny PNG written into tmp_path with Pillow; the cache goes to tmp_path too
(RNNKIT_CACHE); nothing reads /usr/share.
"""
from __future__ import annotations

import io
import os
from collections import Counter

import numpy as np
import pytest
from PIL import Image

import rnnkit.data.images as images_module
from helpers import error, write
from rnnkit.data.images import (SHAPE_COLOURS, SHAPE_COMBOS, SHAPE_KINDS, SHAPES_HELD_OUT, SHAPES_TRAIN,
                                TUXPAINT_INSTALL, Captioned, caption_tokens, generate_shapes,
                                load_image, load_images, load_tuxpaint, read_captions, shapes_splits,
                                split_captioned, tuxpaint_splits)

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))


def png(path, mode, size, colour, **save):
    """A solid ``mode`` image of ``size`` (w, h) saved as PNG at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path, "PNG", **save)
    return path


def rgb(image: np.ndarray, row: int, col: int) -> tuple[int, ...]:
    """The pixel of a (3, H, W) array in [0, 1] as 0..255 integers."""
    return tuple(int(round(v * 255)) for v in image[:, row, col])


# ---- Captioned and caption_tokens --------------------------------------------------------------------

def test_captioned_checks_lengths_and_selects():
    images = np.arange(3 * 3 * 2 * 2, dtype=np.float32).reshape(3, 3, 2, 2)
    with pytest.raises(ValueError, match="3 images but 2 caption lists"):
        Captioned(images, [["a"], ["b"]], ["x", "y", "z"])
    with pytest.raises(ValueError, match="3 images but 1 names"):
        Captioned(images, [["a"], ["b"], ["c"]], ["x"])
    with pytest.raises(ValueError, match="3 images but 2 tags"):
        Captioned(images, [["a"], ["b"], ["c"]], ["x", "y", "z"], tags=["p", "q"])
    with pytest.raises(ValueError, match="image 'y' has no caption"):
        Captioned(images, [["a"], [], ["c"]], ["x", "y", "z"])
    with pytest.raises(ValueError, match=r"must be \(N, C, H, W\)"):
        Captioned(images[0], [["a"]] * 3, ["x", "y", "z"])
    data = Captioned(images, [["a"], ["b", "bb"], ["c"]], ["x", "y", "z"], tags=["p", "q", "r"],
                     skipped={"svg_only": 2})
    assert len(data) == 3
    picked = data.select([2, 1])
    assert picked.captions == [["c"], ["b", "bb"]] and picked.names == ["z", "y"] and picked.tags == ["r", "q"]
    assert np.array_equal(picked.images, images[[2, 1]]) and picked.skipped == {}
    assert data.select([]).images.shape == (0, 3, 2, 2)


def test_caption_tokens_lowercase_and_drop_the_final_full_stop():
    assert caption_tokens("A red circle.") == ["a", "red", "circle"]
    assert caption_tokens("A US 1 cent piece ($.01) called a penny.") == \
        ["a", "us", "1", "cent", "piece", "(", "$", ".", "01", ")", "called", "a", "penny"]
    assert caption_tokens("Is it a dog?") == ["is", "it", "a", "dog", "?"]
    assert caption_tokens(".") == [] and caption_tokens("") == []


# ---- load_image ---------------------------------------------------------------------------------------------

def test_load_image_composites_alpha_on_white_and_letterboxes(tmp_path):
    im = Image.new("RGBA", (8, 4), (0, 0, 255, 0))           # transparent blue: must become white
    im.paste((255, 0, 0, 255), (0, 0, 4, 4))                  # opaque red left half
    im.putpixel((5, 1), (0, 0, 0, 128))                       # half-transparent black: grey
    im.save(tmp_path / "stamp.png")
    out = load_image(tmp_path / "stamp.png", 8)
    assert out.shape == (3, 8, 8) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    # 8 x 4 fits 8 x 8 unscaled, centred: rows 0-1 and 6-7 are the white letterbox bands.
    for row in range(8):
        for col in range(8):
            if 2 <= row <= 5 and col <= 3:
                want = RED
            elif (row, col) == (3, 5):
                want = (127, 127, 127)
            else:
                want = WHITE
            assert rgb(out, row, col) == want, (row, col)


def test_load_image_palette_and_grey_alpha_transparency(tmp_path):
    pal = Image.new("P", (2, 2), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)         # 0: black (transparent), 1: red
    pal.putpixel((1, 1), 1)
    pal.save(tmp_path / "pal.png", transparency=0)
    out = load_image(tmp_path / "pal.png", 2)
    assert [rgb(out, r, c) for r in range(2) for c in range(2)] == [WHITE, WHITE, WHITE, RED]
    la = Image.new("LA", (2, 2), (0, 0))
    la.putpixel((0, 0), (0, 255))                             # opaque black, the rest transparent black
    la.save(tmp_path / "la.png")
    out = load_image(tmp_path / "la.png", 2)
    assert [rgb(out, r, c) for r in range(2) for c in range(2)] == [(0, 0, 0), WHITE, WHITE, WHITE]
    png(tmp_path / "key.png", "RGB", (2, 2), GREEN, transparency=GREEN)   # a tRNS colour key
    assert np.all(load_image(tmp_path / "key.png", 2) == 1.0)


def test_load_image_scales_keeping_the_aspect_ratio(tmp_path):
    out = load_image(png(tmp_path / "wide.png", "RGB", (20, 10), BLUE), 10)   # -> 10 x 5 at rows 2..6
    blue_rows = [r for r in range(10) if np.allclose(out[:, r, :], np.array(BLUE)[:, None] / 255, atol=2 / 255)]
    assert blue_rows == [2, 3, 4, 5, 6]
    assert np.all(out[:, :2] == 1.0) and np.all(out[:, 7:] == 1.0)
    out = load_image(png(tmp_path / "tall.png", "L", (10, 20), 0), 10)       # grey: all channels equal
    black_cols = [c for c in range(10) if np.all(out[:, :, c] <= 2 / 255)]
    assert black_cols == [2, 3, 4, 5, 6] and np.all(out[:, :, :2] == 1.0) and np.all(out[:, :, 7:] == 1.0)
    out = load_image(png(tmp_path / "tiny.png", "RGB", (2, 1), RED), 4)       # enlarged to 4 x 2
    assert np.allclose(out[:, 1:3, :], np.array(RED)[:, None, None] / 255, atol=2 / 255)
    assert np.all(out[:, 0] == 1.0) and np.all(out[:, 3] == 1.0)
    with pytest.raises(ValueError, match="size must be a positive number of pixels"):
        load_image(tmp_path / "tiny.png", 0)


def test_load_image_errors(tmp_path, monkeypatch):
    missing = tmp_path / "nope.png"
    assert error(load_image, missing, 8) == f"no such file: {missing}"
    assert error(load_image, tmp_path, 8) == f"is a directory, not an image: {tmp_path}"
    text = write(tmp_path / "notes.png", "this is not a picture\n")
    assert error(load_image, text, 8) == f"{text}: not a readable image (not in an image format Pillow knows)"
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(buf, "PNG")
    cut = write(tmp_path / "cut.png", buf.getvalue()[:len(buf.getvalue()) // 2])
    assert error(load_image, cut, 8) == f"{cut}: not a readable image (image file is truncated)"
    big = png(tmp_path / "big.png", "RGB", (6, 5), RED)
    monkeypatch.setattr(images_module, "MAX_IMAGE_PIXELS", 29)
    assert error(load_image, big, 8) == (f"{big}: not a readable image (6×5 pixels is more than the limit "
                                         f"of 29; rnnkit.data.images.MAX_IMAGE_PIXELS)")


def test_load_images_caches_the_decoded_pixels(tmp_path, monkeypatch):
    paths = [png(tmp_path / "a.png", "RGB", (3, 3), RED), png(tmp_path / "b.png", "RGBA", (4, 2), (0, 0, 255, 255))]
    plain = load_images(paths, 4)
    assert not (tmp_path / "cache").exists()                  # no cache unless asked
    first = load_images(paths, 4, cache=True)
    cached = list((tmp_path / "cache" / "captions").glob("images-4px-*.npz"))
    assert len(cached) == 1 and np.array_equal(first, plain)

    def no_decoding(path, size):
        raise AssertionError(f"decoded {path} again")
    real = images_module._load_pixels
    monkeypatch.setattr(images_module, "_load_pixels", no_decoding)
    assert np.array_equal(load_images(paths, 4, cache=True), plain)     # read back from the cache
    with pytest.raises(AssertionError, match="decoded"):
        load_images(paths, 5, cache=True)                               # another size: another key
    png(tmp_path / "a.png", "RGB", (3, 3), GREEN)
    os.utime(tmp_path / "a.png", ns=(1, 1))                             # a changed file: another key
    with pytest.raises(AssertionError, match="decoded"):
        load_images(paths, 4, cache=True)
    monkeypatch.setattr(images_module, "_load_pixels", real)
    assert rgb(load_images(paths, 4, cache=True)[0], 1, 1) == GREEN
    assert len(list((tmp_path / "cache" / "captions").glob("*.npz"))) == 2


# ---- read_captions ------------------------------------------------------------------------------------------

def _image_dir(tmp_path):
    folder = tmp_path / "imgs"
    png(folder / "cat.png", "RGB", (4, 4), RED)
    png(folder / "1000268201_693b08cb0e.jpg", "RGB", (4, 2), BLUE)   # a PNG named .jpg: Pillow sniffs
    png(folder / "birds" / "owl.png", "RGBA", (2, 4), (0, 255, 0, 255))
    return folder


def test_read_captions_flickr_style_and_several_references(tmp_path):
    folder = _image_dir(tmp_path)
    captions = write(tmp_path / "captions.txt",
                     b"\xef\xbb\xbf1000268201_693b08cb0e.jpg#0\tA child in a pink dress .\r\n"
                     b"1000268201_693b08cb0e.jpg#1\t  A girl   going into a wooden building .\r\n"
                     b"\r\n"
                     b"cat.png\tA red cat.\n"
                     b"   \n"
                     b"birds/owl.png\tAn owl.\n"
                     + "cat.png\tA cat on a caf\u00e9 table\tstill the caption\n".encode("utf-8"))
    data = read_captions(folder, captions, 4)
    assert data.names == ["1000268201_693b08cb0e.jpg", "cat.png", "birds/owl.png"]
    assert data.captions == [["A child in a pink dress .", "A girl going into a wooden building ."],
                             ["A red cat.", "A cat on a caf\u00e9 table still the caption"],
                             ["An owl."]]
    assert data.tags is None and data.images.shape == (3, 3, 4, 4)
    assert rgb(data.images[0], 1, 0) == BLUE and rgb(data.images[0], 0, 0) == WHITE    # letterboxed
    assert rgb(data.images[1], 0, 0) == RED and rgb(data.images[2], 0, 1) == GREEN
    assert caption_tokens(data.captions[0][0]) == ["a", "child", "in", "a", "pink", "dress"]


@pytest.mark.parametrize("line, problem", [
    ("cat.png A cat without a tab", "no tab between image name and caption: 'cat.png A cat without a tab'"),
    ("\tA nameless caption.", "no image name before the tab"),
    ("#3\tOnly a caption number.", "no image name before the tab"),
    ("cat.png\t   ", "no caption after the tab"),
    ("cat.png\t.", "no caption after the tab: '.'"),
    ("dog.png\tA dog.", "image 'dog.png' not found in {folder}"),
    ("birds\tA folder.", "image 'birds' not found in {folder}"),
    ("../cat.png\tOutside.", "image name '../cat.png' is outside the images directory "
                             "(names must be relative to {folder}, without '..')"),
    ("birds/../../x.png\tOutside.", "image name 'birds/../../x.png' is outside the images directory "
                                    "(names must be relative to {folder}, without '..')"),
    ("..\\x.png\tOutside.", "image name '..\\\\x.png' is outside the images directory "
                            "(names must be relative to {folder}, without '..')"),
])
def test_read_captions_errors_name_the_line(tmp_path, line, problem):
    folder = _image_dir(tmp_path)
    captions = write(tmp_path / "captions.txt", f"cat.png\tA cat.\n\ncat.png\tStill a cat.\n{line}\n")
    assert error(read_captions, folder, captions, 4) == f"{captions}, line 4: {problem.format(folder=folder)}"


def test_read_captions_refuses_absolute_paths(tmp_path):
    folder = _image_dir(tmp_path)
    outside = png(tmp_path / "secret.png", "RGB", (2, 2), RED)
    captions = write(tmp_path / "captions.txt", f"{outside}\tAn absolute path.\n")
    assert error(read_captions, folder, captions, 4) == (
        f"{captions}, line 1: image name {str(outside)!r} is outside the images directory "
        f"(names must be relative to {folder}, without '..')")


def test_read_captions_bad_bytes_empty_file_and_missing_paths(tmp_path):
    folder = _image_dir(tmp_path)
    bad = write(tmp_path / "bad.txt", b"cat.png\tA cat.\ncat.png\tA caf\xe9.\n")
    assert error(read_captions, folder, bad, 4) == \
        f"{bad}, line 2, column 14: not valid utf-8 (bytes e9: invalid continuation byte)"
    assert read_captions(folder, bad, 4, encoding="latin-1").captions == [["A cat.", "A caf\u00e9."]]
    empty = write(tmp_path / "empty.txt", "\n \n")
    assert error(read_captions, folder, empty, 4) == f"{empty}: no captions (expected 'image_name<TAB>caption' a line)"
    assert error(read_captions, folder, tmp_path / "nope.txt", 4) == f"no such file: {tmp_path / 'nope.txt'}"
    assert error(read_captions, tmp_path / "none", empty, 4) == \
        f"no such directory: {tmp_path / 'none'} (the images directory)"
    write(folder / "broken.png", "not an image")
    broken = write(tmp_path / "broken.txt", "broken.png\tA broken image.\n")
    assert error(read_captions, folder, broken, 4) == \
        f"{folder / 'broken.png'}: not a readable image (not in an image format Pillow knows)"


# ---- generated shapes -------------------------------------------------------------------------------------

def _colour_mask(image: np.ndarray, colour: str) -> np.ndarray:
    """(H, W) pixels within 0.2 (per channel) of a shape colour: a shape's inside, noise and jitter
    included; anti-aliased edge pixels and the background fall outside."""
    target = np.array(SHAPE_COLOURS[colour], dtype=np.float32)[:, None, None]
    return np.all(np.abs(image - target) < 0.2, axis=0)


def _parse(caption: str) -> tuple[list[tuple[str, str]], str | None]:
    words = caption.split()
    if len(words) == 3:
        return [(words[1], words[2])], None
    if words[3] == "above":
        return [(words[1], words[2]), (words[5], words[6])], "above"
    assert words[3:5] == ["left", "of"], caption
    return [(words[1], words[2]), (words[6], words[7])], "left of"


def _fill(mask: np.ndarray) -> float:
    rows, cols = np.nonzero(mask)
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    return mask.sum() / box


def test_generate_shapes_is_deterministic_and_well_formed():
    a, b = generate_shapes(60, seed=3), generate_shapes(60, seed=3)
    assert np.array_equal(a.images, b.images) and a.captions == b.captions
    assert not np.array_equal(a.images, generate_shapes(60, seed=4).images)
    assert a.images.shape == (60, 3, 32, 32) and a.images.dtype == np.float32
    assert 0.0 <= a.images.min() and a.images.max() <= 1.0
    assert a.names == [f"shapes-{i}" for i in range(60)] and set(a.tags) == {"seen"}
    assert all(len(refs) == 1 for refs in a.captions)
    assert generate_shapes(3, seed=0, size=48).images.shape == (3, 3, 48, 48)
    with pytest.raises(ValueError, match="unknown \\(colour, shape\\) combination \\('purple', 'circle'\\)"):
        generate_shapes(2, 0, combos=[("purple", "circle"), ("red", "square")])
    with pytest.raises(ValueError, match="at least two"):
        generate_shapes(2, 0, combos=[("red", "square")])


def test_shapes_captions_match_the_drawn_geometry():
    data = generate_shapes(300, seed=0)
    relations = Counter()
    fills: dict[str, list[float]] = {kind: [] for kind in SHAPE_KINDS}
    for image, (caption,) in zip(data.images, data.captions):
        objects, relation = _parse(caption)
        relations[relation] += 1
        colours = [c for c, _ in objects]
        for colour in SHAPE_COLOURS:                  # each named colour drawn, no other colour drawn
            assert (_colour_mask(image, colour).sum() > 4) == (colour in colours), (caption, colour)
        if relation is None:
            fills[objects[0][1]].append(_fill(_colour_mask(image, objects[0][0])))
        elif colours[0] != colours[1]:
            rows0, cols0 = np.nonzero(_colour_mask(image, colours[0]))
            rows1, cols1 = np.nonzero(_colour_mask(image, colours[1]))
            if relation == "above":                   # first-mentioned: the upper one, well apart
                assert rows0.max() < rows1.min(), caption
                assert rows1.mean() - rows0.mean() > abs(cols1.mean() - cols0.mean()), caption
            else:                                     # first-mentioned: the left one
                assert cols0.max() < cols1.min(), caption
                assert cols1.mean() - cols0.mean() > abs(rows1.mean() - rows0.mean()), caption
    assert set(relations) == {None, "above", "left of"} and 40 < relations[None] < 110
    # Each kind fills its bounding box by a typical fraction: square ~1, circle ~pi/4, cross and
    # triangle about half (the triangle widening downwards).
    assert min(fills["square"]) > 0.9
    assert all(0.6 < f < 0.9 for f in fills["circle"])
    assert all(f < 0.7 for f in fills["cross"] + fills["triangle"])


def test_shapes_triangles_point_up_and_crosses_are_plus_signs():
    data = generate_shapes(200, seed=1)
    checked = Counter()
    for image, (caption,) in zip(data.images, data.captions):
        objects, relation = _parse(caption)
        if relation is not None:
            continue
        colour, kind = objects[0]
        mask = _colour_mask(image, colour)
        rows = np.flatnonzero(mask.any(axis=1))
        widths = mask.sum(axis=1)[rows]
        cols = np.flatnonzero(mask.any(axis=0))
        if kind == "triangle":
            assert widths[0] < widths[-1] and widths[-1] == widths.max(), caption
        elif kind == "cross":
            centre_row = (rows[0] + rows[-1]) // 2
            assert widths[0] < 0.6 * widths.max() and mask[centre_row].sum() == widths.max(), caption
            assert not mask[rows[0], cols[0]] and not mask[rows[-1], cols[-1]], caption   # empty corners
        checked[kind] += 1
    assert checked["triangle"] > 0 and checked["cross"] > 0


def test_shapes_splits_hold_out_combinations():
    splits = shapes_splits(n_train=400, n_valid=30, n_test=60, seed=0)
    assert {k: len(v) for k, v in splits.items()} == {"train": 400, "valid": 30, "test": 60}
    train_objects = [o for (c,) in splits["train"].captions for o in _parse(c)[0]]
    assert set(train_objects) == set(SHAPES_TRAIN)            # every training combination shows up
    assert {c for c, _ in train_objects} == set(SHAPE_COLOURS) and {s for _, s in train_objects} == set(SHAPE_KINDS)
    for part in ("train", "valid"):
        assert not {o for (c,) in splits[part].captions for o in _parse(c)[0]} & set(SHAPES_HELD_OUT)
        assert set(splits[part].tags) == {"seen"}
    test = splits["test"]
    assert test.tags == ["seen"] * 30 + ["held_out"] * 30
    for (caption,), tag in zip(test.captions, test.tags):
        assert bool(set(_parse(caption)[0]) & set(SHAPES_HELD_OUT)) == (tag == "held_out"), caption
    assert {o for (c,) in test.captions[30:] for o in _parse(c)[0]} & set(SHAPES_HELD_OUT) == set(SHAPES_HELD_OUT)
    names = [n for part in splits.values() for n in part.names]
    assert len(set(names)) == len(names)
    again = shapes_splits(n_train=10, n_valid=30, n_test=60, seed=0)   # valid/test do not shift with n_train
    assert np.array_equal(again["test"].images, test.images) and again["valid"].captions == splits["valid"].captions
    assert np.array_equal(again["train"].images, splits["train"].images[:10])
    assert set(SHAPES_HELD_OUT) < set(SHAPE_COMBOS) and len(SHAPE_COMBOS) == 16


# ---- Tux Paint stamps on a fake tree -----------------------------------------------------------------------

def _stamp(root, rel, caption, colour=RED, translations=True):
    path = png(root / f"{rel}.png", "RGBA", (6, 3), colour + (255,))
    if caption is not None:
        lines = [caption] + (["fr.utf8=Une traduction.", "de.utf8=Eine Übersetzung."] if translations else [])
        write(root / f"{rel}.txt", "\n".join(lines) + "\n")
    return path


def _fake_tuxpaint(tmp_path):
    root = tmp_path / "stamps"
    _stamp(root, "animals/mammals/cat", "A cat.")
    _stamp(root, "animals/mammals/cat_mirror", None)                   # a mirrored variant: no .txt
    _stamp(root, "vehicles/bus", "A  yellow bus!", colour=BLUE, translations=False)
    _stamp(root, "symbols/calculator", "A calculator.  6x7=42")        # "=" in the English line
    write(root / "symbols/star.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>")   # SVG only: skipped
    write(root / "symbols/star.txt", "A star.\n")
    write(root / "symbols/heart.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>")  # SVG beside a PNG
    _stamp(root, "symbols/heart", "A heart.")
    write(root / "symbols/heart.dat", "nomirror\n")
    write(root / "symbols/heart.ogg", b"OggS")
    _stamp(root, "symbols/blank", "\n")                                 # empty English line: skipped
    return root


def test_load_tuxpaint_fake_tree(tmp_path):
    root = _fake_tuxpaint(tmp_path)
    data = load_tuxpaint(root, size=6)
    assert data.names == ["animals/mammals/cat.png", "symbols/calculator.png", "symbols/heart.png",
                          "vehicles/bus.png"]
    assert data.captions == [["A cat."], ["A calculator. 6x7=42"], ["A heart."], ["A yellow bus!"]]
    assert data.tags == ["animals", "symbols", "symbols", "vehicles"]
    assert data.skipped == {"svg_only": 1, "no_caption": 1, "empty_caption": 1}
    assert data.images.shape == (4, 3, 6, 6)
    assert rgb(data.images[0], 2, 0) == RED and rgb(data.images[0], 0, 0) == WHITE   # 6x3 letterboxed
    assert rgb(data.images[3], 3, 5) == BLUE
    assert len(list((tmp_path / "cache" / "captions").glob("images-6px-*.npz"))) == 1
    again = load_tuxpaint(root, size=6)                                 # from the cache
    assert np.array_equal(again.images, data.images) and again.captions == data.captions


def test_load_tuxpaint_errors(tmp_path):
    missing = tmp_path / "stamps"
    message = error(load_tuxpaint, missing)
    assert message == (f"{missing} not found: the Tux Paint stamps come from Debian's tuxpaint-stamps-default "
                       f"package; install it with: sudo apt-get install tuxpaint-stamps-default")
    assert TUXPAINT_INSTALL in message
    missing.mkdir()
    write(missing / "a.svg", "<svg/>")
    assert error(load_tuxpaint, missing) == \
        f"{missing}: no captioned PNG stamps (<name>.png with <name>.txt beside it)"
    _stamp(missing, "food/pie", None)
    write(missing / "food/pie.txt", b"A pi\xe9.\n")
    assert error(load_tuxpaint, missing) == \
        f"{missing / 'food/pie.txt'}, line 1, column 5: not valid utf-8 (bytes e9: invalid continuation byte)"
    write(missing / "food/pie.txt", "A pie.\n")
    write(missing / "food/pie.png", "not a png")
    assert error(load_tuxpaint, missing) == \
        f"{missing / 'food/pie.png'}: not a readable image (not in an image format Pillow knows)"


def test_split_captioned_keeps_equal_captions_together(tmp_path):
    n = 200
    captions = [[f"The letter {chr(97 + i % 26)}."] for i in range(n)]   # each caption 7-8 times
    data = Captioned(np.zeros((n, 3, 1, 1), dtype=np.float32), captions, [f"s{i}" for i in range(n)])
    splits = split_captioned(data)
    assert sum(len(p) for p in splits.values()) == n
    by_split = {name: {c for (c,) in part.captions} for name, part in splits.items()}
    assert not (by_split["train"] & by_split["test"] or by_split["train"] & by_split["valid"]
                or by_split["valid"] & by_split["test"])
    assert split_captioned(data)["test"].names == splits["test"].names          # fixed
    assert any(split_captioned(data, seed=s)["test"].names != splits["test"].names for s in (1, 2, 3))
    many = Captioned(np.zeros((1000, 3, 1, 1), dtype=np.float32), [[f"stamp {i}"] for i in range(1000)],
                     [str(i) for i in range(1000)])
    sizes = {name: len(part) for name, part in split_captioned(many).items()}
    assert 740 < sizes["train"] < 860 and 60 < sizes["valid"] < 140 and 60 < sizes["test"] < 140
    one = Captioned(np.zeros((1, 3, 1, 1), dtype=np.float32), [["x"]], ["x"])
    assert "the " in error(split_captioned, one) and "split is empty" in error(split_captioned, one)


def test_tuxpaint_splits_on_a_fake_tree(tmp_path):
    root = tmp_path / "stamps"
    for i in range(30):
        _stamp(root, f"{('animals', 'food')[i % 2]}/s{i:02d}", f"Stamp number {i}.")
    splits = tuxpaint_splits(seed=0, size=4, root=root)
    assert sorted(n for part in splits.values() for n in part.names) == sorted(
        f"{('animals', 'food')[i % 2]}/s{i:02d}.png" for i in range(30))
    assert all(part.images.shape[1:] == (3, 4, 4) for part in splits.values())
    assert tuxpaint_splits(seed=0, size=4, root=root)["test"].names == splits["test"].names
