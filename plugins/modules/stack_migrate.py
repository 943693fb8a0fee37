#!/usr/bin/python
# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: stack_migrate
short_description: Run the database migrations one hop of a The Things Stack upgrade needs
version_added: 0.1.0
description:
  - Decides from the edition and the O(from_version)/O(to_version) pair which C(*-db migrate) commands to run,
    waits until Postgres accepts connections, and runs them with the target image, the service's entrypoint
    (the compose file's, else the image's), environment and volumes. A single command runs as
    C(docker compose run --rm -T <service> <command>); several run in one idle one-off container of the service
    (C(docker compose run -d --rm --entrypoint sleep)), each with C(docker exec), so the downtime pays for one
    container start per hop. An image without C(sleep) falls back to one C(run) per command.
  - "The plan holds only what the hop needs. C(is-db migrate) on every hop (it does nothing when no migration is
    pending). The Redis components' schema versions are read with one C(MGET): C(ns-db migrate)
    (C(ttn:v3:ns:devices:schema-version)), C(as-db migrate) (C(ttn:v3:as:schema-version)) and C(js-db migrate)
    (C(ttn:v3:js:keys:schema-version), from 3.18) run only when their key is missing or below 1, the only schema
    version since 3.17, so a deployment that was migrated before runs no Redis command at all."
  - "C(--force) goes only to C(ns-db migrate) to 3.25.0 or later on a Redis whose devices schema version is missing
    (or below 1), which it refuses otherwise; C(as-db) and C(js-db) never need it."
  - "On Enterprise also C(noc-db migrate) on every hop, C(storage-db migrate) on a hop that reaches 3.20.0 or
    3.26.0 (from below), and C(dcs-db migrate) only below 3.26 (from 3.26 on it only prints help) when its key
    C(ttn:v3:dcs:schema-version) is missing or below 1."
  - "On Enterprise, on a hop from before 3.21.0 to 3.21.0 or later (the NOC generally available), C(noc-db init)
    in place of C(noc-db migrate) when the NOC was never set up: its database (the one of
    C(TTN_LW_NOC_STORE_DATABASE_URI), else C(TTN_LW_IS_DATABASE_URI), else the postgres service's C(POSTGRES_DB))
    has no TimescaleDB hypertable, where the NOC keeps its metrics. Enterprise is closed source: this sign is
    inferred from its documentation."
  - Refuses a pair that crosses 3.19.2 or 3.24 in one hop and names the hop to take
    (see the P(lorawan.tts.upgrade_path#filter) filter).
  - The compose file's stack image must already carry O(to_version) (set it with M(lorawan.tts.compose_image)).
    Take a backup first (M(lorawan.tts.postgres_dump), M(lorawan.tts.redis_backup)); a failed migration can leave
    the databases half migrated.
author:
  - lorawan.tts contributors (!UNKNOWN)
extends_documentation_fragment:
  - lorawan.tts.compose
  - lorawan.tts.attributes
attributes:
  check_mode:
    support: full
    details:
      - Plans the commands (reading Redis' schema-version keys) and reports them without running any.
      - C(changed) is then predicted as O(from_version) differing from O(to_version).
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Migrations already applied are skipped by The Things Stack itself; C(changed) is true only when a command
        applied one.
options:
  service:
    description: The stack service.
    type: str
    default: stack
  redis_service:
    description: The Redis service, where the NS, AS and JS schema versions are kept.
    type: str
    default: redis
  postgres_service:
    description: The Postgres service, waited for before the first command.
    type: str
    default: postgres
  edition:
    description:
      - The edition; V(auto) reads it from the stack's entrypoint (C(ttn-lw-stack) or C(tti-lw-stack)) or image.
    type: str
    choices: [auto, open-source, enterprise]
    default: auto
  from_version:
    description: The version the databases were last migrated by (the version that ran before this hop).
    type: str
    required: true
  to_version:
    description: The version of this hop; the compose file's stack image tag must equal it.
    type: str
    required: true
  components:
    description:
      - Run only these commands (for example V(is-db), V(ns-db)) instead of the planned ones; a component the plan
        does not include is run with C(migrate).
    type: list
    elements: str
    choices: [is-db, ns-db, as-db, js-db, noc-db, storage-db, dcs-db]
  force:
    description:
      - Pass C(--force) to every Redis component (C(ns-db), C(as-db), C(js-db), C(dcs-db)) the plan (or
        O(components)) runs. Not needed for the planned commands, which carry C(--force) where TTS requires it.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for Postgres to accept connections.
    type: int
    default: 60
"""

EXAMPLES = r"""
- name: Point the stack at 3.32.0
  lorawan.tts.compose_image:
    project_src: /srv/tts
    tag: 3.32.0

- name: Migrate the databases from 3.31.1 to 3.32.0
  lorawan.tts.stack_migrate:
    project_src: /srv/tts
    from_version: 3.31.1
    to_version: 3.32.0
  register: migration

- name: Show what ran
  ansible.builtin.debug:
    msg: "{{ migration.commands | map(attribute='argv') | map('join', ' ') | list }}"
"""

RETURN = r"""
edition:
  description: The edition the plan was made for.
  returned: always
  type: str
  sample: open-source
plan:
  description: The commands planned, each an argv list after the stack binary.
  returned: always
  type: list
  elements: list
  sample: [[is-db, migrate]]
commands:
  description: The commands run, in order (none in check mode); the last one failed when the module failed.
  returned: always
  type: list
  elements: dict
  contains:
    argv:
      description: The command after the stack binary.
      type: list
      elements: str
    rc:
      description: Its exit code.
      type: int
    summary:
      description: The last lines it printed.
      type: str
    applied:
      description:
        - Whether it applied a migration. For a Redis component, whether it changed one of its schema-version keys.
      type: bool
  sample:
    - argv: [is-db, migrate]
      rc: 0
      summary: "INFO Migrated database group=2 migrations=1"
      applied: true
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lorawan.tts.plugins.module_utils.compose import (
    COMPOSE_ARGUMENT_SPEC,
    ComposeError,
    ComposeProject,
    fail_on_compose_error,
)
from ansible_collections.lorawan.tts.plugins.module_utils.migrations import StackMigration
from ansible_collections.lorawan.tts.plugins.module_utils.versions import VersionError

COMPONENTS = ["is-db", "ns-db", "as-db", "js-db", "noc-db", "storage-db", "dcs-db"]


def main():
    argument_spec = dict(
        COMPOSE_ARGUMENT_SPEC,
        service=dict(type="str", default="stack"),
        redis_service=dict(type="str", default="redis"),
        postgres_service=dict(type="str", default="postgres"),
        edition=dict(type="str", choices=["auto", "open-source", "enterprise"], default="auto"),
        from_version=dict(type="str", required=True),
        to_version=dict(type="str", required=True),
        components=dict(type="list", elements="str", choices=COMPONENTS),
        force=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=60),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    result = dict(changed=False, commands=[], plan=[], edition=None)
    try:
        migration = StackMigration(
            ComposeProject.from_params(module),
            params["service"],
            params["redis_service"],
            params["postgres_service"],
            params["edition"],
            params["from_version"],
            params["to_version"],
        )
        result["edition"] = migration.edition
        result["plan"] = migration.plan(params["components"], params["force"])
        if module.check_mode:
            result["changed"] = params["from_version"] != params["to_version"]
            module.exit_json(**result)
        migration.wait_for_postgres(params["wait_timeout"])
        result["commands"], failed = migration.run(result["plan"])
    except VersionError as error:
        module.fail_json(msg=str(error), **result)
    except ComposeError as error:
        fail_on_compose_error(module, error, **result)
    result["changed"] = any(command["applied"] for command in result["commands"])
    if failed:
        module.fail_json(
            msg="%s migrate failed (exit %d) migrating %s to %s in %s: %s. The databases may be partly migrated: "
            "restore the backup taken before this hop (lorawan.tts.postgres_restore, lorawan.tts.redis_restore)"
            % (failed["argv"][0], failed["rc"], params["from_version"], params["to_version"], params["project_src"],
               failed["summary"]),
            **result
        )  # fmt: skip
    module.exit_json(**result)


if __name__ == "__main__":
    main()
