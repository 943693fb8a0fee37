"""Postgres and Redis on `latest`, as in the docs' compose file: refused, or pinned to what runs with
tts_pin_database_images, in the same edit as the stack's tag."""

from __future__ import annotations

import json
from pathlib import Path

from ttssandbox.common import REGISTRY
from ttssandbox.deployment import wait_healthy
from ttssandbox.fingerprint import data_differences

from .conftest import run


def upgrade_playbook(deployment, backups: Path, **variables) -> str:
    settings = {
        "tts_project_dir": str(deployment.dir),
        "tts_backup_dir": str(backups),
        "tts_target_version": "3.32.0",
        **variables,
    }
    return json.dumps(
        [
            {
                "hosts": "localhost",
                "gather_facts": False,
                "tasks": [
                    {
                        "name": "upgrade",
                        "ansible.builtin.include_role": {"name": "lorawan.tts.upgrade"},
                        "vars": settings,
                    },
                    {"name": "report", "ansible.builtin.debug": {"var": "tts_upgrade"}},
                ],
            }
        ]
    )


def running_image(deployment, service: str) -> str:
    container = deployment.compose("ps", "--quiet", service).stdout.strip()
    return run(["docker", "inspect", "--format", "{{.Config.Image}}", container]).stdout.strip()


def test_latest_database_images_are_refused_or_pinned_to_what_runs(deploy, run_playbook, tmp_path) -> None:
    deployment = deploy("3.31.1")
    compose_file = deployment.dir / "docker-compose.yml"
    text = compose_file.read_text()
    for old, new in ((f"{REGISTRY}/library/postgres:15", f"{REGISTRY}/library/postgres:latest"),
                     (f"{REGISTRY}/library/redis:7", f"{REGISTRY}/library/redis:latest")):  # fmt: skip
        assert old in text
        text = text.replace(old, new)
    compose_file.write_text(text)
    assert deployment.compose("up", "--detach", "--wait", "postgres", "redis").returncode == 0
    wait_healthy(deployment.dir)
    before = deployment.fingerprint()

    refused = run_playbook(upgrade_playbook(deployment, tmp_path / "refused"))
    assert refused.rc != 0
    said = json.dumps(refused.output)
    assert "on a tag without a major version" in said
    assert "tts_pin_database_images=true" in said
    assert compose_file.read_text() == text
    assert deployment.fingerprint()["stack_version"] == "3.31.1"

    pinned = run_playbook(upgrade_playbook(deployment, tmp_path / "backups", tts_pin_database_images=True))
    assert pinned.rc == 0, json.dumps(pinned.output)[-3000:]
    assert pinned.result("report")["tts_upgrade"]["result"] == "upgraded"
    after_text = compose_file.read_text()
    assert f"{REGISTRY}/library/postgres:15\n" in after_text
    assert f"{REGISTRY}/library/redis:7.0\n" in after_text
    assert "lorawan-stack:3.32.0" in after_text
    # The only change to the file: the three tags.
    assert (
        after_text.replace(":3.32.0", ":3.31.1")
        .replace("postgres:15", "postgres:latest")
        .replace("redis:7.0", "redis:latest")
        == text
    )
    assert running_image(deployment, "postgres") == f"{REGISTRY}/library/postgres:15"
    assert running_image(deployment, "redis") == f"{REGISTRY}/library/redis:7.0"
    after = deployment.fingerprint()
    assert after["stack_version"] == "3.32.0"
    assert data_differences(before, after) == []
    # The backup keeps the compose file as it was: a rollback brings `latest` back.
    backup = Path(pinned.result("report")["tts_upgrade"]["backup"]["path"])
    assert (backup / "files" / "project" / "docker-compose.yml").read_text() == text

    again = run_playbook(upgrade_playbook(deployment, tmp_path / "backups", tts_pin_database_images=True))
    assert again.rc == 0
    assert again.result("report")["tts_upgrade"]["result"] == "already-current"
