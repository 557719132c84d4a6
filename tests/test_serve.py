"""``rnnkit serve``: the playground's API end to end on loopback, against tiny runs the tests train —
the stream against ``rnnkit sample`` and the model's own activations, every refusal, the
concurrency limit under load, and the attention of translation and caption runs."""
from __future__ import annotations

import base64
import concurrent.futures
import functools
import http.client
import io
import json
import random
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rnnkit import serve as serve_module
from rnnkit.cli import main
from rnnkit.data import images as image_data
from rnnkit.tasks import caption as caption_task
from rnnkit.tasks import lm as lm_task
from serve_helpers import call, error_of, running, stream, streamed_text, train_tiny_lm

pytestmark = pytest.mark.usefixtures("single_thread")   # tiny models: one thread is fastest


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory, single_thread) -> Path:
    return train_tiny_lm(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def lm_server(lm_run):
    with running(lm_run, max_concurrent=2, max_length=300, timeout=30) as served:
        yield served


# ---- the stream is `rnnkit sample`, and shows the model's own activations ----------------------------

@pytest.mark.parametrize("prime, length, temperature, seed, extra", [
    ("ANNA:\n", 120, 1.0, 7, {}),
    ("the cat", 80, 0.6, 12345, {"top_k": 5, "top_p": 0.9}),
])
def test_the_stream_is_what_rnnkit_sample_prints(lm_run, lm_server, capsys, prime, length,
                                                 temperature, seed, extra):
    port, _ = lm_server
    rows = stream(port, {"prime": prime, "length": length, "temperature": temperature,
                         "seed": seed, **extra})
    flags = [row["prime"] for row in rows[:-1]]
    assert flags == [True] * len(prime) + [False] * length
    assert rows[-1]["symbols"] == length and rows[-1]["seconds"] >= 0
    options = [f"--{k.replace('_', '-')}={v}" for k, v in extra.items()]
    capsys.readouterr()
    assert main(["sample", str(lm_run), "--prime", prime, "--length", str(length),
                 "--temperature", str(temperature), "--seed", str(seed), *options]) == 0
    assert capsys.readouterr().out == streamed_text(rows) + "\n"
    # Another seed writes another text.
    other = stream(port, {"prime": prime, "length": length, "temperature": temperature,
                          "seed": seed + 1, **extra})
    assert streamed_text(other) != streamed_text(rows)


@pytest.mark.parametrize("layer", [0, 1])
def test_streamed_values_are_the_models_activations(lm_run, lm_server, layer):
    """Each row's h and gates are the chosen layer's values just after the model read that symbol:
    what `LanguageModel.activations` gives over the prime and the generated text in one pass."""
    port, playground = lm_server
    prime = "BOB:\nthe dog"
    rows = stream(port, {"prime": prime, "length": 40, "seed": 3, "layer": layer})
    text = streamed_text(rows)
    model, vocab, _ = lm_task.load_run(lm_run, torch.device("cpu"))
    _, _, records = model.activations(torch.tensor([vocab.encode(text)]))
    record = records[layer]                                        # h, i, f, g, o, c: (1, T, H)
    assert set(rows[0]["gates"]) == {"i", "f", "g", "o", "c"}
    for name in ("h", "i", "f", "g", "o", "c"):
        streamed = torch.tensor([row["h"] if name == "h" else row["gates"][name] for row in rows[:-1]],
                                dtype=torch.float64)              # (T, H)
        torch.testing.assert_close(streamed, record[name][0].double(), atol=5e-4 + 1e-6, rtol=0,
                                   msg=lambda m: f"{name}: {m}")
    # The two layers differ: the layer asked for is the one streamed.
    other = stream(port, {"prime": prime, "length": 40, "seed": 3, "layer": 1 - layer})
    assert streamed_text(other) == text and other[0]["h"] != rows[0]["h"]


def test_a_word_level_run_streams_words_as_rnnkit_sample_prints_them(tmp_path, capsys):
    run = train_tiny_lm(tmp_path, level="word")
    with running(run) as (port, _):
        rows = stream(port, {"prime": "ANNA: the cat", "length": 30, "seed": 4})
    assert [row["text"] for row in rows if row.get("prime")] == ["ANNA", " :", " the", " cat"]
    generated = "".join(row["text"] for row in rows[:-1] if not row["prime"])
    assert len(generated.split()) == rows[-1]["symbols"] == 30
    capsys.readouterr()
    assert main(["sample", str(run), "--prime", "ANNA: the cat", "--length", "30", "--seed", "4"]) == 0
    assert capsys.readouterr().out == "ANNA: the cat" + generated + "\n"


def test_info_and_the_page(lm_server):
    port, _ = lm_server
    status, headers, body = call(port, "GET", "/api/info")
    info = json.loads(body)
    assert status == 200 and info["task"] == "lm" and info["cell"] == "lstm"
    assert (info["layers"], info["hidden"], info["level"]) == (2, 16, "char")
    assert info["gates"] == ["i", "f", "g", "o", "c"] and info["vocab_size"] > 20
    assert info["limits"]["max_length"] == 300 and info["limits"]["max_concurrent"] == 2
    assert info["defaults"]["layer"] == 1
    status, headers, body = call(port, "GET", "/?prime=ANNA%3A&autostart=1")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"<title>rnnkit playground</title>" in body and b"/api/sample" in body


# ---- refusals -------------------------------------------------------------------------------------------

JSON = {"Content-Type": "application/json"}
BAD_SAMPLES = [
    ("{", 400, "malformed JSON"),
    ('{"prime": "a", "temperature": NaN}', 400, "malformed JSON: NaN is not valid JSON"),
    ("[1, 2]", 400, "must be a JSON object, got list"),
    ({"prime": "a", "colour": "red"}, 400, "unknown field 'colour'"),
    ({"length": 5}, 400, "missing field 'prime'"),
    ({"prime": 5}, 400, "prime must be a string, got 5"),
    ({"prime": "a", "length": "10"}, 400, 'length must be an integer, got "10"'),
    ({"prime": "a", "length": True}, 400, "length must be an integer, got true"),
    ({"prime": "a", "length": 2.5}, 400, "length must be an integer, got 2.5"),
    ({"prime": "a", "length": 0}, 400, "length must be in 1..300, got 0"),
    ({"prime": "a", "length": 301}, 400, "length must be in 1..300, got 301"),
    ({"prime": "a", "temperature": 0}, 400, "temperature must be > 0, got 0"),
    ({"prime": "a", "temperature": -1.5}, 400, "temperature must be > 0, got -1.5"),
    ({"prime": "a", "temperature": 5.5}, 400, "temperature must be at most 5.0, got 5.5"),
    ({"prime": "a", "top_k": 0}, 400, "top-k must be at least 1, got 0"),
    ({"prime": "a", "top_p": 1.5}, 400, "top-p must be in (0, 1], got 1.5"),
    ({"prime": "a", "top_p": 0}, 400, "top-p must be in (0, 1], got 0"),
    ({"prime": "a", "seed": -1}, 400, "seed must be in 0..9223372036854775807, got -1"),
    ({"prime": "a", "layer": 2}, 400, "layer must be in 0..1, got 2"),
    ({"prime": ""}, 400, "prime must not be empty"),
    ({"prime": "a" * 2001}, 400, "prime has 2001 characters, more than the limit of 2000"),
    ({"prime": "ANNA: Zoë"}, 400, "prime has characters the model never saw: 'Zë'"),
]


@pytest.mark.parametrize("body, status, message", BAD_SAMPLES)
def test_bad_sample_requests_get_400_naming_the_bad_value(lm_server, body, status, message):
    port, playground = lm_server
    got_status, got_message = error_of(call(port, "POST", "/api/sample", body,
                                            JSON if isinstance(body, str) else None))
    assert got_status == status and message in got_message, got_message
    assert playground.in_flight == 0


def test_bad_http_gets_4xx_naming_what_was_wrong(lm_server):
    port, _ = lm_server
    status, message = error_of(call(port, "POST", "/api/sample", '{"prime": "a"}',
                                    {"Content-Type": "text/plain"}))
    assert status == 415 and "Content-Type must be application/json, got 'text/plain'" in message
    big = json.dumps({"prime": "a" * (70 * 1024)})
    status, message = error_of(call(port, "POST", "/api/sample", big, JSON))
    assert status == 413 and f"the body has {len(big):,} bytes, more than the limit of 65,536" in message
    without_length = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    without_length.putrequest("POST", "/api/sample")
    without_length.putheader("Content-Type", "application/json")
    without_length.endheaders()
    response = without_length.getresponse()
    assert response.status == 411 and "Content-Length is required" in json.loads(response.read())["error"]
    without_length.close()
    status, message = error_of(call(port, "GET", "/etc/passwd"))
    assert status == 404 and "no such page: /etc/passwd" in message
    reply = call(port, "GET", "/api/sample")
    assert error_of(reply) == (405, "/api/sample takes POST, not GET") and reply[1]["Allow"] == "POST"
    assert error_of(call(port, "DELETE", "/")) == (405, "/ takes GET, not DELETE")
    assert error_of(call(port, "BREW", "/")) == (501, "Unsupported method ('BREW')")
    assert error_of(call(port, "POST", "/api/translate", {"sentence": "a"})) == (
        409, "this server runs a 'lm' run: /api/translate needs a 'translate' run")
    status, message = error_of(call(port, "POST", "/api/caption", b"\x89PNG",
                                    {"Content-Type": "image/png"}))
    assert status == 409 and "needs a 'caption' run" in message
    status, message = error_of(call(port, "GET", "/api/info", headers={"Host": "evil.example:80"}))
    assert status == 403 and "Host 'evil.example:80' is not this server" in message
    assert call(port, "GET", "/api/info", headers={"Host": f"localhost:{port}"})[0] == 200


def test_serve_refuses_runs_it_cannot_serve_and_stops_cleanly(lm_run, tmp_path, fails, capsys,
                                                              monkeypatch):
    other = tmp_path / "classifier"
    other.mkdir()
    (other / "config.json").write_text('{"task": "classify"}', encoding="utf-8")
    fails(["serve", str(other)], capsys, f"{other} is a 'classify' run: serve needs a language model")
    fails(["serve", str(lm_run), "--max-concurrent", "0"], capsys, "--max-concurrent must be positive")
    with running(lm_run) as (port, _):
        fails(["serve", str(lm_run), "--port", str(port)], capsys, f"cannot listen on 127.0.0.1:{port}")

    def interrupted(server, poll_interval=0.5):       # Ctrl-C while serving
        raise KeyboardInterrupt
    monkeypatch.setattr(serve_module.ThreadingHTTPServer, "serve_forever", interrupted)
    assert main(["serve", str(lm_run), "--port", "0"]) == 0
    out, err = capsys.readouterr()
    assert "(lm, 2×16 LSTM) at http://127.0.0.1:" in out and "stopped" in err


# ---- limits under load ------------------------------------------------------------------------------

def test_one_generation_over_the_limit_gets_429_with_retry_after(lm_run):
    with running(lm_run, max_concurrent=1, max_length=2000) as (port, playground):
        first = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        first.request("POST", "/api/sample", json.dumps({"prime": "ANNA:", "length": 2000}), JSON)
        response = first.getresponse()
        assert response.status == 200 and "prime" in json.loads(response.readline())
        assert playground.in_flight == 1                     # the long generation holds the slot
        status, headers, body = call(port, "POST", "/api/sample", {"prime": "BOB:", "length": 5})
        assert status == 429 and headers["Retry-After"] == "1"
        assert "1 generation(s) already running" in json.loads(body)["error"]
        response.close()                                     # the client leaves mid-stream
        first.close()
        deadline = time.monotonic() + 10
        while playground.in_flight and time.monotonic() < deadline:
            time.sleep(0.02)
        assert playground.in_flight == 0                     # the server noticed and freed the slot
        assert streamed_text(stream(port, {"prime": "BOB:", "length": 5})).startswith("BOB:")
        assert playground.peak_in_flight == 1


def test_a_stream_past_the_timeout_ends_with_an_error_line(lm_run):
    with running(lm_run, max_length=2000, timeout=0.05) as (port, playground):
        rows = stream(port, {"prime": "ANNA:", "length": 2000})
        assert rows[-1]["error"].startswith("timeout: the generation ran past 0.05 s (--timeout) after ")
        generated = sum(not row.get("prime", True) for row in rows[:-1])
        assert 0 < generated < 2000 and f"after {generated} of 2000 symbols" in rows[-1]["error"]
        assert playground.in_flight == 0


def test_bounded_concurrent_load_on_loopback(lm_run):
    """16 requests from 8 threads against a limit of 2: each is answered 200 (a whole stream) or 429,
    never more than 2 generations run at once, and the server answers afterwards."""
    with running(lm_run, max_concurrent=2) as (port, playground):
        def one(k: int) -> tuple[int, list[dict] | None]:
            status, _, body = call(port, "POST", "/api/sample",
                                   {"prime": "ANNA:", "length": 60, "seed": k}, timeout=10)
            rows = [json.loads(line) for line in body.splitlines()] if status == 200 else None
            return status, rows
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, range(16), timeout=30))
        statuses = [status for status, _ in results]
        assert set(statuses) <= {200, 429} and 200 in statuses, statuses
        for k, (status, rows) in enumerate(results):
            if status == 200:
                assert rows[-1]["done"] and rows[-1]["symbols"] == 60
        assert 1 <= playground.peak_in_flight <= 2 and playground.in_flight == 0
        assert call(port, "GET", "/api/info")[0] == 200
        assert streamed_text(stream(port, {"prime": "ANNA:", "length": 5})).startswith("ANNA:")


# ---- translation and captioning -------------------------------------------------------------------------

LEXICON = {"der": "the", "hund": "dog", "katze": "cat", "sieht": "sees", "mag": "likes",
           "kleine": "small", "rote": "red", "maus": "mouse"}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    rng = random.Random(1)
    words = sorted(LEXICON)
    lines = set()
    while len(lines) < 120:
        source = rng.choices(words, k=rng.randint(2, 5))
        lines.add(f"{' '.join(source)}\t{' '.join(LEXICON[w] for w in source)}")
    path = tmp_path_factory.mktemp("pairs") / "pairs.tsv"
    path.write_text("\n".join(sorted(lines)) + "\n", encoding="utf-8")
    return path


def train_translation(pairs: Path, out: Path, attention: str) -> Path:
    assert main(["train", "translate", "--pairs", str(pairs), "--attention", attention,
                 "--epochs", "1", "--embed", "8", "--hidden", "16", "--batch-size", "16",
                 "--log-every", "100", "--precision", "fp32", "--out", str(out)]) == 0
    return out


def test_a_translation_run_answers_with_attention_rows_summing_to_one(pairs, tmp_path, capsys):
    run = train_translation(pairs, tmp_path / "dot", "dot")
    with running(run) as (port, _):
        status, _, body = call(port, "POST", "/api/translate", {"sentence": "Der Hund sieht Omas katze",
                                                                "beam": 3})
        row = json.loads(body)
        assert status == 200 and row["unknown"] == ["omas"]
        assert row["source_tokens"] == ["der", "hund", "sieht", "<unk>", "katze"]
        assert row["target_tokens"][-1] == "<eos>"
        weights = np.array(row["attention"])                         # (T, S)
        assert weights.shape == (len(row["target_tokens"]), 5)
        np.testing.assert_allclose(weights.sum(1), 1, atol=1e-3)
        capsys.readouterr()
        assert main(["translate", str(run), "--beam", "3", "Der Hund sieht Omas katze"]) == 0
        assert capsys.readouterr().out == row["translation"] + "\n"
        info = json.loads(call(port, "GET", "/api/info")[2])
        assert info["task"] == "translate" and info["attention"] == "dot"
        for body, message in [
                ({"sentence": "der hund", "beam": 11}, "beam must be in 1..10, got 11"),
                ({"sentence": "a" * 501}, "sentence has 501 characters, more than the limit of 500"),
                ({"sentence": "  \t "}, "sentence has nothing to translate"),
                ({"sentence": "der", "length": 3}, "unknown field 'length'")]:
            status, error = error_of(call(port, "POST", "/api/translate", body))
            assert status == 400 and message in error
        assert error_of(call(port, "POST", "/api/sample", {"prime": "a"}))[0] == 409


def test_a_translation_run_without_attention_still_translates(pairs, tmp_path):
    run = train_translation(pairs, tmp_path / "plain", "none")
    with running(run) as (port, _):
        status, _, body = call(port, "POST", "/api/translate", {"sentence": "der hund"})
        row = json.loads(body)
        assert status == 200 and row["translation"] and row["attention"] is None
        assert json.loads(call(port, "GET", "/api/info")[2])["attention"] is None


@pytest.fixture(scope="module")
def caption_run(tmp_path_factory, single_thread) -> Path:
    run = tmp_path_factory.mktemp("caption") / "shapes"
    few = functools.partial(image_data.shapes_splits, n_train=96, n_valid=16, n_test=16)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(caption_task, "shapes_splits", few)
        assert main(["train", "caption", "--dataset", "shapes", "--epochs", "1", "--channels", "8",
                     "16", "--grid", "4", "--embed", "8", "--hidden", "16", "--batch-size", "32",
                     "--log-every", "100", "--precision", "fp32", "--out", str(run)]) == 0
    return run


def png_bytes(image: np.ndarray, size: tuple[int, int] | None = None, fmt: str = "PNG") -> bytes:
    """(3, S, S) floats in [0, 1] → the bytes of an image file (resized to ``size`` if given)."""
    im = Image.fromarray((image.transpose(1, 2, 0) * 255).round().astype(np.uint8))
    if size:
        im = im.resize(size)
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def test_a_caption_run_answers_with_attention_maps_and_the_image_it_saw(caption_run):
    image = image_data.generate_shapes(1, seed=5).images[0]                    # (3, 32, 32)
    upload = png_bytes(image, (80, 60))                                        # letterboxed to 32
    with running(caption_run) as (port, _):
        status, _, body = call(port, "POST", "/api/caption", upload, {"Content-Type": "image/png"})
        result = json.loads(body)
        assert status == 200 and result["grid"] == 4 and result["image_size"] == 32
        assert result["tokens"][-1] == "<eos>" and result["caption"] == " ".join(result["tokens"][:-1])
        maps = np.array(result["attention"])                                   # (T, G, G)
        assert maps.shape == (len(result["tokens"]), 4, 4)
        np.testing.assert_allclose(maps.sum((1, 2)), 1, atol=1e-3)
        header, data = result["image"].split(",", 1)
        assert header == "data:image/png;base64"
        seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))), dtype=np.float32) / 255
        expected = image_data.image_from_bytes(upload, 32)                     # (3, 32, 32)
        np.testing.assert_allclose(seen.transpose(2, 0, 1), expected, atol=1 / 255 + 1e-6)
        jpeg = png_bytes(image, fmt="JPEG")
        assert call(port, "POST", "/api/caption", jpeg, {"Content-Type": "image/jpeg"})[0] == 200

        status, message = error_of(call(port, "POST", "/api/caption", b"not an image",
                                        {"Content-Type": "image/png"}))
        assert status == 400 and message.startswith("the uploaded image: not a readable image")
        status, message = error_of(call(port, "POST", "/api/caption", jpeg,
                                        {"Content-Type": "image/png"}))       # bytes and type differ
        assert status == 400 and "not a readable image" in message
        status, message = error_of(call(port, "POST", "/api/caption", upload,
                                        {"Content-Type": "image/gif"}))
        assert status == 415 and "image/png or image/jpeg, got 'image/gif'" in message
        status, message = error_of(call(port, "POST", "/api/caption", b"",
                                        {"Content-Type": "image/png", "Content-Length": "9000000"}))
        assert status == 413 and "more than the limit of 8,388,608" in message
