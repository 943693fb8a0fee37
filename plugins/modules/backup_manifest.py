#!/usr/bin/python
# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_manifest
short_description: Write, or check, the manifest.json of a The Things Stack backup
version_added: 0.2.0
description:
  - "O(state=present): makes every directory of the backup O(path) C(0700) and every file C(0600), checksums every
    file (sha256, streamed) and writes C(manifest.json) last, atomically, once every file is flushed to disk: a
    backup with a manifest is complete. Then deletes the oldest complete backups beside it beyond O(keep)."
  - "O(state=verified): reads C(manifest.json) and checks that every file it lists is there with its size and
    sha256 and that no other file is. With O(newest=true), O(path) is the directory that holds a host's backups
    and the newest complete backup in it is checked."
  - Everything runs in one process, whatever the number of files; the file list is not returned.
author:
  - lorawan.tts contributors (!UNKNOWN)
extends_documentation_fragment:
  - lorawan.tts.progress
  - lorawan.tts.attributes
options:
  path:
    description:
      - The backup directory; with O(newest=true), a directory of backups (C(<YYYYmmddTHHMMSSZ>_<label>)
        directories).
    type: path
    required: true
  newest:
    description:
      - For O(state=verified), check the newest backup in O(path) that has a C(manifest.json).
    type: bool
    default: false
  state:
    description:
      - C(present) writes the manifest; C(verified) checks the backup against it.
    type: str
    choices: [present, verified]
    default: verified
  metadata:
    description:
      - What the manifest says about the backup besides its files and databases (O(state=present)); it must hold
        C(stack_version).
    type: dict
  postgres:
    description:
      - What M(lorawan.tts.postgres_dump) returned for the dump in the backup (O(state=present)); the manifest
        keeps its path relative to O(path), database, tables, size and sha256.
    type: dict
  redis:
    description:
      - What M(lorawan.tts.redis_backup) returned for the copy in the backup (O(state=present)); the manifest keeps
        its path relative to O(path), format and key count.
    type: dict
  keep:
    description:
      - After writing, keep the newest O(keep) complete backups in the parent directory of O(path), this one
        included, and delete older ones. C(0) keeps all.
    type: int
    default: 0
attributes:
  check_mode:
    support: partial
    details: O(state=verified) runs as usual. O(state=present) writes nothing and reports the backups it would
      delete.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: O(state=present) writes the manifest again on every run.
seealso:
  - module: lorawan.tts.backup_files
"""

EXAMPLES = r"""
- name: Seal a backup, keeping the five newest
  lorawan.tts.backup_manifest:
    path: /var/backups/lorawan-tts/tts-1/20260314T021500Z_3.31.1
    state: present
    keep: 5
    metadata:
      stack_version: 3.31.1
    postgres: "{{ postgres_dump_result }}"
    redis: "{{ redis_backup_result }}"

- name: Check the newest backup of a host before restoring it
  lorawan.tts.backup_manifest:
    path: /var/backups/lorawan-tts/tts-1
    newest: true
  register: backup
"""

RETURN = r"""
path:
  description: The backup directory written or checked.
  returned: success
  type: str
  sample: /var/backups/lorawan-tts/tts-1/20260314T021500Z_3.31.1
manifest:
  description: The manifest without its file list.
  returned: success
  type: dict
  sample: {"format": 1, "stack_version": "3.31.1", "postgres": {"file": "postgres/ttn_lorawan.dump"}}
files:
  description: The number of files the manifest lists.
  returned: success
  type: int
  sample: 1042
size:
  description: Their total size in bytes.
  returned: success
  type: int
  sample: 104857600
seconds:
  description: How long checksumming took.
  returned: success
  type: float
  sample: 0.6
removed:
  description: Older backups deleted (or, in check mode, that would be) because of O(keep).
  returned: when O(state=present)
  type: list
  elements: str
  sample: [/var/backups/lorawan-tts/tts-1/20260101T021500Z_3.30.0]
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lorawan.tts.plugins.module_utils.backup_manifest import (
    BackupManifestError,
    newest,
    prune,
    verify,
    write,
)
from ansible_collections.lorawan.tts.plugins.module_utils.progress import PROGRESS_ARGUMENT_SPEC, Progress


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "verified"], default="verified"),
            metadata=dict(type="dict"),
            postgres=dict(type="dict"),
            redis=dict(type="dict"),
            keep=dict(type="int", default=0),
            newest=dict(type="bool", default=False),
            **PROGRESS_ARGUMENT_SPEC,
        ),
        required_if=[("state", "present", ["metadata", "postgres", "redis"])],
        supports_check_mode=True,
    )
    params = module.params
    path = os.path.abspath(params["path"])
    progress = Progress(params["progress_file"])
    try:
        if params["state"] == "verified":
            if params["newest"]:
                found = newest(path)
                if found is None:
                    raise BackupManifestError(
                        "no complete backup (a directory with manifest.json) in %s: make one with lorawan.tts.backup, "
                        "or set tts_restore_from" % path
                    )
                path = found
            result = verify(path, progress=progress)
            progress.close()
            module.exit_json(changed=False, **result)
        if module.check_mode:
            removed, dummy_kept = prune(os.path.dirname(path), params["keep"], path, check_mode=True)
            module.exit_json(changed=True, path=path, removed=removed)
        result = write(path, params["metadata"], params["postgres"], params["redis"], progress=progress)
        removed, dummy_kept = prune(os.path.dirname(path), params["keep"], path)
    except BackupManifestError as error:
        progress.close()
        module.fail_json(msg=str(error), changed=error.changed)
    except OSError as error:
        progress.close()
        module.fail_json(msg="deleting old backups beside %s failed: %s" % (path, error), changed=True)
    progress.close()
    module.exit_json(changed=True, removed=removed, **result)


if __name__ == "__main__":
    main()
