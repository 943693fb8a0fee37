"""The PNG: downtime per phase, stacked, runbook vs ours vs floor, per size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt

from .summary import size_rows

BARS = (("runbook", "runbook_phases", "runbook"), ("ours", "ours_phases", "ours"), ("floor", "floor_steps", "floor"))


def plot(results: dict[str, Any], path: Path) -> None:
    rows = size_rows(results)
    names: list[str] = []
    for row in rows:
        for _label, key, _total in BARS:
            names += [name for name in row[key] if name not in names]
    names.append("unattributed")
    colours = {name: plt.get_cmap("tab20")(index % 20) for index, name in enumerate(names)}
    figure, axes = plt.subplots(figsize=(max(7.5, 2.4 * len(rows) + 3.0), 5.0))
    width = 0.8
    ticks, labels = [], []
    used: set[str] = set()
    for group, row in enumerate(rows):
        for offset, (label, key, total_key) in enumerate(BARS):
            x = group * (len(BARS) + 1) + offset
            phases = dict(row[key])
            total = row[total_key]
            if total is not None and total - sum(phases.values()) > 0.05:
                phases["unattributed"] = total - sum(phases.values())
            bottom = 0.0
            for name, value in phases.items():
                axes.bar(x, value, width, bottom=bottom, color=colours[name], label=None if name in used else name)
                used.add(name)
                bottom += value
            if total is not None:
                axes.annotate(f"{total:.1f} s", (x, max(bottom, total)), ha="center", va="bottom", fontsize=8)
            ticks.append(x)
            labels.append(f"{label}\n{row['size']}")
    axes.set_xticks(ticks, labels, fontsize=8)
    axes.set_ylabel("downtime (s), median")
    versions = results["versions"]
    axes.set_title(
        f"Upgrade {versions['from']} → {versions['to']}: downtime per phase (runbook, ours, floor)", fontsize=10
    )
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="phase", title_fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
