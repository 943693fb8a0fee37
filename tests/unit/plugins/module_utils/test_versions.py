"""The version planner and the migration plans, against tables of version pairs."""

from __future__ import annotations

import itertools
import re

import pytest
from ansible_collections.lorawan.tts.plugins.module_utils.versions import (
    VersionError,
    check_single_hop,
    check_tag,
    migration_plan,
    parse_version,
    upgrade_path,
)

ALL_PRESENT = {"ns-db": True, "as-db": True, "js-db": True, "dcs-db": True}


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


@pytest.mark.parametrize(
    ("edition", "start", "target", "expected"),
    [
        ("open-source", "3.31.1", "3.32.0", ["is-db migrate", "ns-db migrate", "as-db migrate"]),
        ("open-source", "3.17.0", "3.18.2", ["is-db migrate", "ns-db migrate", "as-db migrate", "js-db migrate"]),
        ("open-source", "3.24.2", "3.25.0", ["is-db migrate", "ns-db migrate", "as-db migrate"]),
        (
            "enterprise",
            "3.24.2",
            "3.25.0",
            [
                "is-db migrate",
                "ns-db migrate",
                "as-db migrate",
                "noc-db migrate",
                "storage-db migrate",
                "dcs-db migrate",
            ],
        ),
        (
            "enterprise",
            "3.25.0",
            "3.26.0",
            ["is-db migrate", "ns-db migrate", "as-db migrate", "noc-db migrate", "storage-db migrate"],
        ),
        (
            "enterprise",
            "3.31.1",
            "3.32.0",
            ["is-db migrate", "ns-db migrate", "as-db migrate", "noc-db migrate", "storage-db migrate"],
        ),
    ],
)
def test_migration_plans_per_edition_and_version(edition: str, start: str, target: str, expected: list[str]) -> None:
    assert commands(migration_plan(edition, start, target, ALL_PRESENT)) == expected


def test_redis_components_that_never_ran_get_force() -> None:
    plan = migration_plan("open-source", "3.31.1", "3.32.0", {"ns-db": False, "as-db": True, "js-db": False})
    assert commands(plan) == ["is-db migrate", "ns-db migrate --force", "as-db migrate", "js-db migrate --force"]


def test_migration_plan_refuses_a_gate_crossing_and_an_unknown_edition() -> None:
    with pytest.raises(VersionError, match=re.escape("upgrade to 3.19.2 first")):
        migration_plan("open-source", "3.18.2", "3.23.1", ALL_PRESENT)
    with pytest.raises(VersionError, match="edition must be one of"):
        migration_plan("community", "3.31.1", "3.32.0", ALL_PRESENT)
