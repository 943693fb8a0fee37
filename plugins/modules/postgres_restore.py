#!/usr/bin/python
# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: postgres_restore
short_description: Restore the PostgreSQL database of a The Things Stack deployment from a dump, or leave it as it was
description:
  - Replaces a database with the contents of a C(pg_dump --format=c) dump (such as one made by
    M(lorawan.tts.postgres_dump)), running C(psql) and C(pg_restore) inside the postgres service's container with
    C(docker compose exec -T) and streaming the dump from the managed host.
  - "Before touching anything it checks the dump: O(src) must exist, C(pg_restore) must read all of it (a truncated
    file is refused), and it must not come from a newer PostgreSQL major version than the server's."
  - "Then it closes every connection to the database, renames it to C(<database>_pre_restore_<UTC timestamp>),
    creates an empty database owned by O(user), runs C(pg_restore --exit-on-error) into it, and checks that it
    holds as many tables as the dump. On success the renamed previous database is dropped, and so are the
    databases that earlier, interrupted restores set aside (C(<database>_pre_restore_<UTC timestamp>))."
  - On any failure after the rename, the new database is dropped and the previous one renamed back, so the
    database is returned to its previous state; the error says so. When that fails too (PostgreSQL went away),
    the error's first advice is to restore the backup again (the M(lorawan.tts.postgres_restore) run, or the
    C(lorawan.tts.restore) role with C(tts_restore_from)), not to rename the set-aside database back (in a
    rollback it holds the half-migrated data).
  - The password is passed to the container only through the environment (C(-e PGPASSWORD)), never on a
    command line, and is never returned.
version_added: 0.1.0
author:
  - lorawan.tts contributors (!UNKNOWN)
extends_documentation_fragment:
  - lorawan.tts.compose
  - lorawan.tts.postgres
  - lorawan.tts.attributes
options:
  database:
    description:
      - The database to replace. Only letters, digits and underscores, starting with a letter or underscore, and
        not C(postgres), C(template0) or C(template1).
      - If it does not exist yet, it is created.
    type: str
    default: ttn_lorawan
  user:
    description:
      - The PostgreSQL role to connect as; it owns the new database. It must be allowed to create, rename and drop
        databases and to terminate other sessions (the superuser the postgres image creates can).
      - Defaults to C(POSTGRES_USER) in the service's compose environment, else C(postgres).
    type: str
  src:
    description:
      - The dump file on the managed host, in pg_dump's custom format.
    type: path
    required: true
attributes:
  check_mode:
    support: full
    details:
      - In check mode the module validates O(src) (readable in full, not from a newer major version) against the
        running server and reports the restore it would do; it changes nothing.
  diff_mode:
    support: none
  idempotent:
    support: none
    details:
      - Every run replaces the database and reports C(changed=true); the module does not compare the database with
        the dump.
seealso:
  - module: lorawan.tts.postgres_dump
notes:
  - Stop the services that use the database (the C(stack) service of TTS) before restoring and start them after;
    their connections are closed, and they would otherwise see the database while it is being restored.
  - While the restore runs, the previous database exists under its C(_pre_restore_) name, so the host needs room
    for both.
"""

EXAMPLES = r"""
- name: Stop The Things Stack
  ansible.builtin.command:
    argv: [docker, compose, stop, stack]
    chdir: /srv/lorawan-stack
  changed_when: true

- name: Restore the TTS database from the dump taken before the upgrade
  lorawan.tts.postgres_restore:
    project_src: /srv/lorawan-stack
    src: /var/backups/lorawan-stack/ttn_lorawan.dump

- name: Check a dump against the running server without restoring it
  lorawan.tts.postgres_restore:
    project_src: /srv/lorawan-stack
    src: /var/backups/lorawan-stack/ttn_lorawan.dump
  check_mode: true
  register: would_restore
"""

RETURN = r"""
restored_from:
  description: The absolute path of the dump.
  returned: success
  type: str
  sample: /var/backups/lorawan-stack/ttn_lorawan.dump
database:
  description: The database that was (or in check mode, would be) replaced.
  returned: success
  type: str
  sample: ttn_lorawan
tables:
  description:
    - The number of tables in the restored database, equal to the C(TABLE) entries of the dump.
    - In check mode, the number of C(TABLE) entries of the dump.
  returned: success
  type: int
  sample: 15
server_version:
  description: The version of the PostgreSQL server restored into.
  returned: success
  type: str
  sample: "15.18"
dump_server_version:
  description: The version of the PostgreSQL server the dump was made from, as its header records it.
  returned: success
  type: str
  sample: "15.18"
previous_database:
  description:
    - The name the previous database still has, when the restore succeeded but dropping it failed (a warning
      says why).
  returned: when the previous database could not be dropped
  type: str
  sample: ttn_lorawan_pre_restore_20260301_120000
dropped_leftovers:
  description:
    - The databases that earlier, interrupted restores had set aside (C(<database>_pre_restore_<UTC timestamp>)),
      dropped once this restore succeeded. Never the database itself, this restore's own set-aside copy, or a
      snapshot.
  returned: success, not in check mode
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
from ansible_collections.lorawan.tts.plugins.module_utils.postgres_backup import POSTGRES_ARGUMENT_SPEC, run_restore


def main():
    argument_spec = dict(COMPOSE_ARGUMENT_SPEC)
    argument_spec.update(POSTGRES_ARGUMENT_SPEC)
    argument_spec.update(src=dict(type="path", required=True))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        project = ComposeProject.from_params(module)
        result = run_restore(module, project)
    except ComposeError as error:
        fail_on_compose_error(module, error, changed=getattr(error, "changed", False))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
