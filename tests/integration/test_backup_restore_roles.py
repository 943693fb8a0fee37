"""The lorawan.tts.backup and lorawan.tts.restore roles against a real sandbox deployment."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import stat
import threading
import time
import uuid
from pathlib import Path

import pytest
from ttssandbox.fingerprint import DATA_SECTIONS

from .conftest import Deployment

VERSION = "3.31.1"
NAME = re.compile(r"^\d{8}T\d{6}Z_[A-Za-z0-9._-]+$")


def role_playbook(role: str, **variables) -> str:
    """A playbook (JSON is YAML) that runs one role of the collection on localhost."""
    return json.dumps(
        [
            {
                "name": f"{role} role",
                "hosts": "localhost",
                "gather_facts": False,
                "tasks": [
                    {
                        "name": f"run lorawan.tts.{role}",
                        "ansible.builtin.include_role": {"name": f"lorawan.tts.{role}"},
                        "vars": variables,
                    },
                    {"name": "show the backup", "ansible.builtin.debug": {"var": "tts_backup"}},
                ],
            }
        ]
    )


def backups(backup_dir: Path) -> list[Path]:
    return sorted(path for path in (backup_dir / "localhost").iterdir() if NAME.match(path.name))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def data(fingerprint: dict) -> dict:
    return {section: fingerprint[section] for section in DATA_SECTIONS}


def write_more_data(deployment: Deployment) -> None:
    """Add a row, a key and a blob file, delete a key and a blob file: data that differs from any backup before."""
    tag = uuid.uuid4().hex[:8]
    query = "INSERT INTO applications (owner_user_id, created_at, application_id, name) VALUES (1, now(), '{}', 'new')"
    deployment.sql(query.format(f"app-after-backup-{tag}"))
    deployment.redis("SET", f"ttn:v3:after-backup-{tag}", "1")
    deployment.redis("DEL", sorted(deployment.redis("KEYS", "ttn:v3:as:*").splitlines())[0])
    picture = next((deployment.dir / "blob").rglob("*.png"))
    picture.unlink()
    (deployment.dir / "blob" / "profile_pictures" / f"after-backup-{tag}.png").write_bytes(b"written after the backup")


def failure_text(run) -> str:
    return json.dumps(run.output) + run.stderr


@pytest.fixture(scope="module")
def deployment(deploy) -> Deployment:
    return deploy(VERSION, "--seed", "small")


@pytest.fixture(scope="module")
def backup_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("backups")


@pytest.fixture(scope="module")
def first_backup(run_playbook, deployment, backup_dir) -> tuple[Path, dict]:
    """A consistent backup (stack stopped and started again) and the data's fingerprint at that time."""
    run = run_playbook(role_playbook("backup", tts_project_dir=str(deployment.dir), tts_backup_dir=str(backup_dir)))
    assert run.rc == 0, run.stderr
    fact = run.result("show the backup")["tts_backup"]
    return Path(fact["path"]), deployment.fingerprint()


def test_backup_layout_modes_and_manifest(first_backup, deployment, backup_dir):
    path = first_backup[0]
    assert path.parent == backup_dir / "localhost"
    assert NAME.match(path.name)
    assert path.name.endswith(f"_{VERSION}")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == 1
    assert manifest["host"] == "localhost"
    assert manifest["label"] == manifest["stack_version"] == VERSION
    assert manifest["edition"] == "open-source"
    assert manifest["postgres"]["file"] == "postgres/ttn_lorawan.dump"
    assert manifest["postgres"]["tables"] > 0
    assert manifest["postgres"]["sha256"] == sha256(path / "postgres" / "ttn_lorawan.dump")
    assert (path / manifest["redis"]["path"] / "redis-backup.json").is_file()
    assert manifest["redis"]["keys"] > 0

    files = {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()} - {"manifest.json"}
    assert files == set(manifest["files"])
    for name, entry in manifest["files"].items():
        assert entry == {"sha256": sha256(path / name), "size": (path / name).stat().st_size}, name
    assert "files/project/docker-compose.yml" in files
    assert "files/project/config/stack/ttn-lw-stack-docker.yml" in files
    blob_files = {str(p.relative_to(deployment.dir / "blob")) for p in (deployment.dir / "blob").rglob("*.png")}
    assert {name.removeprefix("files/blob/") for name in files if name.startswith("files/blob/")} == blob_files
    assert not any(".env" in Path(name).parts for name in files), "the .env/ data directory must never be copied"

    for entry in [path, *path.rglob("*")]:
        mode = stat.S_IMODE(entry.stat().st_mode)
        assert mode == (0o700 if entry.is_dir() else 0o600), f"{entry}: {oct(mode)}"
    assert deployment.healthz() == 200, "the stack runs again after the backup"


def test_long_steps_print_their_progress(deploy, run_playbook, tmp_path):
    # 150 MiB of Postgres take seconds to dump and verify: far more than the half-second interval, which they
    # exceed 6 times over at the plugin's foreground pace (50 MiB/s), so the dump runs with progress lines.
    deployment = deploy(VERSION, "--seed", "small", "--postgres-mb", "150")
    run = run_playbook(
        role_playbook(
            "backup", tts_project_dir=str(deployment.dir), tts_backup_dir=str(tmp_path), tts_progress_interval=0.5
        )
    )
    assert run.rc == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("localhost: Backup | ")]
    assert lines, run.stderr
    assert any(re.search(r"(pg_dump of|verifying the dump|checksumming).*, \d+ s$", line) for line in lines), lines
    assert "FAILED - RETRYING" not in run.stderr
    assert not list(tmp_path.rglob("*.progress*")), "the progress file is removed"


def test_restore_gives_back_the_data_of_backup_time(first_backup, deployment, run_playbook, backup_dir):
    path, at_backup = first_backup
    write_more_data(deployment)
    assert data(deployment.fingerprint()) != data(at_backup)

    run = run_playbook(role_playbook("restore", tts_project_dir=str(deployment.dir), tts_backup_dir=str(backup_dir)))
    assert run.rc == 0, run.stderr
    assert data(deployment.fingerprint()) == data(at_backup)
    assert deployment.healthz() == 200
    assert path.is_dir(), "a restore keeps its backup"


@pytest.mark.parametrize("damage", ["tampered", "missing"])
def test_damaged_backup_is_refused_naming_the_file(damage, first_backup, deployment, run_playbook, tmp_path):
    path = first_backup[0]
    copy = tmp_path / "localhost" / path.name
    shutil.copytree(path, copy)
    if damage == "tampered":
        victim = sorted((copy / "files" / "blob").rglob("*.png"))[0]
        victim.write_bytes(victim.read_bytes()[:-1] + b"X")
    else:
        victim = sorted((copy / "redis").rglob("*.aof"))[0]
        victim.unlink()
    name = str(victim.relative_to(copy))
    write_more_data(deployment)
    live = data(deployment.fingerprint())

    run = run_playbook(
        role_playbook("restore", tts_project_dir=str(deployment.dir), tts_restore_from=str(copy)),
    )
    assert run.rc != 0
    assert name in failure_text(run)
    assert ("missing" if damage == "missing" else "differ") in failure_text(run)
    assert data(deployment.fingerprint()) == live, "a refused restore changes nothing"
    assert deployment.healthz() == 200


def test_backup_without_manifest_is_refused(first_backup, deployment, run_playbook, tmp_path):
    path = first_backup[0]
    copy = tmp_path / path.name
    shutil.copytree(path, copy)
    (copy / "manifest.json").unlink()
    run = run_playbook(role_playbook("restore", tts_project_dir=str(deployment.dir), tts_restore_from=str(copy)))
    assert run.rc != 0
    assert "manifest.json is missing" in failure_text(run)


def test_live_backup_keeps_the_stack_running_and_retention_keeps_n(first_backup, deployment, run_playbook, backup_dir):
    container = deployment.compose("ps", "--format", "json", "stack").stdout.splitlines()
    before = json.loads(container[0])["ID"]
    statuses: list[int | None] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            statuses.append(deployment.healthz())
            time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        made = []
        for _attempt in range(3):
            run = run_playbook(
                role_playbook(
                    "backup",
                    tts_project_dir=str(deployment.dir),
                    tts_backup_dir=str(backup_dir),
                    tts_backup_stop_stack=False,
                    tts_backup_keep=2,
                )
            )
            assert run.rc == 0, run.stderr
            made.append(Path(run.result("show the backup")["tts_backup"]["path"]))
            assert run.result("lorawan.tts.backup : Backup | stop | Stop the stack for a consistent copy").get(
                "skipped"
            )
            time.sleep(1)
    finally:
        done.set()
        watcher.join()

    assert statuses and all(status == 200 for status in statuses), statuses
    after = json.loads(deployment.compose("ps", "--format", "json", "stack").stdout.splitlines()[0])
    assert after["ID"] == before and after["State"] == "running"
    assert backups(backup_dir) == made[-2:], "keeps the newest two, including the one just made"
    manifest = json.loads((made[-1] / "manifest.json").read_text())
    assert manifest["stack_stopped"] is False


@pytest.mark.parametrize(
    ("role", "variables", "message"),
    [
        ("backup", {"tts_backup_keep": "x"}, "tts_backup_keep"),
        ("backup", {"tts_backup_stop_stack": "maybe"}, "tts_backup_stop_stack"),
        ("backup", {"tts_edition": "community"}, "tts_edition"),
        ("backup", {"tts_project_dir": None}, "tts_project_dir"),
        ("restore", {"tts_healthcheck_timeout": "soon"}, "tts_healthcheck_timeout"),
        ("restore", {"tts_edition": "community"}, "tts_edition"),
        ("restore", {"tts_project_dir": None}, "tts_project_dir"),
    ],
)
def test_bad_variables_fail_before_anything_runs(role, variables, message, deployment, run_playbook, tmp_path):
    base = {"tts_project_dir": str(deployment.dir), "tts_backup_dir": str(tmp_path / "backups")}
    merged = {key: value for key, value in {**base, **variables}.items() if value is not None}
    run = run_playbook(role_playbook(role, **merged))
    assert run.rc != 0
    errors = [
        error
        for play in run.output["plays"]
        for task in play["tasks"]
        for result in task["hosts"].values()
        for error in result.get("argument_errors", [])
    ]
    assert any(message in error for error in errors), failure_text(run)[-2000:]
    ran = [task["task"]["name"] for play in run.output.get("plays", []) for task in play["tasks"]]
    assert not any("| preflight |" in name for name in ran), ran
    assert not (tmp_path / "backups").exists()
