"""Two upgrade runs on the same deployment at once: one upgrades, the other is refused by the lock."""

from __future__ import annotations

import json
import subprocess
import time

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
