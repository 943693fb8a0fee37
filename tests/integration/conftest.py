"""Fixtures for tests against the real Docker sandbox (tests/sandbox/tts-sandbox)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ttssandbox.common import psql_args
from ttssandbox.deployment import healthz_port, healthz_status, stack_health_path

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = ROOT / "tests" / "sandbox" / "tts-sandbox"
ANSIBLE_BIN_VARIABLE = "LORAWAN_TTS_ANSIBLE_BIN"
SSH_ADDRESS = "127.0.0.2"
SSHD = Path("/usr/sbin/sshd")


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)


def sandbox(*args: str) -> subprocess.CompletedProcess[str]:
    return run([str(SANDBOX), *args])


@dataclass
class Deployment:
    dir: Path
    summary: dict

    @property
    def binary(self) -> str:
        return "tti-lw-stack" if self.summary["edition"] == "enterprise" else "ttn-lw-stack"

    def compose(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:  # noqa: A002
        return run(["docker", "compose", *args], cwd=self.dir, input=input)

    def stack(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the stack's command line as the runbook does: a one-off container, no TTY."""
        return self.compose("run", "--rm", "-T", "stack", *args)

    def sql(self, query: str) -> str:
        result = self.compose(*psql_args("-X", "-A", "-t", "-c", query))
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def redis(self, *args: str) -> str:
        result = self.compose("exec", "-T", "redis", "redis-cli", "--raw", *args)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def fingerprint(self) -> dict:
        result = sandbox("fingerprint", str(self.dir))
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def set_stack_tag(self, version: str) -> None:
        """A plain text edit of the stack (and grafana) tags, enough for testing the stand-in."""
        compose_file = self.dir / "docker-compose.yml"
        text = compose_file.read_text()
        old = self.summary["version"]
        compose_file.write_text(
            text.replace(f"lorawan-stack:{old}", f"lorawan-stack:{version}").replace(
                f"lorawan-stack-noc-grafana:{old}", f"lorawan-stack-noc-grafana:{version}"
            )
        )
        self.summary["version"] = version

    def healthz(self) -> int | None:
        return healthz_status(healthz_port(self.dir), stack_health_path(self.dir))

    def wait_for_log(self, service: str, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        logs = ""
        while time.monotonic() < deadline:
            logs = self.compose("logs", "--no-color", service).stdout
            if text in logs:
                return logs
            time.sleep(0.5)
        raise AssertionError(f"{text!r} not in the {service} logs within {timeout} s:\n{logs[-2000:]}")


def awx_extra_vars(target: str) -> dict[str, str]:
    """The upgrade job's extra variables as AWX passes them (docs/awx): the survey's answers and the job template's
    extra variables, all text, the way a text survey question gives them."""
    return {
        "tts_target_version": target,
        "tts_hosts": "all",
        "tts_rollback_on_failure": "true",
        "tts_upgrade_serial": "1",
        "tts_max_fail_percentage": "0",
    }


@pytest.fixture(scope="session", autouse=True)
def docker_sandbox() -> None:
    if run(["docker", "info"]).returncode != 0:
        pytest.fail("the Docker engine does not answer: run scripts/setup (or tests/sandbox/tts-sandbox setup) first")


DeployFactory = Callable[..., Deployment]


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployFactory]:
    """Deploy sandbox deployments for a test module; all are torn down after it."""
    created: list[Path] = []

    def factory(version: str, *options: str) -> Deployment:
        directory = tmp_path_factory.mktemp("deployments", numbered=True) / f"tts-{uuid.uuid4().hex[:8]}"
        created.append(directory)
        result = sandbox("deploy", str(directory), "--version", version, *options)
        assert result.returncode == 0, result.stderr
        return Deployment(directory, json.loads(result.stdout))

    yield factory
    for directory in created:
        sandbox("teardown", str(directory))


@pytest.fixture(scope="session")
def ansible_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for ansible/ansible-playbook subprocesses that finds this checkout as lorawan.tts.

    They are this interpreter's, or those in the directory LORAWAN_TTS_ANSIBLE_BIN names (scripts/test runs a few
    tests with the oldest supported ansible-core, .venv-oldest/bin).
    """
    collections = tmp_path_factory.mktemp("collections")
    (collections / "ansible_collections" / "lorawan").mkdir(parents=True)
    (collections / "ansible_collections" / "lorawan" / "tts").symlink_to(ROOT)
    search_path = [str(Path(sys.executable).parent), os.environ["PATH"]]
    ansible_bin = os.environ.get(ANSIBLE_BIN_VARIABLE)
    if ansible_bin:
        if not (Path(ansible_bin) / "ansible-playbook").is_file():
            pytest.fail(f"{ANSIBLE_BIN_VARIABLE}={ansible_bin} has no ansible-playbook: run scripts/setup")
        search_path.insert(0, ansible_bin)
    return {
        **os.environ,
        "PATH": os.pathsep.join(search_path),
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_STDOUT_CALLBACK": "test_results",
        "ANSIBLE_CALLBACK_PLUGINS": str(Path(__file__).resolve().parent / "callback_plugins"),
        "ANSIBLE_NOCOLOR": "1",
    }


@dataclass
class PlaybookRun:
    rc: int
    output: dict
    stderr: str

    def task_results(self, name: str) -> list[dict]:
        """The per-host results of every task with this name, in order."""
        return [
            host_result
            for play in self.output.get("plays", [])
            for task in play["tasks"]
            if task["task"]["name"] == name
            for host_result in task["hosts"].values()
        ]

    def result(self, name: str) -> dict:
        results = self.task_results(name)
        assert len(results) == 1, f"expected one result for task {name!r}, got {len(results)}"
        return results[0]


@pytest.fixture(scope="session")
def run_playbook(ansible_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    """Run a playbook given as YAML text on localhost; returns its JSON callback output."""

    def runner(playbook: str, *options: str, extra_env: dict[str, str] | None = None) -> PlaybookRun:
        path = tmp_path_factory.mktemp("playbooks") / "playbook.yml"
        path.write_text(playbook)
        command = ["ansible-playbook", "-i", "localhost,", "-c", "local", str(path), *options]
        result = run(command, env={**ansible_env, **(extra_env or {})})
        try:
            output = json.loads(result.stdout)
        except ValueError:
            output = {}
        return PlaybookRun(result.returncode, output, result.stderr + result.stdout[-4000:])

    return runner


@dataclass
class SshServer:
    address: str
    port: int
    key: Path


def free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def port_answers(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """An sshd on 127.0.0.2 for root with a key made here; the same machine, so deployments and venv are there."""
    if not SSHD.is_file():
        pytest.fail(f"{SSHD} is missing: run tests/sandbox/tts-sandbox setup (it installs openssh-server)")
    directory = tmp_path_factory.mktemp("sshd")
    client_key = directory / "id_ed25519"
    host_key = directory / "ssh_host_ed25519_key"
    for key in (client_key, host_key):
        result = run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lorawan-tts-fleet-test", "-f", str(key)])
        assert result.returncode == 0, result.stderr
    authorized_keys = directory / "authorized_keys"
    shutil.copyfile(client_key.with_suffix(".pub"), authorized_keys)
    port = free_port(SSH_ADDRESS)
    config = directory / "sshd_config"
    config.write_text(
        "\n".join(
            (
                f"ListenAddress {SSH_ADDRESS}",
                f"Port {port}",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {authorized_keys}",
                f"PidFile {directory / 'sshd.pid'}",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "Subsystem sftp /usr/lib/openssh/sftp-server",
                "",
            )
        )
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    log = directory / "sshd.log"
    process = subprocess.Popen(
        [str(SSHD), "-D", "-f", str(config), "-E", str(log)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 15
        while not port_answers(SSH_ADDRESS, port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshd did not listen on {SSH_ADDRESS}:{port}: {log.read_text() if log.exists() else ''}")
            time.sleep(0.1)
        yield SshServer(SSH_ADDRESS, port, client_key)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ssh_host_vars(server: SshServer, *, pipelining: bool = False) -> dict[str, object]:
    """Host variables for the SSH host; pipelining halves the run time of a role's many small tasks."""
    return {
        "ansible_connection": "ssh",
        "ansible_host": server.address,
        "ansible_port": server.port,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(server.key),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ansible_python_interpreter": sys.executable,  # the same machine: the venv with the collection's needs
        "ansible_pipelining": pipelining,
    }
