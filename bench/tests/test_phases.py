import json
from pathlib import Path

from lorawan_bench.phases import Interval, clipped, durations, intervals, playbook_marks, runbook_markers, task_phase
from lorawan_bench.playbook import parse_recap

RUNBOOK_STDERR = """\
runbook-phase tag 100.0
 Image ... Pulling
runbook-phase pull 100.5
runbook-phase stop 101.0
runbook-phase redis_copy 103.0
runbook-phase migrate 104.0
runbook-phase start 106.0
runbook-phase healthy 170.0
"""


def test_runbook_markers_make_phases_until_healthy() -> None:
    marks = runbook_markers(RUNBOOK_STDERR)
    assert marks[0] == ("tag", 100.0)
    phases = intervals(marks, end=171.0, final="healthy")
    assert durations(phases) == {"tag": 0.5, "pull": 0.5, "stop": 2.0, "redis_copy": 1.0, "migrate": 2.0, "start": 64.0}


def test_phases_are_cut_to_the_downtime() -> None:
    phases = [Interval("stop", 1.0, 3.0), Interval("migrate", 3.0, 5.0), Interval("start", 5.0, 9.0)]
    assert clipped(phases, 2.0, 6.5) == {"stop": 1.0, "migrate": 2.0, "start": 1.5}
    assert clipped(phases, None, 6.5) == {}


def test_neighbours_with_one_name_are_merged() -> None:
    phases = intervals([("stop", 0.0), ("stop", 1.0), ("start", 2.0)], end=3.0)
    assert phases == [Interval("stop", 0.0, 2.0), Interval("start", 2.0, 3.0)]


def test_task_phases() -> None:
    assert task_phase("lorawan.tts.upgrade : Upgrade | stop | Stop the stack", "preflight") == "stop"
    assert task_phase("Upgrade | main | Back up", "stop") == "stop"
    assert task_phase("lorawan.tts.backup : Backup | capture | Snapshot Postgres", "stop") == "backup_capture"
    assert task_phase("Backup | main | Include", "stop") == "backup"
    assert task_phase("Restore | apply | Put Redis back", "rollback") == "rollback_restore_apply"
    assert task_phase("Restore | apply | Put Redis back", "rollback_restore_preflight") == "rollback_restore_apply"
    assert task_phase("Restore | restore | Postgres", "rollback") == "rollback_restore"
    assert task_phase("Gathering Facts", "state") == "state"


def test_playbook_marks(tmp_path: Path) -> None:
    timeline = tmp_path / "timeline.jsonl"
    events = [
        {"at": 1.0, "event": "task", "name": "lorawan.tts.upgrade : Upgrade | preflight | Check"},
        {"at": 2.0, "event": "task", "name": "lorawan.tts.upgrade : Upgrade | main | Stop the stack"},
        {"at": 2.5, "event": "task", "name": "lorawan.tts.upgrade : Upgrade | stop | Stop"},
        {"at": 4.0, "event": "end", "name": ""},
    ]
    timeline.write_text("".join(json.dumps(event) + "\n" for event in events))
    marks, end = playbook_marks(timeline)
    assert end == 4.0
    assert durations(intervals(marks, end)) == {"preflight": 1.5, "stop": 1.5}
    assert playbook_marks(tmp_path / "missing") == ([], None)


def test_recap() -> None:
    output = """
TASK [x] ***
ok: [host-1]

PLAY RECAP *********************************************************************
host-1                     : ok=84   changed=20   unreachable=0    failed=0    skipped=8    rescued=0    ignored=0
localhost                  : ok=2    changed=0    unreachable=0    failed=1    skipped=0    rescued=1    ignored=0
"""
    recap = parse_recap(output)
    assert recap["host-1"]["changed"] == 20
    assert recap["localhost"] == {
        "ok": 2,
        "changed": 0,
        "unreachable": 0,
        "failed": 1,
        "skipped": 0,
        "rescued": 1,
        "ignored": 0,
    }
    assert parse_recap("no recap") == {}
