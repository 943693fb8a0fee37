"""postgres_backup's error paths that a real deployment does not produce on demand, with a fake compose runner."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from ansible_collections.lorawan.tts.plugins.module_utils.compose import ComposeError, environment_dict
from ansible_collections.lorawan.tts.plugins.module_utils.postgres_backup import (
    PostgresBackupError,
    PostgresService,
    leftover_names,
    major_version,
    parse_archive_list,
    pre_restore_name,
    quote_ident,
    run_dump,
    run_restore,
)

LISTING = """;
; Archive created at 2026-03-01 12:00:00 UTC
;     dbname: ttn_lorawan
;     Dumped from database version: 15.18 (Debian 15.18-0+deb12u1)
;     Dumped by pg_dump version: 15.18 (Debian 15.18-0+deb12u1)
;
; Selected TOC Entries:
;
215; 1259 16385 TABLE public bun_migrations root
214; 1259 16384 SEQUENCE public bun_migrations_id_seq root
221; 1259 16418 TABLE public gateways root
3500; 0 16385 TABLE DATA public bun_migrations root
3501; 0 16418 TABLE DATA public gateways root
"""


class FakeModule:
    def __init__(self, tmp_path: Path, check_mode: bool = False, **params) -> None:
        self.params = {
            "service": "postgres",
            "database": "ttn_lorawan",
            "user": None,
            "password": None,
            "src": str(tmp_path / "ttn_lorawan.dump"),
            "dest": str(tmp_path / "out" / "ttn_lorawan.dump"),
            "compress": None,
            **params,
        }
        self.check_mode = check_mode
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)


class FakeProject:
    """Answers psql, pg_dump and pg_restore as a healthy PostgreSQL 15 would, except where a test says otherwise."""

    project_src = "/srv/tts"
    command_name = "docker compose"

    def __init__(self, environment=None, running=True) -> None:
        self.environment = environment if environment is not None else ["POSTGRES_USER=root", "POSTGRES_PASSWORD=pw"]
        self.running = running
        self.sql: list[str] = []
        self.streams: list[list[str]] = []
        self.fail_sql: dict[str, str] = {}  # substring of a statement -> stderr of its failure
        self.fail_stream: dict[str, str] = {}  # pg_dump, pg_restore --list/--file/-d -> stderr of its failure
        self.existing = {"ttn_lorawan"}
        self.tables = "2"
        self.listing = LISTING
        self.dump_bytes = b"PGDMP fake dump"
        self.timescaledb_available = ""  # the server's TimescaleDB version; "" for none

    def require_services(self, names):
        return {"postgres": {"environment": self.environment}}

    def containers(self, services=None):
        return {"postgres": [{"State": {"Status": "running" if self.running else "exited"}}]}

    def exec_in(self, service, argv, data=None, env_names=(), **kwargs):
        sql = argv[-1]
        self.sql.append(sql)
        for needle, stderr in self.fail_sql.items():
            if needle in sql:
                raise ComposeError(f"{kwargs.get('what')} failed in /srv/tts (exit 3): {stderr}", argv, 3, stderr)
        if "server_version_num" in sql:
            name = sql.split("datname = '")[1].split("'")[0]
            return 0, "15.18 (Debian)|150018|%s\n" % ("t" if name in self.existing else "f"), ""
        if sql == "SELECT datname FROM pg_database":
            return 0, "".join(name + "\n" for name in sorted(self.existing)), ""
        if "count(*) FROM pg_tables" in sql:
            return 0, self.tables + "\n", ""
        if "pg_available_extensions" in sql:
            return 0, self.timescaledb_available + "\n", ""
        return 0, "", ""

    def run_with_files(self, args, stdin_path=None, stdout_path=None, env=None, what=None, on_wait=None):
        program = args[args.index("postgres") + 1]
        self.streams.append(args)
        assert env in ({}, {"PGPASSWORD": "pw"})
        key = program
        if program == "pg_restore":
            key = {"--list": "pg_restore --list", "--file=/dev/null": "pg_restore --file"}.get(
                args[-1], "pg_restore -d"
            )
        if key in self.fail_stream:
            stderr = self.fail_stream[key]
            raise ComposeError(f"{what} failed in /srv/tts (exit 1): {stderr}", args, 1, stderr)
        if stdout_path:
            Path(stdout_path).write_bytes(self.dump_bytes)
        if args[-1] == "--table=metadata":
            return "COPY _timescaledb_catalog.metadata (key, value, include_in_telemetry) FROM stdin;\n" + (
                "timescaledb_version\t2.19.3\tf\n\\.\n"
            )
        return self.listing if args[-1] == "--list" else ""


@pytest.fixture
def dump_file(tmp_path: Path) -> Path:
    path = tmp_path / "ttn_lorawan.dump"
    path.write_bytes(b"PGDMP fake dump")
    return path


def test_failed_pg_restore_returns_the_database_to_its_previous_state(tmp_path: Path, dump_file: Path) -> None:
    project = FakeProject()
    project.fail_stream["pg_restore -d"] = (
        'pg_restore: error: could not execute query: ERROR:  role "ttn" does not exist'
    )
    with pytest.raises(PostgresBackupError) as caught:
        run_restore(FakeModule(tmp_path), project)
    message = str(caught.value)
    assert "The database was returned to its previous state" in message
    assert 'role "ttn" does not exist' in message
    assert caught.value.changed is False
    renames = [sql for sql in project.sql if "RENAME TO" in sql]
    assert len(renames) == 2
    previous = renames[0].split("'ttn_lorawan', '")[1].split("'")[0]
    assert previous.startswith("ttn_lorawan_pre_restore_")
    assert f"'{previous}', 'ttn_lorawan'" in renames[1]  # renamed back
    assert 'DROP DATABASE IF EXISTS "ttn_lorawan"' in project.sql
    assert not [sql for sql in project.sql if sql.startswith(f'DROP DATABASE "{previous}"')]


def test_a_failed_rollback_says_where_the_previous_data_is(tmp_path: Path, dump_file: Path) -> None:
    project = FakeProject()
    project.fail_stream["pg_restore -d"] = "pg_restore: error: out of disk space"
    project.fail_sql["DROP DATABASE IF EXISTS"] = "ERROR:  database is being accessed by other users"
    with pytest.raises(PostgresBackupError) as caught:
        run_restore(FakeModule(tmp_path), project)
    message = str(caught.value)
    assert "Putting the previous database back failed too" in message
    advice = message.split("Putting the previous database back failed too")[1].split(". ", 1)[1]
    # In a rollback the set-aside database holds the half-migrated data: the first advice is the backup.
    assert advice.startswith("Restore the backup: run the lorawan.tts.restore role with tts_restore_from")
    assert f"lorawan.tts.postgres_restore with src={dump_file}" in advice
    assert "do not rename it back" in advice
    assert "RENAME TO" not in message
    assert caught.value.changed is True


def test_a_failed_rollback_names_the_backup_directory_of_the_dump(tmp_path: Path) -> None:
    backup = tmp_path / "20260301T120000Z_3.31.1_to_3.32.0"
    (backup / "postgres").mkdir(parents=True)
    (backup / "manifest.json").write_text("{}")
    dump = backup / "postgres" / "ttn_lorawan.dump"
    dump.write_bytes(b"PGDMP fake dump")
    project = FakeProject()
    project.fail_stream["pg_restore -d"] = "pg_restore: error: server closed the connection unexpectedly"
    project.fail_sql["DROP DATABASE IF EXISTS"] = "psql: error: connection refused"
    with pytest.raises(PostgresBackupError) as caught:
        run_restore(FakeModule(tmp_path, src=str(dump)), project)
    assert f"Restore the backup: run the lorawan.tts.restore role with tts_restore_from={backup}," in str(caught.value)


LEFTOVER = "ttn_lorawan_pre_restore_20260227_031500"


def test_leftover_names_are_only_this_databases_set_aside_copies() -> None:
    names = [
        "ttn_lorawan",
        "postgres",
        LEFTOVER,
        "ttn_lorawan_pre_restore_20260301_120000",
        "ttn_lorawan_snapshot_20260227t031500z",  # a snapshot: the upgrade's, maybe still needed
        "ttn_lorawan_pre_restore_20260227_0315",  # not the stamp pre_restore_name writes
        "ttn_lorawan_pre_restore_20260227_031500_copy",
        "ttn_lorawan_pre_restore_",
        "other_pre_restore_20260227_031500",  # another database's
        "xttn_lorawan_pre_restore_20260227_031500",
        "TTN_LORAWAN_pre_restore_20260227_031500",
    ]
    assert leftover_names(names, "ttn_lorawan") == [LEFTOVER, "ttn_lorawan_pre_restore_20260301_120000"]
    assert leftover_names(names, "ttn_lorawan", keep=("ttn_lorawan_pre_restore_20260301_120000",)) == [LEFTOVER]
    assert leftover_names(names, "other") == ["other_pre_restore_20260227_031500"]
    # Every name pre_restore_name makes for the database is one; the database's own name never is.
    assert leftover_names([pre_restore_name("ttn_lorawan")], "ttn_lorawan") == [pre_restore_name("ttn_lorawan")]
    assert leftover_names(["ttn_lorawan"], "ttn_lorawan") == []


def test_a_database_name_cut_short_by_pre_restore_name_has_no_leftovers() -> None:
    long_name = "d" * 40
    aside = pre_restore_name(long_name)
    assert not aside.startswith(long_name)  # cut: a database "d" * 36 would make the same names
    assert leftover_names([aside], long_name) == []
    assert leftover_names([aside], "d" * 35) == [aside]


def test_a_successful_restore_drops_the_leftovers_of_interrupted_ones(tmp_path: Path, dump_file: Path) -> None:
    project = FakeProject()
    project.existing = {"ttn_lorawan", LEFTOVER, "ttn_lorawan_snapshot_20260227t031500z", "other_pre_restore_x"}
    result = run_restore(FakeModule(tmp_path), project)
    assert result["dropped_leftovers"] == [LEFTOVER]
    drops = [sql for sql in project.sql if sql.startswith("DROP DATABASE")]
    assert f'DROP DATABASE IF EXISTS "{LEFTOVER}"' in drops
    assert not [sql for sql in drops if "snapshot" in sql or "other" in sql or sql.endswith('"ttn_lorawan"')]
    # Only after the restore succeeded: the leftover's drop comes after pg_restore and the table count.
    assert project.sql.index(f'DROP DATABASE IF EXISTS "{LEFTOVER}"') > project.sql.index(
        next(sql for sql in project.sql if "count(*) FROM pg_tables" in sql)
    )


def test_a_failed_restore_keeps_the_leftovers(tmp_path: Path, dump_file: Path) -> None:
    project = FakeProject()
    project.existing = {"ttn_lorawan", LEFTOVER}
    project.fail_stream["pg_restore -d"] = "pg_restore: error: out of disk space"
    with pytest.raises(PostgresBackupError):
        run_restore(FakeModule(tmp_path), project)
    assert not [sql for sql in project.sql if LEFTOVER in sql]


def test_a_leftover_that_cannot_be_dropped_is_a_warning(tmp_path: Path, dump_file: Path) -> None:
    project = FakeProject()
    project.existing = {"ttn_lorawan", LEFTOVER}
    project.fail_sql[f'DROP DATABASE IF EXISTS "{LEFTOVER}"'] = "ERROR:  database is being accessed by other users"
    module = FakeModule(tmp_path)
    result = run_restore(module, project)
    assert result["dropped_leftovers"] == []
    assert f"{LEFTOVER}, left by an earlier, interrupted restore, is still there" in module.warnings[0]


def test_a_table_count_mismatch_rolls_back(tmp_path: Path, dump_file: Path) -> None:
    project = FakeProject()
    project.tables = "1"
    with pytest.raises(PostgresBackupError) as caught:
        run_restore(FakeModule(tmp_path), project)
    assert f"has 1 tables, the dump {dump_file} has 2" in str(caught.value)
    assert "returned to its previous state" in str(caught.value)


def test_restore_into_a_missing_database_creates_it_and_drops_it_on_failure(tmp_path: Path, dump_file: Path) -> None:
    project = FakeProject()
    project.existing = set()
    project.fail_sql["CREATE DATABASE"] = "ERROR:  permission denied to create database"
    with pytest.raises(PostgresBackupError) as caught:
        run_restore(FakeModule(tmp_path), project)
    assert "(it did not exist, and does not now)" in str(caught.value)
    assert not [sql for sql in project.sql if "RENAME" in sql]


def test_a_previous_database_that_cannot_be_dropped_is_a_warning(tmp_path: Path, dump_file: Path) -> None:
    project = FakeProject()
    project.fail_sql['DROP DATABASE "ttn_lorawan_pre_restore_'] = "ERROR:  database is being accessed by other users"
    module = FakeModule(tmp_path)
    result = run_restore(module, project)
    assert result["changed"] is True
    assert result["tables"] == 2
    assert result["previous_database"].startswith("ttn_lorawan_pre_restore_")
    assert f"still there as {result['previous_database']}" in module.warnings[0]


def test_an_existing_pre_restore_database_stops_the_restore_before_it_starts(tmp_path: Path, dump_file: Path) -> None:
    project = FakeProject()
    project.existing = {"ttn_lorawan", pre_restore_name("ttn_lorawan")}
    with pytest.raises(PostgresBackupError, match="already exists"):
        run_restore(FakeModule(tmp_path), project)
    assert not [sql for sql in project.sql if "RENAME" in sql or "CREATE" in sql]


def test_an_unsupported_archive_version_is_a_newer_major(tmp_path: Path, dump_file: Path) -> None:
    project = FakeProject()
    project.fail_stream["pg_restore --list"] = "pg_restore: error: unsupported version (1.16) in file header"
    with pytest.raises(PostgresBackupError) as caught:
        run_restore(FakeModule(tmp_path), project)
    assert str(caught.value).startswith(
        "the dump was made by a newer PostgreSQL than the server's 15: restore it on a server of that major or newer"
    )


def test_a_compose_failure_while_reading_the_dump_is_not_called_truncation(tmp_path: Path, dump_file: Path) -> None:
    project = FakeProject()
    project.fail_stream["pg_restore --list"] = 'service "postgres" is not running'
    with pytest.raises(ComposeError) as caught:
        run_restore(FakeModule(tmp_path), project)
    assert "truncated" not in str(caught.value)
    assert 'service "postgres" is not running' in str(caught.value)


def test_an_empty_table_of_contents_is_refused(tmp_path: Path, dump_file: Path) -> None:
    project = FakeProject()
    project.listing = ";\n; Archive created at 2026-03-01\n;\n"
    with pytest.raises(PostgresBackupError, match="no entries in its table of contents"):
        run_restore(FakeModule(tmp_path), project)


def test_a_stopped_service_is_named_with_the_fix(tmp_path: Path, dump_file: Path) -> None:
    with pytest.raises(PostgresBackupError, match=r"not running: start it \(docker compose up -d postgres\)"):
        run_restore(FakeModule(tmp_path), FakeProject(running=False))


@pytest.mark.parametrize("database", ["postgres", "template1"])
def test_restore_refuses_the_maintenance_databases(tmp_path: Path, dump_file: Path, database: str) -> None:
    with pytest.raises(PostgresBackupError, match="maintenance database"):
        run_restore(FakeModule(tmp_path, database=database), FakeProject())


def test_a_dump_that_fails_verification_never_becomes_dest(tmp_path: Path) -> None:
    project = FakeProject()
    project.fail_stream["pg_restore --file"] = "pg_restore: error: could not read from input file: end of file"
    module = FakeModule(tmp_path)
    dest = Path(module.params["dest"])
    dest.parent.mkdir()
    dest.write_bytes(b"previous")
    with pytest.raises(PostgresBackupError) as caught:
        run_dump(module, project)
    assert "the dump pg_dump just wrote" in str(caught.value)
    assert "is truncated or not a pg_dump custom-format file" in str(caught.value)
    assert dest.read_bytes() == b"previous"
    assert [p.name for p in dest.parent.iterdir()] == ["ttn_lorawan.dump"]


def test_dump_into_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PostgresBackupError, match="is a directory"):
        run_dump(FakeModule(tmp_path, dest=str(tmp_path)), FakeProject())


def test_dump_passes_the_password_by_name_only(tmp_path: Path) -> None:
    project = FakeProject()
    result = run_dump(FakeModule(tmp_path, compress=5), project)
    assert result["tables"] == 2
    (dump_args,) = [args for args in project.streams if "pg_dump" in args]
    assert dump_args[:5] == ["exec", "-T", "-e", "PGPASSWORD", "postgres"]
    assert "pw" not in dump_args
    assert dump_args[-4:] == ["-Z", "5", "-d", "ttn_lorawan"]


def test_credentials_come_from_either_environment_form() -> None:
    assert environment_dict(["POSTGRES_USER=ttn", "A=b=c", "EMPTY="]) == {
        "POSTGRES_USER": "ttn",
        "A": "b=c",
        "EMPTY": "",
    }
    assert environment_dict({"POSTGRES_USER": "ttn", "N": 5, "U": None}) == {
        "POSTGRES_USER": "ttn",
        "N": "5",
        "U": None,
    }
    pg = PostgresService(FakeProject(environment={}))
    assert (pg.user, pg.password, pg.env) == ("postgres", None, {})
    assert pg.exec_args(["psql"]) == ["exec", "-T", "postgres", "psql"]


@pytest.mark.parametrize("name", ["ttn-lorawan", "1abc", "", "a" * 64, 'x"; DROP DATABASE y; --', "ünïcode"])
def test_database_names_that_are_not_plain_identifiers_are_refused(name: str) -> None:
    with pytest.raises(PostgresBackupError, match="not a plain PostgreSQL identifier"):
        PostgresService(FakeProject(), database=name)


def test_helpers() -> None:
    assert quote_ident('a"b') == '"a""b"'
    assert major_version("15.18 (Debian)") == (15,)
    assert major_version("9.6.24") == (9, 6)
    now = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.UTC)
    assert pre_restore_name("ttn_lorawan", now) == "ttn_lorawan_pre_restore_20260301_120000"
    long_name = pre_restore_name("d" * 63, now)
    assert len(long_name) == 63
    assert long_name.endswith("_pre_restore_20260301_120000")
    listing = parse_archive_list(LISTING + "3600; 0 0 TABLE ATTACH public part_1 root\n")
    assert (listing["tables"], listing["table_data"], listing["dumped_from_major"]) == (2, 2, (15,))


def test_a_failed_rollback_of_a_new_database_says_so(tmp_path: Path, dump_file: Path) -> None:
    project = FakeProject()
    project.existing = set()
    project.fail_stream["pg_restore -d"] = "pg_restore: error: out of disk space"
    project.fail_sql["DROP DATABASE IF EXISTS"] = "ERROR:  database is being accessed by other users"
    with pytest.raises(PostgresBackupError) as caught:
        run_restore(FakeModule(tmp_path), project)
    assert "Database ttn_lorawan did not exist before: drop it" in str(caught.value)
    assert "None" not in str(caught.value)


def test_a_database_that_stays_in_use_is_not_renamed_and_the_message_says_why(tmp_path: Path, dump_file: Path) -> None:
    project = FakeProject()
    project.fail_sql["RENAME TO"] = 'ERROR:  database "ttn_lorawan" is being accessed by other users'
    with pytest.raises(PostgresBackupError) as caught:
        run_restore(FakeModule(tmp_path), project)
    assert "Stop the services that keep connecting to database ttn_lorawan (the stack) and retry" in str(caught.value)
    assert not [sql for sql in project.sql if "CREATE DATABASE" in sql or "DROP" in sql]


def test_a_timescaledb_dump_restores_only_into_its_timescaledb_version(tmp_path: Path, dump_file: Path) -> None:
    # The sandbox has one TimescaleDB version (Debian's), so a server with another one is faked.
    project = FakeProject()
    project.listing = LISTING + "2; 3079 16564 EXTENSION - timescaledb \n"
    project.timescaledb_available = "2.17.0"
    with pytest.raises(PostgresBackupError, match=r"dumped from TimescaleDB 2\.19\.3, and the server .* has 2\.17\.0"):
        run_restore(FakeModule(tmp_path), project)
    assert not [sql for sql in project.sql if "RENAME" in sql or "DROP" in sql or "CREATE" in sql]


def test_archive_list_names_the_extensions() -> None:
    listing = LISTING + "2; 3079 16564 EXTENSION - timescaledb \n4467; 0 0 COMMENT - EXTENSION timescaledb \n"
    assert parse_archive_list(listing)["extensions"] == ["timescaledb"]
    assert parse_archive_list(LISTING)["extensions"] == []
