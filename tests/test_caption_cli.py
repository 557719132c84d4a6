"""``rnnkit train caption`` / ``caption`` / ``eval`` end to end on a small shapes set, the captioner's
decoding, and bad input."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rnnkit.cli import main
from rnnkit.data import images as image_data
from rnnkit.models.captioner import Captioner, CaptionerConfig
from rnnkit.sampling import beam_search, greedy_decode
from rnnkit.tasks import caption as caption_task

SMALL = ["--channels", "16", "32", "--grid", "4", "--embed", "16", "--hidden", "64",
         "--batch-size", "32", "--lr", "5e-3", "--log-every", "20", "--precision", "fp32"]


# A seventh of the bundled set's size.
FEWER_SHAPES = functools.partial(image_data.shapes_splits, n_train=1200, n_valid=100, n_test=200)


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "shapes"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(caption_task, "shapes_splits", FEWER_SHAPES)
        assert main(["train", "caption", "--dataset", "shapes", "--epochs", "10",
                     "--out", str(run), *SMALL]) == 0
    return run


def test_a_captioner_learns_to_describe_shapes(shapes_run, capsys, monkeypatch):
    result = json.loads((shapes_run / "test.json").read_text())
    greedy = result["decoding"]["greedy"]
    assert greedy["bleu_1"] >= 60 and greedy["exact_match_seen"] > 0.1
    assert set(result["decoding"]) == {"greedy", "beam_3"}
    assert set(result["nearest_neighbour"]) == {"features", "pixels"}
    assert (shapes_run / "attention.png").read_bytes().startswith(b"\x89PNG")
    metrics = [json.loads(line) for line in (shapes_run / "metrics.jsonl").read_text().splitlines()]
    losses = [m["val_loss"] for m in metrics if "val_loss" in m]
    assert losses[-1] < 0.5 * losses[0]
    capsys.readouterr()
    monkeypatch.setattr(caption_task, "shapes_splits", FEWER_SHAPES)
    assert main(["eval", str(shapes_run), "--json", "--beam", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["decoding"]["greedy"] == greedy


def test_caption_describes_image_files(shapes_run, tmp_path, capsys):
    data = image_data.generate_shapes(2, seed=7)
    files = []
    for i, image in enumerate(data.images):
        path = tmp_path / f"img{i}.png"
        Image.fromarray((np.transpose(image, (1, 2, 0)) * 255).astype(np.uint8)).save(path)
        files.append(str(path))
    capsys.readouterr()
    png = tmp_path / "att.png"
    assert main(["caption", str(shapes_run), "--json", "--beam", "2", "--plot-attention", str(png),
                 *files]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["image"] for r in rows] == files
    for row in rows:
        words = row["caption"].split()
        assert words[0] == "a" and set(words) <= set(json.loads(
            (shapes_run / "vocab.json").read_text())["symbols"])
    assert png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("attention", ["none", "dot"])
def test_beam_of_one_is_greedy_and_batches_equal_single_images(attention):
    torch.manual_seed(0)
    model = Captioner(CaptionerConfig(vocab=12, image_size=16, channels=(8, 8), grid=2, embed=8,
                                      hidden=16, attention=attention)).eval()
    images = torch.rand(3, 3, 16, 16)
    greedy = greedy_decode(model.decoder.step, model.encode(images), 3, 2, 3, 8)
    assert beam_search(model.decoder.step, model.decoder.reorder, model.encode(images), 3, 1, 2, 3,
                       8) == greedy
    batched = model.decoder.search(model.encode(images), 3, 3, 8)
    for i in range(3):
        assert model.decoder.search(model.encode(images[i: i + 1]), 1, 3, 8) == [batched[i]]


def test_bleu_uses_every_reference():
    refs = [[["a", "red", "circle"], ["a", "small", "red", "circle"]], [["a", "blue", "cross"]]]
    perfect = caption_task.bleu_scores([["a", "small", "red", "circle"], ["a", "blue", "cross"]], refs)
    assert perfect["bleu_1"] == pytest.approx(100) and perfect["exact_match"] == 1.0
    half = caption_task.bleu_scores([["a", "red", "circle"], ["a", "green", "cross"]], refs)
    assert half["exact_match"] == 0.5 and half["bleu_1"] == pytest.approx(500 / 6)


def test_bad_captions_and_images_name_the_file_and_line(tmp_path, capsys, fails):
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(images / "red.png")
    captions = tmp_path / "captions.txt"
    captions.write_text("red.png\ta red square\nblue.png\ta blue square\n", encoding="utf-8")
    out = ["--out", str(tmp_path / "run")]
    fails(["train", "caption", "--images", str(images), "--captions", str(captions), *out], capsys,
          "captions.txt, line 2: image 'blue.png' not found")
    captions.write_text("red.png a red square\n", encoding="utf-8")
    fails(["train", "caption", "--images", str(images), "--captions", str(captions), *out], capsys,
          "captions.txt, line 1: no tab")
    fails(["train", "caption", "--images", str(images), *out], capsys,
          "--images DIR and --captions FILE go together")
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    captions.write_text("broken.png\ta broken image\n", encoding="utf-8")
    fails(["train", "caption", "--images", str(images), "--captions", str(captions), *out], capsys,
          "not a readable image")
    assert not (tmp_path / "run").exists()
