# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.lorawan.tts.plugins.module_utils.role_input import (
    ROLE_PHASES,
    at_target,
    database_image_pins,
    edition_problem,
    playbook_input_problems,
    preflight_problems,
    rollout_problems,
    run_summary,
    staging_gate_problems,
    tag_selection_problem,
    upgrade_input_problems,
)


def upgrade_input_problems_filter(settings, deployment=None):
    if not isinstance(settings, dict):
        raise AnsibleFilterError("upgrade_input_problems needs a dict of role variables, not %r" % (settings,))
    problems = upgrade_input_problems(settings)
    if deployment is not None:
        stack = (deployment.get("images") or {}).get("stack") or {}
        problem = edition_problem(
            str(settings.get("tts_edition", "auto")), deployment.get("edition"), stack.get("image")
        )
        if problem:
            problems.append(problem)
    return problems


def rollout_problems_filter(serial, max_fail_percentage=0):
    return rollout_problems(serial, max_fail_percentage)


def playbook_input_problems_filter(variables, playbook, selected):
    if not isinstance(variables, dict) or not isinstance(selected, list):
        raise AnsibleFilterError(
            "playbook_input_problems needs a dict of playbook variables and a list of hosts, not %r"
            % ((variables, selected),)
        )
    try:
        return playbook_input_problems(playbook, variables, selected)
    except ValueError as error:
        raise AnsibleFilterError("playbook_input_problems: %s" % error) from error


def upgrade_preflight_problems_filter(deployment, plan):
    if not isinstance(deployment, dict) or not isinstance(plan, dict):
        raise AnsibleFilterError(
            "upgrade_preflight_problems needs the tts facts of lorawan.tts.stack_info and the plan as dicts, not %r"
            % ((deployment, plan),)
        )
    return preflight_problems(deployment, plan)


def database_image_pins_filter(deployment, pin=True):
    if not isinstance(deployment, dict):
        raise AnsibleFilterError(
            "database_image_pins needs the tts facts of lorawan.tts.stack_info, not %r" % (deployment,)
        )
    return database_image_pins(deployment, pin)


def at_target_filter(deployment, target):
    if not isinstance(deployment, dict):
        raise AnsibleFilterError("at_target needs the tts facts of lorawan.tts.stack_info, not %r" % (deployment,))
    return at_target(deployment, target)


def tag_selection_problems_filter(role, run_tags, skip_tags):
    # ansible-core 2.18 gives the tags as lists, 2.19 and later as tuples.
    if role not in ROLE_PHASES or not isinstance(run_tags, (list, tuple)) or not isinstance(skip_tags, (list, tuple)):
        raise AnsibleFilterError(
            "tag_selection_problems needs a role (%s) and the lists ansible_run_tags and ansible_skip_tags, not %r"
            % (", ".join(ROLE_PHASES), (role, run_tags, skip_tags))
        )
    problem = tag_selection_problem(role, run_tags, skip_tags)
    return [problem] if problem else []


def staging_gate_problems_filter(staging_reads, production_host, target, gate):
    if not isinstance(staging_reads, list) or not isinstance(gate, dict):
        raise AnsibleFilterError(
            "staging_gate_problems needs the results of lorawan.tts.stack_info looped over the staging hosts, and a "
            "dict of tts_allow_no_staging and tts_skip_staging_gate, not %r" % ((staging_reads, gate),)
        )
    missing = [name for name in ("tts_allow_no_staging", "tts_skip_staging_gate") if name not in gate]
    if missing:
        raise AnsibleFilterError("staging_gate_problems needs the values of %s" % ", ".join(missing))
    return staging_gate_problems(str(production_host), target, staging_reads, gate)


def upgrade_summary_filter(hosts, hostvars):
    if not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError("upgrade_summary needs a list of hosts, not %r" % (hosts,))
    reports = {host: (hostvars.get(host) or {}).get("tts_upgrade") for host in hosts}
    return run_summary(list(hosts), reports)


class FilterModule:
    def filters(self):
        return {
            "upgrade_input_problems": upgrade_input_problems_filter,
            "rollout_problems": rollout_problems_filter,
            "playbook_input_problems": playbook_input_problems_filter,
            "upgrade_preflight_problems": upgrade_preflight_problems_filter,
            "at_target": at_target_filter,
            "database_image_pins": database_image_pins_filter,
            "tag_selection_problems": tag_selection_problems_filter,
            "staging_gate_problems": staging_gate_problems_filter,
            "upgrade_summary": upgrade_summary_filter,
        }
