"""The backup an upgrade makes is complete and restorable on its own: restored into a fresh deployment, it gives
back every table, key and blob file the upgraded deployment had before the upgrade."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ttssandbox.fingerprint import DATA_SECTIONS

from .conftest import sandbox


def role_playbook(role: str, variables: dict) -> str:
    return json.dumps(
        [
            {
                "hosts": "localhost",
                "gather_facts": False,
                "tasks": [
                    {"name": role, "ansible.builtin.include_role": {"name": f"lorawan.tts.{role}"}, "vars": variables},
                    {"name": "show the report", "ansible.builtin.debug": {"var": "tts_upgrade"}},
                ],
            }
        ]
    )


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param([], id="open-source"),
        # TimescaleDB's dump is restored with its restore procedure (timescaledb_pre_restore/post_restore).
        pytest.param(["--edition", "enterprise", "--postgres", "17"], id="enterprise-timescaledb"),
    ],
)
def test_the_upgrade_backup_restores_into_a_fresh_deployment(deploy, run_playbook, tmp_path: Path, shape) -> None:
    upgraded = deploy("3.31.1", "--seed", "small", "--extra-blob-files", "30", *shape)
    before = upgraded.fingerprint()
    backups = tmp_path / "backups"
    run = run_playbook(
        role_playbook(
            "upgrade",
            {"tts_project_dir": str(upgraded.dir), "tts_backup_dir": str(backups), "tts_target_version": "3.32.0"},
        )
    )
    assert run.rc == 0, run.stderr
    report = run.result("show the report")["tts_upgrade"]
    assert report["result"] == "upgraded"
    assert set(report["timings"]) >= {"preflight", "pull", "files", "stop", "backup", "migrate 3.32.0", "start"}
    assert report["downtime_seconds"] > 0
    backup = Path(report["backup"]["path"])
    assert upgraded.fingerprint()["stack_version"] == "3.32.0"
    # The upgraded deployment goes away; only its backup is left (its compose file names the ports it used).
    assert sandbox("teardown", str(upgraded.dir)).returncode == 0

    fresh = deploy("3.31.1", "--seed", "medium", *shape)
    run = run_playbook(role_playbook("restore", {"tts_project_dir": str(fresh.dir), "tts_restore_from": str(backup)}))
    assert run.rc == 0, run.stderr
    after = fresh.fingerprint()
    for section in DATA_SECTIONS:
        assert after[section] == before[section], section
    assert after["stack_version"] == "3.31.1"
    assert fresh.healthz() == 200
