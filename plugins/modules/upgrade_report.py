#!/usr/bin/python
# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: upgrade_report
short_description: Write the record of an upgrade run to a file on the host
version_added: 0.4.0
description:
  - Writes O(content) (the role lorawan.tts.upgrade writes its fact C(tts_upgrade) as JSON) to O(path), with mode
    0640, replacing the file atomically. The file's directory and its missing parents are created with mode 0750,
    and an existing directory gets that mode.
  - One step on the host where M(ansible.builtin.file) and M(ansible.builtin.copy) take three (the directory, a
    C(stat) of the destination, the copy).
author:
  - lorawan.tts contributors (!UNKNOWN)
extends_documentation_fragment:
  - lorawan.tts.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  path:
    description:
      - The file to write.
    type: path
    required: true
  content:
    description:
      - The text to write. It is not shown in the task's output.
    type: str
    required: true
seealso:
  - module: lorawan.tts.upgrade_journal
"""

EXAMPLES = r"""
- name: Write the record of the run
  lorawan.tts.upgrade_report:
    path: /var/backups/lorawan-tts/reports/{{ inventory_hostname }}/20261127T101500Z_upgraded.json
    content: "{{ tts_upgrade | to_nice_json }}\n"
"""

RETURN = r"""
path:
  description: The file written.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lorawan.tts.plugins.module_utils.files import write_record


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            content=dict(type="str", required=True, no_log=True),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    try:
        changed = write_record(path, module.params["content"], check_mode=module.check_mode)
    except OSError as error:
        module.fail_json(msg="writing %s: %s" % (path, error), path=path)
    module.exit_json(changed=changed, path=path)


if __name__ == "__main__":
    main()
