# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The roles' and the playbook's input, checked before anything stops: each problem names the variable to change."""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, List, Mapping, Optional

from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.lorawan.tts.plugins.module_utils.versions import (
    NEWEST_RELEASE,
    VersionError,
    format_version,
    parse_version,
)

PERCENTAGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
# Numeric role variables: (smallest value, what the number means).
NUMBERS = {
    "tts_backup_keep": (1, "backup directories to keep per host (the one just made always stays)"),
    "tts_healthcheck_timeout": (1, "seconds to wait for the health endpoint"),
    "tts_backup_timeout": (1, "seconds a copy or a restore may take"),
    "tts_restore_timeout": (1, "seconds a restore may take"),
    "tts_lock_timeout": (0, "seconds to wait for another run's lock"),
    "tts_lock_stale_after": (60, "seconds without news before another controller's run is taken over"),
    "tts_progress_interval": (0, "seconds between progress lines (0: none)"),
}


def as_integer(value: Any) -> Optional[int]:
    """An integer given as a number or as text (`-e` makes text of everything); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.match(r"^\s*[+-]?\d+\s*$", value):
        return int(value)
    return None


def number_problems(settings: Mapping[str, Any]) -> List[str]:
    problems = []
    for name, (smallest, meaning) in NUMBERS.items():
        if name not in settings:
            continue
        value = settings[name]
        number = as_integer(value)
        if name == "tts_progress_interval" and number is None and not isinstance(value, bool):
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = None
        if number is None or number < smallest:
            problems.append(
                "%s=%r is not a whole number of at least %d (%s): set %s to such a number"
                % (name, value, smallest, meaning, name)
            )
    return problems


def version_problems(target: Any, allow_unreleased: bool) -> List[str]:
    text = str(target if target is not None else "").strip()
    try:
        version = parse_version(text)
    except VersionError:
        return [
            "tts_target_version=%r is not a version of The Things Stack: set tts_target_version to X.Y.Z or X.Y, "
            'quoted, for example "3.32.0"' % (target,)
        ]
    if version > NEWEST_RELEASE and not allow_unreleased:
        return [
            "tts_target_version=%s is newer than %s, the newest release this collection knows the migrations of: "
            "check the version, or set tts_allow_unreleased_version=true to upgrade with the migrations it knows"
            % (text, format_version(NEWEST_RELEASE))
        ]
    return []


def upgrade_input_problems(settings: Mapping[str, Any]) -> List[str]:
    """Every problem of an upgrade's role variables, in order; an empty list when they can be used."""
    problems = []
    project_dir = str(settings.get("tts_project_dir") or "")
    if "tts_project_dir" in settings and not project_dir:
        problems.append("tts_project_dir is empty: set it to the directory that holds docker-compose.yml")
    elif project_dir and not os.path.isabs(project_dir):
        problems.append(
            "tts_project_dir=%s is relative: set tts_project_dir to the absolute path of the directory that holds "
            "docker-compose.yml (a relative path would be read from wherever the module happens to run)" % project_dir
        )
    if "tts_target_version" in settings:
        problems += version_problems(
            settings["tts_target_version"], str(settings.get("tts_allow_unreleased_version", False)).lower() == "true"
        )
    return problems + number_problems(settings)


def serial_problems(serial: Any) -> List[str]:
    """tts_upgrade_serial: a batch size (> 0), a percentage (1% to 100%), or a list of them."""
    items = serial if isinstance(serial, list) else [serial]
    bad = []
    for item in items:
        number = as_integer(item)
        match = PERCENTAGE.match(item) if isinstance(item, str) else None
        if number is not None and number > 0:
            continue
        if match and 0 < float(match.group(1)) <= 100:
            continue
        bad.append(item)
    if not items or bad:
        return [
            "tts_upgrade_serial=%r is not a batch size: set it to a number of hosts above 0 (1), a percentage of "
            'the group ("25%%"), or a list of them ([1, "25%%"]); 0 or less would upgrade every host at once'
            % (serial,)
        ]
    return []


def rollout_problems(serial: Any, max_fail_percentage: Any) -> List[str]:
    """Every problem of the playbook's rollout variables."""
    problems = serial_problems(serial)
    number = as_integer(max_fail_percentage)
    if number is None or not 0 <= number <= 100:
        problems.append(
            "tts_max_fail_percentage=%r is not a percentage: set it to a whole number from 0 (the first failed host "
            "stops the rollout) to 100" % (max_fail_percentage,)
        )
    return problems


# The playbooks' own variables. Play keywords (hosts, serial, max_fail_percentage) are read before any host is
# chosen, so they come from extra variables (-e, AWX's extra variables and surveys) or the playbook's vars file.
PLAYBOOK_VARIABLES = {
    "upgrade": (
        "tts_hosts",
        "tts_upgrade_serial",
        "tts_max_fail_percentage",
        "tts_allow_no_staging",
        "tts_skip_staging_gate",
        "tts_skip_staging_gate_reason",
    ),
    "backup": ("target",),
    "restore": ("target",),
}


def host_pattern_problem(name: str, value: Any, hosts: List[str], playbook: str) -> Optional[str]:
    example = "for example -e %s=tts-eu-1 or -e '%s=staging:production'" % (name, name)
    if not isinstance(value, str) or not value.strip():
        return "%s=%r is not a host pattern: set %s to inventory hosts or groups, %s" % (name, value, name, example)
    if hosts:
        return None
    if playbook == "upgrade":
        return (
            "tts_hosts=%s names no host of the groups staging and production: put the deployments' hosts in those "
            "groups, and set tts_hosts to some of them (default all), %s" % (value, example)
        )
    problem = "target=%s names no host of the inventory: set target to some, %s" % (value, example)
    if playbook == "restore":
        problem += "; the restore playbook names none by default, since it puts each host it runs on back to a backup"
    return problem


def playbook_input_problems(playbook: str, variables: Mapping[str, Any], hosts: List[str]) -> List[str]:
    """Every problem of a playbook's own variables (upgrade, backup or restore), in order; an empty list when they
    can be used. variables: the values the playbook's plays will read, defaults included; hosts: the inventory
    hosts its host pattern selects (for the upgrade, those of staging and production)."""
    if playbook not in PLAYBOOK_VARIABLES:
        raise ValueError("no playbook lorawan.tts.%s: one of %s" % (playbook, ", ".join(PLAYBOOK_VARIABLES)))
    missing = [name for name in PLAYBOOK_VARIABLES[playbook] if name not in variables]
    if missing:
        raise ValueError("the %s playbook's check needs the values of %s" % (playbook, ", ".join(missing)))
    pattern = "tts_hosts" if playbook == "upgrade" else "target"
    problem = host_pattern_problem(pattern, variables[pattern], hosts, playbook)
    problems = [problem] if problem else []
    if playbook != "upgrade":
        return problems
    problems += rollout_problems(variables["tts_upgrade_serial"], variables["tts_max_fail_percentage"])
    try:
        boolean(variables["tts_allow_no_staging"], strict=True)
    except TypeError:
        problems.append(
            "tts_allow_no_staging=%r is not true or false: set it to true only to upgrade an inventory without "
            "staging hosts" % (variables["tts_allow_no_staging"],)
        )
    problem = skip_staging_gate_problem(variables["tts_skip_staging_gate"], variables["tts_skip_staging_gate_reason"])
    return problems + ([problem] if problem else [])


def edition_problem(wanted: str, detected: Optional[str], image: Optional[str]) -> Optional[str]:
    """tts_edition set to one edition on a deployment that runs the other."""
    if wanted in ("", "auto") or detected in (None, "", wanted):
        return None
    return (
        "tts_edition=%s, but the deployment runs The Things Stack %s (image %s): set tts_edition to auto or %s; "
        "the migrations of one edition do not fit the other" % (wanted, detected, image or "?", detected)
    )


def runs_target(running: Optional[str], target: str) -> bool:
    """Whether the running version is the target or, for an X.Y target, one of its patch releases."""
    return bool(running) and (running == target or (target.count(".") == 1 and running.startswith(target + ".")))


def at_target(deployment: Dict[str, Any], target: str) -> bool:
    """Whether the deployment (stack_info's facts) runs the target (or, for an X.Y target, one of its patch
    releases), is configured for it, answers, and no run holds or left it half-way (an open journal)."""
    running = deployment.get("stack_version")
    target = str(target)
    journal = deployment.get("journal")
    return bool(
        runs_target(running, target)
        and deployment.get("configured_version") in (running, target)
        and (deployment.get("health") or {}).get("status") == 200
        and (journal is None or journal.get("outcome"))
    )


DATABASES = ("postgres", "redis")


def database_image_pins(deployment: Dict[str, Any], pin: Any = True) -> Dict[str, str]:
    """The tag that pins each database image on a moving tag (latest, none) to what runs now: Postgres to its
    running major, Redis to its running major.minor. Empty when pin is false; an image whose running version is
    unknown is left out."""
    if not boolean(pin, strict=False):
        return {}
    images = deployment.get("images") or {}
    running = {
        "postgres": str((deployment.get("postgres") or {}).get("major_running") or ""),
        "redis": ".".join(str((deployment.get("redis") or {}).get("version") or "").split(".")[:2]),
    }
    return {name: running[name] for name in DATABASES if (images.get(name) or {}).get("moving_major") and running[name]}


def preflight_problems(deployment: Dict[str, Any], plan: Mapping[str, Any]) -> List[str]:
    """What keeps the planned upgrade from starting, each with what to change; an empty list when it can start.

    plan: project_dir, target, edition, from (the running or configured version), hops, allow_moving_postgres_tag,
    pin_database_images.
    """
    project_dir = plan.get("project_dir")
    problems = []
    if plan.get("edition") not in ("open-source", "enterprise"):
        problems.append(
            "The edition of %s is unknown (the stack image is neither thethingsnetwork/ nor "
            "thethingsindustries/lorawan-stack and the entrypoint does not tell); set tts_edition." % project_dir
        )
    elif not plan.get("from"):
        problems.append("The version of %s is unknown: the stack does not run and its image has no tag." % project_dir)
    elif not plan.get("hops"):
        problems.append(
            "%s is configured for %s but the stack does not run and answer (%s, health %s); there is no upgrade to "
            "do: find out why it does not start, or restore a backup with lorawan.tts.restore."
            % (
                project_dir,
                plan.get("target"),
                json.dumps((deployment.get("services") or {}).get("stack") or {}, sort_keys=True),
                json.dumps(deployment.get("health"), sort_keys=True),
            )
        )
    postgres = deployment.get("postgres") or {}
    images = deployment.get("images") or {}
    moving = [name for name in DATABASES if (images.get(name) or {}).get("moving_major")]
    if moving and boolean(plan.get("pin_database_images"), strict=False):
        pins = database_image_pins(deployment, True)
        problems += [
            "The %s image %s can't be pinned to what runs: the %s service does not run, so its version is unknown. "
            "Start it, or set its tag by hand." % (name, images[name].get("image"), name)
            for name in moving
            if name not in pins
        ]
    elif moving and not boolean(plan.get("allow_moving_postgres_tag"), strict=False):
        names = [str(images[name].get("image")) for name in moving]
        problems.append(
            "%s %s on a tag without a major version: a pull can move it to another major version, whose server can't "
            "open the data directory (lorawan-stack issue 7742). Set tts_pin_database_images=true to pin %s to what "
            "runs now in the same edit as the stack's tag, pin a version tag of the major the data was written with "
            "(Postgres %s) by hand, or set tts_allow_moving_postgres_tag=true."
            % (
                ", ".join(names),
                "is" if len(names) == 1 else "are",
                "it" if len(names) == 1 else "them",
                postgres.get("major_data_dir") or "?",
            )
        )
    data_major, image_major = postgres.get("major_data_dir"), postgres.get("major_image")
    if data_major is not None and image_major is not None and str(data_major) != str(image_major):
        problems.append(
            "The Postgres data directory was written by Postgres %s but the image runs Postgres %s: it can't open it. "
            "Set the postgres image back to major %s (or pg_upgrade the data first)."
            % (data_major, image_major, data_major)
        )
    problems += [
        "The upgrade can't set the image tags in the compose file with this Python: %s." % problem.rstrip(".")
        for problem in (deployment.get("python") or {}).get("problems") or []
    ]
    return problems


# Each role's phases in order, with the tags on their tasks (roles/<role>/tasks/main.yml); every task also carries the
# role's own tag, tts_<role>. Tasks tagged `always` (the tag check, reading the deployment, the lock's release, the
# rollback) are not phases: they run under any --tags. A run does all of a role's phases, or only its preflight.
ROLE_PHASES = {
    "upgrade": {
        "preflight": ("preflight",),
        "lock": ("lock",),
        "files": ("backup",),
        "cutover": ("cutover", "stop", "backup", "migrate", "start", "verify"),
        "seal": ("backup",),
        "report": ("report",),
    },
    "backup": {
        "preflight": ("preflight",),
        "files": ("backup",),
        "stop": ("stop",),
        "capture": ("backup",),
        "start": ("start",),
        "seal": ("backup",),
    },
    "restore": {
        "preflight": ("preflight",),
        "stop": ("stop",),
        "restore": ("restore",),
        "start": ("start",),
        "verify": ("verify",),
    },
}
ALLOWED_PARTIAL_RUNS = ({"preflight"}, set())


def runs_under(tags: List[str], run_tags: List[str], skip_tags: List[str]) -> bool:
    """Whether a task with these tags runs under --tags run_tags --skip-tags skip_tags (Taggable.evaluate_tags)."""
    own = set(tags) or {"untagged"}
    selected = set(run_tags)
    skipped = set(skip_tags)
    runs = (
        not selected
        or "always" in own
        or ("all" in selected and "never" not in own)
        or not own.isdisjoint(selected)
        or ("tagged" in selected and own != {"untagged"} and "never" not in own)
    )
    if not runs or not skipped:
        return runs
    if "all" in skipped:
        return "always" in own and "always" not in skipped
    return own.isdisjoint(skipped) and not ("tagged" in skipped and own != {"untagged"})


def tag_selection_problem(role: str, run_tags: List[str], skip_tags: List[str]) -> Optional[str]:
    """A refusal when --tags/--skip-tags would run only part of a role's phases, other than its preflight alone:
    such a run could stop the stack and not start it, or change it without a verified backup."""
    phases = ROLE_PHASES[role]
    running = {phase for phase, tags in phases.items() if runs_under(["tts_" + role, *tags], run_tags, skip_tags)}
    if running == set(phases) or running in ALLOWED_PARTIAL_RUNS:
        return None
    return (
        "lorawan.tts.%s runs all of its phases (%s) or its preflight alone, but --tags %s --skip-tags %s would run %s "
        "and skip %s: that could leave the deployment stopped, half-changed or without a verified backup. Run it "
        "without --tags and --skip-tags for its phases (tags: %s), or with --tags preflight for the checks alone. "
        "Nothing was changed."
        % (
            role,
            ", ".join(phases),
            ",".join(run_tags) or "all",
            ",".join(skip_tags) or "(none)",
            ", ".join(phase for phase in phases if phase in running),
            ", ".join(phase for phase in phases if phase not in running),
            ", ".join(sorted({tag for tags in phases.values() for tag in tags})),
        )
    )


# What a staging host's last run may have ended with for production to follow it.
GATE_OUTCOMES = ("upgraded", "already-current")


def staging_host_problem(host: str, read: Mapping[str, Any], target: str) -> Optional[str]:
    """Why one staging host does not let production go to target: read is its lorawan.tts.stack_info result."""
    if read.get("failed") or read.get("unreachable") or not isinstance(read.get("tts"), dict):
        return "%s could not be read (%s)" % (host, read.get("msg") or "no facts")
    facts = read["tts"]
    running = facts.get("stack_version")
    journal = facts.get("journal") or {}
    if not running:
        return "%s runs no stack" % host
    if not at_target(dict(facts, journal=None), target):
        status = (facts.get("health") or {}).get("status")
        if runs_target(running, target):
            return "%s runs %s but does not answer (health status %s)" % (host, running, status)
        return "%s runs %s, not %s" % (host, running, target)
    if journal and not journal.get("outcome"):
        return "an upgrade run holds %s or was interrupted in it (%s)" % (host, journal.get("phase") or "started")
    if journal and journal["outcome"] not in GATE_OUTCOMES:
        return "%s's last upgrade run ended %s" % (host, journal["outcome"])
    return None


def skip_staging_gate_problem(skip: Any, reason: Any) -> Optional[str]:
    """tts_skip_staging_gate must be true or false, and skipping the gate needs a reason to record."""
    try:
        skipped = boolean(skip, strict=True)
    except TypeError:
        return "tts_skip_staging_gate=%r is not true or false" % (skip,)
    if skipped and (not isinstance(reason, str) or not reason.strip()):
        return (
            "tts_skip_staging_gate=true needs tts_skip_staging_gate_reason, a text saying why production goes "
            "without staging; it is recorded in each production host's report"
        )
    return None


def staging_gate_problems(
    production_host: str, target: Any, staging_reads: List[Mapping[str, Any]], gate: Mapping[str, Any]
) -> List[str]:
    """Why production_host may not be upgraded to target yet: every staging host must run target, answer, and have
    no run in it that failed or did not end (its journal). staging_reads: one lorawan.tts.stack_info result per
    staging host, each with the host's name as `item` (a loop's results); gate: tts_allow_no_staging,
    tts_skip_staging_gate and tts_skip_staging_gate_reason. An empty list when production may go."""
    if boolean(gate["tts_skip_staging_gate"], strict=False):
        return []
    target = str(target)
    if not staging_reads:
        if boolean(gate["tts_allow_no_staging"], strict=False):
            return []
        return [
            "The inventory has no host in group staging, so %s would be upgraded untested: add staging hosts, or "
            "set tts_allow_no_staging=true." % production_host
        ]
    found = [staging_host_problem(str(read.get("item")), read, target) for read in staging_reads]
    found = [problem for problem in found if problem]
    if not found:
        return []
    return [
        "The staging gate refuses to upgrade %s to %s: every staging host must run %s, answer, and have upgraded "
        "without failure first, and %s. Upgrade staging first (the same playbook with --limit staging), or set "
        "tts_skip_staging_gate=true with tts_skip_staging_gate_reason to go on without it. Nothing was changed on %s."
        % (production_host, target, target, "; ".join(found), production_host)
    ]


def run_summary(hosts: List[str], reports: Mapping[str, Any]) -> List[str]:
    """One line per host, in order: its report's summary (the fact tts_upgrade), or that this run did not reach it."""
    lines = []
    for host in hosts:
        report = reports.get(host)
        if isinstance(report, Mapping) and report.get("summary"):
            lines.append(str(report["summary"]))
        else:
            lines.append("%s: not upgraded in this run" % host)
    return lines
