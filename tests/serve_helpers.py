"""What the `rnnkit serve` tests share: a tiny trained language-model run, a server on a free
loopback port in a background thread, and an HTTP client that shows every status and header."""
from __future__ import annotations

import contextlib
import http.client
import json
import random
import threading
from pathlib import Path
from typing import Iterator, Optional

from rnnkit.cli import main
from rnnkit.serve import Limits, Playground, make_server
from rnnkit.tasks.common import resolve_device

WORDS = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "it"]


def train_tiny_lm(out: Path, level: str = "char") -> Path:
    """A 2-layer, 16-unit LSTM (``level``: char or word) trained for one epoch on a little play it
    writes: lower-case words, ``ANNA:`` / ``BOB:``, spaces, full stops and newlines (never a Z)."""
    rng = random.Random(0)
    lines = []
    for _ in range(60):
        lines.append(rng.choice(["ANNA:", "BOB:"]))
        lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))) + ".")
    corpus = out / "play.txt"
    out.mkdir(parents=True, exist_ok=True)
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = out / f"lm-{level}"
    assert main(["train", "lm", "--text", str(corpus), "--level", level, "--min-count", "1",
                 "--epochs", "1", "--hidden", "16",
                 "--embed", "8", "--layers", "2", "--batch-size", "4", "--seq-len", "16",
                 "--log-every", "100", "--precision", "fp32", "--out", str(run)]) == 0
    return run


@contextlib.contextmanager
def running(run: Path, **limits) -> Iterator[tuple[int, Playground]]:
    """Serve ``run`` on 127.0.0.1 at a free port: yields (port, playground), then shuts down."""
    playground = Playground(run, resolve_device("cpu"), Limits(**limits))
    server = make_server(playground, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server.server_address[1], playground
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def call(port: int, method: str, path: str, body: bytes | str | dict | None = None,
         headers: Optional[dict] = None, timeout: float = 10.0
         ) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request: (status, headers, body). A dict body is sent as JSON, with its content type."""
    headers = dict(headers or {})
    if isinstance(body, dict):
        body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode("utf-8")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def error_of(reply: tuple[int, http.client.HTTPMessage, bytes]) -> tuple[int, str]:
    status, headers, body = reply
    assert headers["Content-Type"].startswith("application/json"), headers
    return status, json.loads(body)["error"]


def stream(port: int, request: dict, timeout: float = 10.0) -> list[dict]:
    """POST /api/sample and return its NDJSON rows (the reply must be 200)."""
    status, headers, body = call(port, "POST", "/api/sample", request, timeout=timeout)
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in body.decode("utf-8").splitlines()]


def streamed_text(rows: list[dict]) -> str:
    assert rows[-1].get("done") is True, rows[-1]
    return "".join(row["text"] for row in rows[:-1])
