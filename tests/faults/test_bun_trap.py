"""A migration that fails inside the bun trap (TTS 3.20 to 3.32.1 mark a migration applied before they run it, so
a re-run says "Database is up to date" over a half-migrated schema): the collection never runs it again; it puts
the capture back."""

from __future__ import annotations

import json

from ttssandbox.fingerprint import data_differences

from tests.faults.interrupt import run_upgrade, write_inventory

TRAPPED = "3.30.9"


def test_a_failed_migration_in_the_bun_trap_is_rolled_back_never_retried(deploy, ansible_env, tmp_path):
    deployment = deploy("3.26.0", "--seed", "small")
    before = deployment.fingerprint()
    inventory = write_inventory(tmp_path, deployment.dir, tts_target_version=TRAPPED)
    rc, output = run_upgrade(inventory, ansible_env)
    assert rc != 0, output[-3000:]
    assert "ROLLED BACK" in output, output[-3000:]
    assert "20231102000000_backfill_gateway_status_history failed" in output

    report = json.loads(next((tmp_path / "reports" / "tts-1").glob("*_rolled-back.json")).read_text())
    hop = report["migrations"][-1]
    assert hop["to"] == TRAPPED
    assert hop["commands"].count("is-db migrate") == 1, "a failed is-db migrate is never run again"

    assert deployment.healthz() == 200
    version = deployment.compose("exec", "-T", "stack", "ttn-lw-stack", "version")
    assert "3.26.0" in version.stdout, version.stdout + version.stderr
    assert data_differences(before, deployment.fingerprint()) == []
    # The capture came back with its bun_migrations: nothing of the trapped migration is marked applied.
    assert deployment.sql("SELECT count(*) FROM bun_migrations WHERE name LIKE '202311%'") == "0"
