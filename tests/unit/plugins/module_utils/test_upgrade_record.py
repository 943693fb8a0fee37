"""The upgrade's report, made from the run's journal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.lorawan.tts.plugins.module_utils.upgrade_record import (
    RecordError,
    build,
    failure_message,
    file_name,
    phase_timings,
    summary,
)


def test_phase_timings_and_downtime() -> None:
    marks = [["preflight", "100.0"], ["stop", 103.0], ["backup", 104.5], ["migrate 3.32.0", 105.0]]
    marks += [["verify", 107.0], ["serving", 107.5], ["seal", 107.5]]
    result = phase_timings(marks, 110.0)
    assert result["timings"] == {
        "preflight": 3.0,
        "stop": 1.5,
        "backup": 0.5,
        "migrate 3.32.0": 2.0,
        "verify": 0.5,
        "seal": 2.5,
    }
    assert result["downtime_seconds"] == 4.5


def test_a_rollback_after_the_new_version_served_adds_its_outage() -> None:
    marks = [
        ["stop", 10.0],
        ["start", 12.0],
        ["serving", 13.0],
        ["seal", 13.0],
        ["rollback stop", 20.0],
        ["rollback start", 21.0],
        ["serving", 22.5],
        ["rollback seal", 22.5],
    ]
    result = phase_timings(marks, 30.0)
    assert result["downtime_seconds"] == 5.5
    assert result["timings"]["seal"] == 7.0


def test_a_rollback_within_the_outage_does_not_count_twice() -> None:
    marks = [["stop", 10.0], ["migrate 3.32.0", 11.0], ["rollback stop", 12.0], ["serving", 14.0]]
    assert phase_timings(marks, 15.0)["downtime_seconds"] == 4.0


def test_phase_timings_without_a_stop_or_a_return() -> None:
    assert phase_timings([["preflight", 1.0]], 3.0) == {"timings": {"preflight": 2.0}, "downtime_seconds": None}
    assert phase_timings([["stop", 1.0], ["rollback", 2.0]], 5.0)["downtime_seconds"] == 4.0
    with pytest.raises(RecordError):
        phase_timings([["stop"]], 1.0)


REPORT = {
    "host": "tts-1",
    "project_dir": "/srv/tts",
    "result": "upgraded",
    "from": "3.31.1",
    "to": "3.32.0",
    "hops": ["3.32.0"],
    "stopped": True,
    "captured": True,
    "failure": None,
    "rollback_failure": None,
    "backup": {"path": "/var/backups/lorawan-tts/tts-1/x"},
    "timings": {"stop": 0.5, "backup": 1.0},
    "downtime_seconds": 4.2,
}


def test_summary_of_an_upgrade_has_the_downtime_and_the_phases() -> None:
    assert summary(REPORT) == (
        "tts-1: upgraded 3.31.1 -> 3.32.0 via 3.32.0, downtime 4.2 s (stop 0.5 s, backup 1.0 s), "
        "backup /var/backups/lorawan-tts/tts-1/x"
    )


def test_failure_messages_say_where_the_data_is() -> None:
    rolled_back = failure_message(dict(REPORT, result="rolled-back", failure="migrate: exit 1."), "", True)
    assert "ROLLED BACK: 3.31.1 runs again with the data captured before the upgrade" in rolled_back
    assert "The backup taken before the upgrade is /var/backups/lorawan-tts/tts-1/x." in rolled_back
    failed = failure_message(
        dict(REPORT, result="failed", failure="migrate: exit 1.", rollback_failure="redis is down.", backup=None),
        "ttn_lorawan_snapshot_x",
        True,
    )
    assert failed.startswith("ROLLBACK FAILED on tts-1 (/srv/tts)")
    assert "database ttn_lorawan_snapshot_x" in failed
    # The modules' messages end without a period: the next sentence must not run into them.
    stuck = dict(REPORT, result="failed", failure="migrate: exit 1", rollback_failure="redis is down", backup=None)
    unfinished = failure_message(stuck, "", True)
    assert "the rollback failed: redis is down. The stack is stopped." in unfinished
    rolled_back = failure_message(dict(REPORT, result="rolled-back", failure="migrate: exit 1"), "", True)
    assert "failed at migrate: exit 1. It was ROLLED BACK" in rolled_back
    early = failure_message(
        dict(REPORT, result="failed", failure="pull: no tag", stopped=False, captured=False), "", True
    )
    assert "before anything was stopped or changed: pull: no tag" in early
    kept = failure_message(dict(REPORT, result="failed", failure="seal: disk full"), "", False)
    assert "NOT rolled back (tts_rollback_on_failure=false)" in kept


def journal_record(backup: Path, **changes: Any) -> dict[str, Any]:
    record = {
        "run": "tts-1-x",
        "host": "tts-1",
        "started": 100.0,
        "from": "3.31.1",
        "to": "3.32.0",
        "edition": "open-source",
        "hops": ["3.32.0"],
        "marks": [
            ["preflight", 100.0],
            ["pull", 101.0],
            ["files", 103.0],
            ["stop", 104.0],
            ["backup", 105.0],
            ["migrate 3.32.0", 106.5],
            ["start", 107.0],
            ["verify", 108.0],
            ["serving", 109.0],
            ["seal", 109.2],
        ],
        "captured": True,
        "capture": {},
        "migrations": [{"command": "is-db migrate", "applied": True}],
        "rolled_back": False,
        "failure": None,
        "rollback_failure": None,
        "cutover": {"dest": str(backup), "snapshot": "ttn_lorawan_snapshot_x", "edition": "open-source"},
    }
    record.update(changes)
    return record


def test_the_report_of_an_upgrade_is_made_from_its_journal(tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    backup.mkdir()
    report = build(journal_record(backup), "/srv/tts", 112.0)
    assert (report["result"], report["stopped"], report["captured"], report["backup"]) == (
        "upgraded",
        True,
        True,
        None,
    ), "no manifest yet: the backup is not complete"
    assert report["started"] == "1970-01-01T00:01:40Z"
    assert file_name(report) == "19700101T000140Z_upgraded.json"
    assert report["downtime_seconds"] == 5.0
    assert report["timings"]["pull"] == 2.0
    assert report["timings"]["seal"] == 2.8
    assert report["migrations"] == [{"command": "is-db migrate", "applied": True}]
    assert "message" not in report
    manifest = {"format": 1, "postgres": {"file": "a"}, "redis": {"file": "b"}, "stack_version": "3.31.1", "files": {}}
    (backup / "manifest.json").write_text(json.dumps(manifest))
    assert build(journal_record(backup), "/srv/tts", 112.0)["backup"] is None, "a manifest that lists no dump"
    manifest["files"] = {"a": {"size": 3}, "b": {"size": 4}}
    (backup / "manifest.json").write_text(json.dumps(manifest))
    assert build(journal_record(backup), "/srv/tts", 112.0)["backup"] == {"path": str(backup), "size": 7, "files": 2}


def test_the_journal_says_how_a_failed_run_ended(tmp_path: Path) -> None:
    marks = [["preflight", 100.0], ["stop", 104.0], ["backup", 105.0], ["migrate 3.98.0", 106.0]]
    rolled_back = journal_record(
        tmp_path,
        marks=[
            *marks,
            ["rollback restore", 107.0],
            ["rollback start", 108.0],
            ["rollback verify", 109.0],
            ["serving", 110.0],
        ],
        rolled_back=True,
        failure="migrate 3.98.0: exit 255",
    )
    report = build(rolled_back, "/srv/tts", 111.0)
    assert (report["result"], report["downtime_seconds"]) == ("rolled-back", 6.0)
    assert report["message"].startswith("The upgrade of tts-1 (/srv/tts) from 3.31.1 to 3.32.0 failed at migrate")
    stuck = journal_record(tmp_path, marks=marks, failure="migrate 3.98.0: exit 255", rollback_failure="redis down")
    report = build(stuck, "/srv/tts", 111.0)
    assert report["result"] == "failed"
    assert "Postgres database ttn_lorawan_snapshot_x" in report["message"]


def test_a_run_without_a_journal_is_reported_from_its_plan() -> None:
    plan = {"host": "tts-1", "started": "100.5", "from": "3.32.0", "to": "3.32.0", "hops": [], "failure": ""}
    assert build(plan, "/srv/tts", 101.0, outcome="already-current")["summary"] == (
        "tts-1: already-current (3.32.0 runs, nothing changed)"
    )
    refused = build(dict(plan, to="3.33.0", failure="lock: held by run y"), "/srv/tts", 101.0)
    assert refused["result"] == "failed"
    assert refused["message"].endswith("failed before anything was stopped or changed: lock: held by run y")
    with pytest.raises(RecordError):
        build({"host": "x"}, "/srv/tts", 1.0)
