"""Interrupt a real upgrade run the way operators' controllers die, and run the next one.

The run is started in its own session, as a terminal or AWX starts it; the fault is a signal to every process of
the run (ansible-playbook, its workers and, with a local connection, the module running on the host) the moment the
run's journal shows the phase the scenario waits for (see signal_run).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

FROM = "3.31.1"
TARGET = "3.32.0"
JOURNAL = ".lorawan-tts.journal"

# (signal, when): when(journal, compose file text) says the moment to send it.
Moment = Callable[[dict, str], bool]


def phase(name: str) -> Moment:
    return lambda journal, compose: journal.get("phase") == name and not journal.get("outcome")


def mid_migration(journal: dict, compose: str) -> bool:
    """The target's tag is in the compose file: the hop's migration runs."""
    return phase("migrate " + TARGET)(journal, compose) and f"lorawan-stack:{TARGET}" in compose


def write_inventory(directory: Path, deployment_dir: Path, **extra) -> Path:
    host = {
        "ansible_connection": "local",
        "tts_project_dir": str(deployment_dir),
        "tts_backup_dir": str(directory / "backups"),
        "tts_report_dir": str(directory / "reports"),
        "tts_target_version": TARGET,
        **extra,
    }
    path = directory / "inventory.json"
    path.write_text(json.dumps({"staging": {"hosts": {"tts-1": host}}}))
    return path


def read_journal(deployment_dir: Path) -> dict:
    try:
        return json.loads((deployment_dir / JOURNAL).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def run_and_interrupt(
    inventory: Path,
    env: dict[str, str],
    deployment_dir: Path,
    number: signal.Signals,
    when: Moment,
    timeout: float = 300,
) -> tuple[int, dict, str]:
    """Run the upgrade, send the signal to all its processes at the moment; (return code, journal then, output)."""
    return run_and_act(inventory, env, deployment_dir, lambda pid: signal_run(pid, number), when, timeout)


def signal_run(pid: int, number: signal.Signals) -> None:
    """Send the signal to the process group of ansible-playbook (pid) and to those of its workers, its children.

    Up to ansible-core 2.18 the workers, and the modules they start, are in ansible-playbook's group; from 2.19 each
    worker leads a group of its own. Groups further down (the docker CLI's plugins) are left alone, as before.
    """
    groups = {pid}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        parent, group = int(fields[1]), int(fields[2])
        if parent == pid:
            groups.add(group)
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, number)


def run_and_act(
    inventory: Path,
    env: dict[str, str],
    deployment_dir: Path,
    act: Callable[[int], object],
    when: Moment,
    timeout: float = 300,
) -> tuple[int, dict, str]:
    """Run the upgrade, act(its process id) once at the moment, let it end; (return code, journal then, output)."""
    log = inventory.parent / "interrupted.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            ["ansible-playbook", "lorawan.tts.upgrade", "-i", str(inventory)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=dict(env, ANSIBLE_STDOUT_CALLBACK="default"),
            start_new_session=True,
        )
        compose_file = deployment_dir / "docker-compose.yml"
        deadline = time.monotonic() + timeout
        journal: dict = {}
        while process.poll() is None and time.monotonic() < deadline:
            journal = read_journal(deployment_dir)
            if journal and when(journal, compose_file.read_text()):
                act(process.pid)
                break
            time.sleep(0.01)
        else:
            signal_run(process.pid, signal.SIGKILL)
            process.wait()
            raise AssertionError("the moment never came; the run ended or hung:\n" + log.read_text()[-3000:])
        process.wait()
    return process.returncode, journal, log.read_text()


def run_upgrade(inventory: Path, env: dict[str, str], *extra_vars: str) -> tuple[int, str]:
    argv = ["ansible-playbook", "lorawan.tts.upgrade", "-i", str(inventory)]
    for item in extra_vars:
        argv += ["-e", item]
    result = subprocess.run(
        argv, capture_output=True, text=True, env=dict(env, ANSIBLE_STDOUT_CALLBACK="default"), check=False
    )
    return result.returncode, result.stdout + result.stderr
