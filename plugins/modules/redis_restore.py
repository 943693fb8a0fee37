#!/usr/bin/python
# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: redis_restore
short_description: Put a Redis backup made by redis_backup back into a The Things Stack deployment
version_added: 0.1.0
description:
  - Verifies O(src) before touching anything. It refuses a O(src) that is missing, has no C(redis-backup.json),
    misses a file it lists or holds one it does not, or whose files' sizes or sha256 checksums differ from the
    record.
  - Reads the persistence format the running server is configured for (as M(lorawan.tts.redis_backup) does)
    and refuses a backup of another format or other file names, saying what to do; for example a Redis 6
    single-file C(appendonly.aof) backup cannot go into a Redis 7 server that keeps C(appendonlydir/). It also
    refuses a backup taken from a newer Redis version than the server's.
  - "Then: stops Redis (C(docker compose stop)), moves the current data aside inside the data directory
    (C(<name>.pre-restore-<UTC timestamp>), with C(mv) in a one-off container of the service), copies the
    backup in with C(docker compose cp), gives it to the owner of the data directory, starts Redis, waits until
    it answers C(PING) and has loaded its data, and compares its key count with the recorded one."
  - On success the moved-aside data is removed. On a mismatch or any failure after the stop, the module stops
    Redis, puts the previous files back, starts it, and fails with a message saying that the server was
    returned to its previous data.
  - When the server's files are already the backup's, byte for byte (sha256 in the container), with the same key
    count, nothing is stopped and the module reports C(changed=false); a rollback whose migrations never reached
    Redis costs one C(sha256sum).
  - Stop the stack service first, as the runbook does; a stack writing to Redis while it restarts would change
    the key count.
author:
  - lorawan.tts contributors (!UNKNOWN)
extends_documentation_fragment:
  - lorawan.tts.compose
  - lorawan.tts.redis
  - lorawan.tts.attributes
attributes:
  check_mode:
    support: full
    details: Verifies O(src) (completeness, checksums) and its compatibility with the running server, and
      reports what would be restored; stops nothing and copies nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A second run finds the server's files equal to the backup's and changes nothing.
options:
  src:
    description:
      - A backup made by M(lorawan.tts.redis_backup), the directory it returned as
        RV(lorawan.tts.redis_backup#module:path) (or the C(redis-backup.json) in it), on the managed host.
    type: path
    required: true
  timeout:
    description:
      - Seconds to wait for Redis' stop (C(docker compose stop --timeout)) and for its start until it has loaded
        its data.
    type: int
    default: 300
notes:
  - Needs C(docker compose cp) (Compose v2); the legacy C(docker-compose) v1 has no C(cp).
  - The Redis data directory must be on a volume of the service (the TTS docs mount
    C(${DEV_DATA_DIR:-.env/data}/redis:/data)), so that one-off containers of the service see it.
  - If the server requires a password, set C(REDISCLI_AUTH) in the Redis service's environment so that
    C(redis-cli) inside the container authenticates.
seealso:
  - module: lorawan.tts.redis_backup
"""

EXAMPLES = r"""
- name: Back up Redis
  lorawan.tts.redis_backup:
    project_src: /srv/tts
    dest: /var/backups/tts
  register: redis_backup

- name: Stop the stack so nothing writes to Redis while it is restored
  ansible.builtin.command:
    argv: [docker, compose, stop, stack]
    chdir: /srv/tts
  changed_when: true

- name: Restore the backup
  lorawan.tts.redis_restore:
    project_src: /srv/tts
    src: "{{ redis_backup.path }}"

- name: Check a backup against the server without restoring it
  lorawan.tts.redis_restore:
    project_src: /srv/tts
    src: /var/backups/tts/redis-20260314T021500Z
  check_mode: true
"""

RETURN = r"""
restored_from:
  description: The backup directory restored (or, in check mode, verified and compatible).
  returned: success
  type: str
  sample: /var/backups/tts/redis-20260314T021500Z
format:
  description: The persistence format of the backup, which is also the server's.
  returned: success
  type: str
  choices: [aof-multipart, aof, rdb]
  sample: aof-multipart
key_count:
  description:
    - The number of keys the restored server holds; in check mode, the number the backup recorded.
  returned: success
  type: int
  sample: 1532
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lorawan.tts.plugins.module_utils.compose import (
    COMPOSE_ARGUMENT_SPEC,
    ComposeError,
    ComposeProject,
    fail_on_compose_error,
)
from ansible_collections.lorawan.tts.plugins.module_utils.redis_persistence import (
    REDIS_ARGUMENT_SPEC,
    RedisPersistence,
)


def main():
    argument_spec = dict(COMPOSE_ARGUMENT_SPEC, src=dict(type="path", required=True), **REDIS_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        persistence = RedisPersistence(ComposeProject.from_params(module), params["service"], params["timeout"])
        result = persistence.restore(params["src"], module.check_mode)
    except ComposeError as error:
        fail_on_compose_error(module, error, changed=getattr(error, "changed", False))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
