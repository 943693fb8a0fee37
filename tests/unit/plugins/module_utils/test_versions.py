"""The version planner and the migration plans, against tables of version pairs."""

from __future__ import annotations

import itertools
import re

import pytest
from ansible_collections.lorawan.tts.plugins.module_utils.versions import (
    REDIS_SCHEMA_KEYS,
    VersionError,
    check_single_hop,
    check_tag,
    migration_plan,
    parse_version,
    redis_schema_keys,
    redis_schema_outdated,
    upgrade_path,
)

# A deployment migrated as usual: every Redis schema version at 1, as redis-cli MGET reads it.
ALL_MIGRATED: dict[str, str | None] = {"ns-db": "1", "as-db": "1", "js-db": "1", "dcs-db": "1"}
NONE_MIGRATED: dict[str, str | None] = dict.fromkeys(ALL_MIGRATED)
FIRST_REDIS_MIGRATIONS_FROM_3_25 = ["ns-db migrate --force", "as-db migrate", "js-db migrate"]


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("3.32.0", (3, 32, 0)), ("3.32", (3, 32, 0)), ("v3.19.2", (3, 19, 2)), (" 3.24.2 ", (3, 24, 2))],
)
def test_parse_version(text: str, parsed: tuple[int, int, int]) -> None:
    assert parse_version(text) == parsed


@pytest.mark.parametrize("text", ["latest", "3", "3.32.0-rc1", "3.32.0;rm -rf /", "", "3..1"])
def test_parse_version_rejects_what_is_not_a_version(text: str) -> None:
    with pytest.raises(VersionError, match="not a The Things Stack version"):
        parse_version(text)


@pytest.mark.parametrize("tag", ["3.32.0", "3.32", "latest", "v3.32.0_build-1", "a" * 128])
def test_check_tag_accepts_docker_tags(tag: str) -> None:
    assert check_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", "-3.32", ".3", "3.32.0;reboot", "$(id)", "3 32", "a" * 129, "x:y", "a/b"])
def test_check_tag_refuses_anything_else(tag: str) -> None:
    with pytest.raises(VersionError, match="not a valid image tag"):
        check_tag(tag)


@pytest.mark.parametrize(
    ("start", "target", "hops"),
    [
        ("3.31.1", "3.32.0", ["3.32.0"]),
        ("3.32.0", "3.32.0", []),
        ("3.18.2", "3.19.2", ["3.19.2"]),
        ("3.18.2", "3.20.0", ["3.19.2", "3.20.0"]),
        ("3.18.2", "3.23.1", ["3.19.2", "3.23.1"]),
        ("3.18.2", "3.24.2", ["3.19.2", "3.24.2"]),
        ("3.18.2", "3.32.2", ["3.19.2", "3.24.2", "3.32.2"]),
        ("3.19.2", "3.32.2", ["3.24.2", "3.32.2"]),
        ("3.19.0", "3.21.0", ["3.19.2", "3.21.0"]),
        ("3.23.1", "3.25.0", ["3.24.2", "3.25.0"]),
        ("3.24.0", "3.25.0", ["3.25.0"]),
        ("3.24.2", "3.32.0", ["3.32.0"]),
        ("3.23.1", "3.24.2", ["3.24.2"]),
        ("3.25.0", "3.32.2", ["3.32.2"]),
        ("3.10.0", "3.32", ["3.19.2", "3.24.2", "3.32"]),
    ],
)
def test_upgrade_path(start: str, target: str, hops: list[str]) -> None:
    assert upgrade_path(start, target) == hops
    for hop_start, hop_end in itertools.pairwise([start, *hops]):
        check_single_hop(hop_start, hop_end)


def test_upgrade_path_takes_another_gate_release_when_told() -> None:
    assert upgrade_path("3.18.2", "3.26.0", {"ns-db": "3.24.1"}) == ["3.19.2", "3.24.1", "3.26.0"]


def test_upgrade_path_refuses_downgrades() -> None:
    with pytest.raises(VersionError, match="downgrades are not migrations"):
        upgrade_path("3.32.0", "3.31.1")


@pytest.mark.parametrize(
    ("start", "target", "stop"),
    [("3.18.2", "3.20.0", "3.19.2"), ("3.19.0", "3.32.0", "3.19.2"), ("3.23.1", "3.25.0", "3.24.2")],
)
def test_single_hop_across_a_gate_is_refused_naming_the_stop(start: str, target: str, stop: str) -> None:
    with pytest.raises(VersionError, match=re.escape(f"upgrade to {stop} first")):
        check_single_hop(start, target)


def commands(plan: list[list[str]]) -> list[str]:
    return [" ".join(argv) for argv in plan]


def test_redis_schema_keys_are_the_real_ones() -> None:
    assert REDIS_SCHEMA_KEYS == {
        "ns-db": "ttn:v3:ns:devices:schema-version",
        "as-db": "ttn:v3:as:schema-version",
        "js-db": "ttn:v3:js:keys:schema-version",
        "dcs-db": "ttn:v3:dcs:schema-version",
    }
    assert redis_schema_keys("ns-db") == (
        "ttn:v3:ns:devices:schema-version",
        "ttn:v3:ns:application-uplinks:schema-version",
    )
    assert redis_schema_keys("as-db") == ("ttn:v3:as:schema-version",)


@pytest.mark.parametrize(
    ("value", "outdated"), [(None, True), ("0", True), ("1", False), ("2", False), (1, False), ("", True), ("x", True)]
)
def test_redis_schema_outdated(value: str | int | None, outdated: bool) -> None:
    assert redis_schema_outdated(value) is outdated


def test_a_migrated_open_source_hop_runs_only_is_db() -> None:
    assert commands(migration_plan("open-source", "3.31.1", "3.32.0", ALL_MIGRATED)) == ["is-db migrate"]


@pytest.mark.parametrize(
    ("edition", "start", "target", "expected"),
    [
        ("open-source", "3.17.0", "3.18.2", ["is-db migrate"]),
        ("open-source", "3.19.2", "3.24.2", ["is-db migrate"]),
        ("open-source", "3.24.2", "3.25.0", ["is-db migrate"]),
        ("enterprise", "3.18.2", "3.19.2", ["is-db migrate", "noc-db migrate"]),
        ("enterprise", "3.19.2", "3.20.0", ["is-db migrate", "noc-db migrate", "storage-db migrate"]),
        ("enterprise", "3.19.2", "3.23.1", ["is-db migrate", "noc-db migrate", "storage-db migrate"]),
        ("enterprise", "3.20.0", "3.21.0", ["is-db migrate", "noc-db migrate"]),
        ("enterprise", "3.24.2", "3.25.0", ["is-db migrate", "noc-db migrate"]),
        ("enterprise", "3.25.0", "3.26.0", ["is-db migrate", "noc-db migrate", "storage-db migrate"]),
        ("enterprise", "3.24.2", "3.32.0", ["is-db migrate", "noc-db migrate", "storage-db migrate"]),
        ("enterprise", "3.26.0", "3.31.1", ["is-db migrate", "noc-db migrate"]),
        ("enterprise", "3.31.1", "3.32.0", ["is-db migrate", "noc-db migrate"]),
    ],
)
def test_migration_plans_of_a_migrated_deployment(edition: str, start: str, target: str, expected: list[str]) -> None:
    assert commands(migration_plan(edition, start, target, ALL_MIGRATED)) == expected


@pytest.mark.parametrize(
    ("edition", "start", "target", "expected"),
    [
        # Before 3.25 ns-db migrate needs no --force; js-db migrate exists from 3.18.
        ("open-source", "3.17.0", "3.17.1", ["is-db migrate", "ns-db migrate", "as-db migrate"]),
        ("open-source", "3.23.1", "3.24.2", ["is-db migrate", "ns-db migrate", "as-db migrate", "js-db migrate"]),
        ("open-source", "3.24.2", "3.25.0", ["is-db migrate", *FIRST_REDIS_MIGRATIONS_FROM_3_25]),
        (
            "enterprise",
            "3.24.2",
            "3.25.0",
            ["is-db migrate", *FIRST_REDIS_MIGRATIONS_FROM_3_25, "noc-db migrate", "dcs-db migrate"],
        ),
        (
            "enterprise",
            "3.25.0",
            "3.26.0",
            ["is-db migrate", *FIRST_REDIS_MIGRATIONS_FROM_3_25, "noc-db migrate", "storage-db migrate"],
        ),
    ],
)
def test_migration_plans_of_a_redis_without_schema_versions(
    edition: str, start: str, target: str, expected: list[str]
) -> None:
    assert commands(migration_plan(edition, start, target, NONE_MIGRATED)) == expected


@pytest.mark.parametrize(
    ("start", "target", "ns_db"), [("3.24.2", "3.25.0", "ns-db migrate --force"), ("3.24.1", "3.24.2", "ns-db migrate")]
)
def test_only_ns_db_from_3_25_gets_force(start: str, target: str, ns_db: str) -> None:
    plan = migration_plan("open-source", start, target, {"ns-db": None, "as-db": None, "js-db": "0"})
    assert commands(plan) == ["is-db migrate", ns_db, "as-db migrate", "js-db migrate"]


def test_a_missing_ns_key_at_3_25_and_later_gets_force() -> None:
    plan = migration_plan("open-source", "3.31.1", "3.32.0", {**ALL_MIGRATED, "ns-db": None})
    assert commands(plan) == ["is-db migrate", "ns-db migrate --force"]


def test_a_component_left_out_counts_as_missing() -> None:
    plan = migration_plan("open-source", "3.31.1", "3.32.0", {"as-db": "1", "js-db": "1"})
    assert commands(plan) == ["is-db migrate", "ns-db migrate --force"]


@pytest.mark.parametrize(
    ("start", "target", "storage"),
    [
        ("3.19.2", "3.20.0", True),
        ("3.19.0", "3.19.2", False),
        ("3.20.0", "3.23.1", False),
        ("3.24.2", "3.25.0", False),
        ("3.25.0", "3.26.0", True),
        ("3.26.0", "3.26.1", False),
        ("3.24.2", "3.32.2", True),
        ("3.31.1", "3.32.0", False),
    ],
)
def test_enterprise_storage_db_only_across_3_20_or_3_26(start: str, target: str, storage: bool) -> None:
    plan = commands(migration_plan("enterprise", start, target, ALL_MIGRATED))
    assert ("storage-db migrate" in plan) is storage
    assert "noc-db migrate" in plan


@pytest.mark.parametrize(
    ("start", "target", "noc"),
    [
        ("3.19.2", "3.20.0", []),
        ("3.19.2", "3.21.0", ["noc-db init"]),
        ("3.19.2", "3.24.2", ["noc-db init"]),
    ],
)
def test_a_noc_never_set_up_is_initialized_from_3_21_only(start: str, target: str, noc: list[str]) -> None:
    plan = commands(migration_plan("enterprise", start, target, ALL_MIGRATED, noc_set_up=False))
    assert [command for command in plan if command.startswith("noc-db")] == noc


@pytest.mark.parametrize(("target", "dcs"), [("3.25.0", True), ("3.26.0", False)])
def test_enterprise_dcs_db_only_below_3_26_and_when_its_key_is_missing(target: str, dcs: bool) -> None:
    missing = commands(migration_plan("enterprise", "3.24.2", target, {**ALL_MIGRATED, "dcs-db": None}))
    assert ("dcs-db migrate" in missing) is dcs
    assert "dcs-db migrate" not in commands(migration_plan("enterprise", "3.24.2", target, ALL_MIGRATED))


def test_migration_plan_refuses_a_gate_crossing_and_an_unknown_edition() -> None:
    with pytest.raises(VersionError, match=re.escape("upgrade to 3.19.2 first")):
        migration_plan("open-source", "3.18.2", "3.23.1", ALL_MIGRATED)
    with pytest.raises(VersionError, match="edition must be one of"):
        migration_plan("community", "3.31.1", "3.32.0", ALL_MIGRATED)
