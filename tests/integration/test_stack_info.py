"""lorawan.tts.stack_info against real sandbox deployments of both editions, running and partly stopped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from ttssandbox.common import REGISTRY

from .conftest import Deployment, run


@pytest.fixture(scope="module")
def open_source(deploy) -> Deployment:
    return deploy("3.31.1")


@pytest.fixture(scope="module")
def enterprise(deploy) -> Deployment:
    return deploy("3.31.1", "--edition", "enterprise", "--redis", "6", "--postgres", "13")


@pytest.fixture
def compose_file(open_source: Deployment) -> Iterator[Path]:
    """The open-source deployment's compose file, put back as it was after the test."""
    path = open_source.dir / "docker-compose.yml"
    original = path.read_text()
    yield path
    path.write_text(original)


def info(run_playbook, deployment: Deployment, *options: str, **args) -> dict:
    """Run stack_info on localhost; its result (a failed one included)."""
    args = {"project_src": str(deployment.dir), **args}
    playbook = f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: stack_info
      lorawan.tts.stack_info: {json.dumps(args)}
      ignore_errors: true
"""
    result = run_playbook(playbook, *options)
    assert result.output, result.stderr
    return result.result("stack_info")


def test_open_source_deployment(run_playbook, open_source, tmp_path) -> None:
    backup_dir = tmp_path / "not" / "yet" / "there"
    result = info(run_playbook, open_source, "--check", backup_dir=str(backup_dir))
    assert not result.get("failed"), result
    assert result["changed"] is False
    tts = result["tts"]
    assert tts["edition"] == "open-source"
    assert tts["stack_version"] == "3.31.1"
    assert tts["configured_version"] == "3.31.1"
    assert tts["images"]["stack"] == {
        "image": f"{REGISTRY}/thethingsnetwork/lorawan-stack:3.31.1",
        "repository": f"{REGISTRY}/thethingsnetwork/lorawan-stack",
        "tag": "3.31.1",
        "digest": None,
        "moving_major": False,
    }
    assert tts["images"]["postgres"]["tag"] == "15"
    assert set(tts["services"]) == {"stack", "redis", "postgres"}
    assert all(service["running"] for service in tts["services"].values())
    # Docker's verdict comes once a minute, as with the real image; TTS itself answers at once.
    assert tts["services"]["stack"]["health"] in ("starting", "healthy")
    assert tts["health"] == {"url": open_source.summary["healthz"], "status": 200}
    assert tts["services"]["stack"]["container"] == f"{open_source.summary['project']}-stack-1"

    assert tts["redis"]["format"] == "aof-multipart"
    assert tts["redis"]["version"].startswith("7.")
    assert tts["redis"]["key_count"] == int(open_source.redis("DBSIZE")) > 0

    assert tts["postgres"]["major_data_dir"] == "15"
    assert tts["postgres"]["major_image"] == "15"
    expected_size = int(open_source.sql("SELECT pg_database_size('ttn_lorawan')"))
    assert abs(tts["postgres"]["database_size"] - expected_size) < 1024 * 1024
    assert tts["postgres"]["data_dir_free"] > expected_size
    assert tts["redis"]["data_dir"] == str(open_source.dir / ".env" / "data" / "redis")
    assert tts["redis"]["data_size"] > 0

    assert tts["blob"]["path"] == str(open_source.dir / "blob")
    assert tts["blob"]["size"] > 0
    assert tts["blob"]["files"] > 0
    assert tts["backup_dir_free"] > 0
    assert not backup_dir.parent.exists()  # measured at the nearest existing parent, nothing created

    assert tts["compose_command"]["name"] == "docker compose"
    version = run(["docker", "compose", "version", "--short"]).stdout.strip().lstrip("v")
    assert tts["compose_command"]["version"] == version
    assert tts["warnings"] == []


def test_enterprise_deployment_with_redis_6_and_postgres_13(run_playbook, enterprise) -> None:
    result = info(run_playbook, enterprise)
    assert not result.get("failed"), result
    tts = result["tts"]
    assert tts["edition"] == "enterprise"
    assert tts["stack_version"] == "3.31.1"
    assert tts["images"]["grafana"]["tag"] == "3.31.1"
    assert tts["images"]["postgres"]["tag"] == "latest-pg13"  # a moving tag with a major: no warning
    assert tts["redis"]["format"] == "aof"
    assert tts["redis"]["version"].startswith("6.")
    assert tts["redis"]["key_count"] > 0
    assert tts["postgres"]["major_data_dir"] == "13"
    assert tts["postgres"]["major_image"] == "13"
    assert tts["postgres"]["database_size"] > 0
    assert tts["backup_dir_free"] is None
    assert tts["warnings"] == []


def test_enterprise_grafana_tag_must_match_the_stack(run_playbook, enterprise) -> None:
    path = enterprise.dir / "docker-compose.yml"
    original = path.read_text()
    path.write_text(original.replace("lorawan-stack-noc-grafana:3.31.1", "lorawan-stack-noc-grafana:3.32.0"))
    try:
        result = info(run_playbook, enterprise)
    finally:
        path.write_text(original)
    assert result["tts"]["warnings"] == [
        "the grafana image tag 3.32.0 differs from the stack's 3.31.1: on Enterprise they must match"
    ]


def test_moving_database_images_are_warned_about_and_digests_are_reported(
    run_playbook, open_source, compose_file
) -> None:
    digests = run(["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", f"{REGISTRY}/library/redis:7"])
    assert digests.returncode == 0, digests.stderr
    # The same image may also be known by its Docker Hub name (redis:latest, pulled through the registry mirror).
    (pinned,) = [name for name in json.loads(digests.stdout) if name.startswith(f"{REGISTRY}/library/redis@")]
    compose_file.write_text(
        compose_file.read_text()
        .replace(f"{REGISTRY}/library/postgres:15", f"{REGISTRY}/library/postgres:latest")
        .replace(f"{REGISTRY}/library/redis:7", pinned)
    )
    tts = info(run_playbook, open_source)["tts"]
    assert tts["images"]["postgres"]["tag"] == "latest"
    assert tts["images"]["redis"] == {
        "image": pinned,
        "repository": f"{REGISTRY}/library/redis",
        "tag": None,
        "digest": pinned.split("@", 1)[1],
        "moving_major": False,
    }
    assert tts["images"]["postgres"]["moving_major"] is True
    assert len(tts["warnings"]) == 1
    assert (
        "Postgres image localhost:5000/library/postgres:latest of service postgres is on tag 'latest'"
        in (tts["warnings"][0])
    )
    assert "another major version" in tts["warnings"][0]

    compose_file.write_text(compose_file.read_text().replace(f"{REGISTRY}/library/postgres:latest", "postgres"))
    tts = info(run_playbook, open_source)["tts"]
    assert tts["images"]["postgres"] == {
        "image": "postgres",
        "repository": "postgres",
        "tag": None,
        "digest": None,
        "moving_major": True,
    }
    assert "is on no tag" in tts["warnings"][0]


def test_stopped_services_give_partial_facts(run_playbook, open_source, compose_file) -> None:
    stopped = open_source.compose("stop", "stack", "postgres")
    assert stopped.returncode == 0, stopped.stderr
    # The data directory was written by 15; an image of another major cannot open it.
    compose_file.write_text(
        compose_file.read_text().replace(f"{REGISTRY}/library/postgres:15", f"{REGISTRY}/library/postgres:13")
    )
    try:
        result = info(run_playbook, open_source)
    finally:
        compose_file.write_text(compose_file.read_text().replace("library/postgres:13", "library/postgres:15"))
        started = open_source.compose("start", "postgres", "stack")
    assert started.returncode == 0, started.stderr
    assert not result.get("failed"), result
    tts = result["tts"]
    assert tts["stack_version"] is None
    assert tts["configured_version"] == "3.31.1"
    assert tts["services"]["stack"] == {
        "state": "exited",
        "health": tts["services"]["stack"]["health"],
        "running": False,
        "container": f"{open_source.summary['project']}-stack-1",
    }
    assert tts["services"]["redis"]["running"] is True
    assert tts["redis"]["format"] == "aof-multipart"
    assert tts["postgres"] == {
        "major_data_dir": "15",
        "major_image": "13",
        "major_running": None,
        "database_size": None,
        "data_dir_free": None,
    }
    warnings = "\n".join(tts["warnings"])
    assert "the stack service 'stack' is not running" in warnings
    assert "the Postgres service 'postgres' is not running" in warnings
    assert "is major 13 but its data directory was written by major 15" in warnings
    assert tts["blob"]["size"] > 0


def test_the_postgres_major_is_the_compose_files_not_the_running_containers(run_playbook, open_source, compose_file):
    # The next start would run 13 on a data directory written by 15, while 15 still runs.
    original = compose_file.read_text()
    compose_file.write_text(original.replace(f"{REGISTRY}/library/postgres:15", f"{REGISTRY}/library/postgres:13"))
    try:
        result = info(run_playbook, open_source)
    finally:
        compose_file.write_text(original)
    assert not result.get("failed"), result
    postgres = result["tts"]["postgres"]
    assert (postgres["major_data_dir"], postgres["major_image"], postgres["major_running"]) == ("15", "13", "15")
    assert any("is major 13 but its data directory was written by major 15" in w for w in result["tts"]["warnings"])


def test_project_src_that_is_not_a_directory_fails_clearly(run_playbook, open_source, tmp_path) -> None:
    result = info(run_playbook, open_source, project_src=str(tmp_path / "missing"))
    assert result["failed"] is True
    assert "is not a directory" in result["msg"]
