from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible_collections.lorawan.tts.plugins.module_utils.role_input import (
    ROLE_PHASES,
    at_target,
    database_image_pins,
    edition_problem,
    playbook_input_problems,
    preflight_problems,
    rollout_problems,
    run_summary,
    runs_under,
    staging_gate_problems,
    tag_selection_problem,
    upgrade_input_problems,
)

GOOD = {
    "tts_project_dir": "/srv/tts",
    "tts_target_version": "3.32.0",
    "tts_allow_unreleased_version": False,
    "tts_backup_keep": 5,
    "tts_healthcheck_timeout": 300,
    "tts_backup_timeout": 3600,
    "tts_lock_timeout": 0,
    "tts_progress_interval": 10,
}


def test_good_input_has_no_problem() -> None:
    assert upgrade_input_problems(GOOD) == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("tts_backup_keep", "7"),
        ("tts_healthcheck_timeout", "120"),
        ("tts_lock_timeout", "300"),
        ("tts_progress_interval", "0.5"),
        ("tts_target_version", "3.32"),
        ("tts_target_version", "3.36.0"),
    ],
)
def test_text_as_extra_vars_give_it_is_accepted(name: str, value: str) -> None:
    assert upgrade_input_problems(dict(GOOD, **{name: value})) == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("tts_backup_keep", -1),
        ("tts_backup_keep", 0),
        ("tts_backup_keep", "many"),
        ("tts_healthcheck_timeout", 0),
        ("tts_healthcheck_timeout", "2m"),
        ("tts_backup_timeout", -10),
        ("tts_lock_timeout", -1),
        ("tts_progress_interval", "often"),
        ("tts_progress_interval", True),
        ("tts_target_version", "latest"),
        ("tts_target_version", "3.32.0.1"),
        ("tts_target_version", "99.0.0"),
        ("tts_target_version", ""),
        ("tts_project_dir", "srv/tts"),
        ("tts_project_dir", ""),
    ],
)
def test_each_bad_value_is_named(name: str, value: object) -> None:
    problems = upgrade_input_problems(dict(GOOD, **{name: value}))
    assert len(problems) == 1, problems
    assert problems[0].startswith(name), problems


def test_an_unreleased_target_can_be_allowed() -> None:
    assert upgrade_input_problems(dict(GOOD, tts_target_version="3.98.0", tts_allow_unreleased_version="true")) == []


def test_every_problem_is_reported_at_once() -> None:
    problems = upgrade_input_problems(dict(GOOD, tts_project_dir="tts", tts_backup_keep=-1, tts_lock_timeout="x"))
    named = [problem.split("=", maxsplit=1)[0] for problem in problems]
    assert named == ["tts_project_dir", "tts_backup_keep", "tts_lock_timeout"]


@pytest.mark.parametrize("serial", [1, "2", "25%", [1, "25%"], ["1", 5, "100%"]])
def test_good_batches(serial: object) -> None:
    assert rollout_problems(serial, 0) == []


@pytest.mark.parametrize("serial", [0, -1, "0", "abc", "0%", "150%", [], [1, 0], [1, "x"], None, 1.5])
def test_bad_batches_would_not_do_what_they_say(serial: object) -> None:
    problems = rollout_problems(serial, 0)
    assert len(problems) == 1 and problems[0].startswith("tts_upgrade_serial="), problems


@pytest.mark.parametrize("threshold", [-1, 101, "abc", "50%", None])
def test_bad_failure_thresholds(threshold: object) -> None:
    problems = rollout_problems(1, threshold)
    assert len(problems) == 1 and problems[0].startswith("tts_max_fail_percentage="), problems


PLAYBOOK_DEFAULTS = Path(__file__).resolve().parents[4] / "playbooks" / "vars"
HOSTS = ["tts-eu-1"]


@pytest.mark.parametrize("playbook", ["upgrade", "backup"])
def test_the_playbooks_defaults_pass(playbook: str) -> None:
    defaults = yaml.safe_load((PLAYBOOK_DEFAULTS / f"{playbook}.yml").read_text())
    assert playbook_input_problems(playbook, defaults, HOSTS) == []


def test_restore_runs_only_on_hosts_named_for_it() -> None:
    """Its default target selects no host (the playbook hands over what the pattern selects)."""
    defaults = yaml.safe_load((PLAYBOOK_DEFAULTS / "restore.yml").read_text())
    problems = playbook_input_problems("restore", defaults, [])
    assert len(problems) == 1 and problems[0].startswith("target=!all names no host"), problems
    assert playbook_input_problems("restore", {"target": "tts-eu-1"}, HOSTS) == []


UPGRADE_PLAYBOOK = {
    "tts_hosts": "all",
    "tts_upgrade_serial": [1, "25%"],
    "tts_max_fail_percentage": 0,
    "tts_allow_no_staging": "false",
    "tts_skip_staging_gate": False,
    "tts_skip_staging_gate_reason": "",
}


@pytest.mark.parametrize(
    ("name", "value", "hosts"),
    [
        ("tts_hosts", "", []),
        ("tts_hosts", ["tts-eu-1"], []),
        ("tts_hosts", "tts-eu-9", []),
        ("tts_upgrade_serial", 0, HOSTS),
        ("tts_max_fail_percentage", "x", HOSTS),
        ("tts_allow_no_staging", "maybe", HOSTS),
        ("tts_skip_staging_gate", "maybe", HOSTS),
        ("tts_skip_staging_gate", "true", HOSTS),
    ],
)
def test_each_bad_playbook_variable_is_named(name: str, value: object, hosts: list[str]) -> None:
    problems = playbook_input_problems("upgrade", dict(UPGRADE_PLAYBOOK, **{name: value}), hosts)
    assert len(problems) == 1 and problems[0].startswith(name + "="), problems


@pytest.mark.parametrize("playbook", ["backup", "restore"])
@pytest.mark.parametrize(("target", "hosts"), [(" ", []), (3, []), (None, []), ("tts-eu-9", [])])
def test_a_target_selects_hosts(playbook: str, target: object, hosts: list[str]) -> None:
    problems = playbook_input_problems(playbook, {"target": target}, hosts)
    assert len(problems) == 1 and problems[0].startswith("target="), problems


def test_the_playbook_check_needs_every_variable() -> None:
    with pytest.raises(ValueError, match="tts_allow_no_staging"):
        playbook_input_problems(
            "upgrade", {"tts_hosts": "all", "tts_upgrade_serial": 1, "tts_max_fail_percentage": 0}, HOSTS
        )
    with pytest.raises(ValueError, match="no playbook"):
        playbook_input_problems("deploy", {}, HOSTS)


def test_edition_must_match_the_deployment() -> None:
    assert edition_problem("auto", "open-source", None) is None
    assert edition_problem("open-source", "open-source", None) is None
    assert edition_problem("enterprise", None, None) is None
    problem = edition_problem("enterprise", "open-source", "thethingsnetwork/lorawan-stack:3.31.1")
    assert problem is not None
    assert problem.startswith("tts_edition=enterprise") and "thethingsnetwork/lorawan-stack:3.31.1" in problem


AT_TARGET = {
    "stack_version": "3.32.0",
    "configured_version": "3.32.0",
    "health": {"status": 200},
    "journal": {"run": "r", "phase": "serving", "outcome": "upgraded"},
}


@pytest.mark.parametrize(
    ("changes", "target", "expected"),
    [
        ({}, "3.32.0", True),
        ({}, "3.32", True),
        ({"journal": None}, "3.32.0", True),
        ({}, "3.33.0", False),
        ({}, "3.3", False),
        ({"health": {"status": 503}}, "3.32.0", False),
        ({"stack_version": None}, "3.32.0", False),
        ({"configured_version": "3.31.1"}, "3.32.0", False),
        ({"journal": {"run": "r", "phase": "migrate 3.32.0", "outcome": None}}, "3.32.0", False),
    ],
)
def test_at_target(changes: dict, target: str, expected: bool) -> None:
    assert at_target(dict(AT_TARGET, **changes), target) is expected


DEPLOYMENT = {
    "images": {
        "postgres": {"image": "postgres:15", "moving_major": False},
        "redis": {"image": "redis:7", "moving_major": False},
    },
    "postgres": {"major_data_dir": 15, "major_image": 15},
    "services": {"stack": {"running": True}},
    "health": {"status": 200},
}
PLAN = {
    "project_dir": "/srv/tts",
    "target": "3.32.0",
    "edition": "open-source",
    "from": "3.31.1",
    "hops": ["3.32.0"],
    "allow_moving_postgres_tag": False,
}


@pytest.mark.parametrize(
    ("deployment", "plan", "expected"),
    [
        ({}, {"edition": "unknown"}, "The edition of /srv/tts is unknown"),
        ({}, {"from": ""}, "The version of /srv/tts is unknown"),
        ({"services": {"stack": {"running": False}}}, {"hops": []}, "there is no upgrade to do"),
        (
            {"images": {"postgres": {"image": "postgres:latest", "moving_major": True}}},
            {},
            "postgres:latest is on a tag without a major version",
        ),
        ({"postgres": {"major_data_dir": 15, "major_image": 13}}, {}, "Set the postgres image back to major 15"),
    ],
)
def test_preflight_refuses_what_keeps_the_upgrade_from_starting(deployment: dict, plan: dict, expected: str) -> None:
    assert preflight_problems(DEPLOYMENT, PLAN) == []
    problems = preflight_problems(dict(DEPLOYMENT, **deployment), dict(PLAN, **plan))
    assert len(problems) == 1
    assert expected in problems[0]


def test_moving_database_tags_are_pinned_to_what_runs_when_asked() -> None:
    moving = dict(
        DEPLOYMENT,
        images={
            "postgres": {"image": "postgres:latest", "moving_major": True},
            "redis": {"image": "redis", "moving_major": True},
        },
        postgres={"major_data_dir": "15", "major_image": None, "major_running": "15"},
        redis={"version": "7.0.15"},
    )
    assert "tts_pin_database_images=true" in preflight_problems(moving, PLAN)[0]
    assert preflight_problems(moving, dict(PLAN, pin_database_images=True)) == []
    assert database_image_pins(moving) == {"postgres": "15", "redis": "7.0"}
    assert database_image_pins(moving, "false") == {}
    assert database_image_pins(DEPLOYMENT) == {}
    redis_down = dict(moving, redis={"version": None})
    assert database_image_pins(redis_down) == {"postgres": "15"}
    problems = preflight_problems(redis_down, dict(PLAN, pin_database_images="true"))
    assert len(problems) == 1
    assert "The redis image redis can't be pinned to what runs: the redis service does not run" in problems[0]


def test_a_moving_tag_can_be_allowed_and_every_problem_is_reported_at_once() -> None:
    moving = dict(DEPLOYMENT, images={"redis": {"image": "redis", "moving_major": True}})
    assert preflight_problems(moving, dict(PLAN, allow_moving_postgres_tag="true")) == []
    both = dict(moving, postgres={"major_data_dir": "13", "major_image": "15"})
    assert len(preflight_problems(both, PLAN)) == 2


ROLES = Path(__file__).resolve().parents[4] / "roles"


@pytest.mark.parametrize(
    ("tags", "run_tags", "skip_tags", "runs"),
    [
        (["tts_upgrade", "preflight"], ["all"], [], True),
        (["tts_upgrade", "preflight"], ["migrate"], [], False),
        (["tts_upgrade", "always"], ["preflight"], [], True),
        (["tts_upgrade", "always"], ["all"], ["always"], False),
        (["tts_upgrade", "always"], ["all"], ["tts_upgrade"], False),
        (["tts_upgrade", "always"], ["all"], ["all"], True),
        (["tts_upgrade", "backup"], ["all"], ["all"], False),
        (["tts_upgrade", "backup"], ["tagged"], [], True),
        (["tts_upgrade", "backup"], ["all"], ["tagged"], False),
        (["never"], ["all"], [], False),
    ],
)
def test_tags_are_evaluated_as_ansible_does(tags, run_tags, skip_tags, runs) -> None:
    assert runs_under(tags, run_tags, skip_tags) is runs


@pytest.mark.parametrize("role", sorted(ROLE_PHASES))
@pytest.mark.parametrize(
    ("run_tags", "skip_tags"),
    [(["all"], []), (["tts_{role}"], []), (["preflight"], []), (["unrelated"], []), (["all"], ["tts_{role}"])],
)
def test_whole_runs_the_preflight_alone_and_none_of_the_role_are_allowed(role, run_tags, skip_tags) -> None:
    assert tag_selection_problem(role, [t.format(role=role) for t in run_tags], skip_tags) is None


@pytest.mark.parametrize(
    ("role", "run_tags", "skip_tags", "skipped"),
    [
        ("upgrade", ["all"], ["backup"], "files, cutover, seal"),
        ("upgrade", ["migrate"], [], "preflight, lock, files, seal, report"),
        ("upgrade", ["preflight", "lock"], [], "files, cutover, seal, report"),
        ("upgrade", ["all"], ["verify"], "cutover"),
        ("upgrade", ["all"], ["report"], "report"),
        ("backup", ["all"], ["start"], "start"),
        ("backup", ["stop", "backup"], [], "preflight, start"),
        ("restore", ["all"], ["verify"], "verify"),
        ("restore", ["restore"], [], "preflight, stop, start, verify"),
    ],
)
def test_a_partial_run_is_refused_naming_what_it_would_skip(role, run_tags, skip_tags, skipped) -> None:
    problem = tag_selection_problem(role, run_tags, skip_tags)
    assert problem is not None
    assert f"and skip {skipped}:" in problem
    assert "--tags preflight for the checks alone" in problem
    assert problem.endswith("Nothing was changed.")


def tagged_tasks(tasks):
    for task in tasks:
        for part in ("block", "rescue", "always"):
            yield from tagged_tasks(task.get(part) or [])
        if "tags" in task:
            yield task


@pytest.mark.parametrize("role", sorted(ROLE_PHASES))
def test_the_roles_tags_are_those_of_the_table(role) -> None:
    """Every tag on the role's main.yml is the role's own, `always` or a phase's; every phase's tags are used."""
    tasks = yaml.safe_load((ROLES / role / "tasks" / "main.yml").read_text())
    used = [tuple(task["tags"]) for task in tagged_tasks(tasks)]
    assert all(tags[0] == "tts_" + role for tags in used)
    phase_tags = set(ROLE_PHASES[role].values())
    assert {tags[1:] for tags in used} - {("always",)} == phase_tags


def staging_read(host: str, version: str | None = "3.32.0", status: int | None = 200, journal=None) -> dict:
    """A lorawan.tts.stack_info result for one staging host, as the gate's loop registers it."""
    facts = {"stack_version": version, "configured_version": version, "health": {"status": status}}
    return {"item": host, "tts": dict(facts, journal=journal)}


GATE = {"tts_allow_no_staging": False, "tts_skip_staging_gate": False}
UPGRADED = {"run": "stg-1-x", "phase": "serving", "outcome": "upgraded"}


@pytest.mark.parametrize(
    "journal", [None, UPGRADED, dict(UPGRADED, outcome="already-current")], ids=["no-run", "upgraded", "current"]
)
def test_the_gate_lets_production_follow_staging_at_its_target(journal) -> None:
    reads = [staging_read("stg-1", journal=journal), staging_read("stg-2", journal=UPGRADED)]
    assert staging_gate_problems("prod-1", "3.32.0", reads, GATE) == []
    assert staging_gate_problems("prod-1", "3.32", reads, GATE) == []


@pytest.mark.parametrize(
    ("read", "named"),
    [
        (staging_read("stg-2", version="3.31.1"), "stg-2 runs 3.31.1, not 3.32.0"),
        (staging_read("stg-2", version=None, status=None), "stg-2 runs no stack"),
        (staging_read("stg-2", status=503), "stg-2 runs 3.32.0 but does not answer (health status 503)"),
        (staging_read("stg-2", journal=dict(UPGRADED, outcome=None)), "an upgrade run holds stg-2"),
        (staging_read("stg-2", journal=dict(UPGRADED, outcome="failed")), "stg-2's last upgrade run ended failed"),
        ({"item": "stg-2", "unreachable": True, "msg": "ssh: timed out"}, "stg-2 could not be read (ssh: timed out)"),
    ],
)
def test_the_gate_refuses_production_naming_each_staging_host_that_is_not_ready(read: dict, named: str) -> None:
    problems = staging_gate_problems("prod-1", "3.32.0", [staging_read("stg-1", journal=UPGRADED), read], GATE)
    assert len(problems) == 1, problems
    assert problems[0].startswith("The staging gate refuses to upgrade prod-1 to 3.32.0"), problems
    assert named in problems[0] and "stg-1" not in problems[0], problems
    assert "tts_skip_staging_gate=true" in problems[0] and "--limit staging" in problems[0], problems


def test_a_production_host_with_another_target_than_staging_is_refused() -> None:
    problems = staging_gate_problems("prod-2", "3.33.0", [staging_read("stg-1", journal=UPGRADED)], GATE)
    assert len(problems) == 1 and "stg-1 runs 3.32.0, not 3.33.0" in problems[0], problems


def test_without_staging_hosts_only_the_override_lets_production_go() -> None:
    (problem,) = staging_gate_problems("prod-1", "3.32.0", [], GATE)
    assert "no host in group staging" in problem and "tts_allow_no_staging=true" in problem
    assert staging_gate_problems("prod-1", "3.32.0", [], dict(GATE, tts_allow_no_staging="true")) == []


def test_skipping_the_gate_lets_production_go_whatever_staging_runs() -> None:
    reads = [staging_read("stg-1", version="3.31.1")]
    assert staging_gate_problems("prod-1", "3.32.0", reads, dict(GATE, tts_skip_staging_gate=True)) == []


def test_skipping_the_gate_needs_a_reason() -> None:
    variables = dict(UPGRADE_PLAYBOOK, tts_skip_staging_gate="yes", tts_skip_staging_gate_reason="  ")
    (problem,) = playbook_input_problems("upgrade", variables, HOSTS)
    assert "tts_skip_staging_gate_reason" in problem
    variables["tts_skip_staging_gate_reason"] = "staging is down for maintenance; change CHG-1234"
    assert playbook_input_problems("upgrade", variables, HOSTS) == []


def test_the_summary_has_a_line_for_every_host() -> None:
    reports = {"stg-1": {"summary": "stg-1: upgraded 3.31.1 -> 3.32.0 via 3.32.0"}, "prod-1": None}
    assert run_summary(["stg-1", "prod-1"], reports) == [
        "stg-1: upgraded 3.31.1 -> 3.32.0 via 3.32.0",
        "prod-1: not upgraded in this run",
    ]
