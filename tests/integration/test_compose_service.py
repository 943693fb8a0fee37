"""lorawan.tts.compose_service against a real sandbox deployment: each state, idempotence, check mode, errors."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ttssandbox.common import REGISTRY

from .conftest import Deployment, run

STACK_REPOSITORY = f"{REGISTRY}/thethingsnetwork/lorawan-stack"


# The TTS image checks its health once a minute; what `wait` does is tested against a deployment whose compose
# file checks every second, as an operator may configure it.
FAST_HEALTHCHECK = "services:\n  stack:\n    healthcheck:\n      interval: 1s\n      timeout: 5s\n      retries: 3\n"


@pytest.fixture(scope="module")
def deployment(deploy) -> Deployment:
    deployment = deploy("3.31.1")
    (deployment.dir / "docker-compose.override.yml").write_text(FAST_HEALTHCHECK)
    assert deployment.compose("up", "--detach", "stack").returncode == 0
    return deployment


@pytest.fixture
def compose_file(deployment: Deployment) -> Iterator[Path]:
    """The deployment's compose file, put back as it was after the test."""
    path = deployment.dir / "docker-compose.yml"
    original = path.read_text()
    yield path
    path.write_text(original)


def service(run_playbook, deployment: Deployment, *tasks: dict) -> list[dict]:
    """Run compose_service once per task on localhost, in one playbook; the results (failed ones included).

    A task is the module's arguments, project_src aside; `check: true` runs it in check mode.
    """
    body = ""
    for number, task in enumerate(tasks):
        args = {"project_src": str(deployment.dir), **{k: v for k, v in task.items() if k != "check"}}
        body += f"""
    - name: task {number}
      lorawan.tts.compose_service: {json.dumps(args)}
      check_mode: {json.dumps(bool(task.get("check")))}
      ignore_errors: true
"""
    result = run_playbook(f"- hosts: localhost\n  gather_facts: false\n  tasks:{body}")
    assert result.output, result.stderr
    return [result.result(f"task {number}") for number in range(len(tasks))]


def states(deployment: Deployment) -> dict[str, str]:
    out = deployment.compose("ps", "--all", "--format", "json").stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    if len(rows) == 1 and isinstance(rows[0], list):
        rows = rows[0]
    return {row["Service"]: row["State"] for row in rows}


def container_id(deployment: Deployment, name: str) -> str:
    return deployment.compose("ps", "--all", "--quiet", name).stdout.strip()


STACK = {"services": ["stack"]}


def test_stop_stops_only_the_named_service_and_start_waits_until_healthy(run_playbook, deployment) -> None:
    stack_id = container_id(deployment, "stack")
    predicted, stopped, again = service(
        run_playbook,
        deployment,
        {**STACK, "state": "stopped", "check": True},
        {**STACK, "state": "stopped"},
        {**STACK, "state": "stopped"},
    )
    assert predicted["changed"] is True
    assert predicted["containers"]["stack"]["state"] == "running"
    assert not stopped.get("failed"), stopped
    assert stopped["changed"] is True  # so check mode had stopped nothing
    assert stopped["containers"]["stack"]["state"] == "exited"
    assert set(stopped["containers"]) == {"stack"}
    assert again["changed"] is False
    assert states(deployment) == {"stack": "exited", "redis": "running", "postgres": "running"}

    predicted, started, again = service(
        run_playbook,
        deployment,
        {**STACK, "state": "started", "check": True},
        {**STACK, "state": "started", "wait": True, "wait_timeout": 60},
        {**STACK, "state": "started", "wait": True},
    )
    assert predicted["changed"] is True
    assert not started.get("failed"), started
    assert started["changed"] is True
    assert started["containers"]["stack"]["state"] == "running"
    assert started["containers"]["stack"]["health"] == "healthy"
    assert started["containers"]["stack"]["id"] == stack_id  # started, not recreated
    assert again["changed"] is False
    assert deployment.healthz() == 200


def test_pulled_reports_a_change_only_when_the_local_image_changed(run_playbook, deployment, compose_file) -> None:
    # A tag only this test uses, in the registry but not on the host: pulling it changes the local image.
    tag = f"3.32.0-test-{uuid.uuid4().hex[:8]}"
    image = f"{STACK_REPOSITORY}:{tag}"
    for argv in (
        ["docker", "tag", f"{STACK_REPOSITORY}:3.32.0", image],
        ["docker", "push", "--quiet", image],
        ["docker", "image", "rm", image],
    ):
        done = run(argv)
        assert done.returncode == 0, done.stderr
    compose_file.write_text(compose_file.read_text().replace("lorawan-stack:3.31.1", f"lorawan-stack:{tag}"))
    try:
        predicted, pulled, again = service(
            run_playbook,
            deployment,
            {**STACK, "state": "pulled", "check": True},
            {**STACK, "state": "pulled"},
            {**STACK, "state": "pulled"},
        )
    finally:
        run(["docker", "image", "rm", image])
    assert predicted["changed"] is True
    assert predicted["image_ids"]["before"]["stack"] is None
    assert not pulled.get("failed"), pulled
    assert pulled["changed"] is True
    assert pulled["image_ids"]["before"]["stack"] is None  # so check mode had pulled nothing
    assert pulled["image_ids"]["after"]["stack"].startswith("sha256:")
    assert pulled["containers"]["stack"]["state"] == "running"  # pulling stops nothing
    assert again["changed"] is False
    assert again["image_ids"]["before"] == again["image_ids"]["after"] == pulled["image_ids"]["after"]


def test_pulling_a_missing_tag_fails_clearly_and_keeps_the_stack_running(
    run_playbook, deployment, compose_file
) -> None:
    compose_file.write_text(compose_file.read_text().replace("lorawan-stack:3.31.1", "lorawan-stack:3.99.9"))
    (failed,) = service(run_playbook, deployment, {**STACK, "state": "pulled"})
    assert failed["failed"] is True
    message = failed["msg"]
    assert f"{STACK_REPOSITORY}:3.99.9 of service stack" in message
    assert "tag does not exist in the registry localhost:5000" in message
    assert "Nothing was stopped" in message
    assert "manifest unknown" in message  # the stderr tail
    assert failed["changed"] is False
    assert states(deployment)["stack"] == "running"
    assert deployment.healthz() == 200


def test_pulling_from_an_unreachable_registry_names_it(run_playbook, deployment, compose_file) -> None:
    compose_file.write_text(compose_file.read_text().replace(f"{REGISTRY}/library/redis", "127.0.0.1:9/library/redis"))
    (failed,) = service(run_playbook, deployment, {"services": ["redis"], "state": "pulled"})
    assert failed["failed"] is True
    assert "the registry 127.0.0.1:9 could not be reached" in failed["msg"]
    assert "Nothing was stopped" in failed["msg"]
    assert states(deployment)["redis"] == "running"


def test_unknown_service_lists_the_services_that_exist(run_playbook, deployment) -> None:
    (failed,) = service(run_playbook, deployment, {"services": ["stack", "nosuch"], "state": "stopped"})
    assert failed["failed"] is True
    assert "unknown service(s) nosuch" in failed["msg"]
    assert "postgres, redis, stack" in failed["msg"]
    assert states(deployment)["stack"] == "running"


def test_present_recreates_only_when_the_configuration_changed(run_playbook, deployment, compose_file) -> None:
    predicted, unchanged = service(run_playbook, deployment, {"state": "present", "check": True}, {"state": "present"})
    assert predicted["changed"] is False
    assert unchanged["changed"] is False

    stack_id = container_id(deployment, "stack")
    compose_file.write_text(
        compose_file.read_text().replace(
            "TTN_LW_REDIS_ADDRESS: redis:6379", "TTN_LW_REDIS_ADDRESS: redis:6379\n      LORAWAN_TTS_TEST: recreate"
        )
    )
    predicted, recreated, again = service(
        run_playbook,
        deployment,
        {**STACK, "state": "present", "check": True},
        {**STACK, "state": "present", "wait": True, "wait_timeout": 60},
        {**STACK, "state": "present", "wait": True},
    )
    assert predicted["changed"] is True
    assert predicted["containers"]["stack"]["id"] == stack_id
    assert not recreated.get("failed"), recreated
    assert recreated["changed"] is True
    assert recreated["containers"]["stack"]["id"] != stack_id
    assert recreated["containers"]["stack"]["health"] == "healthy"
    assert again["changed"] is False
    assert deployment.healthz() == 200


def test_started_needs_a_container_and_present_creates_it(run_playbook, deployment) -> None:
    removed = deployment.compose("rm", "--stop", "--force", "stack")
    assert removed.returncode == 0, removed.stderr
    failed, predicted, created = service(
        run_playbook,
        deployment,
        {**STACK, "state": "started"},
        {**STACK, "state": "present", "check": True},
        {**STACK, "state": "present", "wait": True, "wait_timeout": 60},
    )
    assert failed["failed"] is True
    assert "service(s) stack have no container to start" in failed["msg"]
    assert "state=present" in failed["msg"]
    assert failed["containers"] == {"stack": None}
    assert predicted["changed"] is True
    assert not created.get("failed"), created
    assert created["changed"] is True
    assert created["containers"]["stack"]["health"] == "healthy"


def test_wait_fails_with_the_health_of_a_stack_that_never_gets_healthy(run_playbook, deployment, compose_file) -> None:
    original = compose_file.read_text()
    compose_file.write_text(original.replace("lorawan-stack:3.31.1", "lorawan-stack:3.98.1"))
    try:
        (failed,) = service(run_playbook, deployment, {**STACK, "state": "present", "wait": True, "wait_timeout": 5})
    finally:
        compose_file.write_text(original)
        (back,) = service(run_playbook, deployment, {**STACK, "state": "present", "wait": True, "wait_timeout": 60})
    assert failed["failed"] is True
    assert "were not running and healthy after 5 s" in failed["msg"]
    assert "stack: running, health" in failed["msg"]
    assert "raise wait_timeout" in failed["msg"]
    assert failed["changed"] is True  # the container was recreated before the wait failed
    assert failed["containers"]["stack"]["image"] == f"{STACK_REPOSITORY}:3.98.1"
    assert not back.get("failed"), back
    assert back["containers"]["stack"]["image"] == f"{STACK_REPOSITORY}:3.31.1"
    assert deployment.healthz() == 200


def test_pulled_with_a_tag_pulls_ahead_without_touching_the_compose_file(
    run_playbook, deployment, compose_file
) -> None:
    tag = f"3.32.0-ahead-{uuid.uuid4().hex[:8]}"
    image = f"{STACK_REPOSITORY}:{tag}"
    for argv in (
        ["docker", "tag", f"{STACK_REPOSITORY}:3.32.0", image],
        ["docker", "push", "--quiet", image],
        ["docker", "image", "rm", image],
    ):
        done = run(argv)
        assert done.returncode == 0, done.stderr
    original = compose_file.read_bytes()
    try:
        pulled, again, missing, wrong_state = service(
            run_playbook,
            deployment,
            {**STACK, "state": "pulled", "tag": tag},
            {**STACK, "state": "pulled", "tag": tag},
            {**STACK, "state": "pulled", "tag": "3.99.9"},
            {**STACK, "state": "stopped", "tag": tag},
        )
    finally:
        run(["docker", "image", "rm", image])
    assert not pulled.get("failed"), pulled
    assert pulled["changed"] is True
    assert pulled["image_ids"]["before"]["stack"] is None
    assert pulled["image_ids"]["after"]["stack"].startswith("sha256:")
    assert again["changed"] is False
    assert missing["failed"] is True
    assert "Nothing was stopped" in missing["msg"]
    assert wrong_state["failed"] is True
    assert "tag is only for state=pulled" in wrong_state["msg"]
    assert compose_file.read_bytes() == original
    assert states(deployment)["stack"] == "running"
