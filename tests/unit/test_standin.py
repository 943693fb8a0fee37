"""The stand-in stack's version rules, without Docker (the same rules run in its images)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

STANDIN = Path(__file__).resolve().parents[1] / "sandbox" / "images" / "stack" / "lorawan_stack_standin.py"
spec = importlib.util.spec_from_file_location("lorawan_stack_standin", STANDIN)
standin = importlib.util.module_from_spec(spec)
sys.modules["lorawan_stack_standin"] = standin
spec.loader.exec_module(standin)

COMPONENTS = {component.command: component for component in standin.REDIS_COMPONENTS}
NS, AS, DCS = COMPONENTS["ns-db"], COMPONENTS["as-db"], COMPONENTS["dcs-db"]
NS_UPLINKS = "ttn:v3:ns:application-uplinks:schema-version"


class FakeRedis:
    """The redis-py calls of the stand-in's Redis migrations, on a dict."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.writes = 0

    def get(self, key: str) -> bytes | None:
        return self.values.get(key)

    def mget(self, keys: tuple[str, ...]) -> list[bytes | None]:
        return [self.values.get(key) for key in keys]

    def set(self, key: str, value: int) -> None:
        self.writes += 1
        self.values[key] = str(value).encode()

    def mset(self, mapping: dict[str, int]) -> None:
        self.writes += 1
        self.values.update({key: str(value).encode() for key, value in mapping.items()})


@pytest.fixture
def redis(monkeypatch: pytest.MonkeyPatch) -> FakeRedis:
    fake = FakeRedis()
    monkeypatch.setattr(standin, "redis_client", lambda settings: fake)
    return fake


def settings(version: str, binary: str = "ttn-lw-stack") -> standin.Settings:
    return standin.Settings(binary, standin.parse_version(version), {})


def test_version_text_uses_tts_column_layout() -> None:
    text = standin.version_text(settings("3.32.1", "tti-lw-stack"))
    assert text.splitlines()[0] == "The Things Stack Enterprise: tti-lw-stack"
    assert "Version:             3.32.1\n" in text


@pytest.mark.parametrize(
    ("version", "applied", "refused"),
    [
        ("3.23.1", {"20210401000000_initial_schema"}, True),
        ("3.23.1", {"20210401000000_initial_schema", "20220520000000_prepare_bun_migrations"}, False),
        ("3.19.2", {"20210401000000_initial_schema"}, False),
        ("3.32.0", set(), False),  # an empty database is a first install, not a skipped version
    ],
)
def test_is_db_gate_at_3_19_2(version: str, applied: set[str], refused: bool) -> None:
    if refused:
        with pytest.raises(standin.CommandError, match=r"upgraded to v3\.19 before upgrading to v3\.20"):
            standin.check_is_gate(standin.parse_version(version), applied)
    else:
        standin.check_is_gate(standin.parse_version(version), applied)


def test_migrations_are_cumulative_by_version() -> None:
    names = [migration.name for migration in standin.is_migrations_for((3, 31, 1))]
    assert names[0] == "20210401000000_initial_schema"
    assert "20240301000000_end_device_claims" in names
    assert "20240701000000_api_key_expiry" not in names
    assert len(standin.is_migrations_for((3, 32, 0))) == len(names) + 1


def test_redis_keys_and_removed_commands() -> None:
    assert {component.command: component.key for component in standin.REDIS_COMPONENTS} == {
        "ns-db": "ttn:v3:ns:devices:schema-version",
        "as-db": "ttn:v3:as:schema-version",
        "js-db": "ttn:v3:js:keys:schema-version",
        "dcs-db": "ttn:v3:dcs:schema-version",
    }
    assert DCS.available((3, 25, 0), enterprise=True)
    assert not DCS.available((3, 26, 0), enterprise=True)
    assert not DCS.available((3, 25, 0), enterprise=False)


@pytest.mark.parametrize(("broken", "fixed"), [("3.98.0", "3.98.1"), ("3.30.9", "3.31.1")])
def test_only_the_failing_versions_have_the_broken_backfill(broken: str, fixed: str) -> None:
    names = standin.BROKEN_MIGRATIONS[standin.parse_version(broken)]
    backfill = next(m for m in standin.IS_MIGRATIONS if m.name in names)
    assert standin.migration_statements(settings(broken), backfill) != backfill.up
    assert standin.migration_statements(settings(fixed), backfill) == backfill.up


def test_config_flag_is_taken_wherever_it_stands() -> None:
    assert standin.split_global_flags(["-c", "/config/x.yml", "is-db", "migrate"]) == (
        "/config/x.yml",
        ["is-db", "migrate"],
    )
    assert standin.split_global_flags(["is-db", "--config=/c.yml", "migrate"]) == ("/c.yml", ["is-db", "migrate"])


def test_environment_overrides_the_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    configured = standin.Settings("ttn-lw-stack", (3, 32, 0), {"redis": {"address": "cache:6379"}})
    assert configured.get("redis", "address") == "cache:6379"
    monkeypatch.setenv("TTN_LW_REDIS_ADDRESS", "redis:6379")
    assert configured.get("redis", "address") == "redis:6379"


def test_a_group_without_the_subcommand_prints_its_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(standin.UsageError):
        standin.dispatch(settings("3.26.0", "tti-lw-stack"), ["dcs-db", "migrate"])
    out = capsys.readouterr().out
    assert out.startswith("Usage:\n  tti-lw-stack dcs-db [command]")
    assert "migrate" not in out


def test_an_unknown_command_is_an_error() -> None:
    with pytest.raises(standin.CommandError, match='unknown command "noc-db" for "ttn-lw-stack"'):
        standin.dispatch(settings("3.32.0"), ["noc-db", "migrate"])


def test_ns_db_migrate_from_3_25_needs_force_on_a_redis_without_the_key(redis: FakeRedis) -> None:
    with pytest.raises(standin.CommandError, match="use --force"):
        standin.redis_migrate(settings("3.25.0"), NS, force=False)
    assert redis.values == {}
    standin.redis_migrate(settings("3.25.0"), NS, force=True)
    assert redis.values == {NS.key: b"1", NS_UPLINKS: b"1"}


def test_ns_db_migrate_before_3_25_records_one_key_without_force(redis: FakeRedis) -> None:
    standin.redis_migrate(settings("3.24.2"), NS, force=False)
    assert redis.values == {NS.key: b"1"}


def test_ns_db_migrate_from_3_25_adds_the_uplinks_key_then_is_current(
    redis: FakeRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    redis.values[NS.key] = b"1"
    standin.redis_migrate(settings("3.25.0"), NS, force=False)
    assert redis.values == {NS.key: b"1", NS_UPLINKS: b"1"}
    assert redis.writes == 1
    standin.redis_migrate(settings("3.32.0"), NS, force=False)
    assert redis.writes == 1
    assert "INFO\tDatabase schema version is already current" in capsys.readouterr().err


def test_as_db_migrate_needs_no_force_and_returns_early_when_current(redis: FakeRedis) -> None:
    standin.redis_migrate(settings("3.32.0"), AS, force=False)
    assert redis.values == {AS.key: b"1"}
    standin.redis_migrate(settings("3.32.0"), AS, force=False)
    assert redis.writes == 1


def test_start_checks_no_redis_schema_version(monkeypatch: pytest.MonkeyPatch) -> None:
    class Cursor:
        def __enter__(self) -> object:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def execute(self, *args: object) -> None:
            return None

        def fetchall(self) -> list[tuple[str, int]]:
            return [(migration.name, 1) for migration in standin.IS_MIGRATIONS]

    class Connection(Cursor):
        def cursor(self) -> Cursor:
            return Cursor()

    monkeypatch.setattr(standin, "postgres", lambda uri: Connection())
    monkeypatch.setattr(standin, "redis_client", lambda settings: pytest.fail("start read Redis"))
    configured = standin.Settings("ttn-lw-stack", (3, 32, 0), {"is": {"database-uri": "postgres://x"}})
    assert standin.pending_work(configured) == []
