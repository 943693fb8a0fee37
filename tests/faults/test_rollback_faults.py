"""Faults during the rollback itself: Postgres killed while the rollback restores it, the disk full while the
rollback writes.

An upgrade to 3.98.0 (its migration fails half-way) makes the cutover roll back; the fault hits the rollback's
restore. The run recovers by itself, or ends ROLLBACK FAILED and abandons its journal; then a plain run of the
playbook to the normal target takes it over (rolling back from the capture first when needed) and upgrades. No
person acts: at the end a known version runs and answers, its data equal to before, no set-aside database left.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ttssandbox.fingerprint import data_differences

from tests.faults.interrupt import FROM, TARGET, phase, read_journal, run_and_act, run_upgrade, write_inventory

FAILS_MIGRATING = "3.98.0"  # its is-db migrate applies part of its work, then exits 1
MiB = 1024 * 1024


def wait_healthy(deployment, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while deployment.healthz() != 200:
        assert time.monotonic() < deadline, deployment.compose("logs", "--no-color", "stack").stdout[-2000:]
        time.sleep(0.5)


def restoring_postgres(container: str, marker: str):
    """The rollback restores Postgres: its phase is in the journal and a process in the Postgres container (found by
    its cgroup: other deployments may run beside) has marker in its argv (the snapshot's CREATE DATABASE ...
    TEMPLATE, or pg_restore)."""

    def when(journal: dict, dummy_compose: str) -> bool:
        if journal.get("phase") != "rollback restore" or journal.get("outcome"):
            return False
        return any(marker in argv for argv in processes_in(container))

    return when


def processes_in(container: str) -> Iterator[str]:
    """The command lines of the container's processes, as the host sees them."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if container in (entry / "cgroup").read_text():
                    yield (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue


def kill(container: str):
    def act(dummy_pid: int) -> None:
        result = subprocess.run(["docker", "kill", container], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr

    return act


def container_id(deployment, service: str) -> str:
    found = deployment.compose("ps", "--quiet", service).stdout.split()
    assert len(found) == 1, found
    return found[0]


def assert_recovered(deployment, before: dict, version: str) -> None:
    """A known version runs and answers, the data as before, no database set aside, the journal closed."""
    assert deployment.healthz() == 200
    answer = deployment.compose("exec", "-T", "stack", "ttn-lw-stack", "version")
    assert version in answer.stdout, answer.stdout + answer.stderr
    assert data_differences(before, deployment.fingerprint()) == []
    leftovers = deployment.sql("SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'ttn_lorawan_%'")
    assert leftovers.strip() == "", leftovers
    journal = read_journal(deployment.dir)
    assert journal["outcome"] in ("upgraded", "already-current"), journal
    assert journal["worker"] is None


ROLLBACKS = {
    "snapshot": ({}, "TEMPLATE"),
    "dump": ({"tts_backup_postgres_snapshot": False}, "pg_restore"),
}


@pytest.mark.parametrize("rollback", ROLLBACKS)
def test_postgres_killed_during_the_rollbacks_restore(rollback, deploy, ansible_env, tmp_path):
    extra, marker = ROLLBACKS[rollback]
    deployment = deploy(FROM, "--seed", "small")
    before = deployment.fingerprint()
    postgres = container_id(deployment, "postgres")
    failing = write_inventory(
        tmp_path, deployment.dir, tts_target_version=FAILS_MIGRATING, tts_allow_unreleased_version=True, **extra
    )
    moment = restoring_postgres(postgres, marker)
    rc, journal, first = run_and_act(failing, ansible_env, deployment.dir, kill(postgres), moment)
    assert rc != 0, first[-4000:]
    assert journal["phase"] == "rollback restore", journal
    # The rollback started Postgres again and restored it once more: the old version answers after this run.
    assert "ROLLED BACK" in first, first[-4000:]
    assert "rollback restore postgres again" in first, first[-4000:]
    assert '"rollback_restore_retried": ' in first, first[-4000:]
    for text in ("MODULE FAILURE", "Traceback", "Unexpected Exception"):
        assert text not in first, first[-4000:]
    assert deployment.healthz() == 200
    assert data_differences(before, deployment.fingerprint()) == []

    # The next run, as an operator or a schedule starts it: the normal target, nothing else changed.
    rc, output = run_upgrade(write_inventory(tmp_path, deployment.dir, **extra), ansible_env)
    assert rc == 0, output[-4000:]
    assert "upgraded " + FROM + " -> " + TARGET in output, output[-4000:]
    assert_recovered(deployment, before, TARGET)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator:
    """put_on(directory, size) -> moves the directory's contents onto a fresh tmpfs of size bytes mounted on it,
    owner and mode kept; unmounted (lazily: containers may still hold it) after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted: list[Path] = []

    def put_on(directory: Path, size: int) -> Path:
        saved = tmp_path / f"saved-{len(mounted)}"
        info = directory.stat()
        subprocess.run(["cp", "-a", str(directory), str(saved)], check=True)
        options = f"size={size},mode={info.st_mode & 0o7777:o},uid={info.st_uid},gid={info.st_gid}"
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounted.append(directory)
        subprocess.run(["cp", "-a", f"{saved}/.", str(directory)], check=True)
        shutil.rmtree(saved)
        return directory

    yield put_on
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], check=False)


def fill(directory: Path, leave: int) -> Path:
    """A file that takes all the free space of directory's file system but leave bytes."""
    filler = directory / "lorawan-tts-test-filler"
    free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
    with filler.open("wb") as handle:
        handle.truncate(0)
        chunk = b"\0" * MiB
        for dummy in range((free - leave) // MiB):
            handle.write(chunk)
    return filler


def test_postgres_disk_full_during_the_rollbacks_restore(deploy, ansible_env, tmp_path, small_disk):
    # The Postgres data volume is its own, small disk. The migration (3.98.0) fails; meanwhile the disk fills (as
    # a migration that grows the database fills it). The rollback sets the half-migrated database aside and copies
    # the snapshot back: the copy needs as much room again as the database, and the disk has not got it.
    deployment = deploy(FROM, "--seed", "small")
    before = deployment.fingerprint()
    assert deployment.compose("stop", "stack", "postgres").returncode == 0
    data = deployment.dir / ".env" / "data" / "postgres"
    used = int(subprocess.run(["du", "-sb", str(data)], capture_output=True, text=True, check=True).stdout.split()[0])
    small_disk(data, used + 96 * MiB)
    assert deployment.compose("up", "--detach", "--wait", "postgres", "stack").returncode == 0
    wait_healthy(deployment)
    database = int(deployment.sql("SELECT pg_database_size('ttn_lorawan')"))
    fillers: list[Path] = []

    def fill_the_disk(dummy_pid: int) -> None:
        fillers.append(fill(data, database // 2))

    failing = write_inventory(
        tmp_path, deployment.dir, tts_target_version=FAILS_MIGRATING, tts_allow_unreleased_version=True
    )
    rc, dummy_journal, first = run_and_act(
        failing, ansible_env, deployment.dir, fill_the_disk, phase("migrate " + FAILS_MIGRATING)
    )
    assert rc != 0, first[-4000:]
    assert "ROLLBACK FAILED" in first, first[-4000:]
    assert "No space left on device" in first, first[-4000:]
    assert "Free space in the Postgres data volume" in first, first[-4000:]
    for text in ("MODULE FAILURE", "Traceback", "Unexpected Exception", "Another run holds the upgrade lock"):
        assert text not in first, first[-4000:]
    journal = read_journal(deployment.dir)
    assert journal["abandoned"] and journal["outcome"] is None, journal

    # The operator frees the space, and runs the upgrade again: it takes the failed run over.
    fillers[0].unlink()
    rc, output = run_upgrade(write_inventory(tmp_path, deployment.dir), ansible_env)
    assert rc == 0, output[-4000:]
    assert "it ended with the stack stopped" in output, output[-4000:]
    assert "rolling back to " + FROM + " from its capture" in output, output[-4000:]
    assert "upgraded " + FROM + " -> " + TARGET in output, output[-4000:]
    assert_recovered(deployment, before, TARGET)
