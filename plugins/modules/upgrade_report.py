#!/usr/bin/python
# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: upgrade_report
short_description: Make the report of an upgrade run from its journal and write it to a file on the host
version_added: 0.4.0
description:
  - Reads the journal of O(run) (M(lorawan.tts.upgrade_journal)) and makes the run's report from it - the outcome,
    the versions and hops, the migrations, whether the stack was stopped and the data captured, the backup once
    its manifest is written, what failed, the seconds of each phase and the downtime - with a one-line
    C(summary) and, for a failed run, the C(message) that says where the data is and what to do.
  - O(plan) holds what the run knows without its journal; the journal, where this run holds it, has the last
    word. A run without one (a deployment already at the target, a run refused before it took the lock, check
    mode) is reported from O(plan) alone.
  - Writes the report as JSON to C(<report_dir>/<started>_<result>.json), mode 0640, replacing the file
    atomically; the directory and its missing parents are created with mode 0750. A report that cannot be
    written is a warning, not a failure; it must not hide what the run did.
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
    support: none
options:
  project_src:
    description:
      - The directory of the deployment's compose file, where the journal lives.
    type: path
    required: true
  run:
    description:
      - The id of the run to report.
    type: str
    required: true
  report_dir:
    description:
      - The directory the report goes to.
    type: path
    required: true
  plan:
    description:
      - What the run knows without its journal - C(host), C(started) (seconds since the epoch), C(from), C(to),
        C(edition), C(hops), C(failure), and C(notes), lines the report records as they are.
    type: dict
    required: true
  outcome:
    description:
      - The result to report instead of the one the journal implies (V(already-current)).
    type: str
  rollback_enabled:
    description:
      - Whether the run rolls back a failure (tts_rollback_on_failure); the message of a failed run depends on it.
    type: bool
    default: true
seealso:
  - module: lorawan.tts.upgrade_journal
"""

EXAMPLES = r"""
- name: Report the run
  lorawan.tts.upgrade_report:
    project_src: /srv/tts
    run: "{{ run_id }}"
    report_dir: /var/backups/lorawan-tts/reports/{{ inventory_hostname }}
    plan:
      host: "{{ inventory_hostname }}"
      started: "{{ started }}"
      from: 3.31.1
      to: 3.32.0
  register: report
"""

RETURN = r"""
report:
  description:
    - The report - C(host), C(project_dir), C(started), C(finished), C(result) (V(upgraded), V(already-current),
      V(rolled-back) or V(failed)), C(edition), C(from), C(to), C(hops), C(migrations), C(stopped), C(captured),
      C(backup) (C(path), C(size), C(files)), C(failure), C(rollback_failure), C(marks), C(timings),
      C(downtime_seconds), C(summary) and, for a failed run, C(message).
  returned: success
  type: dict
path:
  description: The file written (or that would be, in check mode); empty when it could not be written.
  returned: success
  type: str
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lorawan.tts.plugins.module_utils.files import write_record
from ansible_collections.lorawan.tts.plugins.module_utils.journal import Journal, JournalError
from ansible_collections.lorawan.tts.plugins.module_utils.upgrade_record import RecordError, build, file_name


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_src=dict(type="path", required=True),
            run=dict(type="str", required=True),
            report_dir=dict(type="path", required=True),
            plan=dict(type="dict", required=True),
            outcome=dict(type="str"),
            rollback_enabled=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        record = dict(params["plan"], **(Journal(params["project_src"]).held_by(params["run"]) or {}))
        report = build(record, params["project_src"], time.time(), params["outcome"] or "", params["rollback_enabled"])
    except (JournalError, RecordError, OSError) as error:
        module.fail_json(msg="reporting the run %s: %s" % (params["run"], error))
    path = os.path.join(params["report_dir"], file_name(report))
    try:
        changed = write_record(path, json.dumps(report, indent=4, sort_keys=True) + "\n", check_mode=module.check_mode)
    except OSError as error:
        module.warn(
            "The record of this run could not be written to %s: %s. Set tts_report_dir elsewhere." % (path, error)
        )
        changed, path = False, ""
    module.exit_json(changed=changed, report=report, path=path)


if __name__ == "__main__":
    main()
