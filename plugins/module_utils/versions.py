# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Things Stack's versions: parsing, the upgrade path through the gates, and the migrations each hop needs."""

from __future__ import annotations

import re

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

EDITIONS = ("open-source", "enterprise")
REDIS_SCHEMA_KEYS = {
    "ns-db": "ttn:v3:ns:devices:schema-version",
    "as-db": "ttn:v3:as:devices:schema-version",
    "js-db": "ttn:v3:js:devices:schema-version",
    "dcs-db": "ttn:v3:dcs:schema-version",
}
DCS_DB_REMOVED = (3, 26, 0)
JS_DB_REQUIRED = (3, 18, 0)


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


def migration_plan(edition, from_version, to_version, redis_schema_present):
    """The `*-db migrate` commands (argv after the stack binary) for one hop, in order.

    redis_schema_present maps each key of REDIS_SCHEMA_KEYS to whether its schema-version key exists;
    a Redis that never had it needs --force.
    """
    if edition not in EDITIONS:
        raise VersionError("edition must be one of %s, not %r" % (", ".join(EDITIONS), edition))
    check_single_hop(from_version, to_version)
    start, target = parse_version(from_version), parse_version(to_version)

    def redis_command(name):
        argv = [name, "migrate"]
        if not redis_schema_present.get(name, False):
            argv.append("--force")
        return argv

    plan = [["is-db", "migrate"], redis_command("ns-db"), redis_command("as-db")]
    if start < JS_DB_REQUIRED <= target or not redis_schema_present.get("js-db", True):
        plan.append(redis_command("js-db"))
    if edition == "enterprise":
        plan += [["noc-db", "migrate"], ["storage-db", "migrate"]]
        if target < DCS_DB_REMOVED:
            plan.append(redis_command("dcs-db"))
    return plan
