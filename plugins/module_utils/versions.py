# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Things Stack's versions: parsing, the upgrade path through the gates, and the migrations each hop needs."""

from __future__ import annotations

import re
from typing import List, Mapping, Optional, Tuple, Union

DOCKER_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
TTS_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")

# Releases an upgrade must stop at: the Identity Server database must pass through 3.19.2
# (3.20 refuses older schemas), and `ns-db migrate` from before 3.24 was removed in 3.25.0.
GATES = (
    {
        "name": "is-db",
        "stop": "3.19.2",
        "before": (3, 19, 2),
        "after": (3, 20, 0),
        "why": "the Identity Server database must be migrated by 3.19.2 before 3.20 or later",
    },
    {
        "name": "ns-db",
        "stop": "3.24.2",
        "before": (3, 24, 0),
        "after": (3, 25, 0),
        "why": "ns-db migrate from versions before 3.24 was removed in 3.25.0",
    },
)

# The newest release whose migrations the plan knows (shared/tts-facts.md); newer targets need consent.
NEWEST_RELEASE = (3, 36, 0)

EDITIONS = ("open-source", "enterprise")
# The Redis key each component's `migrate` reads and records its schema version in.
REDIS_SCHEMA_KEYS = {
    "ns-db": "ttn:v3:ns:devices:schema-version",
    "as-db": "ttn:v3:as:schema-version",
    "js-db": "ttn:v3:js:keys:schema-version",
    "dcs-db": "ttn:v3:dcs:schema-version",
}
# Keys a component's `migrate` also records: `ns-db migrate` of 3.25.0 and later sets the application uplinks' too.
REDIS_SCHEMA_EXTRA_KEYS = {"ns-db": ("ttn:v3:ns:application-uplinks:schema-version",)}
# Every Redis schema has been at version 1 since 3.17: a key at 1 means nothing to migrate.
REDIS_SCHEMA_VERSION = 1
# From 3.25.0, `ns-db migrate` refuses a Redis whose devices schema version is missing (or below 1) unless --force.
NS_DB_FORCE_REQUIRED = (3, 25, 0)
# Enterprise releases whose `storage-db migrate` has work to do.
STORAGE_DB_MIGRATIONS = ((3, 20, 0), (3, 26, 0))
DCS_DB_REMOVED = (3, 26, 0)
# From 3.21.0 the NOC is generally available: a deployment that never set it up needs `noc-db init`.
NOC_GENERALLY_AVAILABLE = (3, 21, 0)
JS_DB_INTRODUCED = (3, 18, 0)


class VersionError(ValueError):
    """A version or a pair of versions an upgrade cannot take; the message says what to do."""


def parse_version(text):
    """'3.32.1' or '3.32' (a moving tag: its newest patch) as a comparable tuple (3, 32, 1) / (3, 32, 0)."""
    match = TTS_VERSION.match(str(text).strip())
    if not match:
        raise VersionError("%r is not a The Things Stack version: use X.Y.Z (for example 3.32.0) or X.Y" % (text,))
    return tuple(int(part or 0) for part in match.groups())


def format_version(version):
    return ".".join(str(part) for part in version)


def check_tag(tag):
    if not DOCKER_TAG.match(tag or ""):
        raise VersionError(
            "%r is not a valid image tag: use letters, digits, '_', '.' and '-' (at most 128, not starting "
            "with '.' or '-'), for example 3.32.0" % (tag,)
        )
    return tag


def gate_crossed(from_version, to_version, gate):
    return parse_version(from_version) < gate["before"] and parse_version(to_version) >= gate["after"]


def upgrade_path(from_version, to_version, gate_stops=None):
    """The hops from one version to another: each gate crossed adds a stop, then the target.

    gate_stops maps a gate's name ('is-db', 'ns-db') to the release to stop at, when another
    patch release than the default should be used.
    """
    start, target = parse_version(from_version), parse_version(to_version)
    if target < start:
        raise VersionError(
            "%s is older than the running %s: downgrades are not migrations; restore a backup instead"
            % (to_version, from_version)
        )
    hops = []
    for gate in GATES:
        stop = (gate_stops or {}).get(gate["name"], gate["stop"])
        if gate_crossed(from_version, to_version, gate) and parse_version(stop) > start:
            hops.append(stop)
    if target > start:
        hops.append(to_version)
    return hops


def check_single_hop(from_version, to_version):
    """Refuse a pair that crosses a gate in one hop, naming the stop to take."""
    for gate in GATES:
        if gate_crossed(from_version, to_version, gate):
            raise VersionError(
                "cannot migrate from %s to %s in one hop: %s; upgrade to %s first (the upgrade path is %s)"
                % (
                    from_version,
                    to_version,
                    gate["why"],
                    gate["stop"],
                    " -> ".join([from_version, *upgrade_path(from_version, to_version)]),
                )
            )


def redis_schema_keys(component: str) -> Tuple[str, ...]:
    """Every Redis key the `migrate` of a Redis component records a schema version in, its own first."""
    return (REDIS_SCHEMA_KEYS[component], *REDIS_SCHEMA_EXTRA_KEYS.get(component, ()))


def redis_schema_outdated(value: Optional[Union[str, int]]) -> bool:
    """Whether a schema-version value read from Redis asks for a migration: missing, below 1, or not a number."""
    if value is None:
        return True
    try:
        return int(value) < REDIS_SCHEMA_VERSION
    except ValueError:
        return True


def migration_plan(
    edition: str,
    from_version: str,
    to_version: str,
    redis_schema_versions: Mapping[str, Optional[Union[str, int]]],
    noc_set_up: bool = True,
) -> List[List[str]]:
    """The `*-db migrate` commands (argv after the stack binary) for one hop, in order: only what the hop needs.

    redis_schema_versions maps each component of REDIS_SCHEMA_KEYS to the value of its schema-version key, None
    when the key is missing (a component left out counts as missing). `is-db migrate` runs on every hop (a no-op
    when nothing is pending); a Redis component's `migrate` only when its key is missing or below 1, with --force
    only for `ns-db` from 3.25.0, which refuses such a Redis otherwise. Enterprise adds `noc-db migrate` on every
    hop (`noc-db init` in its place on a hop to 3.21.0 or later when the NOC was never set up, nothing before),
    `storage-db migrate` on a hop that reaches 3.20.0 or 3.26.0, and `dcs-db migrate` like the other Redis
    components but only before 3.26.0, which removed it.
    """
    if edition not in EDITIONS:
        raise VersionError("edition must be one of %s, not %r" % (", ".join(EDITIONS), edition))
    check_single_hop(from_version, to_version)
    start, target = parse_version(from_version), parse_version(to_version)

    def outdated(component: str) -> bool:
        return redis_schema_outdated(redis_schema_versions.get(component))

    plan = [["is-db", "migrate"]]
    if outdated("ns-db"):
        force = target >= NS_DB_FORCE_REQUIRED
        plan.append(["ns-db", "migrate", "--force"] if force else ["ns-db", "migrate"])
    if outdated("as-db"):
        plan.append(["as-db", "migrate"])
    if target >= JS_DB_INTRODUCED and outdated("js-db"):
        plan.append(["js-db", "migrate"])
    if edition == "enterprise":
        if noc_set_up:
            plan.append(["noc-db", "migrate"])
        elif target >= NOC_GENERALLY_AVAILABLE:
            plan.append(["noc-db", "init"])
        if any(start < release <= target for release in STORAGE_DB_MIGRATIONS):
            plan.append(["storage-db", "migrate"])
        if target < DCS_DB_REMOVED and outdated("dcs-db"):
            plan.append(["dcs-db", "migrate"])
    return plan
