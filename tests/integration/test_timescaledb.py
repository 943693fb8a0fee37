"""Enterprise on a real TimescaleDB (timescale/timescaledb:latest-pg17, Debian's PostgreSQL 17 with TimescaleDB):
the stand-in's noc-db keeps the NOC's metrics in hypertables, and an upgrade's snapshot and rollback keep them."""

from __future__ import annotations

import json

from ttssandbox.fingerprint import data_differences


def upgrade_playbook(deployment, backups, target: str) -> str:
    settings = {
        "tts_project_dir": str(deployment.dir),
        "tts_backup_dir": str(backups),
        "tts_target_version": target,
        "tts_allow_unreleased_version": True,
    }
    tasks = [
        {"name": "upgrade", "ansible.builtin.include_role": {"name": "lorawan.tts.upgrade"}, "vars": settings},
        {"name": "report", "ansible.builtin.debug": {"var": "tts_upgrade"}},
    ]
    return json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}])


def hypertables(deployment) -> str:
    return deployment.sql(
        "SELECT string_agg(hypertable_name || '=' || num_chunks, ',' ORDER BY hypertable_name) "
        "FROM timescaledb_information.hypertables"
    )


def test_a_failed_upgrade_on_timescaledb_is_rolled_back_with_its_hypertables(deploy, run_playbook, tmp_path) -> None:
    deployment = deploy("3.31.1", "--edition", "enterprise", "--postgres", "17")
    assert deployment.sql("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    # noc-db migrate made the NOC's metrics hypertables; the deploy wrote 40 gateway metrics over 200 days.
    assert hypertables(deployment) == ("noc_application_metrics=0,noc_end_device_metrics=0,noc_gateway_metrics=29")
    before = deployment.fingerprint()
    failed = run_playbook(upgrade_playbook(deployment, tmp_path, "3.98.0"))
    assert failed.rc != 0
    after = deployment.fingerprint()
    assert after["stack_version"] == "3.31.1"
    assert data_differences(before, after) == []
    assert hypertables(deployment) == "noc_application_metrics=0,noc_end_device_metrics=0,noc_gateway_metrics=29"
    assert deployment.sql("SELECT count(*) FROM noc_gateway_metrics") == "40"
