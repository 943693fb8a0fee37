"""The docs' docker-compose.yml files verbatim (Open Source, and Enterprise with TimescaleDB and grafana on
ghcr.io): every image on `latest`, pulled by its Docker Hub (or ghcr.io) name through the sandbox's registries, the
deployment started when `latest` was 3.22.2 and the engine's `latest` pulled on to 3.36.0 since (tts-sandbox deploy
--compose docs). The collection reads the version from the container, pins the target in place of `latest`, and a
rollback brings back the images that ran, not what `latest` names now.

One deployment per edition for the whole file, in this order: a failing migration inside the bun trap, rolled back
in the cutover; 3.36.0 whose post-upgrade tasks fail, rolled back after the cutover; a migration found missing after
the start, rolled back; 3.36.0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ttssandbox.common import EDITIONS, GHCR_HOST, GRAFANA_REPOSITORY, TEMPLATES_DIR
from ttssandbox.deployment import edition_of
from ttssandbox.fingerprint import data_differences

from .conftest import Deployment, run

ROLE = "lorawan.tts.upgrade : "


def docs_file(deployment: Deployment) -> str:
    return (TEMPLATES_DIR / "docs" / f"docker-compose-{edition_of(deployment.dir)}.yml").read_text()


def moving_images(deployment: Deployment) -> list[str]:
    """The repositories whose `latest` the docs' file runs and the upgrade moves: the stack's, and grafana's on
    Enterprise."""
    edition = edition_of(deployment.dir)
    repositories = [EDITIONS[edition]["repository"]]
    if edition == "enterprise":
        repositories.append(f"{GHCR_HOST}/{GRAFANA_REPOSITORY}")
    return repositories


def assert_latest_names(deployment: Deployment, version: str) -> None:
    for repository in moving_images(deployment):
        assert image_id(f"{repository}:latest") == image_id(f"{repository}:{version}"), repository


def upgrade_playbook(deployment: Deployment, backups: Path, target: str, **variables) -> str:
    settings = {
        "tts_project_dir": str(deployment.dir),
        "tts_backup_dir": str(backups),
        "tts_target_version": target,
        "tts_pin_database_images": True,
        **variables,
    }
    tasks = [{"name": "upgrade", "ansible.builtin.include_role": {"name": "lorawan.tts.upgrade"}, "vars": settings}]
    return json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}])


def task_result(playbook_run, name_start: str) -> dict:
    tasks = [task for play in playbook_run.output.get("plays", []) for task in play["tasks"]]
    found = [
        result
        for task in tasks
        if task["task"]["name"].startswith(ROLE + name_start)
        for result in task["hosts"].values()
    ]
    assert len(found) == 1, [task["task"]["name"] for task in tasks]
    return found[0]


def cutover_result(playbook_run) -> dict:
    return task_result(playbook_run, "Upgrade | cutover |")


def upgrade_report(playbook_run) -> dict:
    return task_result(playbook_run, "Upgrade | report | Set the fact tts_upgrade")["ansible_facts"]["tts_upgrade"]


def image_id(reference: str) -> str:
    return run(["docker", "image", "inspect", "--format", "{{.Id}}", reference]).stdout.strip()


def rolled_back_report(failed) -> dict:
    assert failed.rc != 0
    report = upgrade_report(failed)
    assert report["result"] == "rolled-back", report
    return report


def assert_3_22_2_is_back(deployment: Deployment, before: dict) -> None:
    """The docs' file as it was, 3.22.2 answering (on /healthz/live: it has no /healthz), the data as before."""
    assert (deployment.dir / "docker-compose.yml").read_text() == docs_file(deployment)
    assert_latest_names(deployment, "3.22.2")
    after = deployment.fingerprint()
    assert after["stack_version"] == "3.22.2"
    assert data_differences(before, after) == []
    assert deployment.healthz() == 200


@pytest.fixture(scope="module", params=sorted(EDITIONS))
def docs_deployment(deploy, request) -> Deployment:
    deployment = deploy("3.22.2", "--compose", "docs", "--edition", request.param)
    assert (deployment.dir / "docker-compose.yml").read_text() == docs_file(deployment)
    # The engine's `latest` is the mirror's (3.36.0) again: it no longer names the image that runs.
    assert_latest_names(deployment, "3.36.0")
    assert deployment.fingerprint()["stack_version"] == "3.22.2"
    return deployment


def test_a_failing_migration_in_the_bun_trap_is_rolled_back_to_the_image_that_ran(
    docs_deployment, run_playbook, tmp_path
) -> None:
    deployment = docs_deployment
    before = deployment.fingerprint()
    failed = run_playbook(upgrade_playbook(deployment, tmp_path, "3.30.9"))
    report = rolled_back_report(failed)
    assert report["hops"] == ["3.24.2", "3.30.9"]
    cutover = cutover_result(failed)
    assert sorted(cutover["images_brought_back"]) == sorted(f"{name}:latest" for name in moving_images(deployment))
    stack_repository = EDITIONS[edition_of(deployment.dir)]["repository"]
    assert cutover["images_before"]["stack"] == image_id(f"{stack_repository}:3.22.2")
    assert_3_22_2_is_back(deployment, before)


def test_a_rollback_after_the_cutover_brings_back_3_22_2(docs_deployment, run_playbook, tmp_path) -> None:
    deployment = docs_deployment
    # As if someone pulled `latest` meanwhile.
    for repository in moving_images(deployment):
        assert run(["docker", "pull", "-q", f"{repository}:latest"]).returncode == 0
    before = deployment.fingerprint()
    failing_tasks = tmp_path / "fail.yml"
    failing_tasks.write_text("- name: Post-upgrade | Fail on purpose\n  ansible.builtin.fail:\n    msg: on purpose\n")
    failed = run_playbook(
        upgrade_playbook(deployment, tmp_path / "backups", "3.36.0", tts_post_upgrade_tasks=str(failing_tasks))
    )
    report = rolled_back_report(failed)
    assert report["hops"] == ["3.24.2", "3.36.0"]
    assert_3_22_2_is_back(deployment, before)


def test_a_migration_missing_after_the_start_is_rolled_back(docs_deployment, run_playbook, tmp_path) -> None:
    # 3.98.2's is-db migrate says it is done but leaves its last migration out: the stack starts and answers,
    # and only is-db status, asked once it serves, shows the schema behind.
    deployment = docs_deployment
    before = deployment.fingerprint()
    failed = run_playbook(upgrade_playbook(deployment, tmp_path, "3.98.2", tts_allow_unreleased_version=True))
    report = rolled_back_report(failed)
    assert "is-db status reports 1 of its" in report["failure"]
    marks = [mark[0] for mark in cutover_result(failed)["marks"]]
    assert marks.index("serving") < marks.index("rollback stop")
    assert_3_22_2_is_back(deployment, before)


def test_the_upgrade_pins_the_target_in_place_of_latest(docs_deployment, run_playbook, tmp_path) -> None:
    deployment = docs_deployment
    before = deployment.fingerprint()
    upgraded = run_playbook(upgrade_playbook(deployment, tmp_path, "3.36.0"), "--diff")
    assert upgraded.rc == 0, json.dumps(upgraded.output)[-3000:]
    report = upgrade_report(upgraded)
    assert report["result"] == "upgraded"
    assert report["from"] == "3.22.2"
    assert report["hops"] == ["3.24.2", "3.36.0"]
    # Postgres: pinned to its running major on `latest`; TimescaleDB's latest-pg16 names its major already.
    pinned = (
        docs_file(deployment)
        .replace("lorawan-stack:latest", "lorawan-stack:3.36.0")
        .replace("lorawan-stack-noc-grafana:latest", "lorawan-stack-noc-grafana:3.36.0")
        .replace("image: postgres:latest", "image: postgres:15")
        .replace("image: redis:latest", "image: redis:7.0")
    )
    assert (deployment.dir / "docker-compose.yml").read_text() == pinned
    diff = cutover_result(upgraded)["diff"]
    assert (diff["before"], diff["after"]) == (docs_file(deployment), pinned)
    # The backup keeps the docs' file as it was.
    backup = Path(report["backup"]["path"])
    assert (backup / "files" / "project" / "docker-compose.yml").read_text() == docs_file(deployment)
    after = deployment.fingerprint()
    assert after["stack_version"] == "3.36.0"
    assert data_differences(before, after) == []
    assert deployment.healthz() == 200  # /healthz, from 3.24.0
