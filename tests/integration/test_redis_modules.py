"""lorawan.tts.redis_backup and lorawan.tts.redis_restore against real Redis 7 and Redis 6 sandbox deployments."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import Deployment

VERSION = "3.31.1"
FORMATS = {"7": ("aof-multipart", "appendonlydir"), "6": ("aof", "appendonly.aof")}


def task(name: str, module: str, *, check_mode: bool = False, ignore_errors: bool = False, **args) -> dict:
    entry: dict = {"name": name, f"lorawan.tts.{module}": args}
    if check_mode:
        entry["check_mode"] = True
    if ignore_errors:
        entry["ignore_errors"] = True
    return entry


def playbook(*tasks: dict) -> str:
    """A playbook as JSON, which is YAML."""
    return json.dumps([{"name": "redis modules", "hosts": "localhost", "gather_facts": False, "tasks": list(tasks)}])


def run_ok(run_playbook, *tasks: dict):
    run = run_playbook(playbook(*tasks))
    assert run.rc == 0, run.stderr
    return run


def started_at(deployment: Deployment) -> str:
    result = deployment.compose("ps", "--all", "--format", "json", "redis")
    container = json.loads(result.stdout.splitlines()[0])
    inspected = subprocess.run(
        ["docker", "inspect", "--format", "{{.State.StartedAt}}", container["ID"]],
        capture_output=True,
        text=True,
        check=True,
    )
    return inspected.stdout.strip()


def redis_data_entries(deployment: Deployment) -> list[str]:
    result = deployment.compose("exec", "-T", "redis", "ls", "-A", "/data")
    assert result.returncode == 0, result.stderr
    return sorted(result.stdout.split())


def one_off_containers(deployment: Deployment) -> list[str]:
    result = subprocess.run(
        [
            "docker",
            "ps",
            "--all",
            "--quiet",
            "--filter",
            f"label=com.docker.compose.project={deployment.summary['project']}",
            "--filter",
            "label=com.docker.compose.oneoff=True",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


def change_data(deployment: Deployment) -> None:
    """Add a key, delete three and overwrite one, so that the data differs from any backup taken before."""
    keys = sorted(deployment.redis("KEYS", "*").splitlines())
    deployment.redis("SET", "lorawan-tts-test:added", "after the backup")
    deployment.redis("DEL", *keys[:3])
    deployment.redis("DEL", keys[3])
    deployment.redis("SET", keys[3], "overwritten")


def wait_healthy(deployment: Deployment, timeout: float = 60) -> int | None:
    deadline = time.monotonic() + timeout
    status = deployment.healthz()
    while status != 200 and time.monotonic() < deadline:
        time.sleep(1)
        status = deployment.healthz()
    return status


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_backup(result: dict, dest: Path, fmt: str, target: str, keys: int, consistency: str) -> Path:
    """Everything a backup promises: format, place, modes, checksums, record, key count."""
    assert result["changed"] is True
    assert result["format"] == fmt
    assert result["consistency"] == consistency
    assert result["key_count"] == keys
    path = Path(result["path"])
    assert path.parent == dest
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    on_disk = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() and p.name != "redis-backup.json")
    assert [item["path"] for item in result["files"]] == on_disk
    assert all(item["path"] == target or item["path"].startswith(target + "/") for item in result["files"])
    for directory in [path, *(p for p in path.rglob("*") if p.is_dir())]:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    for item in result["files"]:
        file = path / item["path"]
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
        assert file.stat().st_size == item["size"]
        assert sha256(file) == item["sha256"]
    assert result["size"] == sum(item["size"] for item in result["files"])
    if fmt == "aof-multipart":
        names = {Path(item["path"]).name for item in result["files"]}
        assert "appendonly.aof.manifest" in names
        assert any(name.endswith(".base.rdb") for name in names)
        assert any(name.endswith(".incr.aof") for name in names)
        listing = "".join(f"{item['sha256']}  {item['path']}\n" for item in result["files"])
        assert result["sha256"] == hashlib.sha256(listing.encode()).hexdigest()
    else:
        assert [item["path"] for item in result["files"]] == [target]
        assert result["sha256"] == result["files"][0]["sha256"]
    record_file = path / "redis-backup.json"
    assert stat.S_IMODE(record_file.stat().st_mode) == 0o600
    record = json.loads(record_file.read_text())
    assert record["format"] == fmt
    assert record["keys"] == keys
    assert record["files"] == result["files"]
    assert record["redis_version"] == result["redis_version"]
    return path


@pytest.fixture(scope="module")
def redis7(deploy) -> Deployment:
    return deploy(VERSION, "--redis", "7")


@pytest.fixture(scope="module")
def redis6(deploy) -> Deployment:
    return deploy(VERSION, "--redis", "6")


@pytest.mark.parametrize("redis_major", ["7", "6"])
def test_backup_both_modes_then_restore_each(request, redis_major, run_playbook, tmp_path):
    deployment: Deployment = request.getfixturevalue(f"redis{redis_major}")
    fmt, target = FORMATS[redis_major]
    before = deployment.fingerprint()["redis"]
    keys = int(deployment.redis("DBSIZE"))
    assert keys == len(before) > 0
    dest = tmp_path / "backups"

    run = run_ok(
        run_playbook,
        task("back up, stopping redis", "redis_backup", project_src=str(deployment.dir), dest=str(dest)),
        task(
            "back up, rewriting",
            "redis_backup",
            project_src=str(deployment.dir),
            dest=str(dest),
            consistency="rewrite",
        ),
    )
    stopped = check_backup(run.result("back up, stopping redis"), dest, fmt, target, keys, "stop")
    rewritten = check_backup(run.result("back up, rewriting"), dest, fmt, target, keys, "rewrite")
    assert stopped != rewritten
    assert run.result("back up, rewriting")["redis_version"].startswith(redis_major + ".")
    assert deployment.fingerprint()["redis"] == before  # a backup changes no data
    assert one_off_containers(deployment) == []

    for backup in (stopped, rewritten):
        change_data(deployment)
        assert deployment.fingerprint()["redis"] != before
        run = run_ok(run_playbook, task("restore", "redis_restore", project_src=str(deployment.dir), src=str(backup)))
        result = run.result("restore")
        assert result["changed"] is True
        assert result["restored_from"] == str(backup)
        assert result["format"] == fmt
        assert result["key_count"] == keys
        assert deployment.fingerprint()["redis"] == before
        assert not [entry for entry in redis_data_entries(deployment) if ".pre-restore-" in entry]
    assert one_off_containers(deployment) == []
    assert wait_healthy(deployment) == 200


def test_restore_refuses_bad_backups_and_check_mode_changes_nothing(redis7, redis6, run_playbook, tmp_path):
    project = str(redis7.dir)
    run = run_ok(
        run_playbook,
        task("redis 7 backup", "redis_backup", project_src=project, dest=str(tmp_path / "r7"), consistency="rewrite"),
        task("redis 6 backup", "redis_backup", project_src=str(redis6.dir), dest=str(tmp_path / "r6")),
    )
    good = Path(run.result("redis 7 backup")["path"])
    redis6_backup = run.result("redis 6 backup")["path"]
    base = next(good.glob("appendonlydir/*.base.rdb")).name

    tampered = tmp_path / "tampered"
    shutil.copytree(good, tampered)
    data = bytearray((tampered / "appendonlydir" / base).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tampered / "appendonlydir" / base).write_bytes(bytes(data))
    incomplete = tmp_path / "incomplete"
    shutil.copytree(good, incomplete)
    (incomplete / "appendonlydir" / base).unlink()
    no_record = tmp_path / "no-record"
    shutil.copytree(good / "appendonlydir", no_record / "appendonlydir")

    change_data(redis7)  # the live data differs from the backup, so a restore would show
    live = redis7.fingerprint()["redis"]
    started = started_at(redis7)
    entries = redis_data_entries(redis7)
    run = run_playbook(
        playbook(
            task("missing", "redis_restore", ignore_errors=True, project_src=project, src=str(tmp_path / "nothing")),
            task("tampered", "redis_restore", ignore_errors=True, project_src=project, src=str(tampered)),
            task("incomplete", "redis_restore", ignore_errors=True, project_src=project, src=str(incomplete)),
            task("no record", "redis_restore", ignore_errors=True, project_src=project, src=str(no_record)),
            task("redis 6 into 7", "redis_restore", ignore_errors=True, project_src=project, src=redis6_backup),
            task("check restore", "redis_restore", check_mode=True, project_src=project, src=str(good)),
            task("check backup", "redis_backup", check_mode=True, project_src=project, dest=str(tmp_path / "new")),
        )
    )
    assert run.rc == 0, run.stderr

    def refused(name: str, *words: str) -> None:
        result = run.result(name)
        assert result.get("failed") is True, result
        assert result["changed"] is False
        for word in words:
            assert word in result["msg"], result["msg"]

    refused("missing", "does not exist", str(tmp_path / "nothing"))
    refused("tampered", "checksum mismatch", f"appendonlydir/{base}", "use another backup")
    refused("incomplete", "incomplete", f"appendonlydir/{base}")
    refused("no record", "redis-backup.json", "not a backup made by lorawan.tts.redis_backup")
    refused("redis 6 into 7", "format mismatch", "appendonly.aof", "appendonlydir", "Redis 6", "Nothing was changed")

    checked = run.result("check restore")
    assert checked["changed"] is True
    assert (checked["restored_from"], checked["format"]) == (str(good), "aof-multipart")
    predicted = run.result("check backup")
    assert predicted["format"] == "aof-multipart"
    assert predicted["key_count"] == len(live)
    assert Path(predicted["path"]).parent == tmp_path / "new"
    assert not (tmp_path / "new").exists()

    assert redis7.fingerprint()["redis"] == live
    assert started_at(redis7) == started  # Redis was never stopped
    assert redis_data_entries(redis7) == entries


def test_failed_restore_returns_the_previous_data(redis7, run_playbook, tmp_path):
    project = str(redis7.dir)
    run = run_ok(run_playbook, task("backup", "redis_backup", project_src=project, dest=str(tmp_path)))
    backup = Path(run.result("backup")["path"])
    record = json.loads((backup / "redis-backup.json").read_text())
    record["keys"] += 5  # every file still matches its checksum; the restored server will not match the count
    (backup / "redis-backup.json").write_text(json.dumps(record))

    change_data(redis7)
    live = redis7.fingerprint()["redis"]
    entries = redis_data_entries(redis7)
    run = run_playbook(playbook(task("restore", "redis_restore", project_src=project, src=str(backup))))
    assert run.rc != 0
    result = run.result("restore")
    assert result["failed"] is True
    assert result["changed"] is True
    assert f"recorded {record['keys']}" in result["msg"], result["msg"]
    assert "returned to its previous data" in result["msg"], result["msg"]
    assert redis7.fingerprint()["redis"] == live
    assert redis_data_entries(redis7) == entries  # the restored copy and the moved-aside name are gone
    assert one_off_containers(redis7) == []
    assert wait_healthy(redis7) == 200


def test_rdb_only_server(deploy, run_playbook, tmp_path):
    """A server with the append-only file off keeps only dump.rdb: both modes back it up, restore puts it back."""
    deployment = deploy(VERSION, "--redis", "7")
    deployment.redis("SAVE")  # dump.rdb holds the seeded data before the append-only file is turned off
    compose_file = deployment.dir / "docker-compose.yml"
    compose_file.write_text(
        compose_file.read_text().replace("redis-server --appendonly yes", "redis-server --appendonly no")
    )
    assert deployment.compose("up", "-d", "redis").returncode == 0
    deadline = time.monotonic() + 30
    while deployment.compose("exec", "-T", "redis", "redis-cli", "PING").stdout.strip() != "PONG":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    before = deployment.fingerprint()["redis"]
    keys = len(before)
    assert deployment.redis("CONFIG", "GET", "appendonly").splitlines()[1] == "no"
    dest = tmp_path / "backups"
    project = str(deployment.dir)
    run = run_ok(
        run_playbook,
        task("stop", "redis_backup", project_src=project, dest=str(dest)),
        task("rewrite", "redis_backup", project_src=project, dest=str(dest), consistency="rewrite"),
    )
    stopped = check_backup(run.result("stop"), dest, "rdb", "dump.rdb", keys, "stop")
    rewritten = check_backup(run.result("rewrite"), dest, "rdb", "dump.rdb", keys, "rewrite")

    for backup in (stopped, rewritten):
        change_data(deployment)
        run = run_ok(run_playbook, task("restore", "redis_restore", project_src=project, src=str(backup)))
        assert run.result("restore")["format"] == "rdb"
        assert deployment.fingerprint()["redis"] == before


@pytest.mark.parametrize("redis_major", ["7", "6"])
def test_idle_backup_of_a_stopped_stack_and_a_restore_that_finds_nothing_to_do(
    redis_major, redis7, redis6, run_playbook, tmp_path
):
    deployment = {"7": redis7, "6": redis6}[redis_major]
    assert deployment.compose("stop", "stack").returncode == 0
    try:
        keys = int(deployment.redis("DBSIZE"))
        before = deployment.fingerprint()["redis"]
        project = str(deployment.dir)
        run = run_ok(
            run_playbook,
            task("idle backup", "redis_backup", project_src=project, dest=str(tmp_path), consistency="idle"),
        )
        fmt, target = ("aof-multipart", "appendonlydir") if redis_major == "7" else ("aof", "appendonly.aof")
        backup = check_backup(run.result("idle backup"), tmp_path, fmt, target, keys, "idle")
        assert one_off_containers(deployment) == [], "checked in the running container"

        unchanged = run_ok(run_playbook, task("restore", "redis_restore", project_src=project, src=str(backup)))
        assert unchanged.result("restore")["changed"] is False, "the server's files are the backup's"

        change_data(deployment)
        restored = run_ok(run_playbook, task("restore", "redis_restore", project_src=project, src=str(backup)))
        assert restored.result("restore")["changed"] is True
        assert deployment.fingerprint()["redis"] == before
    finally:
        assert deployment.compose("start", "stack").returncode == 0
