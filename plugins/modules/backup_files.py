#!/usr/bin/python
# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_files
short_description: Copy a The Things Stack deployment's files into a backup, or put them back, copying only changes
version_added: 0.2.0
description:
  - The files are the blob directory (uploaded pictures), C(config/), C(acme/), C(.env) and every compose file
    of O(project_src) (C(docker-compose.yml), C(compose.yaml), their overrides and variants, and O(files)).
  - "O(state=present): makes C(files/) in O(dest) mirror them. The first run copies every file; later runs
    compare each file's size and modification time with the index C(files.json) the last run wrote and copy
    only new or changed files, delete what disappeared. So a copy made while the stack runs is brought up to
    date in a fraction of a second once it is stopped. Copies are C(0600) in C(0700) directories; the index
    keeps each file's origin, mode, owner, size and modification time. What a run copied is flushed to disk
    before it returns, so the write-back of a large copy does not slow what runs next (the stop and the
    snapshot)."
  - "O(state=restored): puts the files of the backup O(dest) back where they came from, with their modes,
    owners and modification times, copying only files whose size or modification time differ and deleting files
    that the backed-up directories did not hold."
  - "O(state=ready): the preflight, before anything stops. Creates the parent of O(dest) if it is missing,
    writes, fsyncs and deletes a small probe file there, and checks that its file system has room for a backup of
    O(sizes) (1.5 times their sum plus 100 MiB). A read-only, forbidden or full directory fails with the OS error,
    the path and the variable to change, and whatever the check created is removed again. O(dest) itself is not
    created."
  - Everything runs in one process, whatever the number of files.
author:
  - lorawan.tts contributors (!UNKNOWN)
extends_documentation_fragment:
  - lorawan.tts.progress
  - lorawan.tts.attributes
options:
  project_src:
    description:
      - The deployment's directory, the one holding C(docker-compose.yml). Required for O(state=present).
      - For O(state=restored), the deployment to put the files into; when omitted, they go back where they were
        copied from.
    type: path
  files:
    description:
      - Compose files relative to O(project_src) to keep besides those found by name.
    type: list
    elements: path
  blob_dir:
    description:
      - The host directory mounted as the stack's blob directory
        (RV(lorawan.tts.stack_info#module:tts.blob.path)). Defaults to C(blob) in O(project_src).
      - For O(state=restored), used only with O(project_src).
    type: path
  dest:
    description:
      - The backup directory; the files go to its C(files/) directory and the index to C(files.json).
    type: path
    required: true
  state:
    description:
      - C(present) copies the deployment's files into O(dest); C(restored) copies them back; C(ready) checks that
        O(dest) can be written and has room.
    type: str
    choices: [present, restored, ready]
    default: present
  sizes:
    description:
      - For O(state=ready), the sizes in bytes of the backup's parts, by name (for example C(postgres), C(redis),
        C(blob)), as RV(lorawan.tts.stack_info#module:tts) reports them; a null size counts as 0.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    details: Compares and reports what would be copied, deleted or changed; writes nothing. O(state=ready) reads
      the free space of the nearest existing parent of O(dest) and writes no probe.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A second run finds nothing changed, copies nothing and reports C(changed=false).
seealso:
  - module: lorawan.tts.backup_manifest
"""

EXAMPLES = r"""
- name: Copy the files while the stack still runs
  lorawan.tts.backup_files:
    project_src: /srv/lorawan-stack
    dest: /var/backups/lorawan-tts/tts-1/20260314T021500Z_3.31.1

- name: Stop the stack
  lorawan.tts.compose_service:
    project_src: /srv/lorawan-stack
    services: [stack]
    state: stopped

- name: Bring the copy up to date (only what changed since)
  lorawan.tts.backup_files:
    project_src: /srv/lorawan-stack
    dest: /var/backups/lorawan-tts/tts-1/20260314T021500Z_3.31.1

- name: Preflight, before anything stops - can the backup be written, and does it fit?
  lorawan.tts.backup_files:
    dest: /var/backups/lorawan-tts/tts-1/20260314T021500Z_3.31.1
    state: ready
    sizes:
      postgres: 1073741824
      redis: 52428800
      blob: 209715200

- name: Put the files back
  lorawan.tts.backup_files:
    dest: /var/backups/lorawan-tts/tts-1/20260314T021500Z_3.31.1
    state: restored
"""

RETURN = r"""
files:
  description: Regular files the backup holds.
  returned: success
  type: int
  sample: 1024
bytes:
  description: Their total size.
  returned: success
  type: int
  sample: 20971520
copied_files:
  description: Files this run copied (or would copy).
  returned: success
  type: int
  sample: 3
copied_bytes:
  description: Bytes this run copied (or would copy).
  returned: success
  type: int
  sample: 61440
removed:
  description: Files and directories this run deleted (or would delete).
  returned: success
  type: int
  sample: 0
attributes_fixed:
  description: Restored files and directories whose owner or mode this run had to set (O(state=restored)).
  returned: success
  type: int
  sample: 0
free:
  description: Bytes free to the module's user in the parent of O(dest) (O(state=ready)).
  returned: when O(state=ready)
  type: int
  sample: 53687091200
needed:
  description: Bytes the backup needs there, with margin (O(state=ready)).
  returned: when O(state=ready)
  type: int
  sample: 2099249152
created:
  description: Directories the check created (the parent of O(dest) and its missing parents).
  returned: when O(state=ready)
  type: list
  elements: str
  sample: [/var/backups/lorawan-tts/tts-1]
seconds:
  description: How long the run took.
  returned: success
  type: float
  sample: 0.08
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lorawan.tts.plugins.module_utils.backup_disk import BackupDiskError, check_backup_dir
from ansible_collections.lorawan.tts.plugins.module_utils.backup_files import (
    BackupFilesError,
    capture,
    project_roots,
    restore,
)
from ansible_collections.lorawan.tts.plugins.module_utils.progress import PROGRESS_ARGUMENT_SPEC, Progress


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_src=dict(type="path"),
            files=dict(type="list", elements="path"),
            blob_dir=dict(type="path"),
            dest=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "restored", "ready"], default="present"),
            sizes=dict(type="dict", default={}),
            **PROGRESS_ARGUMENT_SPEC,
        ),
        required_if=[("state", "present", ["project_src"])],
        supports_check_mode=True,
    )
    params = module.params
    progress = Progress(params["progress_file"])
    try:
        if params["state"] == "ready":
            result = check_backup_dir(params["dest"], params["sizes"], module.check_mode)
            changed = bool(result["created"])
            result = dict(free=result["free"], needed=result["needed"], created=result["created"])
        elif params["state"] == "present":
            roots = project_roots(params["project_src"], params["files"], params["blob_dir"])
            changed, result = capture(params["dest"], roots, module.check_mode, progress=progress, flush=True)
        else:
            changed, result = restore(
                params["dest"],
                module.check_mode,
                progress=progress,
                project_src=params["project_src"],
                blob_dir=params["blob_dir"],
            )
    except (BackupFilesError, BackupDiskError) as error:
        module.fail_json(msg=str(error), changed=error.changed)
    finally:
        progress.close()
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
