#!/usr/bin/python
# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: redis_backup
short_description: Make a verified copy of the Redis persistence files of a The Things Stack deployment
version_added: 0.1.0
description:
  - Reads the persistence format from the running Redis server (C(CONFIG GET appendonly), C(dir),
    C(appendfilename), C(appenddirname), C(dbfilename)) rather than guessing it from file names.
    V(aof-multipart) is Redis 7's C(appendonlydir/) (a C(appendonly.aof.manifest), a base C(.rdb) and
    C(.incr.aof) parts), V(aof) is Redis 6's single C(appendonly.aof), V(rdb) is C(dump.rdb) only
    (append-only file off). The whole directory or file is backed up.
  - Records the number of keys (C(INFO keyspace), summed over all databases) while the server runs.
  - Copies the files out with C(docker compose cp), which works on stopped containers and on named volumes
    as well as bind mounts, into a new directory C(redis-<UTC timestamp>) inside O(dest).
  - "Checks the copy with the project's own Redis image, in a one-off container that mounts the copy
    (C(docker compose run --rm --no-deps -T -v <copy>:/backup --entrypoint redis-check-aof <service> ...)):
    C(redis-check-aof) on the manifest for V(aof-multipart), on the file for V(aof), C(redis-check-rdb) for
    V(rdb). A failing check fails the module and removes the partial backup."
  - "C(redis-check-aof) opens every file read-write even when it only checks (it writes nothing without
    C(--fix)), so for AOF formats the copy is mounted read-write; the module compares each file's size and
    modification time before and after the check and fails if anything changed. C(redis-check-rdb) gets a
    read-only mount."
  - Writes C(redis-backup.json) next to the copied files (format, file names, the key count, the Redis version,
    each file's size and sha256) so that M(lorawan.tts.redis_restore) can verify the backup before using it.
  - The backup directory and every directory in it are mode C(0700), the files C(0600). O(dest) is created
    with mode C(0700) when it does not exist (an existing O(dest) keeps its mode).
author:
  - lorawan.tts contributors (!UNKNOWN)
extends_documentation_fragment:
  - lorawan.tts.compose
  - lorawan.tts.redis
  - lorawan.tts.attributes
attributes:
  check_mode:
    support: full
    details: Reads the server's configuration and key count (read-only commands) and returns the detected
      RV(format) and the O(dest) sub-directory it would write; stops nothing, copies nothing.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Every run makes a new backup directory and reports C(changed=true).
options:
  dest:
    description:
      - The directory to create the backup in, on the managed host. Each backup is a new sub-directory
        C(redis-<UTC timestamp>) (with a C(-2), C(-3) ... suffix if that exists), returned as RV(path).
      - Created with mode C(0700) if missing. Must not contain C(:) (it is mounted into a container).
    type: path
    required: true
  consistency:
    description:
      - How the copy is made consistent.
      - V(stop) (the default, what the TTS runbook does) stops Redis (C(docker compose stop --timeout
        O(timeout))), which makes it flush and fsync its files, copies them, and starts it again, waiting until
        it answers C(PING) and has loaded its data. For V(rdb) a C(SAVE) runs first, because a shutdown
        without save points writes no C(dump.rdb). Redis is unavailable for the copy's duration.
      - V(rewrite) keeps Redis running. It runs C(BGREWRITEAOF) (AOF formats) or C(BGSAVE) (V(rdb)), waits
        until it has finished successfully, and copies the files while the server runs. Writes that arrive
        during the copy can leave a torn last command in the AOF, which the check then rejects (the module
        fails and removes the copy); stop the stack (or use V(stop)) for a backup that must succeed.
      - V(idle) is for a Redis that nothing writes to (the stack is stopped). It keeps Redis running,
        rewrites nothing, waits until no background rewrite or save runs (for V(rdb) it runs C(SAVE)), and copies
        the files as they are. It checks the server's own files with C(redis-check-aof) / C(redis-check-rdb) in
        the running container and compares the copy's sha256 with theirs (C(sha256sum)), so no one-off container
        starts; the fastest mode, for the upgrade's downtime. A write during the copy makes it fail.
      - Whatever the mode, stop the stack service first (as the runbook does) for a key count that matches the
        files exactly.
    type: str
    choices: [stop, rewrite, idle]
    default: stop
  timeout:
    description:
      - Seconds to wait for each of Redis' stop (C(docker compose stop --timeout)), a background rewrite or save,
        and Redis' start until it has loaded its data.
    type: int
    default: 300
notes:
  - Needs C(docker compose cp) (Compose v2); the legacy C(docker-compose) v1 has no C(cp).
  - If the server requires a password, set C(REDISCLI_AUTH) in the Redis service's environment so that
    C(redis-cli) inside the container authenticates.
seealso:
  - module: lorawan.tts.redis_restore
"""

EXAMPLES = r"""
- name: Back up Redis as the runbook does (stop, copy, start), verified
  lorawan.tts.redis_backup:
    project_src: /srv/tts
    dest: /var/backups/tts
  register: redis_backup

- name: Back up Redis while it keeps serving
  lorawan.tts.redis_backup:
    project_src: /srv/tts
    dest: /var/backups/tts
    consistency: rewrite
    timeout: 600

- name: Show what was saved
  ansible.builtin.debug:
    msg: "{{ redis_backup.format }} backup of {{ redis_backup.key_count }} keys in {{ redis_backup.path }}"
"""

RETURN = r"""
path:
  description:
    - The backup directory (inside O(dest)); it holds the copied C(appendonlydir/), C(appendonly.aof) or
      C(dump.rdb) and C(redis-backup.json). Give it to M(lorawan.tts.redis_restore) as
      O(lorawan.tts.redis_restore#module:src).
    - In check mode, the directory the backup would have been written to.
  returned: success
  type: str
  sample: /var/backups/tts/redis-20260314T021500Z
format:
  description: The persistence format the running server is configured for.
  returned: success
  type: str
  choices: [aof-multipart, aof, rdb]
  sample: aof-multipart
consistency:
  description: The O(consistency) mode used.
  returned: success
  type: str
  sample: stop
key_count:
  description:
    - The number of keys the server held when the copy was made (summed over all databases); in check mode,
      the number it holds now.
  returned: success
  type: int
  sample: 1532
redis_version:
  description: The version of the Redis server backed up.
  returned: success
  type: str
  sample: 7.0.15
size:
  description: The total size in bytes of the copied persistence files (without C(redis-backup.json)).
  returned: success, except in check mode
  type: int
  sample: 524288
sha256:
  description:
    - For V(aof) and V(rdb), the sha256 of the single file.
    - For V(aof-multipart), the sha256 of a listing with one line C(<sha256>  <relative path>) (two spaces, as
      C(sha256sum) prints it) per file, sorted by path, each line ending in a newline; paths are relative to
      RV(path), for example C(appendonlydir/appendonly.aof.manifest). Recompute it with
      C(cd PATH && find appendonlydir -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum).
  returned: success, except in check mode
  type: str
  sample: 9f2c1e4b7a0d3c5e8f6a1b2c3d4e5f60718293a4b5c6d7e8f9012345678abcde
files:
  description: The copied files, relative to RV(path), sorted by path.
  returned: success, except in check mode
  type: list
  elements: dict
  contains:
    path:
      description: The file's path relative to RV(path).
      type: str
    size:
      description: Its size in bytes.
      type: int
    sha256:
      description: Its sha256.
      type: str
  sample:
    - path: appendonlydir/appendonly.aof.2.base.rdb
      size: 11609
      sha256: 5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592
    - path: appendonlydir/appendonly.aof.2.incr.aof
      size: 0
      sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
    - path: appendonlydir/appendonly.aof.manifest
      size: 88
      sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lorawan.tts.plugins.module_utils.compose import (
    COMPOSE_ARGUMENT_SPEC,
    ComposeError,
    ComposeProject,
    fail_on_compose_error,
)
from ansible_collections.lorawan.tts.plugins.module_utils.redis_persistence import (
    CONSISTENCY_MODES,
    REDIS_ARGUMENT_SPEC,
    RedisPersistence,
)


def main():
    argument_spec = dict(
        COMPOSE_ARGUMENT_SPEC,
        dest=dict(type="path", required=True),
        consistency=dict(type="str", choices=list(CONSISTENCY_MODES), default="stop"),
        **REDIS_ARGUMENT_SPEC,
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    # exit_json adds stat() facts of a returned `path`, overwriting `size` (the backup's total) with the
    # directory's own size; this module documents its own size and path.
    module.add_path_info = lambda kwargs: kwargs
    params = module.params
    try:
        persistence = RedisPersistence(ComposeProject.from_params(module), params["service"], params["timeout"])
        result = persistence.backup(params["dest"], params["consistency"], module.check_mode)
    except ComposeError as error:
        fail_on_compose_error(module, error, changed=getattr(error, "changed", False))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
