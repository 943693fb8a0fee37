"""The filters that turn the upgrade role's marks and state into its report."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.lorawan.tts.plugins.filter.phase_timings import phase_timings
from ansible_collections.lorawan.tts.plugins.filter.upgrade_path import FilterModule
from ansible_collections.lorawan.tts.plugins.filter.upgrade_report import upgrade_messages


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
    with pytest.raises(AnsibleFilterError):
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
    result = upgrade_messages(REPORT)
    assert result["summary"] == (
        "tts-1: upgraded 3.31.1 -> 3.32.0 via 3.32.0, downtime 4.2 s (stop 0.5 s, backup 1.0 s), "
        "backup /var/backups/lorawan-tts/tts-1/x"
    )
    assert "message" not in result


def test_failure_messages_say_where_the_data_is() -> None:
    rolled_back = upgrade_messages(dict(REPORT, result="rolled-back", failure="migrate: exit 1."))
    assert "ROLLED BACK: 3.31.1 runs again with the data captured before the upgrade" in rolled_back["message"]
    assert "The backup taken before the upgrade is /var/backups/lorawan-tts/tts-1/x." in rolled_back["message"]
    failed = upgrade_messages(
        dict(REPORT, result="failed", failure="migrate: exit 1.", rollback_failure="redis is down.", backup=None),
        snapshot="ttn_lorawan_snapshot_x",
    )
    assert failed["message"].startswith("ROLLBACK FAILED on tts-1 (/srv/tts)")
    assert "database ttn_lorawan_snapshot_x" in failed["message"]
    # The modules' messages end without a period: the next sentence must not run into them.
    unfinished = upgrade_messages(
        dict(REPORT, result="failed", failure="migrate: exit 1", rollback_failure="redis is down", backup=None)
    )
    assert "the rollback failed: redis is down. The stack is stopped." in unfinished["message"]
    rolled_back = upgrade_messages(dict(REPORT, result="rolled-back", failure="migrate: exit 1"))
    assert "failed at migrate: exit 1. It was ROLLED BACK" in rolled_back["message"]
    early = upgrade_messages(dict(REPORT, result="failed", failure="pull: no tag", stopped=False, captured=False))
    assert "before anything was stopped or changed: pull: no tag" in early["message"]
    with pytest.raises(AnsibleFilterError):
        upgrade_messages({"host": "x"})


def test_migration_plan_lines() -> None:
    lines = FilterModule().filters()["migration_plan_lines"]("3.18.2", ["3.19.2", "3.24.2"])
    assert lines == ["3.18.2 -> 3.19.2: is-db migrate", "3.19.2 -> 3.24.2: is-db migrate"]
    enterprise = FilterModule().filters()["migration_plan_lines"]("3.24.2", ["3.32.0"], "enterprise")
    assert enterprise == ["3.24.2 -> 3.32.0: is-db migrate, noc-db migrate, storage-db migrate"]
