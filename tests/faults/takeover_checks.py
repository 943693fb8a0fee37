"""What must hold after a run took over an interrupted one: the target serves, no data was lost, the interrupted
run's backup is complete, nothing it set aside is left, and nobody had to act."""

from __future__ import annotations

import json
from pathlib import Path

from ttssandbox.fingerprint import data_differences

from tests.faults.interrupt import TARGET, read_journal, run_and_interrupt, run_upgrade, write_inventory


def interrupt_then_run_again(deploy, ansible_env, tmp_path: Path, number, when) -> tuple[dict, str]:
    deployment = deploy("3.31.1", "--seed", "small")
    before = deployment.fingerprint()
    # The next run waits for a step that still runs on the host (a cutover that ignored SIGTERM) to end.
    inventory = write_inventory(tmp_path, deployment.dir, tts_lock_timeout=300)
    rc, interrupted, log = run_and_interrupt(inventory, ansible_env, deployment.dir, number, when)
    assert rc == -number, log[-3000:]

    rc, output = run_upgrade(inventory, ansible_env)
    assert rc == 0, output[-4000:]
    assert deployment.healthz() == 200
    version = deployment.compose("exec", "-T", "stack", "ttn-lw-stack", "version")
    assert TARGET in version.stdout, version.stdout + version.stderr
    assert data_differences(before, deployment.fingerprint()) == []

    journal = read_journal(deployment.dir)
    assert journal["outcome"] in ("upgraded", "already-current"), journal
    assert journal["worker"] is None
    # Every backup on disk is complete; none is left half-made.
    for backup in (tmp_path / "backups" / "tts-1").iterdir():
        manifest = json.loads((backup / "manifest.json").read_text())
        assert manifest["files"], backup
    leftovers = deployment.sql(
        "SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'ttn_lorawan_%'"
    ).strip()
    assert leftovers == "", leftovers
    return interrupted, output
