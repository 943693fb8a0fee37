#!/usr/bin/python
# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: compose_image
short_description: Set the image tag of services in a docker compose file, changing nothing else
version_added: 0.1.0
description:
  - Sets the tag of one or more services' images in a TTS deployment's compose file, for example
    C(thethingsnetwork/lorawan-stack:3.31.1) to C(thethingsnetwork/lorawan-stack:3.32.0).
  - Only the bytes of the tag change (or C(:tag) is appended to an image that has none). Comments, quoting,
    key order, indentation, flow style, anchors, line endings, a missing final newline, the file's mode and
    owner all stay as they were. The file is replaced atomically.
  - With several compose files (a C(docker-compose.override.yml), or O(files)), the file edited for a service
    is the last one that sets its image, the one docker compose uses.
  - An image shared through a YAML anchor is edited once, where it is anchored; every service that aliases
    it gets the new tag.
  - Refuses, leaving every file untouched, when the YAML is malformed, a service does not exist or has no
    image, the image is pinned by digest (see O(replace_digest)), or the tag comes from a compose variable
    (see O(update_env_file)).
  - The registry port in an image such as C(localhost:5000/thethingsnetwork/lorawan-stack:3.31.1) is never
    taken for a tag.
author:
  - lorawan.tts contributors (!UNKNOWN)
options:
  project_src:
    description:
      - The deployment's directory, holding the compose file(s) and the C(.env) file.
      - Exactly one of O(project_src) and O(path) is required.
    type: path
  path:
    description:
      - The compose file to edit, when there is just one. Its directory is the project directory.
      - Exactly one of O(project_src) and O(path) is required.
    type: path
  files:
    description:
      - The compose files, relative to O(project_src), in the order docker compose reads them.
      - When omitted, the first of C(compose.yaml), C(compose.yml), C(docker-compose.yaml) and
        C(docker-compose.yml) that exists, followed by the first of C(compose.override.yaml),
        C(compose.override.yml), C(docker-compose.override.yaml) and C(docker-compose.override.yml)
        that exists.
      - Only with O(project_src).
    type: list
    elements: str
  services:
    description:
      - The services whose image tag to set.
      - On TTS Enterprise the C(grafana) image's tag must match the stack's, so use C([stack, grafana]).
    type: list
    elements: str
    default: [stack]
  tag:
    description:
      - The tag to set, for example C(3.32.0).
      - Quote it in YAML; unquoted, C(3.30) is the number 3.3.
      - Checked against Docker's tag grammar (letters, digits, C(_), C(.) and C(-), up to 128 characters,
        not starting with C(.) or C(-)) before anything is read.
    type: str
    required: true
  backup:
    description:
      - Keep a timestamped copy of each file before it is changed.
    type: bool
    default: false
  replace_digest:
    description:
      - When an image is pinned by digest (C(repository@sha256:...) or C(repository:tag@sha256:...)), replace
        the digest with the tag. Otherwise such an image is refused.
    type: bool
    default: false
  update_env_file:
    description:
      - When the tag is a compose variable (C(${TTS_VERSION}), C($TTS_VERSION), C(${TTS_VERSION:-3.31.1})),
        change the variable's value in the project's C(.env) file instead of the compose file.
      - Only when the variable is defined exactly once there. A C(.env) directory (the TTS docs keep data
        in C(.env/data)) is no env file. Otherwise such an image is refused.
      - A value set in the environment of the compose command overrides C(.env); this module can't see it.
    type: bool
    default: false
extends_documentation_fragment:
  - lorawan.tts.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
requirements:
  - ruamel.yaml 0.17 or later on the managed host (Python package C(ruamel.yaml), Debian and Ubuntu package
    C(python3-ruamel.yaml)).
notes:
  - Nothing is pulled or restarted; use M(lorawan.tts.compose_service) for that.
seealso:
  - module: lorawan.tts.compose_service
"""

EXAMPLES = r"""
- name: Upgrade the stack image to 3.32.0 (Open Source)
  lorawan.tts.compose_image:
    project_src: /srv/lorawan-stack
    tag: "3.32.0"
    backup: true
  register: stack_image

- name: Upgrade Enterprise, whose grafana image moves with the stack
  lorawan.tts.compose_image:
    project_src: /srv/lorawan-stack
    services: [stack, grafana]
    tag: "3.32.0"

- name: Roll back to the tag found before the upgrade
  lorawan.tts.compose_image:
    project_src: /srv/lorawan-stack
    tag: "{{ stack_image.previous.stack.tag }}"

- name: A deployment with an override file, whose tag is ${TTS_VERSION} set in .env
  lorawan.tts.compose_image:
    project_src: /srv/lorawan-stack
    files: [docker-compose.yml, docker-compose.prod.yml]
    tag: "3.32.0"
    update_env_file: true

- name: One compose file, image pinned by digest
  lorawan.tts.compose_image:
    path: /srv/lorawan-stack/docker-compose.yml
    tag: "3.32.0"
    replace_digest: true
"""

RETURN = r"""
previous:
  description:
    - Per service, the image and tag before the change, and where they were set (C(file), 1-based C(line)).
    - C(tag) is null when the image had no tag. When the tag came from a variable, C(image) shows its value.
  returned: success
  type: dict
  sample:
    stack:
      image: thethingsnetwork/lorawan-stack:3.31.1
      tag: "3.31.1"
      file: /srv/lorawan-stack/docker-compose.yml
      line: 29
image:
  description: Per service, the image after the change (a tag variable shown with its new value).
  returned: success
  type: dict
  sample:
    stack: thethingsnetwork/lorawan-stack:3.32.0
files:
  description: The files changed (or, in check mode, that would be changed).
  returned: success
  type: list
  elements: str
  sample: [/srv/lorawan-stack/docker-compose.yml]
backup_file:
  description: The backup of the changed file (the first one, if several changed).
  returned: changed and O(backup=true)
  type: str
  sample: /srv/lorawan-stack/docker-compose.yml.12345.2026-01-31@12:00:00~
backup_files:
  description: Every backup made, by changed file.
  returned: changed and O(backup=true)
  type: dict
  sample:
    /srv/lorawan-stack/docker-compose.yml: /srv/lorawan-stack/docker-compose.yml.12345.2026-01-31@12:00:00~
diff:
  description:
    - In diff mode, the file's text before and after, with its name in C(before_header) and C(after_header).
    - A list of such dictionaries when several files change (a compose file and an override file, or C(.env)).
  returned: diff mode
  type: dict
  sample:
    before: "services:\n  stack:\n    image: thethingsnetwork/lorawan-stack:3.31.1\n"
    after: "services:\n  stack:\n    image: thethingsnetwork/lorawan-stack:3.32.0\n"
    before_header: /srv/lorawan-stack/docker-compose.yml
    after_header: /srv/lorawan-stack/docker-compose.yml
msg:
  description: What changed, one service per clause.
  returned: success
  type: str
  sample: "stack: 3.31.1 -> 3.32.0"
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lorawan.tts.plugins.module_utils.compose_file import (
    RUAMEL_YAML_IMPORT_ERROR,
    ComposeFileError,
    commit,
    compose_files,
    plan_tag_change,
    ruamel_yaml_problem,
)

ARGUMENT_SPEC = dict(
    project_src=dict(type="path"),
    path=dict(type="path"),
    files=dict(type="list", elements="str"),
    services=dict(type="list", elements="str", default=["stack"]),
    tag=dict(type="str", required=True),
    backup=dict(type="bool", default=False),
    replace_digest=dict(type="bool", default=False),
    update_env_file=dict(type="bool", default=False),
)


def summary(previous, image):
    clauses = []
    for service, new_image in image.items():
        before, after = previous[service]["tag"], new_image.rpartition(":")[2]
        if before == after and previous[service]["image"] == new_image:
            clauses.append("%s: %s (unchanged)" % (service, after))
        else:
            clauses.append("%s: %s -> %s" % (service, before or "(no tag)", after))
    return "; ".join(clauses)


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=[("project_src", "path"), ("path", "files")],
        required_one_of=[("project_src", "path")],
        supports_check_mode=True,
    )
    problem = ruamel_yaml_problem()
    if problem:
        module.fail_json(msg=problem, exception=RUAMEL_YAML_IMPORT_ERROR)
    params = module.params
    path = os.path.abspath(params["path"]) if params["path"] else None
    project_dir = os.path.abspath(params["project_src"]) if params["project_src"] else os.path.dirname(path)
    try:
        files = compose_files(project_dir if params["project_src"] else None, params["files"], path)
        change = plan_tag_change(
            files,
            params["services"],
            params["tag"],
            replace_digest=params["replace_digest"],
            update_env_file=params["update_env_file"],
            project_dir=project_dir,
        )
        backups = {}
        if change.changed and not module.check_mode:
            backups = commit(change, module.backup_local if params["backup"] else None)
    except ComposeFileError as error:
        module.fail_json(msg=str(error))

    result = dict(
        changed=change.changed,
        previous=change.previous,
        image=change.image,
        files=change.changed_files,
        msg=summary(change.previous, change.image),
    )
    if backups:
        result["backup_files"] = backups
        result["backup_file"] = next(iter(backups.values()))
    if module._diff:
        result["diff"] = change.diff_result()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
