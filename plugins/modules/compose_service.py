#!/usr/bin/python
# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: compose_service
short_description: Pull, stop, start or bring up the services of a TTS compose project
version_added: 0.1.0
description:
  - Drives the compose command line of a The Things Stack docker-compose deployment, one state at a time,
    and reports a change only when a container or a local image actually changed.
  - O(state=pulled) runs C(docker compose pull) for the services. It stops nothing, so a tag that does not
    exist or a registry that cannot be reached fails while the deployment keeps running.
  - O(state=stopped) stops only the services named (C(docker compose stop)); it never recreates a container
    and never stops the services they depend on.
  - O(state=started) starts the existing, stopped containers of the services (C(docker compose start)),
    without recreating them; like C(docker compose start), it also starts the services they depend on.
  - O(state=present) makes the containers match the compose file (C(docker compose up --detach)). It creates
    missing containers, starts stopped ones, and recreates those whose configuration or image changed, which
    is how a new image tag takes effect. It also brings up the services they depend on.
author:
  - lorawan.tts contributors (!UNKNOWN)
extends_documentation_fragment:
  - lorawan.tts.compose
  - lorawan.tts.attributes
options:
  services:
    description:
      - The services to act on. When omitted, all services of the project.
      - A service the project does not have is an error that lists the services it has.
    type: list
    elements: str
  state:
    description:
      - The state to bring the services to; see the description.
    type: str
    required: true
    choices: [pulled, stopped, started, present]
  wait:
    description:
      - With O(state=started) or O(state=present), wait until the services' containers run, and are healthy
        when their image or compose file defines a healthcheck. Ignored for the other states and in check mode.
      - A container that exits while waited for fails the task at once, with the tail of its log.
    type: bool
    default: false
  wait_timeout:
    description:
      - How long to wait with O(wait), in seconds, before failing with each service's state and last health check.
    type: int
    default: 120
  tag:
    description:
      - With O(state=pulled), pull each service's configured repository with this tag instead of the configured
        tag, without changing the compose file; for pulling every version an upgrade path needs before anything
        is stopped. RV(image_ids) then refers to these images.
    type: str
    version_added: 0.1.0
attributes:
  check_mode:
    support: full
    details:
      - O(state=stopped) and O(state=started) predict exactly from the containers' states.
      - O(state=present) predicts a change when a container is missing or not running, runs another image than
        the local one of its configured tag, or (with Compose v2) has another configuration hash than the
        compose file's.
      - O(state=pulled) predicts a change only when a configured image is missing locally. Whether a tag moved
        in the registry can only be known by pulling, so check mode reports no change for it.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - O(state=pulled) reports a change again only if the tag moved to a new image in the registry in between.
notes:
  - Changes are measured, not assumed. C(changed) compares the project's containers (their ids and whether they
    run) before and after the command and, for O(state=pulled), the local image id of every configured image.
seealso:
  - module: lorawan.tts.stack_info
"""

EXAMPLES = r"""
- name: Pull the new stack image before any downtime
  lorawan.tts.compose_service:
    project_src: /srv/tts
    services: [stack]
    state: pulled

- name: Stop only the stack (Redis and Postgres keep running)
  lorawan.tts.compose_service:
    project_src: /srv/tts
    services: [stack]
    state: stopped

- name: Pull 3.32.0 ahead, leaving the compose file as it is
  lorawan.tts.compose_service:
    project_src: /srv/tts
    services: [stack]
    state: pulled
    tag: 3.32.0

- name: Bring the stack up on the new tag and wait until it is healthy
  lorawan.tts.compose_service:
    project_src: /srv/tts
    services: [stack]
    state: present
    wait: true
    wait_timeout: 300
  register: stack_up

- name: Start every service again, in a project with its own name and an extra compose file
  lorawan.tts.compose_service:
    project_src: /srv/tts
    files: [docker-compose.yml, docker-compose.override.yml]
    project_name: tts
    state: started
    wait: true
"""

RETURN = r"""
containers:
  description:
    - The state of each service's container after the task (before it, in check mode), by service name.
    - V(null) for a service that has no container. For a service scaled to several containers, the first one.
  returned: always
  type: dict
  sample:
    stack:
      name: tts-stack-1
      id: 4f0c6d1e2a7b...
      state: running
      health: healthy
      image: thethingsnetwork/lorawan-stack:3.32.0
      image_id: sha256:ba9b61d9e000...
  contains:
    name:
      description: The container's name.
      type: str
    id:
      description: The container's id.
      type: str
    state:
      description:
        - Docker's state of the container (V(running), V(exited), V(created), V(restarting), V(paused), V(dead)).
      type: str
    health:
      description: V(starting), V(healthy) or V(unhealthy); V(null) when the container has no healthcheck.
      type: str
    image:
      description: The image reference the container was created from.
      type: str
    image_id:
      description: The id of the image the container runs.
      type: str
image_ids:
  description:
    - The local image id of each service's configured image (the tag in the compose file), before and after the
      task, by service name; V(null) when that image is not on the host. Services without an C(image) are left out.
    - Empty for O(state=stopped) and O(state=started), which change no image.
  returned: always
  type: dict
  sample:
    before:
      stack: sha256:ba9b61d9e000...
    after:
      stack: sha256:0d1f7c3a9e42...
  contains:
    before:
      description: Before the task.
      type: dict
    after:
      description: After the task (the same as before in check mode).
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lorawan.tts.plugins.module_utils.compose import (
    COMPOSE_ARGUMENT_SPEC,
    ComposeError,
    ComposeProject,
    fail_on_compose_error,
)
from ansible_collections.lorawan.tts.plugins.module_utils.compose_file import ComposeFileError, validate_tag
from ansible_collections.lorawan.tts.plugins.module_utils.service_control import STATES, ServiceControl


def main():
    argument_spec = dict(COMPOSE_ARGUMENT_SPEC)
    argument_spec.update(
        services=dict(type="list", elements="str"),
        state=dict(type="str", required=True, choices=list(STATES)),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=120),
        tag=dict(type="str"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if module.params["tag"] is not None:
        if module.params["state"] != "pulled":
            module.fail_json(msg="tag is only for state=pulled (pulling the image of another version ahead)")
        try:
            validate_tag(module.params["tag"])
        except ComposeFileError as error:
            module.fail_json(msg=str(error))
    if module.params["wait_timeout"] < 0:
        module.fail_json(msg="wait_timeout must be 0 or more seconds, not %d" % module.params["wait_timeout"])
    control = None
    try:
        project = ComposeProject.from_params(module)
        control = ServiceControl(project, module.params["services"], module.check_mode, module.params["tag"])
        result = control.run(module.params["state"], module.params["wait"], module.params["wait_timeout"])
    except ComposeError as error:
        fail_on_compose_error(module, error, **(control.result if control else {}))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
