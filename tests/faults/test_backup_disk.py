"""The backup's disk fails: read-only, or full before or during the downtime.

Each case runs `ansible-playbook lorawan.tts.upgrade` as an operator would, with tts_backup_dir on a small tmpfs
mounted for the test (the tests run as root; without root or mount(2) they are skipped). The run must fail with
the OS error, the path and tts_backup_dir named, never a module's traceback; the deployment must still run its
old version and answer, its data (fingerprint) and files unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.observe import containers, project_files

FROM = "3.31.1"
TARGET = "3.32.0"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def deployment(deploy):
    return deploy(FROM, "--seed", "small")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator:
    """mount(size, read_only) -> a fresh tmpfs of that many bytes; unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs for the backup directory needs root")
    mounted: list[Path] = []

    def mount(size: int, read_only: bool = False) -> Path:
        point = tmp_path / f"backups-{len(mounted)}"
        point.mkdir()
        options = f"size={size},mode=0755" + (",ro" if read_only else "")
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], check=False)


def upgrade(deployment, backup_dir: Path, tmp_path: Path, ansible_env: dict[str, str], *extra: str) -> tuple[int, str]:
    inventory = tmp_path / "inventory.json"
    host = {
        "ansible_connection": "local",
        "tts_project_dir": str(deployment.dir),
        "tts_backup_dir": str(backup_dir),
        "tts_target_version": TARGET,
    }
    inventory.write_text(json.dumps({"staging": {"hosts": {"tts-1": host}}}))
    argv = ["ansible-playbook", "lorawan.tts.upgrade", "-i", str(inventory)]
    for item in extra:
        argv += ["-e", item]
    env = dict(ansible_env, ANSIBLE_STDOUT_CALLBACK="default")
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if os.environ.get("LORAWAN_TTS_SHOW_OUTPUT"):
        print(result.stdout[-6000:], result.stderr[-2000:])
    return result.returncode, result.stdout + result.stderr


def assert_clear_failure(rc: int, output: str, *named: str) -> None:
    assert rc != 0, output[-4000:]
    for text in named:
        assert text in output, f"{text!r} not in:\n{output[-4000:]}"
    for text in ("MODULE FAILURE", "No start of json char found", "Traceback", "Unexpected Exception"):
        assert text not in output, output[-4000:]


def assert_old_version_answers(deployment, fingerprint: dict) -> None:
    assert deployment.healthz() == 200
    version = deployment.compose("exec", "-T", "stack", "ttn-lw-stack", "version")
    assert FROM in version.stdout, version.stdout + version.stderr
    assert deployment.fingerprint() == fingerprint
    journal = deployment.dir / ".lorawan-tts.journal"
    assert not journal.exists() or json.loads(journal.read_text())["outcome"], "the run did not close its journal"


def test_a_read_only_backup_dir_is_refused_by_the_preflight(deployment, tmpfs, tmp_path, ansible_env):
    backups = tmpfs(64 * MiB, read_only=True)
    files, running, fingerprint = project_files(deployment.dir), containers(deployment.dir), deployment.fingerprint()
    rc, output = upgrade(deployment, backups, tmp_path, ansible_env)
    assert_clear_failure(
        rc, output, "Read-only file system", f"{backups}/tts-1", "tts_backup_dir", "Nothing was changed"
    )
    assert "Check that the backup directory can be written" in output, output[-4000:]
    assert "Pull every hop" not in output, "the preflight went on to pull"
    assert "failed before anything was stopped or changed" in output, output[-4000:]
    assert containers(deployment.dir) == running
    assert project_files(deployment.dir) == files
    assert_old_version_answers(deployment, fingerprint)


def test_a_full_backup_dir_is_refused_by_the_preflight(deployment, tmpfs, tmp_path, ansible_env):
    backups = tmpfs(16 * MiB)
    files, running, fingerprint = project_files(deployment.dir), containers(deployment.dir), deployment.fingerprint()
    rc, output = upgrade(deployment, backups, tmp_path, ansible_env)
    assert_clear_failure(rc, output, f"{backups}/tts-1", "needs", "tts_backup_dir", "Nothing was changed")
    assert containers(deployment.dir) == running
    assert project_files(deployment.dir) == files
    assert not (backups / "tts-1").exists(), "the preflight left the directory it created"
    assert_old_version_answers(deployment, fingerprint)


def test_a_disk_full_while_copying_the_files_stops_nothing(deployment, tmpfs, tmp_path, ansible_env):
    # The preflight's estimate counts Postgres, Redis and the blob; a big file in config/ does not fit on a disk
    # that has room for them (as a disk another process fills during the run would not).
    backups = tmpfs(160 * MiB)
    big = deployment.dir / "config" / "stack" / "big-file.bin"
    with big.open("wb") as handle:
        handle.truncate(0)
        for dummy in range(200):
            handle.write(os.urandom(MiB))
    try:
        files, running = project_files(deployment.dir), containers(deployment.dir)
        fingerprint = deployment.fingerprint()
        rc, output = upgrade(deployment, backups, tmp_path, ansible_env)
        assert_clear_failure(rc, output, "No space left on device writing", f"{backups}/tts-1/", "tts_backup_dir")
        assert containers(deployment.dir) == running
        assert project_files(deployment.dir) == files
        assert {path.name for path in backups.iterdir()} <= {"tts-1", "reports"}
        assert list((backups / "tts-1").iterdir()) == [], "the unfinished backup directory was left"
        assert_old_version_answers(deployment, fingerprint)
    finally:
        big.unlink()


def test_a_disk_full_during_the_downtime_rolls_back(deployment, tmpfs, tmp_path, ansible_env):
    # Another process fills the disk after the files were copied: Postgres' dump and Redis' copy, inside the
    # downtime, meet a full disk. The cutover starts the old version again.
    backups = tmpfs(160 * MiB)
    hook = tmp_path / "fill-the-disk.yml"
    hook.write_text(
        "- name: Pre-upgrade | Fill the backup's disk\n"
        "  ansible.builtin.command:\n"
        f"    argv: [dd, if=/dev/zero, of={backups}/filler, bs=1M]\n"
        "  register: __filled\n"
        "  changed_when: true\n"
        "  failed_when: \"'No space left on device' not in __filled.stderr\"\n"
    )
    files = project_files(deployment.dir)
    fingerprint = deployment.fingerprint()
    rc, output = upgrade(
        deployment,
        backups,
        tmp_path,
        ansible_env,
        f"tts_pre_upgrade_tasks={hook}",
        "tts_backup_postgres_snapshot=false",
    )
    assert_clear_failure(rc, output, "No space left on device writing", f"{backups}/tts-1/", "tts_backup_dir")
    assert "ROLLED BACK" in output, output[-4000:]
    assert project_files(deployment.dir) == files
    assert_old_version_answers(deployment, fingerprint)
