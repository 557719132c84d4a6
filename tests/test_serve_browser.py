"""The playground page end to end in headless Chromium (Debian's ``chromium``): autostarted from its
URL, it streams the same text as ``rnnkit sample`` with that seed, one span per symbol coloured by
the chosen unit; choosing another unit re-colours it; hovering shows the unit's values; a bad
setting shows the server's message."""
from __future__ import annotations

import html.parser
import math
from pathlib import Path
from urllib.parse import urlencode

import pytest

from chromium import CHROMIUM, Browser
from rnnkit.cli import main
from serve_helpers import running, stream, train_tiny_lm

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"headless Chromium ({CHROMIUM}) is not "
                       f"installed: `apt-get install chromium` (Debian), or `make test` as root"),
    pytest.mark.usefixtures("single_thread"),
]

FINISHED = "['done', 'error'].includes(document.getElementById('status').dataset.state)"


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory, single_thread) -> Path:
    return train_tiny_lm(tmp_path_factory.mktemp("browser"))


class TextSpans(html.parser.HTMLParser):
    """The spans inside <pre id="text">: (text, style, class) each."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[list[str]] = []
        self.inside = self.in_span = False
        self.status: dict = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "p" and attrs.get("id") == "status":
            self.status = attrs
        if tag == "pre" and attrs.get("id") == "text":
            self.inside = True
        elif tag == "span" and self.inside:
            self.in_span = True
            self.spans.append(["", attrs.get("style", ""), attrs.get("class") or ""])

    def handle_endtag(self, tag):
        if tag == "span":
            self.in_span = False
        elif tag == "pre":
            self.inside = False

    def handle_data(self, data):
        if self.in_span:
            self.spans[-1][0] += data


def colour(value: float) -> str:
    """The page's colour for an activation, as the DOM writes it (JavaScript's Math.round)."""
    x = max(-1.0, min(1.0, value))
    fade = math.floor(255 * (1 - abs(x)) + 0.5)
    return f"rgb(255, {fade}, {fade})" if x >= 0 else f"rgb({fade}, {fade}, 255)"


def test_the_page_streams_the_sample_as_coloured_spans(lm_run, capsys):
    settings = {"prime": "ANNA:\n", "length": 150, "temperature": 0.8, "seed": 11}
    with running(lm_run) as (port, _), Browser(timeout=60) as browser:
        browser.open(f"http://127.0.0.1:{port}/?{urlencode(settings)}&unit=3&autostart=1")
        browser.wait_until(FINISHED)
        page = TextSpans()
        page.feed(browser.dom())
        rows = stream(port, settings)[:-1]                   # the values behind the colours

        # Choosing another unit re-colours every symbol by that unit.
        recoloured = browser.evaluate("""(() => { const unit = document.getElementById('unit');
            unit.value = 5; unit.dispatchEvent(new Event('input'));
            return [...document.querySelectorAll('#text span')].map((s) => s.style.backgroundColor);
        })()""")
        # Hovering a symbol shows the unit's h and gates there.
        panel = browser.evaluate("""(() => { const span = document.querySelectorAll('#text span')[20];
            span.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
            return document.getElementById('panel').innerText; })()""")

        browser.open(f"http://127.0.0.1:{port}/?{urlencode({**settings, 'temperature': 9})}&autostart=1")
        browser.wait_until(FINISHED)
        refused = browser.evaluate("document.getElementById('status').dataset.state + ': ' + "
                                   "document.getElementById('status').textContent")

    assert page.status["data-state"] == "done", page.status
    capsys.readouterr()
    assert main(["sample", str(lm_run), "--prime", settings["prime"], "--length", "150",
                 "--temperature", "0.8", "--seed", "11"]) == 0
    expected = capsys.readouterr().out[:-1]
    assert "".join(text for text, _, _ in page.spans) == expected
    assert len(page.spans) == len(rows) == len("ANNA:\n") + 150
    assert [cls == "prime" for _, _, cls in page.spans] == [row["prime"] for row in rows]
    assert [style for _, style, _ in page.spans] == [f"background-color: {colour(row['h'][3])};"
                                                     for row in rows]
    assert recoloured == [colour(row["h"][5]) for row in rows]
    assert recoloured != [colour(row["h"][3]) for row in rows]
    assert "unit 5 (layer 2)" in panel and f"{rows[20]['h'][5]:.3f}" in panel, panel
    assert refused == "error: temperature must be at most 5.0, got 9"
