#!/usr/bin/python
# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_capture
short_description: Capture Postgres, Redis and the changed files of a stopped The Things Stack, all at once
version_added: 0.2.0
description:
  - The part of a backup that needs the stack stopped, so that Postgres, Redis and the blob files agree, in one
    task. Three parts run at the same time, each in its own process, so the downtime pays for the slowest.
  - "Postgres: with O(snapshot), a copy of the database inside its server (M(lorawan.tts.postgres_snapshot),
    seconds whatever the size; dump it once the stack serves again); without, C(pg_dump) into
    C(postgres/ttn_lorawan.dump) in O(dest) (M(lorawan.tts.postgres_dump))."
  - "Redis: its persistence files copied into C(redis/) in O(dest) as M(lorawan.tts.redis_backup) does, with
    O(redis_consistency)."
  - "Files: C(files/) in O(dest) brought up to date with the deployment's files as M(lorawan.tts.backup_files)
    does; run that module before the stop, and only files changed since are copied here."
  - Stop the stack first. When a part fails, the others still finish; the message names every failure.
author:
  - lorawan.tts contributors (!UNKNOWN)
extends_documentation_fragment:
  - lorawan.tts.compose
  - lorawan.tts.attributes
options:
  dest:
    description:
      - The backup directory.
    type: path
    required: true
  snapshot:
    description:
      - The name of the Postgres snapshot database to create; empty dumps the database instead.
    type: str
    default: ""
  blob_dir:
    description:
      - The host directory mounted as the stack's blob directory; defaults to C(blob) in O(project_src).
    type: path
  redis_consistency:
    description:
      - The O(lorawan.tts.redis_backup#module:consistency) of the Redis copy. V(idle) (no rewrite, checked in the
        running container) when the stack is stopped; V(rewrite) for a live copy.
    type: str
    choices: [idle, rewrite, stop]
    default: idle
  timeout:
    description:
      - Seconds Redis may take to finish a background rewrite or save.
    type: int
    default: 300
attributes:
  check_mode:
    support: full
    details: Each part checks what it can and reports what it would do; nothing is written.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Every run copies Redis again.
seealso:
  - module: lorawan.tts.postgres_snapshot
  - module: lorawan.tts.redis_backup
  - module: lorawan.tts.backup_files
"""

EXAMPLES = r"""
- name: Copy the files while the stack runs
  lorawan.tts.backup_files:
    project_src: /srv/lorawan-stack
    dest: /var/backups/lorawan-tts/tts-1/20260314T021500Z_3.31.1

- name: Stop the stack
  lorawan.tts.compose_service:
    project_src: /srv/lorawan-stack
    services: [stack]
    state: stopped

- name: Capture Postgres, Redis and the changed files at once
  lorawan.tts.backup_capture:
    project_src: /srv/lorawan-stack
    dest: /var/backups/lorawan-tts/tts-1/20260314T021500Z_3.31.1
    snapshot: ttn_lorawan_snapshot_20260314t021500z
  register: capture
"""

RETURN = r"""
postgres:
  description: What M(lorawan.tts.postgres_snapshot) (O(snapshot) given) or M(lorawan.tts.postgres_dump) returned,
    and C(seconds).
  returned: success
  type: dict
  sample: {"snapshot": "ttn_lorawan_snapshot_20260314t021500z", "size": 73400320, "seconds": 0.9}
redis:
  description: What M(lorawan.tts.redis_backup) returned, and C(seconds).
  returned: success
  type: dict
  sample: {"path": "/var/backups/lorawan-tts/tts-1/20260314T021500Z_3.31.1/redis/redis-20260314T021501Z",
    "format": "aof-multipart", "seconds": 0.7}
files:
  description: What M(lorawan.tts.backup_files) returned, and C(seconds).
  returned: success
  type: dict
  sample: {"files": 1024, "copied_files": 0, "seconds": 0.1}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lorawan.tts.plugins.module_utils.backup_capture import capture_for_downtime
from ansible_collections.lorawan.tts.plugins.module_utils.backup_files import BackupFilesError
from ansible_collections.lorawan.tts.plugins.module_utils.compose import (
    COMPOSE_ARGUMENT_SPEC,
    ComposeError,
    ComposeProject,
    fail_on_compose_error,
)


def main():
    argument_spec = dict(
        COMPOSE_ARGUMENT_SPEC,
        dest=dict(type="path", required=True),
        snapshot=dict(type="str", default=""),
        blob_dir=dict(type="path"),
        timeout=dict(type="int", default=300),
        redis_consistency=dict(type="str", choices=["idle", "rewrite", "stop"], default="idle"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        project = ComposeProject.from_params(module)
        results = capture_for_downtime(
            project,
            params["dest"],
            params["snapshot"],
            params["blob_dir"],
            params["timeout"],
            params["redis_consistency"],
            module.check_mode,
        )
    except ComposeError as error:
        fail_on_compose_error(module, error, changed=getattr(error, "changed", False))
    except BackupFilesError as error:
        module.fail_json(msg=str(error), changed=error.changed)
    module.exit_json(changed=True, **results)


if __name__ == "__main__":
    main()
