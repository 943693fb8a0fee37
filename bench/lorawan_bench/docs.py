"""Keeps the generated part of docs/performance.md (between two markers) on the latest full results."""

from __future__ import annotations

import os
from pathlib import Path

from .config import PERFORMANCE_DOC

BEGIN = "<!-- bench:results:begin (written by bench/run; edit outside these markers) -->"
END = "<!-- bench:results:end -->"


def update(markdown: str, results_json: Path, plot: Path, doc: Path = PERFORMANCE_DOC) -> bool:
    """Replace the text between the markers; False when the page has no markers."""
    text = doc.read_text()
    if BEGIN not in text or END not in text:
        return False
    relative_plot = os.path.relpath(plot, doc.parent)
    relative_json = os.path.relpath(results_json, doc.parent)
    body = markdown.replace(f"]({plot.name})", f"]({relative_plot})")
    section = f"{BEGIN}\n\nLatest full run: [{results_json.name}]({relative_json}).\n\n{body}\n{END}"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    doc.write_text(head + section + tail)
    return True
