"""``rnnkit serve RUN_DIR``: a small local web playground for a trained run.

Why: to watch a language model write and to see inside it while it does — each character coloured
by one unit's activation, that unit's gates and the most active units on hover (Karpathy, Johnson &
Fei-Fei 2015, "Visualizing and understanding recurrent networks") — and to see where a translator
or a captioner attends, word by word.

One page (``viz/playground.html``, shipped in the package) and a JSON API on the standard library's
``ThreadingHTTPServer``, bound to 127.0.0.1 unless told otherwise:

    GET  /               the page (its URL parameters fill the form: ?prime=…&seed=…&autostart=1)
    GET  /api/info       the run: task, model sizes, gate names, vocabulary, limits and defaults
    POST /api/sample     language models: {"prime", "length"?, "temperature"?, "top_k"?, "top_p"?,
                         "seed"?, "layer"?} → NDJSON, one line per symbol as it is generated:
                         {"text", "prime", "h": [H], "gates": {name: [H]}} for the chosen layer,
                         then {"done": true, "symbols", "seconds"} (or {"error": …} on a timeout)
    POST /api/translate  translation runs: {"sentence", "beam"?} → the translation, the source and
                         target tokens and the attention (T, S), or null without attention
    POST /api/caption    caption runs: the PNG or JPEG bytes as the body → the caption, its tokens,
                         the attention (T, G, G) and the image as the model saw it (a data URL)

The model is loaded once, at start. Every request is checked before any model work, and a bad one
gets a 4xx and ``{"error": "…"}`` naming the bad value. At most ``max_concurrent`` generations run
at once (one more: 429 with Retry-After); a sample stream that runs past ``timeout`` seconds ends
with an error line. Nothing in a request is ever used as a path: the run comes from the command
line, the page from the package, and an uploaded image is decoded in memory. JSON endpoints insist
on ``Content-Type: application/json`` and images on ``image/png`` or ``image/jpeg``, which a web page
from another origin cannot send without a CORS preflight (that this server never grants); and while
bound to a loopback address the server answers only requests addressed to localhost (a guard against
DNS rebinding).

With the same seed a stream samples exactly what ``rnnkit sample RUN --seed S`` prints: both run
`LanguageModel.generate`, the stream with ``record=True``.

Shapes: H hidden size, T output steps, S source length, G attention grid side.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import io
import ipaddress
import json
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Iterator, Optional
from urllib.parse import urlsplit

import numpy as np
import torch
from PIL import Image

from .data.errors import DataError
from .data.images import image_from_bytes
from .data.pairs import sentence_tokens
from .sampling import check_sampling
from .tasks import caption, lm, translate
from .tasks.common import UsageError, read_run_config, resolve_device

SERVED_TASKS = ("lm", "translate", "caption")

MAX_JSON_BYTES = 64 * 1024           # a JSON request body
MAX_IMAGE_BYTES = 8 * 1024 * 1024    # an uploaded image
MAX_PRIME_CHARS = 2000
MAX_TEMPERATURE = 5.0
MAX_SEED = 2 ** 63 - 1
MAX_SENTENCE_CHARS = 500
MAX_BEAM = 10
READ_TIMEOUT = 10.0                  # seconds a client may take to send a request (or read a reply)
RETRY_AFTER = 1                      # seconds, with a 429
DRAIN_BYTES = 1024 * 1024            # a refused body up to this size is read before the reply
IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG"}
DEFAULTS = {"prime": "\n", "length": 500, "temperature": 1.0, "seed": 0, "beam": 1}
LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}


class RequestError(Exception):
    """A request refused: the HTTP status, a message naming the bad value, extra headers."""

    def __init__(self, status: int, message: str, headers: Optional[dict] = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


@dataclass(frozen=True)
class Limits:
    max_concurrent: int = 2          # generations (samples, translations, captions) at once
    max_length: int = 2000           # symbols one sample may ask for
    timeout: float = 30.0            # seconds a sample stream may run

    def __post_init__(self) -> None:
        for name in ("max_concurrent", "max_length", "timeout"):
            if not getattr(self, name) > 0:
                raise UsageError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class SampleRequest:
    prime_ids: list[int]
    prime_texts: list[str]           # how each prime symbol is shown
    length: int
    temperature: float
    top_k: Optional[int]
    top_p: Optional[float]
    seed: int
    layer: int


# ---- reading a JSON request ------------------------------------------------------------------------

INT, NUMBER, STRING = (int,), (int, float), (str,)
KIND_NAMES = {INT: "an integer", NUMBER: "a number", STRING: "a string"}


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes, fields: dict[str, tuple], required: tuple[str, ...] = ()) -> dict:
    """The request's JSON object, each field of the kind ``fields`` names; null is the same as an
    absent field. A RequestError (400) names the first bad or unknown field."""
    try:
        obj = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:       # JSONDecodeError is a ValueError
        raise RequestError(400, f"malformed JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise RequestError(400, f"the body must be a JSON object, got {type(obj).__name__}")
    unknown = [name for name in obj if name not in fields]
    if unknown:
        raise RequestError(400, f"unknown field {unknown[0]!r} (expected {', '.join(fields)})")
    obj = {name: value for name, value in obj.items() if value is not None}
    for name in required:
        if name not in obj:
            raise RequestError(400, f"missing field {name!r}")
    for name, value in obj.items():
        kinds = fields[name]
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise RequestError(400, f"{name} must be {KIND_NAMES[kinds]}, got "
                                    f"{json.dumps(value, ensure_ascii=False)[:60]}")
    return obj


def _check_range(name: str, value, low, high) -> None:
    if not low <= value <= high:
        raise RequestError(400, f"{name} must be in {low}..{high}, got {value}")


def _rounded(values, decimals: int) -> list:
    """A tensor or array as nested lists of floats rounded to ``decimals`` (short JSON numbers)."""
    array = values.detach().double().cpu().numpy() if isinstance(values, torch.Tensor) else values
    return np.round(np.asarray(array, dtype=np.float64), decimals).tolist()


# ---- the model and what it answers -------------------------------------------------------------------

class Playground:
    """One loaded run and its limits; the request handlers' threads share it.

    ``in_flight`` counts the generations running now and ``peak_in_flight`` the most there ever
    were at once (the load test reads it)."""

    def __init__(self, run_dir: Path, device: torch.device, limits: Limits) -> None:
        task = read_run_config(run_dir).get("task")
        if task not in SERVED_TASKS:
            raise UsageError(f"{run_dir} is a {task!r} run: serve needs a language model (lm), "
                             f"translate or caption run")
        self.task, self.run_dir, self.device, self.limits = task, Path(run_dir), device, limits
        if task == "lm":
            self.model, self.vocab, self.config = lm.load_run(run_dir, device)
        elif task == "translate":
            self.model, self.config, self.vocabs = translate.load_run(run_dir, device)
        else:
            self.model, self.config, self.vocab = caption.load_run(run_dir, device)
        self.defaults = {**DEFAULTS, "length": min(DEFAULTS["length"], limits.max_length)}
        if task == "lm":
            self.defaults["layer"] = self.model.config.layers - 1      # the top layer
        self._slots = threading.BoundedSemaphore(limits.max_concurrent)
        self._count_lock = threading.Lock()
        self.in_flight = self.peak_in_flight = 0

    def describe(self) -> str:
        c = self.model.config
        return f"{self.task}, {c.layers}×{c.hidden} {c.cell.upper()}"

    def info(self) -> dict:
        c = self.model.config
        info = {"task": self.task, "run": self.run_dir.name, "cell": c.cell, "layers": c.layers,
                "hidden": c.hidden,
                "limits": {"max_concurrent": self.limits.max_concurrent,
                           "max_length": self.limits.max_length, "timeout": self.limits.timeout,
                           "max_prime_chars": MAX_PRIME_CHARS, "max_temperature": MAX_TEMPERATURE,
                           "max_sentence_chars": MAX_SENTENCE_CHARS, "max_beam": MAX_BEAM,
                           "max_json_bytes": MAX_JSON_BYTES, "max_image_bytes": MAX_IMAGE_BYTES},
                "defaults": self.defaults}
        if self.task == "lm":
            info.update(gates=list(self.model.rnn.gate_names), level=self.config["data"]["level"],
                        vocab_size=len(self.vocab))
        elif self.task == "translate":
            info.update(attention=None if c.attention == "none" else c.attention,
                        tokens=self.config["data"]["tokens"],
                        vocab_size={side: len(v) for side, v in self.vocabs.items()})
        else:
            info.update(attention=None if c.attention == "none" else c.attention,
                        image_size=c.image_size, grid=c.grid, vocab_size=len(self.vocab))
        return info

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the ``max_concurrent`` generation slots, or refuse with 429."""
        if not self._slots.acquire(blocking=False):
            raise RequestError(429, f"{self.limits.max_concurrent} generation(s) already running, "
                                    f"the server's limit (--max-concurrent); try again shortly",
                               {"Retry-After": str(RETRY_AFTER)})
        with self._count_lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._count_lock:
                self.in_flight -= 1
            self._slots.release()

    def _require(self, task: str, endpoint: str) -> None:
        if self.task != task:
            raise RequestError(409, f"this server runs a {self.task!r} run: {endpoint} needs a "
                                    f"{task!r} run")

    # -- language models ---------------------------------------------------------------------------

    def sample_request(self, body: bytes) -> SampleRequest:
        self._require("lm", "/api/sample")
        obj = parse_json(body, {"prime": STRING, "length": INT, "temperature": NUMBER,
                                "top_k": INT, "top_p": NUMBER, "seed": INT, "layer": INT},
                         required=("prime",))
        prime = obj["prime"]
        if len(prime) > MAX_PRIME_CHARS:
            raise RequestError(400, f"prime has {len(prime)} characters, more than the limit of "
                                    f"{MAX_PRIME_CHARS}")
        length = obj.get("length", self.defaults["length"])
        _check_range("length", length, 1, self.limits.max_length)
        temperature = obj.get("temperature", self.defaults["temperature"])
        try:
            check_sampling(temperature, obj.get("top_k"), obj.get("top_p"))
        except ValueError as exc:
            raise RequestError(400, str(exc)) from None
        if temperature > MAX_TEMPERATURE:
            raise RequestError(400, f"temperature must be at most {MAX_TEMPERATURE}, got {temperature}")
        seed = obj.get("seed", self.defaults["seed"])
        _check_range("seed", seed, 0, MAX_SEED)
        layer = obj.get("layer", self.defaults["layer"])
        _check_range("layer", layer, 0, self.model.config.layers - 1)
        level = self.config["data"]["level"]
        try:
            prime_ids = lm.encode_prime(self.vocab, prime, level, name="prime")
        except UsageError as exc:
            raise RequestError(400, str(exc)) from None
        texts = list(lm.units(prime, level))
        if level == "word":                       # the prime as the model read it: its words
            texts = [texts[0]] + [" " + word for word in texts[1:]]
        return SampleRequest(prime_ids, texts, length, float(temperature), obj.get("top_k"),
                             obj.get("top_p"), seed, layer)

    def sample(self, request: SampleRequest) -> Iterator[dict]:
        """The stream's rows: each prime symbol, then each generated one, with the chosen layer's
        h (H,) and gates (H,) each just after the model read it; then a "done" (or timeout) row."""
        level = self.config["data"]["level"]
        gate_names = self.model.rnn.gate_names
        generator = torch.Generator(device=self.device)
        generator.manual_seed(request.seed)
        start = time.monotonic()
        records = self.model.generate(request.prime_ids, request.length, request.temperature,
                                      request.top_k, request.top_p, generator, record=True)
        generated = 0
        for k, record in enumerate(records):
            if record["prime"]:
                text = request.prime_texts[k]
            else:
                text = lm.symbol_text(self.vocab, record["id"], level)
                generated += 1
            units = record["units"][request.layer]                  # h and gates, (H,) each
            yield {"text": text, "prime": record["prime"], "h": _rounded(units["h"], 3),
                   "gates": {name: _rounded(units[name], 3) for name in gate_names}}
            elapsed = time.monotonic() - start
            if generated < request.length and elapsed > self.limits.timeout:
                yield {"error": f"timeout: the generation ran past {self.limits.timeout:g} s "
                                f"(--timeout) after {generated} of {request.length} symbols"}
                return
        yield {"done": True, "symbols": generated, "seconds": round(time.monotonic() - start, 3)}

    # -- translation --------------------------------------------------------------------------------

    def translate_request(self, body: bytes) -> tuple[str, int]:
        self._require("translate", "/api/translate")
        obj = parse_json(body, {"sentence": STRING, "beam": INT}, required=("sentence",))
        sentence, beam = obj["sentence"], obj.get("beam", self.defaults["beam"])
        if len(sentence) > MAX_SENTENCE_CHARS:
            raise RequestError(400, f"sentence has {len(sentence)} characters, more than the limit "
                                    f"of {MAX_SENTENCE_CHARS}")
        sentence = sentence.strip()
        d = self.config["data"]
        if not sentence_tokens(sentence, d["tokens"], d["lower"]):
            raise RequestError(400, f"sentence has nothing to translate: {obj['sentence']!r}")
        _check_range("beam", beam, 1, MAX_BEAM)
        return sentence, beam

    def translate(self, sentence: str, beam: int) -> dict:
        row, = translate.translate_texts(self.model, self.config, self.vocabs, [sentence], beam,
                                         self.config["length_penalty"], self.device, attention=True)
        if row["attention"] is not None:
            row["attention"] = _rounded(row["attention"], 4)                  # (T, S)
        return row

    # -- captioning ---------------------------------------------------------------------------------

    def caption_request(self, body: bytes, content_type: str) -> np.ndarray:
        self._require("caption", "/api/caption")
        size = self.model.config.image_size
        try:
            return image_from_bytes(body, size, "the uploaded image",
                                    formats=(IMAGE_TYPES[content_type],))           # (3, S, S)
        except DataError as exc:
            raise RequestError(400, str(exc)) from None

    def caption(self, image: np.ndarray) -> dict:
        alpha = self.config["length_penalty"]
        ids, = caption.describe(self.model, image[None], 1, alpha, self.config["data"]["max_output"],
                                self.device)
        pixels = Image.fromarray((image.transpose(1, 2, 0) * 255).round().astype(np.uint8))
        png = io.BytesIO()
        pixels.save(png, "PNG")
        result = {"caption": " ".join(self.vocab.decode(ids)), "grid": self.model.config.grid,
                  "image_size": self.model.config.image_size,
                  "image": "data:image/png;base64," + base64.b64encode(png.getvalue()).decode("ascii"),
                  "tokens": self.vocab.decode(ids + [self.model.config.eos_id]), "attention": None}
        if self.model.decoder.attention is not None:
            (_, tokens, weights), = caption.attention_maps(self.model, self.vocab, image[None],
                                                          [ids], self.device)
            result.update(tokens=tokens, attention=_rounded(weights, 4))            # (T, G, G)
        return result


# ---- HTTP ---------------------------------------------------------------------------------------------

def page() -> bytes:
    return resources.files("rnnkit.viz").joinpath("playground.html").read_bytes()


class Handler(BaseHTTPRequestHandler):
    """One request: route, check, answer. HTTP/1.0: every connection carries one request, and a
    stream ends when the server closes it."""

    server_version = "rnnkit-serve"
    timeout = READ_TIMEOUT
    playground: Playground         # set on the subclass `make_server` builds

    ROUTES: dict[str, tuple[str, str]] = {
        "/": ("GET", "_get_page"), "/api/info": ("GET", "_get_info"),
        "/api/sample": ("POST", "_post_sample"), "/api/translate": ("POST", "_post_translate"),
        "/api/caption": ("POST", "_post_caption"),
    }

    def _handle(self) -> None:
        try:
            self._check_host()
            path = urlsplit(self.path).path
            if path not in self.ROUTES:
                raise RequestError(404, f"no such page: {path} (there are {', '.join(self.ROUTES)})")
            allowed, action = self.ROUTES[path]
            if self.command != allowed:
                raise RequestError(405, f"{path} takes {allowed}, not {self.command}",
                                   {"Allow": allowed})
            getattr(self, action)()
        except RequestError as exc:
            self._send_json(exc.status, {"error": exc.message}, exc.headers)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass                                   # the client left, or was too slow to send
        except Exception as exc:                   # a bug: answer 500, keep serving
            traceback.print_exc(file=sys.stderr)
            self._send_json(500, {"error": f"internal error: {type(exc).__name__}: {exc}"})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _handle

    def send_error(self, code: int, message: Optional[str] = None, explain: Optional[str] = None
                   ) -> None:
        """The standard library's own refusals (a malformed request line, an unknown method,
        headers too long) as JSON too."""
        self.close_connection = True
        self._send_json(code, {"error": message or HTTPStatus(code).phrase})

    def _check_host(self) -> None:
        """While bound to a loopback address, only requests addressed to localhost: another site's
        page must not reach this server by pointing its own name at 127.0.0.1 (DNS rebinding)."""
        if not ipaddress.ip_address(self.server.server_address[0]).is_loopback:
            return
        host = self.headers.get("Host", "")
        name = urlsplit("//" + host).hostname or ""
        if name not in LOCAL_NAMES:
            raise RequestError(403, f"Host {host!r} is not this server: open it as "
                                    f"http://127.0.0.1:{self.server.server_address[1]}/")

    # -- bodies and replies -------------------------------------------------------------------------

    def _body(self, limit: int, content_types: tuple[str, ...]) -> tuple[bytes, str]:
        """The request body (at most ``limit`` bytes) and its content type, one of ``content_types``."""
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type not in content_types:
            raise RequestError(415, f"Content-Type must be {' or '.join(content_types)}, "
                                    f"got {content_type or 'none'!r}")
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise RequestError(411, "a Content-Length is required (chunked bodies are not accepted)")
        declared = self.headers.get("Content-Length")
        if declared is None:
            raise RequestError(411, "a Content-Length is required")
        if not declared.strip().isdigit():
            raise RequestError(400, f"Content-Length must be a number of bytes, got {declared!r}")
        length = int(declared)
        if length > limit:
            if length <= DRAIN_BYTES:    # read it, so that closing does not reset the connection
                self.rfile.read(length)  # before the client has read the reply
            raise RequestError(413, f"the body has {length:,} bytes, more than the limit of "
                                    f"{limit:,} for {self.path}")
        body = self.rfile.read(length)
        if len(body) < length:
            raise RequestError(400, f"the body ended after {len(body)} of {length} bytes")
        return body, content_type

    def _json_body(self) -> bytes:
        return self._body(MAX_JSON_BYTES, ("application/json",))[0]

    def _send(self, status: int, body: bytes, content_type: str, headers: Optional[dict] = None
              ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self._common_headers(headers)
        self.wfile.write(body)

    def _common_headers(self, headers: Optional[dict] = None) -> None:
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def _send_json(self, status: int, obj: dict, headers: Optional[dict] = None) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"),
                   "application/json; charset=utf-8", headers)

    # -- the routes ---------------------------------------------------------------------------------

    def _get_page(self) -> None:
        self._send(200, page(), "text/html; charset=utf-8", {
            "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
                                       "style-src 'unsafe-inline'; img-src 'self' data:"})

    def _get_info(self) -> None:
        self._send_json(200, self.playground.info())

    def _post_sample(self) -> None:
        request = self.playground.sample_request(self._json_body())
        with self.playground.slot():
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson; charset=utf-8")
            self._common_headers()
            rows = self.playground.sample(request)
            try:
                for row in rows:           # flushed line by line: the page shows them as they come
                    self._write_line(row)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                raise                      # the client left: nobody to tell
            except Exception as exc:       # a bug mid-stream: the status line is sent, so say it here
                traceback.print_exc(file=sys.stderr)
                self._write_line({"error": f"internal error: {type(exc).__name__}: {exc}"})
            finally:
                rows.close()

    def _write_line(self, row: dict) -> None:
        self.wfile.write(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
        self.wfile.flush()

    def _post_translate(self) -> None:
        sentence, beam = self.playground.translate_request(self._json_body())
        with self.playground.slot():
            self._send_json(200, self.playground.translate(sentence, beam))

    def _post_caption(self) -> None:
        body, content_type = self._body(MAX_IMAGE_BYTES, tuple(IMAGE_TYPES))
        image = self.playground.caption_request(body, content_type)
        with self.playground.slot():
            self._send_json(200, self.playground.caption(image))


def make_server(playground: Playground, host: str = "127.0.0.1", port: int = 8000
                ) -> ThreadingHTTPServer:
    """A server for ``playground`` listening on host:port (port 0: any free one); not yet serving."""
    handler = type("PlaygroundHandler", (Handler,), {"playground": playground})
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(args: argparse.Namespace) -> int:
    """The ``serve`` verb: load the run, print the URL, serve until Ctrl-C."""
    limits = Limits(args.max_concurrent, args.max_length, args.timeout)
    playground = Playground(args.run_dir, resolve_device(args.device), limits)
    server = make_server(playground, args.host, args.port)
    host, port = server.server_address[:2]
    print(f"serving {args.run_dir} ({playground.describe()}) at http://{host}:{port}/ "
          f"— Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("rnnkit: stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0
