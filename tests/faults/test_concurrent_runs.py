"""Runs that meet on one deployment: two at once (one upgrades, the other is refused by the lock), and one that
finds the journal of a stale run from another controller."""

from __future__ import annotations

import json
import subprocess
import time

from tests.faults.interrupt import run_upgrade, write_inventory

TARGET = "3.32.0"


def test_two_runs_at_once_upgrade_once(deploy, ansible_env, tmp_path):
    deployment = deploy("3.31.1", "--seed", "small")
    host = {
        "ansible_connection": "local",
        "tts_project_dir": str(deployment.dir),
        "tts_backup_dir": str(tmp_path / "backups"),
        "tts_target_version": TARGET,
    }
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"staging": {"hosts": {"tts-1": host}}}))
    env = dict(ansible_env, ANSIBLE_STDOUT_CALLBACK="default")
    argv = ["ansible-playbook", "lorawan.tts.upgrade", "-i", str(inventory)]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    time.sleep(1)
    second = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    outputs = [process.communicate()[0] for process in (first, second)]
    codes = [first.returncode, second.returncode]
    upgraded = [output for output in outputs if "upgraded 3.31.1 -> 3.32.0" in output]
    assert len(upgraded) == 1, outputs
    other = outputs[1 - outputs.index(upgraded[0])]
    refused = "holds the upgrade lock" in other and "nothing was changed" in other
    assert refused or "already-current" in other, other[-3000:]
    assert codes[outputs.index(upgraded[0])] == 0
    assert deployment.healthz() == 200
    version = deployment.compose("exec", "-T", "stack", "ttn-lw-stack", "version")
    assert TARGET in version.stdout, version.stdout + version.stderr
    journal = json.loads((deployment.dir / ".lorawan-tts.journal").read_text())
    assert journal["outcome"] in ("upgraded", "already-current"), journal


def test_a_stale_run_from_another_controller_is_taken_over(deploy, ansible_env, tmp_path):
    """A journal left open by a run on another machine (an AWX job that was cancelled, say) that has written
    nothing for longer than tts_lock_stale_after: the next run says so, takes it over and upgrades."""
    deployment = deploy("3.31.1", "--seed", "small")
    stale = {
        "run": "awx-job-17",
        "controller": {"host": "awx-task-5f7c9", "pid": 4242, "start": "1"},
        "boot_id": "",
        "worker": None,
        "outcome": None,
        "phase": "preflight",
        "marks": [],
        "updated": time.time() - 4000,
    }
    journal = deployment.dir / ".lorawan-tts.journal"
    journal.write_text(json.dumps(stale))
    inventory = write_inventory(tmp_path, deployment.dir)
    rc, output = run_upgrade(inventory, ansible_env)
    assert rc == 0, output[-3000:]
    assert "taking over the interrupted run awx-job-17 from awx-task-5f7c9" in output, output[-3000:]
    assert "more than tts_lock_stale_after (1800 s)" in output
    assert "It had stopped nothing." in output
    assert f"upgraded 3.31.1 -> {TARGET}" in output
    assert json.loads(journal.read_text())["outcome"] == "upgraded"
