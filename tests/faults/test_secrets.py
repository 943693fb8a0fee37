"""Secrets stay secret: an upgrade and a rolled-back upgrade at -vvv show no password anywhere they write.

The deployment's Postgres password (in the compose file's POSTGRES_PASSWORD and the stack's database URI) and the
health endpoint's password (TTN_LW_HTTP_HEALTH_PASSWORD in the stack's compose environment, and
tts_health_password in the inventory) are set to distinctive values. `ansible-playbook lorawan.tts.upgrade -vvv`
upgrades it, then a second run to 3.98.0 (its migration fails) rolls back. Neither value may appear in the
runs' output, in the reports, in the run's files in the project directory, or in a backup's manifest; the
backups are 0700 directories of 0600 files (the compose file and the config in them hold the passwords).
"""

from __future__ import annotations

import json
import stat
import subprocess
import time
from pathlib import Path

import pytest

FROM = "3.31.1"
TARGET = "3.32.0"
FAILS_MIGRATING = "3.98.0"  # its is-db migrate applies part of its work, then exits 1
POSTGRES_SECRET = "pg-Zq7Kx2Wm9RtB4v"  # noqa: S105 a test value that must not leak
HEALTH_SECRET = "hz-Lp3Nc8Yd5Hs1Qe"  # noqa: S105 a test value that must not leak
SECRETS = (POSTGRES_SECRET, HEALTH_SECRET)


def wait_healthy(deployment, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while deployment.healthz() != 200:
        assert time.monotonic() < deadline, deployment.compose("logs", "--no-color", "stack").stdout[-2000:]
        time.sleep(0.5)


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


@pytest.fixture(scope="module")
def secret_deployment(deploy):
    """A deployment whose Postgres and health passwords are the secrets, running and healthy."""
    deployment = deploy(FROM, "--seed", "small")
    deployment.sql(f"ALTER ROLE root PASSWORD '{POSTGRES_SECRET}'")
    compose_file = deployment.dir / "docker-compose.yml"
    text = compose_file.read_text()
    for old, new in (
        ("POSTGRES_PASSWORD=root", f"POSTGRES_PASSWORD={POSTGRES_SECRET}"),
        ("postgres://root:root@", f"postgres://root:{POSTGRES_SECRET}@"),
        (
            "TTN_LW_REDIS_ADDRESS: redis:6379\n",
            f"TTN_LW_REDIS_ADDRESS: redis:6379\n      TTN_LW_HTTP_HEALTH_PASSWORD: {HEALTH_SECRET}\n",
        ),
    ):
        assert old in text, old
        text = text.replace(old, new)
    compose_file.write_text(text)
    result = deployment.compose("up", "-d", "postgres", "redis", "stack")
    assert result.returncode == 0, result.stderr
    wait_healthy(deployment)
    return deployment


def upgrade(deployment, directory: Path, ansible_env: dict[str, str], target: str) -> subprocess.CompletedProcess:
    host = {
        "ansible_connection": "local",
        "tts_project_dir": str(deployment.dir),
        "tts_backup_dir": str(directory / "backups"),
        "tts_report_dir": str(directory / "reports"),
        "tts_target_version": target,
        "tts_allow_unreleased_version": True,
        "tts_health_password": HEALTH_SECRET,
    }
    inventory = directory / f"inventory-{target}.json"
    inventory.write_text(json.dumps({"staging": {"hosts": {"tts-1": host}}}))
    # Module results with their arguments (`invocation`): -vvv shows them up to ansible-core 2.18, from 2.19 only
    # with this setting, which an operator may turn on.
    env = dict(ansible_env, ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_INJECT_INVOCATION="true")
    argv = ["ansible-playbook", "lorawan.tts.upgrade", "-vvv", "-i", str(inventory)]
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=False)


@pytest.fixture(scope="module")
def runs(secret_deployment, ansible_env, tmp_path_factory):
    directory = tmp_path_factory.mktemp("secrets")
    upgraded = upgrade(secret_deployment, directory, ansible_env, TARGET)
    assert upgraded.returncode == 0, upgraded.stdout[-4000:] + upgraded.stderr[-2000:]
    assert f"upgraded {FROM} -> {TARGET}" in upgraded.stdout, upgraded.stdout[-4000:]
    rolled_back = upgrade(secret_deployment, directory, ansible_env, FAILS_MIGRATING)
    assert rolled_back.returncode != 0, rolled_back.stdout[-4000:]
    assert "ROLLED BACK" in rolled_back.stdout, rolled_back.stdout[-4000:]
    return directory, [upgraded, rolled_back]


def test_the_runs_output_shows_no_secret(runs):
    results = runs[1]
    for result in results:
        # The runs did pass the secrets around (-vvv shows the module arguments): they were there to leak.
        assert "tts_health_password" in result.stdout or "health_password" in result.stdout
        assert leaks(result.stdout) == [], [line for line in result.stdout.splitlines() if leaks(line)][:5]
        assert leaks(result.stderr) == [], [line for line in result.stderr.splitlines() if leaks(line)][:5]


def test_the_reports_show_no_secret(runs):
    directory = runs[0]
    reports = sorted((directory / "reports").rglob("*.json"))
    assert len(reports) == 2, reports
    assert {json.loads(report.read_text())["result"] for report in reports} == {"upgraded", "rolled-back"}
    for report in reports:
        assert leaks(report.read_text()) == [], report


def test_the_runs_files_in_the_project_directory_show_no_secret(runs, secret_deployment):
    run_files = [path for path in secret_deployment.dir.iterdir() if path.name.startswith(".lorawan-tts")]
    for path in run_files:
        if path.is_file():
            assert leaks(path.read_text(errors="replace")) == [], path
    journal = json.loads((secret_deployment.dir / ".lorawan-tts.journal").read_text())
    assert journal["outcome"] == "rolled-back", journal


def test_the_backups_are_private_and_their_manifests_show_no_secret(runs):
    directory = runs[0]
    backups = sorted((directory / "backups").glob("tts-1/*_to_*"))
    assert len(backups) == 2, backups
    assert stat.S_IMODE((directory / "backups" / "tts-1").stat().st_mode) == 0o700
    for backup in backups:
        assert (backup / "manifest.json").is_file(), backup
        # The manifest and the files' index: the backup's own records, as opposed to the copies of files.
        for record in backup.glob("*.json"):
            assert leaks(record.read_text()) == [], record
        # The backup holds the compose file with the password: the reason it is private.
        assert POSTGRES_SECRET in "".join(
            path.read_text(errors="replace") for path in backup.rglob("docker-compose*.yml")
        ), backup
        assert stat.S_IMODE(backup.stat().st_mode) == 0o700, backup
        for path in backup.rglob("*"):
            mode = stat.S_IMODE(path.lstat().st_mode)
            if path.is_symlink():
                continue
            if path.is_dir():
                assert mode == 0o700, f"{path}: {mode:o}"
            else:
                assert mode == 0o600, f"{path}: {mode:o}"
