#!/usr/bin/python
# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: upgrade_journal
short_description: Open or close the journal of an upgrade run, the host's upgrade lock
version_added: 0.4.0
description:
  - The journal is one JSON file, C(.lorawan-tts.journal) in O(project_src), mode 0600, replaced atomically at
    every write. It holds one run's state on the host - the run id, the controller and its process, the host's
    boot id, the versions, and what M(lorawan.tts.stack_cutover) did (its marks, the capture, the cutover's
    settings) - and, once closed, the record of the last run.
  - O(state=opened) is the host's upgrade lock. It opens the journal for O(run) unless another run holds it,
    waiting up to O(timeout) seconds for that run to close it.
  - A run holds the journal while a step of it runs on the host, or while its C(ansible-playbook) process lives
    (seen when both runs come from the same controller). A run from another controller holds it until it has
    written nothing for O(stale_after) seconds. A restart of the host ends every run.
  - A run that finds the journal open by a run that no longer lives takes it over and returns what that run
    left in RV(taken_over). If that run stopped the stack, this run adopts its record, so that a run interrupted
    while it undoes another is undone in turn by the next one.
  - O(state=closed) writes O(outcome) into the journal of O(run). O(state=abandoned) ends a run that leaves the
    stack stopped (its rollback failed, or was not wanted); the next run takes it over at once and rolls back from
    its capture.
author:
  - lorawan.tts contributors (!UNKNOWN)
extends_documentation_fragment:
  - lorawan.tts.attributes
attributes:
  check_mode:
    support: none
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
      - The id of this run, unique across runs and hosts.
    type: str
    required: true
  state:
    description:
      - V(opened) takes the journal for O(run); V(closed) records O(outcome) and releases it; V(abandoned) hands it
        to the next run.
    type: str
    choices: [opened, closed, abandoned]
    default: opened
  record:
    description:
      - What to keep about the run from the start (versions, hops, the time it started), with O(state=opened).
      - Never put secrets here; the journal is readable by whoever can read the project directory's owner files.
    type: dict
    default: {}
  outcome:
    description:
      - How the run ended, with O(state=closed).
    type: str
  timeout:
    description:
      - Seconds to wait, with O(state=opened), for a live run to close the journal; 0 refuses at once.
    type: int
    default: 0
  stale_after:
    description:
      - Seconds without a write after which a run from another controller is taken for interrupted.
    type: int
    default: 1800
  seen:
    description:
      - The journal as an earlier read of the deployment saw it (the C(journal) that M(lorawan.tts.stack_info)
        returned; an empty dict when there was none), with O(state=opened). RV(moved) says whether another run has
        opened or written the journal since.
    type: dict
  controller:
    description:
      - The controller of this run (host name, process id and start, the live Ansible processes). The
        action plugin sets it; do not set it by hand.
    type: dict
    default: {}
notes:
  - The action plugin of this module runs on the controller; it sets O(controller) and waits for O(timeout).
seealso:
  - module: lorawan.tts.stack_cutover
"""

EXAMPLES = r"""
- name: Take the host's upgrade lock, waiting up to 10 minutes for another run
  lorawan.tts.upgrade_journal:
    project_src: /srv/tts
    run: "{{ inventory_hostname }}-{{ now(utc=true).strftime('%Y%m%dT%H%M%SZ') }}"
    record:
      from: 3.31.1
      to: 3.32.0
    timeout: 600
  register: journal

- name: Record the outcome and release the lock
  lorawan.tts.upgrade_journal:
    project_src: /srv/tts
    run: "{{ journal.journal.run }}"
    state: closed
    outcome: upgraded
"""

RETURN = r"""
opened:
  description: Whether this run holds the journal now (always true on success with O(state=opened)).
  returned: success
  type: bool
taken_over:
  description:
    - The record of an interrupted run this run took over, with C(why) it was taken for interrupted and the
      C(action) it leaves - V(nothing-stopped), V(roll-back) (the stack was stopped; roll back from its capture)
      or V(seal) (a version serves again; the backup is to be sealed) - or null.
  returned: success
  type: dict
journal:
  description: The journal as written.
  returned: success
  type: dict
moved:
  description:
    - With O(state=opened), whether the journal this run replaced is not the one O(seen) describes - another run
      opened or wrote it after that read, so what the read found may have changed - or false without O(seen).
  returned: success
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lorawan.tts.plugins.module_utils.journal import (
    Journal,
    JournalError,
    boot_id,
    close_run,
    moved_since,
    open_run,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_src=dict(type="path", required=True),
            run=dict(type="str", required=True),
            state=dict(type="str", choices=["opened", "closed", "abandoned"], default="opened"),
            record=dict(type="dict", default={}),
            outcome=dict(type="str"),
            timeout=dict(type="int", default=0),
            stale_after=dict(type="int", default=1800),
            seen=dict(type="dict"),
            controller=dict(type="dict", default={}),
        ),
        required_if=[("state", "closed", ["outcome"])],
    )
    params = module.params
    journal = Journal(params["project_src"])
    try:
        if params["state"] in ("closed", "abandoned"):
            module.exit_json(
                changed=True,
                opened=False,
                taken_over=None,
                moved=False,
                journal=close_run(journal, params["run"], params["outcome"], abandoned=params["state"] == "abandoned"),
            )
        result = open_run(
            journal, params["run"], params["record"], params["controller"], params["stale_after"], boot_id()
        )
    except (JournalError, OSError) as error:
        module.fail_json(msg="the upgrade journal in %s: %s" % (params["project_src"], error))
    if not result["opened"]:
        module.fail_json(msg="held by " + result["held_by"], held_by=result["held_by"], opened=False)
    previous = result.pop("previous")
    module.exit_json(changed=True, moved=params["seen"] is not None and moved_since(params["seen"], previous), **result)


if __name__ == "__main__":
    main()
