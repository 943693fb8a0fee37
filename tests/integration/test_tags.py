"""Tagged runs of the roles as operators make them: the preflight alone stops nothing, a selection that would run a
role only in part is refused before anything runs, and --check --diff shows the compose file's change and makes it
not. One deployment serves every test: none of them may change it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import Deployment, run

PLAN = "Upgrade | preflight | Show the plan"
CUTOVER_PREFIX = "Upgrade | cutover | "
JOURNAL = ".lorawan-tts.journal"


def role_play(role: str, deployment: Deployment, backups: Path) -> str:
    """The role as a play's `roles:` entry, as the backup and restore playbooks run it (the upgrade playbook imports it
    in a block): tags reach its tasks."""
    variables = {"tts_project_dir": str(deployment.dir), "tts_backup_dir": str(backups), "tts_target_version": "3.32.0"}
    return json.dumps(
        [{"hosts": "localhost", "gather_facts": False, "roles": [{"role": f"lorawan.tts.{role}", "vars": variables}]}]
    )


def untouched_state(deployment: Deployment) -> dict:
    """What a run that changes nothing leaves as it was: each container's start, the compose file's bytes, and
    whether a run's journal exists."""
    ids = deployment.compose("ps", "-a", "-q").stdout.split()
    inspected = run(["docker", "inspect", "--format", "{{.Name}} {{.State.StartedAt}} {{.State.Running}}", *ids])
    assert inspected.returncode == 0, inspected.stderr
    return {
        "containers": sorted(inspected.stdout.splitlines()),
        "compose": (deployment.dir / "docker-compose.yml").read_bytes(),
        "journal": (deployment.dir / JOURNAL).exists(),
    }


def ran(playbook_run) -> dict[str, dict]:
    """The tasks that ran (not skipped), by name without the role's prefix ("lorawan.tts.upgrade : "), with the
    host's result."""
    return {
        task["task"]["name"].split(" : ", 1)[-1]: task["hosts"]["localhost"]
        for play in playbook_run.output.get("plays", [])
        for task in play["tasks"]
        if not task["hosts"]["localhost"].get("skipped")
    }


@pytest.fixture(scope="module")
def deployment(deploy) -> Deployment:
    deployed = deploy("3.31.1", "--seed", "small")
    assert deployed.healthz() == 200
    return deployed


@pytest.fixture
def backups(tmp_path: Path) -> Path:
    return tmp_path / "backups"


def test_the_preflight_alone_checks_and_plans_and_stops_nothing(deployment, run_playbook, backups) -> None:
    before = untouched_state(deployment)
    result = run_playbook(role_play("upgrade", deployment, backups), "--tags", "preflight")
    assert result.rc == 0, result.stderr
    tasks = ran(result)
    assert "3.31.1 -> 3.32.0" in tasks[PLAN]["msg"][0]
    assert "Upgrade | preflight | Pull every hop's images before anything stops" in tasks
    assert not [name for name in tasks if name.startswith((CUTOVER_PREFIX, "Upgrade | lock |", "Backup | files |"))]
    assert untouched_state(deployment) == before
    assert not list(backups.glob("*/*/manifest.json"))


@pytest.mark.parametrize(
    ("role", "tags", "skipped"),
    [
        pytest.param("upgrade", ["--skip-tags", "backup"], "files, cutover, seal", id="upgrade-skip-backup"),
        pytest.param("upgrade", ["--tags", "migrate"], "preflight, lock, files, seal, report", id="upgrade-migrate"),
        pytest.param("upgrade", ["--skip-tags", "verify"], "cutover", id="upgrade-skip-verify"),
        pytest.param("backup", ["--tags", "stop,backup"], "preflight, start", id="backup-without-start"),
        pytest.param("restore", ["--skip-tags", "verify"], "verify", id="restore-skip-verify"),
    ],
)
def test_a_partial_run_is_refused_before_anything_runs(deployment, run_playbook, backups, role, tags, skipped) -> None:
    before = untouched_state(deployment)
    result = run_playbook(role_play(role, deployment, backups), *tags)
    assert result.rc != 0
    refusal_task = f"{role.capitalize()} | main | Refuse tags that would leave the deployment half-done"
    tasks = ran(result)
    # Ansible's own check of the role's variables comes first; it reads nothing.
    assert [name for name in tasks if not name.startswith("Validating arguments against arg spec")] == [refusal_task]
    refusal = tasks[refusal_task]
    assert refusal["failed"]
    assert f"and skip {skipped}:" in refusal["msg"]
    assert "--tags preflight for the checks alone" in refusal["msg"]
    assert untouched_state(deployment) == before


def test_check_diff_shows_the_compose_files_change_and_makes_none(deployment, run_playbook, backups) -> None:
    before = untouched_state(deployment)
    result = run_playbook(role_play("upgrade", deployment, backups), "--check", "--diff")
    assert result.rc == 0, result.stderr
    tasks = ran(result)
    [outcome] = [task for name, task in tasks.items() if name.startswith(CUTOVER_PREFIX)]
    assert outcome["changed"]
    diff = outcome["diff"]
    assert diff["before_header"].endswith("docker-compose.yml")
    assert "lorawan-stack:3.31.1" in diff["before"]
    assert diff["after"] == diff["before"].replace("lorawan-stack:3.31.1", "lorawan-stack:3.32.0")
    assert not [name for name in tasks if name.startswith(("Upgrade | seal |", "Upgrade | report |"))]
    assert untouched_state(deployment) == before
    assert deployment.fingerprint()["stack_version"] == "3.31.1"
