# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The record of an upgrade run, made from its journal: what it did, each phase's seconds, the downtime, a one-line
summary and, for a failed run, the message that says where the data is and what to do."""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

from ansible_collections.lorawan.tts.plugins.module_utils.backup_manifest import BackupManifestError
from ansible_collections.lorawan.tts.plugins.module_utils.backup_manifest import load as load_manifest
from ansible_collections.lorawan.tts.plugins.module_utils.journal import run_state

SUMMARY_FAILURE_LIMIT = 300
SERVING = "serving"
# Marks where the stack goes down: the upgrade's stop, and the stop of a rollback after the new version served.
DOWN = ("stop", "rollback stop")


class RecordError(Exception):
    pass


def iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def file_name(report: Dict[str, Any]) -> str:
    """<started, compact>_<result>.json"""
    return "%s_%s.json" % (report["started"].replace("-", "").replace(":", ""), report["result"])


def phase_timings(marks: List[List[Any]], now: float) -> Dict[str, Any]:
    """[[phase, started at], ...] -> seconds per phase (a phase lasts until the next mark) and the downtime.

    A `stop` or `rollback stop` mark starts an outage (unless one is going on) and the next `serving` mark ends
    it; the downtime is the sum of the outages. `serving` itself is no phase. A phase entered twice adds up.
    """
    try:
        points = [(str(name), float(at)) for name, at in marks] + [("", float(now))]
    except (TypeError, ValueError) as error:
        raise RecordError("the journal's marks are not [[name, timestamp], ...]: %s" % error) from error
    timings: Dict[str, float] = {}
    for (name, started), (dummy_next, ended) in zip(points, points[1:]):  # noqa: B905, RUF007 (Python < 3.10)
        if name != SERVING:
            timings[name] = round(timings.get(name, 0.0) + ended - started, 1)
    downtime, down_since = None, None
    for name, at in points[:-1]:
        if name in DOWN and down_since is None:
            down_since = at
        elif name == SERVING and down_since is not None:
            downtime = (downtime or 0.0) + at - down_since
            down_since = None
    if down_since is not None:
        downtime = (downtime or 0.0) + float(now) - down_since
    return {"timings": timings, "downtime_seconds": None if downtime is None else round(downtime, 1)}


def phase_line(timings: Dict[str, float]) -> str:
    return ", ".join("%s %.1f s" % (name, seconds) for name, seconds in timings.items())


def summary(report: Dict[str, Any]) -> str:
    host, result = report["host"], report["result"]
    if result == "already-current":
        return "%s: already-current (%s runs, nothing changed)" % (host, report["to"])
    line = "%s: %s %s -> %s" % (host, result, report["from"], report["to"])
    if result == "upgraded":
        line += " via %s" % " -> ".join(report["hops"])
    else:
        failure = report["failure"] or "failed"
        line += ": %s" % (
            failure if len(failure) <= SUMMARY_FAILURE_LIMIT else failure[: SUMMARY_FAILURE_LIMIT - 3] + "..."
        )
    if report.get("downtime_seconds") is not None:
        line += ", downtime %.1f s" % report["downtime_seconds"]
    if report.get("timings"):
        line += " (%s)" % phase_line(report["timings"])
    if report.get("backup"):
        line += ", backup %s" % report["backup"]["path"]
    if report.get("notes"):
        line += " [%s]" % "; ".join(report["notes"])
    return line


def sentence(text: Optional[str]) -> str:
    """The text ending as a sentence, for one that another sentence follows."""
    text = (text or "").rstrip()
    return text if text.endswith((".", "!", "?")) else text + "."


def failure_message(report: Dict[str, Any], snapshot: str, rollback_enabled: bool) -> str:
    where = "%s (%s)" % (report["host"], report["project_dir"])
    failure = report["failure"]
    if not report["stopped"]:
        return "The upgrade of %s to %s failed before anything was stopped or changed: %s" % (
            where,
            report["to"],
            failure,
        )
    if report["result"] == "rolled-back":
        return (
            "The upgrade of %s from %s to %s failed at %s It was ROLLED BACK: %s runs again%s (downtime %.1f s).%s"
            % (
                where,
                report["from"],
                report["to"],
                sentence(failure),
                report["from"],
                " with the data captured before the upgrade"
                if report["captured"]
                else " (nothing had been changed yet)",
                report["downtime_seconds"] or 0,
                " The backup taken before the upgrade is %s." % report["backup"]["path"]
                if report.get("backup")
                else "",
            )
        )
    if report["captured"]:
        parts = "the backup %s%s" % (
            report["backup"]["path"] if report.get("backup") else "of this run",
            ": restore it with lorawan.tts.restore (tts_restore_from)" if report.get("backup") else "",
        )
        if snapshot and not report.get("backup"):
            parts = (
                "the pre-upgrade database is Postgres database %s (put it back with lorawan.tts.postgres_snapshot, "
                "state=restored), Redis and the files are in this run's backup directory (lorawan.tts.redis_restore, "
                "lorawan.tts.backup_files state=restored)" % snapshot
            )
        data = "Nothing was lost: %s." % parts
    else:
        data = "No backup was needed yet: the compose file and the databases were not changed; start the stack again."
    if not rollback_enabled:
        return (
            "The upgrade of %s from %s to %s failed at %s It was NOT rolled back (tts_rollback_on_failure=false): the "
            "stack is stopped or half migrated. %s" % (where, report["from"], report["to"], sentence(failure), data)
        )
    return "ROLLBACK FAILED on %s: the upgrade from %s to %s failed at %s and then the rollback failed: %s The " % (
        where,
        report["from"],
        report["to"],
        failure,
        sentence(report["rollback_failure"] or "the run ended before it could roll back"),
    ) + (
        "stack is stopped. Fix the cause, then run the upgrade again (the same playbook and inventory): it takes this "
        "run over from the journal %s/.lorawan-tts.journal and finishes the rollback from the capture. %s"
        % (report["project_dir"], data)
    )


def sealed_backup(path: str) -> Optional[Dict[str, Any]]:
    """The path, size and file count of the backup in path when it has a complete manifest, else None."""
    if not path:
        return None
    try:
        files = load_manifest(path)["files"]
    except (BackupManifestError, OSError):
        return None
    return {"path": path, "size": sum(int(entry.get("size") or 0) for entry in files.values()), "files": len(files)}


def build(
    record: Dict[str, Any],
    project_dir: str,
    now: float,
    outcome: str = "",
    rollback_enabled: bool = True,
) -> Dict[str, Any]:
    """The report of the run in record (a journal, or what a run without one knows: host, started, from, to,
    edition, hops, failure), as of now; outcome overrides the one the record implies (already-current)."""
    state = run_state(record)
    cutover = record.get("cutover") or {}
    try:
        report = {
            "host": record["host"],
            "project_dir": project_dir,
            # A journal of an older release of the collection holds the start as text already.
            "started": record["started"]
            if isinstance(record["started"], str) and "T" in record["started"]
            else iso(float(record["started"])),
            "finished": iso(now),
            "result": outcome or state["outcome"],
            "edition": record.get("edition") or cutover.get("edition"),
            "from": record["from"],
            "to": record["to"],
            "hops": record.get("hops") or cutover.get("hops") or [],
            "migrations": record.get("migrations") or [],
            "stopped": state["stopped"],
            "captured": state["captured"],
            "backup": sealed_backup(cutover.get("dest") or ""),
            "failure": record.get("failure") or None,
            "rollback_failure": record.get("rollback_failure") or None,
            "marks": record.get("marks") or [],
            "notes": [str(note) for note in record.get("notes") or []],
        }
    except (KeyError, TypeError, ValueError) as error:
        raise RecordError("the run's record lacks %s" % error) from error
    report.update(phase_timings(report["marks"], now))
    report["summary"] = summary(report)
    if report["result"] not in ("upgraded", "already-current"):
        report["message"] = failure_message(report, cutover.get("snapshot") or "", rollback_enabled)
    return report
