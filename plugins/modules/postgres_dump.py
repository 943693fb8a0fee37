#!/usr/bin/python
# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: postgres_dump
short_description: Dump the PostgreSQL database of a The Things Stack deployment, verified
description:
  - Runs C(pg_dump --format=c) inside the postgres service's container with C(docker compose exec -T) (no TTY,
    so the binary dump is not mangled) and streams it to a file on the managed host.
  - Verifies the dump with C(pg_restore) inside the container (C(--list) reads its table of contents, then the
    whole archive is read) before it replaces O(dest), so a dump that was cut short never becomes O(dest).
  - The dump is written to a temporary file in the directory of O(dest), made mode C(0600) and renamed into place
    atomically. On any failure the temporary file is removed and an existing O(dest) is left untouched.
  - The password is passed to the container only through the environment (C(-e PGPASSWORD)), never on a
    command line, and is never returned.
version_added: 0.1.0
author:
  - lorawan.tts contributors (!UNKNOWN)
extends_documentation_fragment:
  - lorawan.tts.compose
  - lorawan.tts.postgres
  - lorawan.tts.progress
  - lorawan.tts.attributes
options:
  database:
    description:
      - The database to dump. Only letters, digits and underscores, starting with a letter or underscore.
    type: str
    default: ttn_lorawan
  user:
    description:
      - The PostgreSQL role to connect as.
      - Defaults to C(POSTGRES_USER) in the service's compose environment, else C(postgres).
    type: str
  dest:
    description:
      - The file to write the dump to, on the managed host. Its directory is created with mode C(0700) if missing;
        the file gets mode C(0600).
      - An existing file is replaced, atomically, only by a dump that passed verification.
    type: path
    required: true
  compress:
    description:
      - The compression level for C(pg_dump -Z), from C(0) (none) to C(9). When omitted, pg_dump's default applies.
    type: int
    choices: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
attributes:
  check_mode:
    support: full
    details:
      - In check mode the module checks that the service runs and the database exists, and reports the file it
        would write; it writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: none
    details:
      - Every run writes a new dump and reports C(changed=true); the database may have changed since the last one.
seealso:
  - module: lorawan.tts.postgres_restore
notes:
  - Stop the C(stack) service first for a dump that matches Redis and the blob files taken at the same time;
    the dump itself is consistent either way (pg_dump reads one snapshot).
"""

EXAMPLES = r"""
- name: Dump the TTS database before an upgrade
  lorawan.tts.postgres_dump:
    project_src: /srv/lorawan-stack
    dest: /var/backups/lorawan-stack/ttn_lorawan.dump
  register: dump

- name: Dump with maximum compression, as another role and from a differently named service
  lorawan.tts.postgres_dump:
    project_src: /srv/lorawan-stack
    service: db
    user: ttn
    password: "{{ vault_postgres_password }}"
    dest: "/var/backups/lorawan-stack/ttn_lorawan-{{ ansible_date_time.iso8601_basic_short }}.dump"
    compress: 9

- name: Show what was written
  ansible.builtin.debug:
    msg: "{{ dump.path }}: {{ dump.size }} bytes, {{ dump.tables }} tables, sha256 {{ dump.sha256 }}"
"""

RETURN = r"""
path:
  description:
    - The absolute path of the dump file.
    - Ansible adds the file's C(mode), C(owner), C(group), C(uid), C(gid) and C(state) beside it, as it does for
      every module result with a C(path) (in check mode, C(state=absent) when there is no file yet).
  returned: success
  type: str
  sample: /var/backups/lorawan-stack/ttn_lorawan.dump
database:
  description: The database that was dumped.
  returned: success
  type: str
  sample: ttn_lorawan
server_version:
  description: The version of the PostgreSQL server the dump was made from.
  returned: success
  type: str
  sample: "15.18"
size:
  description: The size of the dump file in bytes.
  returned: success and not in check mode
  type: int
  sample: 35921
sha256:
  description: The SHA-256 checksum of the dump file.
  returned: success and not in check mode
  type: str
  sample: 3f9a1c0e5b7d2a4c6e8f0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d
tables:
  description: The number of tables whose data the dump holds (C(TABLE DATA) entries in C(pg_restore --list)).
  returned: success and not in check mode
  type: int
  sample: 15
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lorawan.tts.plugins.module_utils.compose import (
    COMPOSE_ARGUMENT_SPEC,
    ComposeError,
    ComposeProject,
    fail_on_compose_error,
)
from ansible_collections.lorawan.tts.plugins.module_utils.postgres_backup import POSTGRES_ARGUMENT_SPEC, run_dump
from ansible_collections.lorawan.tts.plugins.module_utils.progress import PROGRESS_ARGUMENT_SPEC


def main():
    argument_spec = dict(COMPOSE_ARGUMENT_SPEC)
    argument_spec.update(POSTGRES_ARGUMENT_SPEC)
    argument_spec.update(PROGRESS_ARGUMENT_SPEC)
    argument_spec.update(
        dest=dict(type="path", required=True),
        compress=dict(type="int", choices=list(range(10))),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        project = ComposeProject.from_params(module)
        result = run_dump(module, project)
    except ComposeError as error:
        fail_on_compose_error(module, error, changed=getattr(error, "changed", False))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
