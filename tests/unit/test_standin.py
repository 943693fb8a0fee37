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

NS = next(component for component in standin.REDIS_COMPONENTS if component.command == "ns-db")
DCS = next(component for component in standin.REDIS_COMPONENTS if component.command == "dcs-db")


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


def test_schema_versions_and_removed_commands() -> None:
    assert NS.required((3, 23, 1)) == 2
    assert NS.required((3, 24, 2)) == 3
    assert NS.required((3, 32, 0)) == 5
    assert DCS.available((3, 25, 0), enterprise=True)
    assert not DCS.available((3, 26, 0), enterprise=True)
    assert not DCS.available((3, 25, 0), enterprise=False)


def test_only_3_98_0_has_the_broken_backfill() -> None:
    backfill = next(m for m in standin.IS_MIGRATIONS if m.name in standin.BROKEN_IN_3_98_0)
    assert standin.migration_statements(settings("3.98.0"), backfill) != backfill.up
    assert standin.migration_statements(settings("3.98.1"), backfill) == backfill.up


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


def test_unknown_commands_print_help_and_succeed(capsys: pytest.CaptureFixture[str]) -> None:
    standin.dispatch(settings("3.26.0", "tti-lw-stack"), ["dcs-db", "migrate"])
    out = capsys.readouterr().out
    assert out.startswith("Usage:")
    assert "dcs-db" not in out
