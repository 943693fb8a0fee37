# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.lorawan.tts.plugins.module_utils.versions import (
    REDIS_SCHEMA_KEYS,
    REDIS_SCHEMA_VERSION,
    VersionError,
    migration_plan,
    upgrade_path,
)


def upgrade_path_filter(from_version, to_version, gate_stops=None):
    try:
        return upgrade_path(str(from_version), str(to_version), gate_stops)
    except VersionError as error:
        raise AnsibleFilterError(str(error)) from error


def migration_plan_filter(from_version, to_version, edition="open-source", redis_schema_versions=None):
    """A component left out of redis_schema_versions counts as migrated (version 1); None stands for a missing key."""
    versions = dict.fromkeys(REDIS_SCHEMA_KEYS, REDIS_SCHEMA_VERSION)
    versions.update(redis_schema_versions or {})
    try:
        return migration_plan(edition, str(from_version), str(to_version), versions)
    except VersionError as error:
        raise AnsibleFilterError(str(error)) from error


def migration_plan_lines_filter(from_version, hops, edition="open-source"):
    """One line per hop: '3.31.1 -> 3.32.0: ttn-lw-stack is-db migrate, ...'."""
    lines = []
    previous = str(from_version)
    for hop in hops:
        commands = migration_plan_filter(previous, hop, edition)
        lines.append("%s -> %s: %s" % (previous, hop, ", ".join(" ".join(command) for command in commands) or "none"))
        previous = str(hop)
    return lines


class FilterModule:
    def filters(self):
        return {
            "upgrade_path": upgrade_path_filter,
            "migration_plan": migration_plan_filter,
            "migration_plan_lines": migration_plan_lines_filter,
        }
