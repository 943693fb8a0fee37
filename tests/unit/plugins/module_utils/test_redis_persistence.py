"""Error paths of redis_persistence that a real Redis in the sandbox cannot be made to take.

Everything else (formats, both consistency modes, checksums, refusals, the rollback after a key-count
mismatch) is tested against real servers in tests/integration/test_redis_modules.py. Here a fake compose
project answers like a Redis 7 server, except where a test makes it fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible_collections.lorawan.tts.plugins.module_utils.compose import ComposeError
from ansible_collections.lorawan.tts.plugins.module_utils.files import file_sha256
from ansible_collections.lorawan.tts.plugins.module_utils.redis_persistence import (
    CREATED_BY,
    METADATA,
    METADATA_VERSION,
    RedisPersistence,
    RedisPersistenceError,
)

CONFIG_REPLIES = "\n".join(
    [
        '1) "appendonly"',
        '2) "yes"',
        '1) "dir"',
        '2) "/data"',
        '1) "appendfilename"',
        '2) "appendonly.aof"',
        '1) "appenddirname"',
        '2) "appendonlydir"',
        '1) "dbfilename"',
        '2) "dump.rdb"',
    ]
)
INFO = (
    "# Server\r\nredis_version:7.0.15\r\n# Persistence\r\nloading:0\r\n# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\n"
)
PERSISTENCE_IDLE = (
    "loading:0\r\nrdb_bgsave_in_progress:0\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\n"
    "aof_last_bgrewrite_status:ok\r\n"
)


class FakeModule:
    def __init__(self):
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)


class FakeProject:
    """Stands in for ComposeProject: a healthy Redis 7 service unless a test overrides an answer.

    ``exec_answers`` and ``run_answers`` map an argv prefix (a tuple) to (rc, stdout, stderr); the longest
    matching prefix wins. Failing commands raise ComposeError when check is on, as ComposeProject.run does.
    """

    project_src = "/srv/tts"

    def __init__(self):
        self.module = FakeModule()
        self.calls: list[tuple] = []
        self.state = "running"
        self.exec_answers: dict[tuple, tuple[int, str, str]] = {
            ("redis-cli", "--no-raw"): (0, CONFIG_REPLIES, ""),
            ("redis-cli", "INFO"): (0, INFO, ""),
            ("redis-cli", "INFO", "persistence"): (0, PERSISTENCE_IDLE, ""),
            ("redis-cli", "INFO", "keyspace"): (0, "# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\n", ""),
            ("redis-cli", "PING"): (0, "PONG\n", ""),
            ("test", "-e"): (1, "", ""),
            ("test", "-e", "/data/appendonlydir"): (0, "", ""),
            ("stat",): (0, "999:999\n", ""),
        }
        self.run_answers: dict[tuple, tuple[int, str, str]] = {(): (0, "", "")}

    @staticmethod
    def answer(answers, argv):
        matches = [prefix for prefix in answers if tuple(argv[: len(prefix)]) == prefix]
        return answers[max(matches, key=len)] if matches else (0, "", "")

    def finish(self, argv, answer, check, what):
        rc, out, err = answer
        if check and rc != 0:
            raise ComposeError(f"{what or argv[0]} failed (exit {rc}): {err}", argv=list(argv), rc=rc, stderr=err)
        return rc, out, err

    def exec_in(self, service, argv, data=None, check=True, what=None, **kwargs):
        self.calls.append(("exec", *argv))
        return self.finish(argv, self.answer(self.exec_answers, list(argv)), check, what)

    def exec_container(self, container_id, argv, data=None, check=True, what=None, **kwargs):
        return self.exec_in("redis", argv, data=data, check=check, what=what)

    def run(self, *args, check=True, what=None, **kwargs):
        self.calls.append(args)
        if args[0] == "stop":
            self.state = "exited"
        elif args[0] == "start":
            self.state = "running"
        return self.finish(args, self.answer(self.run_answers, list(args)), check, what)

    def require_services(self, names):
        return self.services()

    def services(self):
        return {"redis": {"volumes": [{"type": "bind", "source": "/srv/tts/.env/data/redis", "target": "/data"}]}}

    def containers(self, services=None):
        return {"redis": [{"Name": "/tts-redis-1", "Id": "abc", "State": {"Status": self.state}}]}

    def running_inspect(self, service):
        return self.containers()["redis"][0] if self.state == "running" else None

    def running_container(self, service):
        found = self.running_inspect(service)
        return found["Id"] if found else None

    def ran(self, *prefix: str) -> list[tuple]:
        return [call for call in self.calls if call[: len(prefix)] == prefix]


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def persistence(project: FakeProject, timeout: int = 30) -> RedisPersistence:
    clock = FakeClock()
    return RedisPersistence(project, "redis", timeout, sleep=clock.sleep, clock=clock)


def make_backup(directory: Path, keys: int = 3, **overrides) -> Path:
    """A backup as redis_backup writes it, with correct checksums."""
    (directory / "appendonlydir").mkdir(parents=True)
    contents = {
        "appendonlydir/appendonly.aof.1.base.rdb": b"REDIS0010...",
        "appendonlydir/appendonly.aof.1.incr.aof": b"",
        "appendonlydir/appendonly.aof.manifest": b"file appendonly.aof.1.base.rdb seq 1 type b\n",
    }
    files = []
    for relative, data in sorted(contents.items()):
        (directory / relative).write_bytes(data)
        files.append({"path": relative, "size": len(data), "sha256": file_sha256(str(directory / relative))})
    record = {
        "created_by": CREATED_BY,
        "metadata_version": METADATA_VERSION,
        "format": "aof-multipart",
        "target": "appendonlydir",
        "config": {
            "appendonly": "yes",
            "dir": "/data",
            "appendfilename": "appendonly.aof",
            "appenddirname": "appendonlydir",
            "dbfilename": "dump.rdb",
        },
        "redis_version": "7.0.15",
        "keys": keys,
        "expires": 0,
        "files": files,
    }
    record.update(overrides)
    (directory / METADATA).write_text(json.dumps(record))
    return directory


def test_rollback_that_fails_too_says_where_the_previous_files_are(tmp_path):
    project = FakeProject()
    project.exec_answers[("redis-cli", "INFO", "keyspace")] = (0, "db0:keys=2,expires=0,avg_ttl=0\r\n", "")
    backup = make_backup(tmp_path / "backup")
    moves = []

    def run(*args, check=True, what=None, **kwargs):
        if "mv" in args:
            moves.append(args)
            if len(moves) == 2:  # moving the previous data back
                project.calls.append(args)
                raise ComposeError("mv failed (exit 1): No space left on device", argv=list(args), rc=1, stderr="")
        return FakeProject.run(project, *args, check=check, what=what, **kwargs)

    project.run = run
    with pytest.raises(RedisPersistenceError) as raised:
        persistence(project).restore(str(backup))
    message = str(raised.value)
    aside = moves[0][-1]
    assert aside.startswith("/data/appendonlydir.pre-restore-")
    assert "the restored server has 2 keys, but redis-backup.json recorded 3" in message
    assert "Putting the previous data back failed too" in message
    assert "No space left on device" in message
    assert f"the previous files are {aside}" in message
    assert raised.value.changed is True


def test_failure_to_stop_changes_nothing_and_rolls_nothing_back(tmp_path):
    project = FakeProject()
    project.run_answers[("stop",)] = (1, "", "Error response from daemon: cannot stop container")
    with pytest.raises(RedisPersistenceError) as raised:
        persistence(project).restore(str(make_backup(tmp_path / "backup")))
    assert "Nothing was changed" in str(raised.value)
    assert "cannot stop container" in str(raised.value)
    assert raised.value.changed is False
    assert not project.ran("run") and not project.ran("cp")  # no file was touched
    assert project.ran("start")  # and Redis runs, in case the failed stop stopped it after all


def test_leftover_previous_data_is_a_warning_not_a_failure(tmp_path):
    project = FakeProject()
    project.run_answers[("run", "--rm", "--no-deps", "-T", "--user", "0", "--entrypoint", "rm")] = (1, "", "rm: busy")
    result = persistence(project).restore(str(make_backup(tmp_path / "backup")))
    assert result["key_count"] == 3
    assert len(project.module.warnings) == 1
    assert "rm: busy" in project.module.warnings[0]
    assert "remove it by hand" in project.module.warnings[0]


def test_authentication_error_names_the_fix():
    project = FakeProject()
    project.exec_answers[("redis-cli", "--no-raw")] = (0, "(error) NOAUTH Authentication required.\n", "")
    with pytest.raises(RedisPersistenceError, match="REDISCLI_AUTH"):
        persistence(project).server()


def test_disabled_config_command_is_explained():
    project = FakeProject()
    project.exec_answers[("redis-cli", "--no-raw")] = (0, "", "")
    with pytest.raises(RedisPersistenceError, match="rename-command"):
        persistence(project).server()


def test_failed_background_rewrite_fails_the_backup(tmp_path):
    project = FakeProject()
    project.exec_answers[("redis-cli", "BGREWRITEAOF")] = (0, "Background append only file rewriting started\n", "")
    project.exec_answers[("redis-cli", "INFO", "persistence")] = (
        0,
        PERSISTENCE_IDLE.replace("aof_last_bgrewrite_status:ok", "aof_last_bgrewrite_status:err"),
        "",
    )
    with pytest.raises(RedisPersistenceError, match="aof_last_bgrewrite_status: err") as raised:
        persistence(project).backup(str(tmp_path / "backups"), consistency="rewrite")
    assert "full disk" in str(raised.value)
    assert list((tmp_path / "backups").iterdir()) == []  # the partial backup is gone
    assert not project.ran("cp")


def test_server_that_never_finishes_loading_times_out():
    project = FakeProject()
    project.exec_answers[("redis-cli", "INFO", "persistence")] = (0, "loading:1\r\n", "")
    with pytest.raises(RedisPersistenceError, match="did not become ready within 30 s") as raised:
        persistence(project, timeout=30).wait_ready()
    assert "still loading" in str(raised.value)


def test_crash_looping_server_fails_fast_with_its_log():
    project = FakeProject()
    project.state = "restarting"
    project.exec_answers[("redis-cli", "PING")] = (1, "", "Error response from daemon: container is restarting")
    project.run_answers[("logs",)] = (0, "redis-1  | Bad file format reading the append only file\n", "")
    with pytest.raises(RedisPersistenceError, match="stopped while starting") as raised:
        persistence(project).wait_ready()
    assert "Bad file format" in str(raised.value)


def test_backup_from_a_newer_redis_is_refused_before_anything_stops(tmp_path):
    project = FakeProject()
    with pytest.raises(RedisPersistenceError, match="newer than") as raised:
        persistence(project).restore(str(make_backup(tmp_path / "backup", redis_version="7.2.4")))
    assert "restore it into Redis 7.2 or later" in str(raised.value)
    assert not project.ran("stop")


def test_backup_with_other_file_names_is_refused(tmp_path):
    project = FakeProject()
    backup = make_backup(tmp_path / "backup")
    record = json.loads((backup / METADATA).read_text())
    record["config"]["appendfilename"] = "tts.aof"
    (backup / METADATA).write_text(json.dumps(record))
    with pytest.raises(RedisPersistenceError, match="other file names") as raised:
        persistence(project).restore(str(backup))
    assert "appendfilename 'appendonly.aof' here, 'tts.aof' in the backup" in str(raised.value)
    assert not project.ran("stop")


def test_data_directory_without_a_volume_is_refused(tmp_path):
    project = FakeProject()
    project.services = lambda: {"redis": {"volumes": []}}
    with pytest.raises(RedisPersistenceError, match="not on a volume"):
        persistence(project).restore(str(make_backup(tmp_path / "backup")))
    assert not project.ran("stop")
