"""lorawan.tts.postgres_dump and postgres_restore against real sandbox deployments."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import Deployment, PlaybookRun

PASSWORD = f"pw-{uuid.uuid4().hex}"  # set as POSTGRES_PASSWORD in the compose file: must never show up
EXPLICIT_PASSWORD = f"explicit-{uuid.uuid4().hex}"  # given as the password option
TRUNCATED = "is truncated or not a pg_dump custom-format file"
NEWER_MAJOR = "the dump was made by a newer PostgreSQL than the server's 13: restore it on a server of that major"


def playbook(*tasks: dict) -> str:
    """A playbook on localhost (JSON is YAML); failing tasks don't stop the play."""
    return json.dumps(
        [{"hosts": "localhost", "gather_facts": False, "tasks": [{"ignore_errors": True, **t} for t in tasks]}]
    )


def dump_task(name: str, deployment: Deployment, dest: Path, **options) -> dict:
    return {
        "name": name,
        "lorawan.tts.postgres_dump": {"project_src": str(deployment.dir), "dest": str(dest), **options},
    }


def restore_task(name: str, deployment: Deployment, src: Path, **options) -> dict:
    return {
        "name": name,
        "lorawan.tts.postgres_restore": {"project_src": str(deployment.dir), "src": str(src), **options},
    }


def archive_list(deployment: Deployment, path: Path) -> subprocess.CompletedProcess[bytes]:
    """pg_restore --list run by the test itself, the dump on stdin."""
    with path.open("rb") as stdin:
        return subprocess.run(
            ["docker", "compose", "exec", "-T", "postgres", "pg_restore", "--list"],
            cwd=deployment.dir,
            stdin=stdin,
            capture_output=True,
            check=False,
        )


def databases(deployment: Deployment) -> list[str]:
    return deployment.sql("SELECT datname FROM pg_database ORDER BY datname").splitlines()


def wait_healthy(deployment: Deployment, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if deployment.healthz() == 200:
            return
        time.sleep(0.5)
    raise AssertionError(f"/healthz of {deployment.dir} did not answer 200 within {timeout} s")


@dataclass
class Dumped:
    deployment: Deployment
    run: PlaybookRun
    path: Path
    compressed: Path
    fingerprint: dict


@pytest.fixture(scope="module")
def deployment(deploy) -> Deployment:
    deployment = deploy("3.31.1")
    compose_file = deployment.dir / "docker-compose.yml"
    text = compose_file.read_text()
    assert "POSTGRES_PASSWORD=root" in text
    # Local socket connections need no password in the postgres image, so any value works; a unique
    # one shows whether the module leaks what it read from the compose environment.
    compose_file.write_text(text.replace("POSTGRES_PASSWORD=root", f"POSTGRES_PASSWORD={PASSWORD}"))
    return deployment


@pytest.fixture(scope="module")
def dumped(deployment: Deployment, run_playbook, tmp_path_factory: pytest.TempPathFactory) -> Dumped:
    backups = tmp_path_factory.mktemp("backups")
    path = backups / "new" / "dir" / "ttn_lorawan.dump"
    compressed = backups / "ttn_lorawan-z9.dump"
    fingerprint = deployment.fingerprint()
    run = run_playbook(
        playbook(
            dump_task("dump", deployment, path),
            dump_task("dump compressed", deployment, compressed, compress=9, password=EXPLICIT_PASSWORD),
        )
    )
    assert run.rc == 0, run.stderr
    return Dumped(deployment, run, path, compressed, fingerprint)


def test_dump_writes_a_verified_private_file(dumped: Dumped) -> None:
    deployment = dumped.deployment
    result = dumped.run.result("dump")
    assert result["changed"] is True
    assert result["path"] == str(dumped.path)
    assert result["database"] == "ttn_lorawan"
    assert result["server_version"].startswith("15.")

    assert stat.S_IMODE(dumped.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(dumped.path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(dumped.path.parent.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in dumped.path.parent.iterdir()) == ["ttn_lorawan.dump"]  # no temporary file left
    assert result["size"] == dumped.path.stat().st_size
    assert result["sha256"] == hashlib.sha256(dumped.path.read_bytes()).hexdigest()

    listing = archive_list(deployment, dumped.path)
    assert listing.returncode == 0, listing.stderr
    table_data = [line for line in listing.stdout.decode().splitlines() if " TABLE DATA " in line]
    tables = int(deployment.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
    assert result["tables"] == len(table_data) == tables == len(dumped.fingerprint["postgres"])

    compressed = dumped.run.result("dump compressed")
    assert compressed["tables"] == tables
    assert archive_list(deployment, dumped.compressed).returncode == 0
    assert compressed["size"] < result["size"]

    output = json.dumps(dumped.run.output)
    assert PASSWORD not in output
    assert EXPLICIT_PASSWORD not in output


def test_dump_is_not_idempotent_and_says_so(deployment: Deployment, dumped: Dumped, run_playbook) -> None:
    before = dumped.path.stat().st_mtime_ns
    run = run_playbook(playbook(dump_task("again", deployment, dumped.path)))
    assert run.result("again")["changed"] is True
    assert dumped.path.stat().st_mtime_ns != before
    assert stat.S_IMODE(dumped.path.stat().st_mode) == 0o600


def test_restore_brings_back_the_data_of_the_dump(deployment: Deployment, dumped: Dumped, run_playbook) -> None:
    deployment.sql("UPDATE gateways SET frequency_plan_id = 'CHANGED_AFTER_THE_DUMP'")
    deployment.sql("DELETE FROM gateway_antennas")
    deployment.sql("CREATE TABLE created_after_the_dump (id integer)")
    assert deployment.fingerprint()["postgres"] != dumped.fingerprint["postgres"]

    run = run_playbook(playbook(restore_task("restore", deployment, dumped.path, password=EXPLICIT_PASSWORD)))
    result = run.result("restore")
    assert result.get("failed") is not True, result
    assert result["changed"] is True
    assert result["restored_from"] == str(dumped.path)
    assert result["database"] == "ttn_lorawan"
    assert result["tables"] == len(dumped.fingerprint["postgres"])
    assert result["dump_server_version"] == result["server_version"]
    assert deployment.fingerprint()["postgres"] == dumped.fingerprint["postgres"]
    assert not [name for name in databases(deployment) if "_pre_restore_" in name]
    assert EXPLICIT_PASSWORD not in json.dumps(run.output)
    assert PASSWORD not in json.dumps(run.output)

    restarted = deployment.compose("restart", "stack")
    assert restarted.returncode == 0, restarted.stderr
    wait_healthy(deployment)


LEFTOVER = "ttn_lorawan_pre_restore_20260227_031500"  # as an interrupted restore leaves it
NOT_LEFTOVERS = ("ttn_lorawan_snapshot_20260227t031500z", "other_pre_restore_20260227_031500")


def test_a_restore_drops_the_leftovers_of_interrupted_restores(
    deployment: Deployment, dumped: Dumped, run_playbook
) -> None:
    """A database an interrupted restore set aside goes once a later restore succeeded; a snapshot and another
    database's set-aside copy stay. The same for a snapshot put back (postgres_snapshot state=restored)."""
    snapshot = "ttn_lorawan_snapshot_20260301t120000z"
    try:
        for name in (LEFTOVER, *NOT_LEFTOVERS):
            deployment.sql(f"CREATE DATABASE {name}")
        run = run_playbook(playbook(restore_task("restore", deployment, dumped.path)))
        result = run.result("restore")
        assert result.get("failed") is not True, result
        assert result["dropped_leftovers"] == [LEFTOVER]
        left = databases(deployment)
        assert LEFTOVER not in left
        assert set(NOT_LEFTOVERS) <= set(left)
        assert "ttn_lorawan" in left
        assert deployment.fingerprint()["postgres"] == dumped.fingerprint["postgres"]

        deployment.sql(f"CREATE DATABASE {LEFTOVER}")
        snapshot_task = {"project_src": str(deployment.dir), "snapshot": snapshot}
        run = run_playbook(
            playbook(
                {"name": "snapshot", "lorawan.tts.postgres_snapshot": {**snapshot_task, "state": "present"}},
                {"name": "put back", "lorawan.tts.postgres_snapshot": {**snapshot_task, "state": "restored"}},
            )
        )
        result = run.result("put back")
        assert result.get("failed") is not True, result
        assert result["dropped_leftovers"] == [LEFTOVER]
        left = databases(deployment)
        assert LEFTOVER not in left
        assert {snapshot, *NOT_LEFTOVERS} <= set(left)
        assert not [name for name in left if "_pre_restore_" in name and not name.startswith("other_")]
    finally:
        for name in (LEFTOVER, snapshot, *NOT_LEFTOVERS):
            deployment.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    restarted = deployment.compose("restart", "stack")
    assert restarted.returncode == 0, restarted.stderr
    wait_healthy(deployment)


def test_check_mode_touches_nothing(deployment: Deployment, dumped: Dumped, run_playbook, tmp_path: Path) -> None:
    deployment.sql("UPDATE users SET created_at = created_at + interval '1 second'")
    before = deployment.fingerprint()
    dest = tmp_path / "not-yet" / "ttn_lorawan.dump"
    run = run_playbook(
        playbook(dump_task("dump", deployment, dest), restore_task("restore", deployment, dumped.path)), "--check"
    )
    dump, restore = run.result("dump"), run.result("restore")
    assert dump.get("failed") is not True, dump
    assert dump["changed"] is True
    assert dump["path"] == str(dest)
    assert "sha256" not in dump
    assert not dest.parent.exists()
    assert restore.get("failed") is not True, restore
    assert restore["changed"] is True
    assert restore["tables"] == len(dumped.fingerprint["postgres"])
    assert deployment.fingerprint() == before
    assert not [name for name in databases(deployment) if "_pre_restore_" in name]


def test_restore_refuses_a_missing_or_truncated_dump(
    deployment: Deployment, dumped: Dumped, run_playbook, tmp_path: Path
) -> None:
    data = dumped.path.read_bytes()
    half = tmp_path / "half.dump"
    half.write_bytes(data[: len(data) // 2])
    almost = tmp_path / "almost.dump"  # the whole table of contents, some data missing at the end
    almost.write_bytes(data[:-100])
    garbage = tmp_path / "garbage.dump"
    garbage.write_bytes(b"this is not a dump\n" * 100)
    deployment.sql("UPDATE gateways SET frequency_plan_id = 'LIVE_DATA'")
    before = deployment.fingerprint()

    run = run_playbook(
        playbook(
            restore_task("missing", deployment, tmp_path / "missing.dump"),
            restore_task("half", deployment, half),
            restore_task("almost", deployment, almost),
            restore_task("garbage", deployment, garbage),
            {**restore_task("half in check mode", deployment, half), "check_mode": True},
        )
    )
    missing = run.result("missing")
    assert missing["failed"] is True
    assert "does not exist" in missing["msg"]
    for name, path in (("half", half), ("almost", almost), ("garbage", garbage), ("half in check mode", half)):
        result = run.result(name)
        assert result["failed"] is True, result
        assert f"the dump {path} {TRUNCATED}" in result["msg"]
        assert "pg_restore: error:" in result["msg"]  # the stderr tail says what pg_restore saw
        assert result["changed"] is False
    assert deployment.fingerprint() == before
    assert not [name for name in databases(deployment) if "_pre_restore_" in name]


def test_a_failed_dump_leaves_dest_untouched(deployment: Deployment, run_playbook, tmp_path: Path) -> None:
    deployment.sql("DROP ROLE IF EXISTS outsider")
    deployment.sql("CREATE ROLE outsider LOGIN")  # may connect, may not read TTS's tables: pg_dump fails
    dest = tmp_path / "ttn_lorawan.dump"
    dest.write_bytes(b"the previous dump")
    dest.chmod(0o640)
    try:
        run = run_playbook(
            playbook(
                dump_task("dump as outsider", deployment, dest, user="outsider", password=EXPLICIT_PASSWORD),
                dump_task("dump a database that is not there", deployment, dest, database="not_there"),
                dump_task("dump a bad database name", deployment, dest, database="ttn; DROP DATABASE x"),
            )
        )
    finally:
        deployment.sql("DROP ROLE outsider")
    outsider = run.result("dump as outsider")
    assert outsider["failed"] is True
    assert "pg_dump of database ttn_lorawan in service postgres" in outsider["msg"]
    assert "permission denied" in outsider["msg"]
    assert f"{dest} was left untouched" in outsider["msg"]
    assert "PGPASSWORD" in outsider["cmd"]
    assert EXPLICIT_PASSWORD not in json.dumps(run.output)
    assert "database not_there does not exist" in run.result("dump a database that is not there")["msg"]
    assert "is not a plain PostgreSQL identifier" in run.result("dump a bad database name")["msg"]
    assert dest.read_bytes() == b"the previous dump"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["ttn_lorawan.dump"]


def test_restore_refuses_a_dump_from_a_newer_major(deploy, dumped: Dumped, run_playbook) -> None:
    older = deploy("3.31.1", "--postgres", "13")
    before = older.fingerprint()
    run = run_playbook(
        playbook(
            restore_task("restore", older, dumped.path),
            {**restore_task("restore in check mode", older, dumped.path), "check_mode": True},
        )
    )
    for name in ("restore", "restore in check mode"):
        result = run.result(name)
        assert result["failed"] is True, result
        assert NEWER_MAJOR in result["msg"]
        assert "15." in result["msg"]
    assert older.fingerprint() == before
    assert not [name for name in databases(older) if "_pre_restore_" in name]
