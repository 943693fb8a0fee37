#!/usr/bin/python
# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: postgres_snapshot
short_description: Copy the The Things Stack database inside its PostgreSQL server, and put the copy back
version_added: 0.2.0
description:
  - "O(state=present): C(CREATE DATABASE <snapshot> TEMPLATE <database>), with C(STRATEGY FILE_COPY) on
    PostgreSQL 15 and later (earlier servers always copy files). The server copies the database's files: a few
    seconds even for gigabytes, where C(pg_dump) takes minutes. The copy needs no session on O(database): stop
    the stack first (the module closes left-over sessions)."
  - "O(state=restored): O(database) becomes a copy of the snapshot again: the current O(database) is renamed
    aside, a file copy of the snapshot takes its name (seconds, as for O(state=present)), the aside database is
    dropped. The snapshot stays, to be dumped; drop it with O(state=absent) after. On a failure the previous
    O(database) is put back. Once it succeeded, databases that earlier, interrupted restores set aside
    (C(<database>_pre_restore_<UTC timestamp>), never the snapshot) are dropped too."
  - O(state=absent) drops the snapshot.
  - A snapshot lives in the same server and volume as the database; it is no backup on its own. Make the
    portable dump from it with M(lorawan.tts.postgres_dump) (O(lorawan.tts.postgres_dump#module:database) set to
    the snapshot), for example after the new version already serves.
author:
  - lorawan.tts contributors (!UNKNOWN)
extends_documentation_fragment:
  - lorawan.tts.compose
  - lorawan.tts.postgres
  - lorawan.tts.attributes
options:
  database:
    description:
      - The database the snapshot copies, and that O(state=restored) replaces.
    type: str
    default: ttn_lorawan
  user:
    description:
      - The PostgreSQL role to connect as; it needs C(CREATEDB).
      - Defaults to C(POSTGRES_USER) in the service's compose environment, else C(postgres).
    type: str
  snapshot:
    description:
      - The snapshot database's name. Only letters, digits and underscores, at most 63 characters.
    type: str
    required: true
  state:
    description:
      - C(present) copies O(database) to O(snapshot) unless O(snapshot) exists; C(restored) puts O(snapshot) back
        as O(database); C(absent) drops O(snapshot).
    type: str
    choices: [present, restored, absent]
    default: present
attributes:
  check_mode:
    support: full
    details: Checks that the server runs and the databases exist, and reports what would change.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details: C(present) and C(absent) change nothing when the snapshot already exists, or does not. C(restored)
      replaces O(database) on every run.
seealso:
  - module: lorawan.tts.postgres_dump
  - module: lorawan.tts.postgres_restore
notes:
  - The Postgres data volume needs free space for a second copy of the database while the snapshot exists.
"""

EXAMPLES = r"""
- name: Snapshot the database while the stack is stopped
  lorawan.tts.postgres_snapshot:
    project_src: /srv/lorawan-stack
    snapshot: ttn_lorawan_snapshot_20260314t021500z

- name: Dump the snapshot once the new version serves
  lorawan.tts.postgres_dump:
    project_src: /srv/lorawan-stack
    database: ttn_lorawan_snapshot_20260314t021500z
    dest: /var/backups/lorawan-tts/ttn_lorawan.dump

- name: Roll back, in seconds
  lorawan.tts.postgres_snapshot:
    project_src: /srv/lorawan-stack
    snapshot: ttn_lorawan_snapshot_20260314t021500z
    state: restored

- name: Drop the snapshot once it is dumped
  lorawan.tts.postgres_snapshot:
    project_src: /srv/lorawan-stack
    snapshot: ttn_lorawan_snapshot_20260314t021500z
    state: absent
"""

RETURN = r"""
snapshot:
  description: The snapshot database.
  returned: always
  type: str
  sample: ttn_lorawan_snapshot_20260314t021500z
size:
  description: The snapshot's size in bytes (O(state=present)).
  returned: when O(state=present) and not in check mode
  type: int
  sample: 73400320
strategy:
  description: C(FILE_COPY) when the server has it, else empty (the server's only, file-copying, strategy).
  returned: when O(state=present) created the snapshot
  type: str
  sample: FILE_COPY
dropped_leftovers:
  description:
    - The databases that earlier, interrupted restores had set aside (C(<database>_pre_restore_<UTC timestamp>)),
      dropped once O(state=restored) succeeded.
  returned: when O(state=restored) succeeded, not in check mode
  type: list
  elements: str
  sample: [ttn_lorawan_pre_restore_20260301_120000]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lorawan.tts.plugins.module_utils.compose import (
    COMPOSE_ARGUMENT_SPEC,
    ComposeError,
    ComposeProject,
    fail_on_compose_error,
)
from ansible_collections.lorawan.tts.plugins.module_utils.postgres_backup import (
    POSTGRES_ARGUMENT_SPEC,
    PostgresService,
    create_snapshot,
    drop_snapshot,
    restore_snapshot,
)

ACTIONS = {"present": create_snapshot, "restored": restore_snapshot, "absent": drop_snapshot}


def main():
    argument_spec = dict(
        COMPOSE_ARGUMENT_SPEC,
        snapshot=dict(type="str", required=True),
        state=dict(type="str", choices=sorted(ACTIONS), default="present"),
        **POSTGRES_ARGUMENT_SPEC,
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        pg = PostgresService.from_params(ComposeProject.from_params(module), params)
        result = ACTIONS[params["state"]](pg, params["snapshot"], module.check_mode)
    except ComposeError as error:
        fail_on_compose_error(module, error, changed=getattr(error, "changed", False))
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
