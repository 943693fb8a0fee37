"""The documented runbook (bench/runbook.sh), measured from outside."""

from __future__ import annotations

from pathlib import Path

from .commands import run
from .config import RUNBOOK, TARGET_VERSION
from .observe import observe
from .phases import clipped, durations, intervals, runbook_markers
from .sandbox import Deployment


def upgrade(deployment: Deployment, backup: Path, logs: Path) -> dict[str, object]:
    argv = [str(RUNBOOK), str(deployment.dir), TARGET_VERSION, str(backup)]
    completed, observed = observe(
        [deployment], lambda: run(argv, log=logs / f"{deployment.name}.runbook.log"), TARGET_VERSION
    )
    downtime = observed.downtime[deployment.name]
    phases = intervals(runbook_markers(completed.stderr), completed.finished, final="healthy")
    problems = []
    if completed.returncode != 0:
        problems.append(f"runbook.sh exited {completed.returncode}: {completed.tail(5)}")
    if downtime.seconds is None:
        problems.append(f"/healthz did not answer 200 with {TARGET_VERSION} after the runbook")
    return {
        "method": "runbook",
        "ok": not problems,
        "problems": problems,
        "returncode": completed.returncode,
        "wall_seconds": round(completed.seconds, 3),
        "downtime_seconds": None if downtime.seconds is None else round(downtime.seconds, 3),
        "downtime": observed.downtime_dict(deployment.name),
        "phases": durations(phases),
        "downtime_phases": clipped(phases, downtime.down_at, downtime.up_at),
        "log": completed.log,
    }
