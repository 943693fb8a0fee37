#!/usr/bin/python
# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: upgrade_journal
short_description: Open, write or close the journal of an upgrade run, the host's upgrade lock
version_added: 0.4.0
description:
  - The journal is one JSON file, C(.lorawan-tts.journal) in O(project_src), mode 0600, replaced atomically at
    every write. It holds one run's state on the host - the run id, the controller and its process, the host's
    boot id, the versions and hops, each phase's mark, what M(lorawan.tts.stack_cutover) did (the capture, the
    migrations, the cutover's settings), what failed - and, once closed, the record of the last run.
    M(lorawan.tts.upgrade_report) makes the run's report from it.
  - O(state=opened) is the host's upgrade lock. It opens the journal for O(run) unless another run holds it,
    waiting up to O(timeout) seconds for that run to close it.
  - A run holds the journal while a step of it runs on the host, or while its C(ansible-playbook) process lives
    (seen when both runs come from the same controller). A run from another controller holds it until it has
    written nothing for O(stale_after) seconds. A restart of the host ends every run.
  - A run that finds the journal open by a run that no longer lives takes it over and returns what that run
    left in RV(taken_over). If that run stopped the stack, this run adopts its record, so that a run interrupted
    while it undoes another is undone in turn by the next one.
  - O(state=noted) writes into the journal of O(run) - a mark for O(phase), O(record), what failed - and returns
    what the run has done (RV(run)). A run that does not hold the journal (it never took the lock) writes nothing.
  - O(state=closed) ends the run with O(outcome), or with the outcome its journal implies. A run that failed with
    the stack stopped (its rollback failed, or was not wanted) abandons the journal instead; the next run takes it
    over at once and rolls back from its capture.
author:
  - lorawan.tts contributors (!UNKNOWN)
extends_documentation_fragment:
  - lorawan.tts.attributes
attributes:
  check_mode:
    support: partial
    details: Nothing is written in check mode; O(state=noted) still returns RV(failure).
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
      - V(opened) takes the journal for O(run); V(noted) writes into it; V(closed) records the outcome and releases
        it.
    type: str
    choices: [opened, noted, closed]
    default: opened
  record:
    description:
      - What to keep about the run, with O(state=opened) (versions, the time it C(started) as seconds since the
        epoch) or O(state=noted) (the plan, C(edition) and C(hops)).
      - Never put secrets here; the journal is readable by whoever can read the project directory's owner files.
    type: dict
    default: {}
  phase:
    description:
      - With O(state=noted), the phase that starts now; its mark times it in the report.
    type: str
  failed_task:
    description:
      - With O(state=noted), the name of the task that failed. The run's C(failure) is made from it and
        O(failed_result).
    type: str
  failed_result:
    description:
      - With O(state=noted), the result of the task that failed (a failed M(lorawan.tts.stack_cutover) describes
        its own failure).
    type: dict
  rollback_failure:
    description:
      - With O(state=noted), why the rollback failed.
    type: str
  outcome:
    description:
      - How the run ended, with O(state=closed); by default what its journal says (V(upgraded), V(rolled-back),
        V(failed)).
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
  - module: lorawan.tts.upgrade_report
"""

EXAMPLES = r"""
- name: Take the host's upgrade lock, waiting up to 10 minutes for another run
  lorawan.tts.upgrade_journal:
    project_src: /srv/tts
    run: "{{ inventory_hostname }}-{{ now(utc=true).strftime('%Y%m%dT%H%M%SZ') }}"
    record:
      host: "{{ inventory_hostname }}"
      started: "{{ now().timestamp() }}"
      from: 3.31.1
      to: 3.32.0
    timeout: 600
  register: journal

- name: Mark the pull
  lorawan.tts.upgrade_journal:
    project_src: /srv/tts
    run: "{{ journal.journal.run }}"
    state: noted
    phase: pull
    record:
      hops: [3.32.0]

- name: Record the outcome and release the lock
  lorawan.tts.upgrade_journal:
    project_src: /srv/tts
    run: "{{ journal.journal.run }}"
    state: closed
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
  description: The journal as written (with O(state=noted), as it is; null when this run does not hold it).
  returned: success
  type: dict
run:
  description:
    - What the run has done, from its journal - C(stopped) the stack, C(captured) the data, a version is
      C(serving) after the stop, C(rolled_back), C(failed) - and the C(outcome) closing it now would record.
  returned: success
  type: dict
failure:
  description: With O(state=noted) and O(failed_result), what failed (the task and its message).
  returned: success
  type: str
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
    failure_text,
    moved_since,
    open_run,
    run_state,
)


def noted(module: AnsibleModule, journal: Journal) -> None:
    params = module.params
    changes = dict(params["record"])
    if params["failed_result"] is not None:
        changes["failure"] = failure_text(params["failed_task"] or "", params["failed_result"])
    if params["rollback_failure"]:
        changes["rollback_failure"] = params["rollback_failure"]
    record = journal.held_by(params["run"])
    if record is not None and not module.check_mode:
        record = journal.update(params["run"], mark=params["phase"] or "", **changes)
    module.exit_json(
        changed=record is not None and not module.check_mode and bool(changes or params["phase"]),
        journal=record,
        run=run_state(record),
        failure=changes.get("failure"),
    )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_src=dict(type="path", required=True),
            run=dict(type="str", required=True),
            state=dict(type="str", choices=["opened", "noted", "closed"], default="opened"),
            record=dict(type="dict", default={}),
            phase=dict(type="str"),
            failed_task=dict(type="str"),
            failed_result=dict(type="dict"),
            rollback_failure=dict(type="str"),
            outcome=dict(type="str"),
            timeout=dict(type="int", default=0),
            stale_after=dict(type="int", default=1800),
            seen=dict(type="dict"),
            controller=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    params = module.params
    journal = Journal(params["project_src"])
    if module.check_mode and params["state"] != "noted":
        module.exit_json(changed=False, opened=False, taken_over=None, moved=False, journal=None)
    try:
        if params["state"] == "noted":
            noted(module, journal)
        if params["state"] == "closed":
            record = close_run(journal, params["run"], params["outcome"] or "")
            module.exit_json(
                changed=True, opened=False, taken_over=None, moved=False, journal=record, run=run_state(record)
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
