"""Bad input to the upgrade playbook is refused before anything changes, with a message naming the variable.

Each case runs `ansible-playbook lorawan.tts.upgrade` as an operator would, with the value on the command line
(`-e name=value` gives text, as it does for operators), against one deployment; the deployment's files and its
containers must be exactly as before.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults.interrupt import run_upgrade
from tests.faults.observe import containers, project_files

FROM = "3.31.1"
TARGET = "3.32.0"
ROOT = Path(__file__).resolve().parents[2]

# (extra vars as an operator types them, the variable the message must name)
CASES = [
    (["tts_upgrade_serial=0"], "tts_upgrade_serial"),
    (["tts_upgrade_serial=-1"], "tts_upgrade_serial"),
    (["tts_upgrade_serial=abc"], "tts_upgrade_serial"),
    (["tts_upgrade_serial=150%"], "tts_upgrade_serial"),
    (['{"tts_upgrade_serial": [1, 0]}'], "tts_upgrade_serial"),
    (["tts_max_fail_percentage=101"], "tts_max_fail_percentage"),
    (["tts_max_fail_percentage=-5"], "tts_max_fail_percentage"),
    (["tts_max_fail_percentage=abc"], "tts_max_fail_percentage"),
    (["tts_backup_keep=-1"], "tts_backup_keep"),
    (["tts_backup_keep=0"], "tts_backup_keep"),
    (["tts_healthcheck_timeout=0"], "tts_healthcheck_timeout"),
    (["tts_healthcheck_timeout=2m"], "tts_healthcheck_timeout"),
    (["tts_backup_timeout=-10"], "tts_backup_timeout"),
    (["tts_lock_timeout=-1"], "tts_lock_timeout"),
    (["tts_progress_interval=often"], "tts_progress_interval"),
    (["tts_target_version=99.0.0"], "tts_target_version"),
    (["tts_target_version=latest"], "tts_target_version"),
    (["tts_target_version=3.32.0.1"], "tts_target_version"),
    (["tts_target_version=3.30.0"], "older than the running"),
    (["tts_project_dir=srv/tts"], "tts_project_dir"),
    (["tts_edition=enterprise"], "tts_edition"),
    (["tts_edition=community"], "tts_edition"),
]


@pytest.fixture(scope="module")
def deployment(deploy):
    return deploy(FROM, "--seed", "small")


@pytest.fixture(scope="module")
def inventory(deployment, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bad-input") / "inventory.json"
    backups = path.parent / "backups"
    host = {
        "ansible_connection": "local",
        "tts_project_dir": str(deployment.dir),
        "tts_backup_dir": str(backups),
        "tts_target_version": TARGET,
    }
    path.write_text(json.dumps({"staging": {"hosts": {"tts-1": host}}}))
    return path


@pytest.mark.parametrize(("extra_vars", "named"), CASES, ids=[" ".join(case[0]) for case in CASES])
def test_bad_input_is_refused_before_anything_changes(extra_vars, named, deployment, inventory, ansible_env):
    files, running = project_files(deployment.dir), containers(deployment.dir)
    rc, output = run_upgrade(inventory, ansible_env, *extra_vars)
    assert rc != 0, output[-3000:]
    assert named in output, output[-3000:]
    assert "Unexpected Exception" not in output, output[-3000:]
    assert project_files(deployment.dir) == files
    assert containers(deployment.dir) == running
    assert not (inventory.parent / "backups").exists() or not any((inventory.parent / "backups").rglob("manifest.json"))


def test_a_compose_file_naming_another_postgres_major_is_refused(deployment, inventory, ansible_env):
    # Postgres 15 runs, but the next start would run 13 on the data directory 15 wrote.
    compose_file = deployment.dir / "docker-compose.yml"
    original = compose_file.read_text()
    compose_file.write_text(original.replace("library/postgres:15", "library/postgres:13"))
    try:
        files, running = project_files(deployment.dir), containers(deployment.dir)
        rc, output = run_upgrade(inventory, ansible_env)
        assert rc != 0, output[-3000:]
        assert "written by Postgres 15 but the image" in output and "Postgres 13" in output, output[-3000:]
        assert project_files(deployment.dir) == files
        assert containers(deployment.dir) == running
    finally:
        compose_file.write_text(original)


def test_a_pre_upgrade_task_that_changes_the_compose_file_stops_nothing(deployment, inventory, ansible_env, tmp_path):
    hook = tmp_path / "pre-upgrade.yml"
    compose_file = deployment.dir / "docker-compose.yml"
    original = compose_file.read_text()
    hook.write_text(
        "- name: Pre-upgrade | Change the compose file after the preflight\n"
        "  ansible.builtin.replace:\n"
        f"    path: {compose_file}\n"
        "    regexp: 'library/postgres:15'\n"
        "    replace: 'library/postgres:13'\n"
    )
    running = containers(deployment.dir)
    try:
        rc, output = run_upgrade(inventory, ansible_env, f"tts_pre_upgrade_tasks={hook}")
        assert rc != 0, output[-3000:]
        assert "changed since the preflight" in output and "tts_pre_upgrade_tasks" in output, output[-3000:]
        assert "before anything was stopped" in output or "nothing was stopped" in output, output[-3000:]
        assert containers(deployment.dir) == running
        assert deployment.healthz() == 200
    finally:
        compose_file.write_text(original)
