#!/usr/bin/python
# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: stack_health
short_description: Wait until The Things Stack answers its health endpoint, and check the version it runs
version_added: 0.2.0
description:
  - Polls the stack's HTTP health endpoint from the managed host every 0.1 seconds until it answers 200, then
    reads the running version with C(<binary> version) in the container.
  - Asks TTS, not Docker. The TTS image's own health check runs once a minute, so Docker's C(healthy) can lag
    the stack by up to a minute.
  - The endpoint is C(/healthz) from TTS 3.24.0 and C(/healthz/ready) before, on the host address and port the
    compose file publishes for the container's port 1885. When that port is not published, the module runs
    C(curl) inside the container instead.
  - Fails at once when the container stops instead of serving, and after O(timeout) seconds otherwise, with the
    end of the service's log.
author:
  - lorawan.tts contributors (!UNKNOWN)
extends_documentation_fragment:
  - lorawan.tts.compose
  - lorawan.tts.attributes
options:
  service:
    description:
      - The compose service that runs The Things Stack.
    type: str
    default: stack
  version:
    description:
      - The version the stack must run, C(X.Y.Z) or C(X.Y) (then any C(X.Y.Z) matches). It also chooses the
        endpoint (C(/healthz) from 3.24.0). When omitted, the version is only read and returned.
    type: str
  url:
    description:
      - The health endpoint's URL, when the published port does not reach it (a reverse proxy, another address).
    type: str
  password:
    description:
      - The health endpoint's password (C(http.health.password); user C(health)). Defaults to
        C(TTN_LW_HTTP_HEALTH_PASSWORD) in the service's compose environment.
    type: str
  timeout:
    description:
      - Seconds to wait for an answer of 200.
    type: int
    default: 300
attributes:
  check_mode:
    support: full
    details: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
seealso:
  - module: lorawan.tts.stack_info
"""

EXAMPLES = r"""
- name: Start the new version
  lorawan.tts.compose_service:
    project_src: /srv/lorawan-stack
    services: [stack]
    state: present

- name: Wait until it serves, and check that it runs 3.32.0
  lorawan.tts.stack_health:
    project_src: /srv/lorawan-stack
    version: "3.32.0"
    timeout: 300
"""

RETURN = r"""
url:
  description: The endpoint that answered.
  returned: success
  type: str
  sample: http://127.0.0.1:80/healthz
stack_version:
  description: The version the running stack reports.
  returned: success
  type: str
  sample: 3.32.0
seconds:
  description: Seconds until the endpoint answered 200.
  returned: success
  type: float
  sample: 1.4
probes:
  description: Requests made until then.
  returned: success
  type: int
  sample: 7
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lorawan.tts.plugins.module_utils.compose import (
    COMPOSE_ARGUMENT_SPEC,
    ComposeError,
    ComposeProject,
    fail_on_compose_error,
)
from ansible_collections.lorawan.tts.plugins.module_utils.stack_health import StackHealth


def main():
    argument_spec = dict(
        COMPOSE_ARGUMENT_SPEC,
        service=dict(type="str", default="stack"),
        version=dict(type="str"),
        url=dict(type="str"),
        password=dict(type="str", no_log=True),
        timeout=dict(type="int", default=300),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        health = StackHealth(ComposeProject.from_params(module), params["service"], params["url"], params["password"])
        result = health.wait(params["timeout"], expected=params["version"])
    except ComposeError as error:
        fail_on_compose_error(module, error)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
