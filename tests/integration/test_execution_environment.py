"""AWX's path: the collection's execution environment, built by `ansible-builder build` from execution-environment.yml,
runs the upgrade job as AWX runs one, through `ansible-runner run` in the container, over SSH to a staging host,
with the survey's answers as extra variables (strings, as a survey gives them).

AWX's base, quay.io/ansible/awx-ee, cannot be pulled here: the definition is built on the sandbox's local base
(`tts-sandbox setup` builds it, see EE_* in tests/sandbox/ttssandbox/host.py). ee_definition() says what differs.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from ttssandbox.fingerprint import data_differences
from ttssandbox.host import EE_VENV, execution_environment_base_name, image_exists

from .conftest import ROOT, DeployFactory, SshServer, awx_extra_vars, run, ssh_host_vars

FROM, TARGET = "3.31.1", "3.32.0"
EE_TAG = "lorawan-tts-sandbox/ee-test:latest"
HOST = "tts-staging"


@dataclass
class ExecutionEnvironment:
    tag: str
    build_seconds: float
    size_bytes: int


def ee_definition(shipped: dict, base: str) -> dict:
    """execution-environment.yml with what the sandbox's base needs instead of awx-ee's:
    - images.base_image.name: the local base (awx-ee cannot be pulled here);
    - dependencies.python_interpreter: the base's venv (awx-ee: its /usr/bin/python3);
    - options.package_manager_path: apt-get, as the base is Debian (ansible-builder's default is dnf).
    Everything else (ansible-core's range, ansible-runner, the collection from its tarball) is the shipped one's.
    """
    definition = json.loads(json.dumps(shipped))
    definition["images"]["base_image"]["name"] = base
    definition["dependencies"]["python_interpreter"] = {"python_path": f"{EE_VENV}/bin/python3"}
    definition.setdefault("options", {})["package_manager_path"] = "/usr/bin/apt-get"
    return definition


@pytest.fixture(scope="module")
def execution_environment(
    tmp_path_factory: pytest.TempPathFactory, ansible_env: dict[str, str]
) -> Iterator[ExecutionEnvironment]:
    """The definition's header, step by step: the collection's tarball into build/ee, then ansible-builder build."""
    base = execution_environment_base_name()
    if not image_exists(base):
        pytest.fail(f"the execution environment's base {base} is missing: run scripts/setup")
    builder = shutil.which("ansible-builder", path=ansible_env["PATH"])
    if builder is None:
        pytest.fail("ansible-builder is missing: run scripts/setup (it installs tests/requirements.txt)")
    directory = tmp_path_factory.mktemp("ee")
    galaxy = ["ansible-galaxy", "collection", "build", "--output-path", str(directory / "build" / "ee"), str(ROOT)]
    built = run(galaxy, env=ansible_env)
    assert built.returncode == 0, built.stdout + built.stderr
    shipped = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    definition = directory / "execution-environment.yml"
    definition.write_text(yaml.safe_dump(ee_definition(shipped, base), sort_keys=False))
    command = [builder, "build", "--file", str(definition), "--context", str(directory / "context")]
    command += ["--tag", EE_TAG, "--container-runtime", "docker", "--verbosity", "2"]
    dangling_before = dangling_images()
    started = time.monotonic()
    # The legacy builder: Debian's engine ships without BuildKit's buildx plugin.
    result = run(command, env={**ansible_env, "DOCKER_BUILDKIT": "0"}, cwd=directory)
    build_seconds = time.monotonic() - started
    # What turned dangling during the build: the legacy builder leaves each stage but the last as an untagged image.
    for image in dangling_images() - dangling_before:
        run(["docker", "image", "rm", image])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    inspected = run(["docker", "image", "inspect", "--format", "{{.Size}}", EE_TAG])
    assert inspected.returncode == 0, inspected.stderr
    yield ExecutionEnvironment(EE_TAG, build_seconds, int(inspected.stdout))


def dangling_images() -> set[str]:
    return set(run(["docker", "image", "ls", "--quiet", "--no-trunc", "--filter", "dangling=true"]).stdout.split())


def job_directory(directory: Path, host: dict[str, object], key: Path) -> Path:
    """ansible-runner's private data directory as AWX lays out a job's: the inventory, the Machine credential's key
    (which ansible-runner hands to ssh-agent in the container), the extra variables."""
    (directory / "inventory").mkdir(parents=True)
    inventory = {"staging": {"hosts": {HOST: host}}, "production": {"hosts": {}}}
    (directory / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (directory / "env").mkdir()
    (directory / "env" / "ssh_key").write_text(key.read_text())
    (directory / "env" / "extravars").write_text(yaml.safe_dump(awx_extra_vars(TARGET)))
    return directory


def job_events(artifacts: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted((artifacts / "job_events").glob("*.json"))]


def test_ansible_runner_upgrades_a_host_with_the_execution_environment(
    execution_environment: ExecutionEnvironment,
    deploy: DeployFactory,
    sshd: SshServer,
    ansible_env: dict[str, str],
    tmp_path: Path,
) -> None:
    deployment = deploy(FROM, "--seed", "small")
    before = deployment.fingerprint()
    host = ssh_host_vars(sshd, pipelining=True)
    del host["ansible_ssh_private_key_file"]  # the key comes from ssh-agent, as AWX's credentials give it
    reports = tmp_path / "reports"
    host |= {"tts_project_dir": str(deployment.dir), "tts_backup_dir": str(tmp_path / "backups")}
    host["tts_report_dir"] = str(reports)
    job = job_directory(tmp_path / "job", host, sshd.key)
    command = ["ansible-runner", "run", str(job), "--playbook", "lorawan.tts.upgrade", "--ident", "upgrade"]
    command += ["--process-isolation", "--process-isolation-executable", "docker"]
    # The host network: the SSH host listens on the machine's loopback.
    command += ["--container-image", execution_environment.tag, "--container-option=--network=host"]
    started = time.monotonic()
    result = run(command, env=ansible_env)
    wall_seconds = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]

    artifacts = job / "artifacts" / "upgrade"
    assert (artifacts / "status").read_text() == "successful"
    invocation = json.loads((artifacts / "command").read_text())["command"]
    assert invocation[:2] == ["docker", "run"] and execution_environment.tag in invocation, invocation
    (stats,) = [event for event in job_events(artifacts) if event["event"] == "playbook_on_stats"]
    assert stats["event_data"]["artifact_data"]["tts_upgrade"][HOST]["result"] == "upgraded", stats["event_data"]

    after = deployment.fingerprint()
    assert after["stack_version"] == TARGET, after["stack_version"]
    assert data_differences(before, after) == []
    assert deployment.healthz() == 200
    (report_file,) = (reports / HOST).glob("*.json")
    report = json.loads(report_file.read_text())
    assert (report["result"], report["from"], report["to"]) == ("upgraded", FROM, TARGET), report
    print(
        f"execution environment {execution_environment.tag}: built in {execution_environment.build_seconds:.1f} s,"
        f" {execution_environment.size_bytes / 1e6:.0f} MB; ansible-runner upgrade {wall_seconds:.1f} s,"
        f" downtime {report['downtime_seconds']} s"
    )
