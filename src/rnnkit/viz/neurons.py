"""The neuron viewer: a text with every character coloured by one hidden unit's activation, as in
Karpathy, Johnson & Fei-Fei (2015), "Visualizing and understanding recurrent networks".

One self-contained HTML file (inline CSS and script, no network): a menu of units (those the lab
ranked best for each property, and any the user asked for), the text coloured by the chosen one
(red positive, blue negative, white near zero), the value under the pointer, and the ranking table.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

from ..files import atomic_write_text

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
 #text { font-family: ui-monospace, monospace; font-size: 13px; line-height: 1.5;
         white-space: pre-wrap; border: 1px solid #ddd; padding: .8em; max-width: 110ch; }
 #text span.nl { color: #bbb; }
 #value { font-family: ui-monospace, monospace; min-height: 1.4em; }
 table { border-collapse: collapse; margin-top: 1em; font-size: 13px; }
 td, th { border-bottom: 1px solid #eee; padding: .2em .6em; text-align: left; }
 td a { cursor: pointer; color: #14c; }
</style></head><body>
<h2>__TITLE__</h2>
<p>Colour by <select id="trace"></select> <span id="value"></span></p>
<div id="text"></div>
<h3>Units that track simple properties (Pearson r over the text)</h3>
<table id="ranking"><tr><th>activation</th><th>property</th><th>best units</th></tr></table>
<script>
const DATA = __DATA__;
const text = document.getElementById("text"), select = document.getElementById("trace");
const value = document.getElementById("value");
const spans = Array.from(DATA.text, (ch, k) => {
  const s = document.createElement("span");
  if (ch === "\\n") { s.textContent = "\\u21b5\\n"; s.className = "nl"; } else { s.textContent = ch; }
  s.dataset.k = k;
  text.appendChild(s);
  return s;
});
function colour(v) {           // v in [-1, 1]: blue (negative) - white - red (positive)
  const a = Math.min(1, Math.abs(v)), c = Math.round(255 * (1 - a));
  return v >= 0 ? `rgb(255,${c},${c})` : `rgb(${c},${c},255)`;
}
function show(name) {
  const trace = DATA.traces[name];
  spans.forEach((s, k) => { s.style.background = colour(trace[k]); });
  select.value = name;
}
const tracks = {};             // "tanh(c) 503" -> "speaker name r=+0.90", from the ranking
for (const [src, ranking] of Object.entries(DATA.rankings))
  for (const [prop, r] of Object.entries(ranking))
    for (const e of r.units) tracks[`${src} ${e.unit}`] ??= `${prop} r=${e.r.toFixed(2)}`;
Object.keys(DATA.traces).forEach(name =>
  select.add(new Option(tracks[name] ? `${name}: ${tracks[name]}` : name, name)));
select.onchange = () => show(select.value);
text.onmouseover = e => {
  const k = e.target.dataset.k;
  if (k !== undefined) value.textContent =
    `${JSON.stringify(DATA.text[k])} at ${k}: ${select.value} = ${DATA.traces[select.value][k]}`;
};
const table = document.getElementById("ranking");
for (const [src, ranking] of Object.entries(DATA.rankings)) {
  for (const [prop, r] of Object.entries(ranking)) {
    const row = table.insertRow();
    row.insertCell().textContent = src;
    row.insertCell().textContent = prop;
    const cell = row.insertCell();
    if (r.constant) { cell.textContent = "constant in this text"; continue; }
    r.units.forEach(e => {
      const a = document.createElement("a");
      a.textContent = `${e.unit} (${e.r >= 0 ? "+" : ""}${e.r.toFixed(2)})`;
      a.onclick = () => show(`${src} ${e.unit}`);
      cell.append(a, " ");
    });
  }
}
show(DATA.first);
</script></body></html>
"""


def write_neuron_page(path: Path, text: str, traces: dict[str, list[float]], rankings: dict,
                      first: str, title: str) -> None:
    """``traces`` maps a unit's name ("h 37", "tanh(c) 5") to its value at every character."""
    if first not in traces:
        raise ValueError(f"first trace {first!r} is not among the traces")
    # "<" escaped so that no text (e.g. "</script>") can end the script element.
    data = json.dumps({"text": text, "traces": traces, "rankings": rankings, "first": first},
                      ensure_ascii=False).replace("<", "\\u003c")
    page = _PAGE.replace("__TITLE__", html.escape(title)).replace("__DATA__", data)
    atomic_write_text(Path(path), page)
