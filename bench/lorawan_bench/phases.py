"""Phases on a time line: from runbook markers or playbook task starts, clipped to the measured downtime."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

RUNBOOK_MARKER = re.compile(r"^runbook-phase (\S+) (\d+(?:\.\d+)?)$", re.MULTILINE)
# Task names are "<Role> | <phase> | <what>", prefixed by "<collection role> : " when Ansible prints them.
TASK_NAME = re.compile(r"^(?:\S+ : )?(\w+) \| ([\w -]+?) \|")


@dataclass(frozen=True)
class Interval:
    name: str
    start: float
    end: float


def runbook_markers(stderr: str) -> list[tuple[str, float]]:
    return [(match.group(1), float(match.group(2))) for match in RUNBOOK_MARKER.finditer(stderr)]


def intervals(marks: list[tuple[str, float]], end: float, final: str | None = None) -> list[Interval]:
    """Each mark lasts until the next one; the last until `end`. A mark named `final` only ends the one before."""
    result = []
    for index, (name, start) in enumerate(marks):
        if name == final:
            break
        stop = marks[index + 1][1] if index + 1 < len(marks) else end
        result.append(Interval(name, start, max(start, stop)))
    return merge(result)


def merge(items: list[Interval]) -> list[Interval]:
    """Join neighbours with the same name."""
    merged: list[Interval] = []
    for item in items:
        if merged and merged[-1].name == item.name:
            merged[-1] = Interval(item.name, merged[-1].start, item.end)
        else:
            merged.append(item)
    return merged


def durations(items: list[Interval]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for item in items:
        totals[item.name] = round(totals.get(item.name, 0.0) + item.end - item.start, 3)
    return totals


def clipped(items: list[Interval], start: float | None, end: float | None) -> dict[str, float]:
    """Seconds of each phase inside [start, end] (the outside-measured downtime), in time order."""
    if start is None or end is None:
        return {}
    totals: dict[str, float] = {}
    for item in items:
        inside = min(item.end, end) - max(item.start, start)
        if inside > 0:
            totals[item.name] = round(totals.get(item.name, 0.0) + inside, 3)
    return totals


def task_phase(name: str, current: str) -> str:
    """The phase a playbook task belongs to, from its name; tasks without one (includes) stay in the current one."""
    match = TASK_NAME.match(name)
    if match is None:
        return current
    role, phase = match.group(1).lower(), match.group(2).strip().lower().replace(" ", "_")
    if role == "upgrade":
        return current if phase == "main" else phase
    # The backup or restore role's tasks, included by a phase of the upgrade: backup_capture, rollback_restore_apply.
    label = role if phase in ("main", role) else f"{role}_{phase}"
    return f"rollback_{label}" if current.startswith("rollback") else label


def playbook_marks(timeline: Path) -> tuple[list[tuple[str, float]], float | None]:
    """Phase marks from the bench_timeline callback's file, and when the playbook ended."""
    marks: list[tuple[str, float]] = []
    end = None
    current = "start_of_play"
    if not timeline.exists():
        return marks, end
    for line in timeline.read_text().splitlines():
        event = json.loads(line)
        if event["event"] == "end":
            end = float(event["at"])
            continue
        current = task_phase(str(event["name"]), current)
        marks.append((current, float(event["at"])))
    return marks, end
