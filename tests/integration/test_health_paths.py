"""An upgrade across 3.24, where TTS moved its health endpoint (/healthz/live and /healthz/ready before,
/healthz from 3.24.0): the role verifies each version on its own path, after the upgrade and after a rollback."""

from __future__ import annotations

import json

from ttssandbox.fingerprint import data_differences

from tests.faults.interrupt import run_upgrade, write_inventory

START = "3.22.2"
TARGET = "3.36.0"


def test_3_22_2_to_3_36_0_through_3_24_2_and_back(deploy, ansible_env, tmp_path):
    deployment = deploy(START, "--seed", "small")
    before = deployment.fingerprint()
    failing = tmp_path / "post-upgrade.yml"
    failing.write_text(
        "- name: Post-upgrade | Fail on purpose\n  ansible.builtin.fail:\n    msg: refused by the test\n"
    )
    inventory = write_inventory(tmp_path, deployment.dir, tts_target_version=TARGET)

    rc, output = run_upgrade(inventory, ansible_env, f"tts_post_upgrade_tasks={failing}")
    assert rc != 0, output[-3000:]
    assert "ROLLED BACK" in output, output[-3000:]
    assert deployment.healthz() == 200  # /healthz/live of 3.22.2
    version = deployment.compose("exec", "-T", "stack", "ttn-lw-stack", "version")
    assert START in version.stdout, version.stdout + version.stderr
    assert data_differences(before, deployment.fingerprint()) == []

    rc, output = run_upgrade(inventory, ansible_env)
    assert rc == 0, output[-3000:]
    assert f"upgraded {START} -> {TARGET} via 3.24.2 -> {TARGET}" in output, output[-3000:]
    report = json.loads(next((tmp_path / "reports" / "tts-1").glob("*_upgraded.json")).read_text())
    assert [hop["to"] for hop in report["migrations"]] == ["3.24.2", TARGET]
    assert deployment.healthz() == 200
    assert data_differences(before, deployment.fingerprint()) == []
