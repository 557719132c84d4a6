"""Drive headless Chromium (Debian's ``chromium``) over the DevTools protocol on a pipe: open a
page, wait in real time until a JavaScript condition holds, return the DOM, optionally save a
screenshot.

Why not ``chromium --headless --virtual-time-budget=… --dump-dom URL``: virtual time waits for
pending network loads, but not for a body read through ``fetch`` + ``ReadableStream``, so the dump
comes before a stream has arrived (checked with Chromium 156: not one streamed line in the DOM).

The protocol: with ``--remote-debugging-pipe`` Chromium reads commands from fd 3 and writes replies
and events to fd 4, each a JSON object ending in a NUL byte.

    python tests/chromium.py URL --wait 'JS expression' --screenshot out.png --size 1200x800
"""
from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-pipe"]


class ChromiumError(RuntimeError):
    pass


def _above_4(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 5)
    os.close(fd)
    return high


class Browser:
    """One headless Chromium with a fresh profile; use as a context manager."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.deadline = time.monotonic() + timeout
        self.profile = tempfile.mkdtemp(prefix="rnnkit-chromium-")
        to_browser, self._send_fd = os.pipe()
        self._reply_fd, from_browser = os.pipe()
        # Chromium's ends moved above 4 (so that they are not 3 or 4 already); the shell puts them
        # on fds 3 and 4, closes the originals, and becomes Chromium (bash: dash takes no fd above 9).
        to_browser, from_browser = (_above_4(fd) for fd in (to_browser, from_browser))
        on_3_and_4 = f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser} {to_browser}<&- {from_browser}>&-'
        self.process = subprocess.Popen(
            ["/bin/bash", "-c", on_3_and_4, str(CHROMIUM), *FLAGS, f"--user-data-dir={self.profile}",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(to_browser, from_browser))
        os.close(to_browser)
        os.close(from_browser)
        self._buffer, self._next_id, self.session, self._events = b"", 0, None, []

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.process.kill()
            self.process.wait(timeout=10)
        finally:
            os.close(self._send_fd)
            os.close(self._reply_fd)
            shutil.rmtree(self.profile, ignore_errors=True)

    # -- the protocol ---------------------------------------------------------------------------------

    def _message(self) -> dict:
        while b"\0" not in self._buffer:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self._reply_fd], [], [], left)[0]:
                raise ChromiumError("Chromium did not answer in time")
            chunk = os.read(self._reply_fd, 1 << 20)
            if not chunk:
                raise ChromiumError(f"Chromium exited (status {self.process.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, **params) -> dict:
        """Send one command (to the attached page, once there is one) and return its result."""
        self._next_id += 1
        command = {"id": self._next_id, "method": method, "params": params}
        if self.session:
            command["sessionId"] = self.session
        os.write(self._send_fd, json.dumps(command).encode() + b"\0")
        while True:
            message = self._message()
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise ChromiumError(f"{method}: {message['error']}")
                return message["result"]
            if "method" in message:
                self._events.append(message)        # an event that came first: kept for later

    def wait_for_event(self, method: str) -> dict:
        while True:
            message = self._events.pop(0) if self._events else self._message()
            if message.get("method") == method:
                return message.get("params", {})

    # -- what the tests do -------------------------------------------------------------------------

    def open(self, url: str, width: int = 1200, height: int = 800) -> None:
        """Load ``url`` in the browser's one tab (a window of width × height CSS pixels)."""
        if self.session is None:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.call("Target.attachToTarget", targetId=target,
                                     flatten=True)["sessionId"]
            self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", url=url)
        self.wait_for_event("Page.loadEventFired")

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True,
                           returnByValue=True)
        if "exceptionDetails" in result:
            raise ChromiumError(f"{expression[:60]}…: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_until(self, condition: str, poll: float = 0.05) -> None:
        """Poll the JavaScript ``condition`` until it is true (or the browser's deadline passes)."""
        while not self.evaluate(condition):
            if time.monotonic() > self.deadline:
                raise ChromiumError(f"still not true: {condition}")
            time.sleep(poll)

    def dom(self) -> str:
        return self.evaluate("document.documentElement.outerHTML")

    def screenshot(self, path: Path) -> None:
        Path(path).write_bytes(base64.b64decode(self.call("Page.captureScreenshot",
                                                          format="png")["data"]))


def main(argv: Optional[list[str]] = None) -> None:
    p = argparse.ArgumentParser(description="a screenshot of a page once a condition holds")
    p.add_argument("url")
    p.add_argument("--wait", default="true", help="a JavaScript condition to wait for")
    p.add_argument("--screenshot", type=Path, required=True, metavar="PNG")
    p.add_argument("--size", default="1200x800", help="window WIDTHxHEIGHT")
    p.add_argument("--timeout", type=float, default=120.0)
    args = p.parse_args(argv)
    width, height = (int(x) for x in args.size.split("x"))
    with Browser(args.timeout) as browser:
        browser.open(args.url, width, height)
        browser.wait_until(args.wait)
        browser.screenshot(args.screenshot)


if __name__ == "__main__":
    main()
