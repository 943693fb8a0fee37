from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.lorawan.tts.plugins.module_utils.journal import (
    INTERRUPTED,
    LIVE,
    NOTHING_STOPPED,
    ROLL_BACK,
    SEAL,
    Journal,
    JournalError,
    boot_id,
    close_run,
    failure_text,
    judge,
    moved_since,
    open_run,
    process_start,
    run_state,
    takeover_action,
    this_process,
)

BOOT = "boot-1"
NOW = 1_800_000_000.0
HERE = {"host": "controller-a", "pid": 10, "start": "5", "processes": [{"pid": 10, "start": "5"}]}


def held(**changes) -> dict:
    record = {
        "run": "old",
        "controller": {"host": "controller-a", "pid": 99, "start": "7"},
        "boot_id": BOOT,
        "worker": None,
        "outcome": None,
        "phase": "preflight",
        "updated": NOW - 5,
        "marks": [],
    }
    record.update(changes)
    return record


def dead_process() -> dict:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return {"pid": child.pid, "start": "1"}


def test_no_journal_or_a_closed_one_is_free() -> None:
    assert judge(None, NOW, BOOT, HERE, 1800)["state"] == "free"
    assert judge(held(outcome="upgraded"), NOW, BOOT, HERE, 1800)["state"] == "free"


def test_a_run_from_this_controller_lives_while_its_process_does() -> None:
    alive = dict(HERE, processes=[{"pid": 99, "start": "7"}])
    assert judge(held(), NOW, BOOT, alive, 1800)["state"] == LIVE
    verdict = judge(held(), NOW, BOOT, HERE, 1800)
    assert verdict["state"] == INTERRUPTED
    assert "ansible-playbook process has ended" in verdict["why"]


def test_a_reused_pid_is_not_the_run() -> None:
    reused = dict(HERE, processes=[{"pid": 99, "start": "8"}])
    assert judge(held(), NOW, BOOT, reused, 1800)["state"] == INTERRUPTED


def test_a_step_still_running_on_the_host_keeps_the_run_alive() -> None:
    record = held(worker=this_process(), controller={"host": "gone", "pid": 1, "start": "1"})
    assert judge(record, NOW, BOOT, HERE, 1800)["state"] == LIVE
    record["worker"] = dead_process()
    record["updated"] = NOW - 4000
    assert judge(record, NOW, BOOT, HERE, 1800)["state"] == INTERRUPTED


def test_a_run_from_another_controller_is_stale_after_silence() -> None:
    other = held(controller={"host": "awx-job-17", "pid": 99, "start": "7"})
    verdict = judge(other, NOW, BOOT, HERE, 1800)
    assert verdict["state"] == LIVE
    assert "tts_lock_stale_after" in verdict["why"]
    other["updated"] = NOW - 1801
    assert judge(other, NOW, BOOT, HERE, 1800)["state"] == INTERRUPTED


def test_a_controller_that_cannot_list_processes_waits_for_silence() -> None:
    blind = dict(HERE, processes=None)
    assert judge(held(), NOW, BOOT, blind, 1800)["state"] == LIVE


def test_a_restart_of_the_host_ends_every_run() -> None:
    verdict = judge(held(worker=this_process()), NOW, "boot-2", HERE, 1800)
    assert verdict["state"] == INTERRUPTED
    assert "restarted" in verdict["why"]


def test_an_abandoned_run_is_taken_over_at_once() -> None:
    alive = dict(HERE, processes=[{"pid": 99, "start": "7"}])
    assert judge(held(abandoned=True), NOW, BOOT, alive, 1800)["state"] == INTERRUPTED


@pytest.mark.parametrize(
    ("phases", "captured", "action"),
    [
        ([], False, NOTHING_STOPPED),
        (["stop"], False, ROLL_BACK),
        (["stop", "backup"], False, ROLL_BACK),
        (["stop", "backup", "migrate 3.32.0"], True, ROLL_BACK),
        (["stop", "backup", "migrate 3.32.0", "start", "verify"], True, ROLL_BACK),
        (["stop", "backup", "migrate 3.32.0", "start", "verify", "serving"], True, SEAL),
        (["stop", "backup", "migrate 3.98.0", "rollback restore", "rollback start"], True, ROLL_BACK),
        (["stop", "backup", "migrate 3.98.0", "rollback start", "rollback verify", "serving"], True, SEAL),
        (["stop", "backup", "rollback start", "rollback verify", "serving"], False, NOTHING_STOPPED),
    ],
)
def test_what_a_takeover_does(phases: list[str], captured: bool, action: str) -> None:
    marks = [[phase, NOW] for phase in phases]
    assert takeover_action(held(marks=marks, captured=captured)) == action


def test_open_refuses_a_live_run_and_leaves_its_journal(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path), clock=lambda: NOW)
    journal.write(held())
    before = (tmp_path / ".lorawan-tts.journal").read_bytes()
    alive = dict(HERE, processes=[{"pid": 99, "start": "7"}])
    result = open_run(journal, "new", {"from": "3.31.1"}, alive, 1800, BOOT)
    assert not result["opened"]
    assert "run old from controller-a" in result["held_by"]
    assert (tmp_path / ".lorawan-tts.journal").read_bytes() == before


def test_open_adopts_a_stopped_run_and_the_next_takeover_still_sees_it(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path), clock=lambda: NOW)
    cutover = {"dest": "/backups/x", "from_version": "3.31.1"}
    journal.write(held(marks=[["stop", NOW], ["backup", NOW]], captured=True, cutover=cutover))
    first = open_run(journal, "second", {}, HERE, 1800, BOOT)
    assert first["taken_over"]["action"] == ROLL_BACK
    assert first["journal"]["run"] == "second"
    assert first["journal"]["cutover"] == cutover
    assert first["journal"]["adopted_from"] == "old"
    # The second run dies too, before it rolled back: the third one still finds what to undo.
    record = journal.read()
    record["controller"] = {"host": "controller-a", "pid": 98, "start": "1"}
    journal.write(record)
    third = open_run(journal, "third", {}, HERE, 1800, BOOT)
    assert third["taken_over"]["action"] == ROLL_BACK
    assert third["taken_over"]["cutover"] == cutover


def test_open_after_a_run_that_stopped_nothing_starts_afresh(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path), clock=lambda: NOW)
    journal.write(held(phase="preflight"))
    result = open_run(journal, "new", {"from": "3.31.1", "to": "3.32.0", "started": "1000.5"}, HERE, 1800, BOOT)
    assert result["taken_over"]["action"] == NOTHING_STOPPED
    assert result["journal"]["marks"] == [["preflight", 1000.5]]
    assert result["journal"]["to"] == "3.32.0"
    assert "adopted_from" not in result["journal"]


def test_close_and_abandon(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path), clock=lambda: NOW)
    open_run(journal, "run-1", {}, HERE, 1800, BOOT)
    journal.update("run-1", mark="files")
    assert close_run(journal, "run-1")["outcome"] == "upgraded"
    open_run(journal, "run-2", {}, HERE, 1800, BOOT)
    journal.update("run-2", mark="pull", failure="pull: no such tag")
    assert close_run(journal, "run-2")["outcome"] == "failed", "nothing stopped: closed, not abandoned"
    open_run(journal, "run-3", {}, HERE, 1800, BOOT)
    journal.update("run-3", mark="stop")
    journal.update("run-3", failure="migrate 3.98.0: exit 255", rollback_failure="redis is down")
    abandoned = close_run(journal, "run-3")
    assert abandoned["outcome"] is None
    assert abandoned["abandoned"]
    assert judge(abandoned, NOW, BOOT, HERE, 1800)["state"] == INTERRUPTED
    with pytest.raises(JournalError, match="belongs to run-3, not to this run"):
        close_run(journal, "run-1", "upgraded")


def test_notes_mark_phases_and_keep_what_failed(tmp_path: Path) -> None:
    ticks = iter(range(100))
    journal = Journal(str(tmp_path), clock=lambda: NOW + next(ticks))
    opened = open_run(journal, "run-1", {"started": NOW - 3}, HERE, 1800, BOOT)
    assert opened["journal"]["marks"] == [["preflight", NOW - 3]]
    record = journal.update("run-1", mark="pull", hops=["3.32.0"])
    assert record["marks"][-1][0] == "pull"
    assert (record["phase"], record["hops"]) == ("pull", ["3.32.0"])
    assert journal.update("run-1") == journal.read(), "nothing to note: nothing written"
    assert run_state(record) == {
        "stopped": False,
        "captured": False,
        "serving": False,
        "rolled_back": False,
        "failed": False,
        "outcome": "upgraded",
    }
    record = journal.update("run-1", mark="stop")
    record = journal.update("run-1", mark="serving", captured=True)
    assert run_state(record)["serving"] and run_state(record)["stopped"]
    record = journal.update("run-1", mark="seal", failure="seal: disk full")
    assert run_state(record)["serving"], "sealing the backup: the new version still serves"
    assert run_state(record)["outcome"] == "failed"
    assert run_state(dict(record, rolled_back=True))["outcome"] == "rolled-back"
    assert journal.held_by("run-2") is None
    assert run_state(None)["outcome"] == "upgraded"


def test_failure_text_names_the_task_or_takes_the_cutovers_own() -> None:
    assert failure_text("Upgrade | cutover | Stop", {"failure": "migrate 3.98.0: exit 255", "msg": "x"}) == (
        "migrate 3.98.0: exit 255"
    )
    assert failure_text("Pull", {"msg": "All items failed", "results": [{"failed": True, "msg": "no tag"}]}) == (
        "Pull: no tag"
    )
    assert failure_text("", {}) == "a task: failed"
    assert len(failure_text("x", {"msg": "y" * 5000})) == 1500


def test_the_module_abandons_the_journal_of_a_run_that_leaves_the_stack_stopped(tmp_path: Path, capsys):
    # The role's unlock step once opened the journal instead, and failed: its own run held it.
    from ansible.module_utils.testing import patch_module_args
    from ansible_collections.lorawan.tts.plugins.modules import upgrade_journal

    journal = Journal(str(tmp_path))
    open_run(journal, "run-1", {}, HERE, 1800, BOOT)
    journal.update("run-1", mark="stop", failure="migrate: exit 255", rollback_failure="redis is down")
    arguments = {"project_src": str(tmp_path), "run": "run-1", "state": "closed"}
    with patch_module_args(arguments), pytest.raises(SystemExit):
        upgrade_journal.main()
    result = json.loads(capsys.readouterr().out)
    assert not result.get("failed"), result
    record = journal.read()
    assert (record["abandoned"], record["outcome"], record["worker"]) == (True, None, None)
    assert judge(record, NOW, BOOT, HERE, 1800)["state"] == INTERRUPTED


def test_the_journal_is_private_and_replaced_whole(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path), clock=lambda: NOW)
    open_run(journal, "run-1", {"from": "3.31.1"}, HERE, 1800, BOOT)
    path = tmp_path / ".lorawan-tts.journal"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["run"] == "run-1"
    assert [entry.name for entry in tmp_path.iterdir()] == [".lorawan-tts.journal"]


def test_a_damaged_journal_is_refused_with_its_path(tmp_path: Path) -> None:
    (tmp_path / ".lorawan-tts.journal").write_text("{half")
    with pytest.raises(JournalError, match="not a journal this collection wrote"):
        Journal(str(tmp_path)).read()


def test_this_host_and_process() -> None:
    assert boot_id()
    assert process_start(os.getpid()) == this_process()["start"]
    assert process_start(dead_process()["pid"]) is None


def test_moved_tells_whether_another_run_used_the_journal_since_a_read(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path), clock=lambda: NOW)
    assert not moved_since({}, open_run(journal, "first", {}, HERE, 1800, BOOT)["previous"])
    close_run(journal, "first", "upgraded")
    seen = {key: value for key, value in journal.read().items() if key in ("run", "phase", "outcome", "updated")}
    assert not moved_since(seen, open_run(journal, "second", {}, HERE, 1800, BOOT)["previous"])
    close_run(journal, "second", "upgraded")
    # A third run opened and closed the journal after `seen` was read: the read may be out of date.
    open_run(journal, "third", {}, HERE, 1800, BOOT)
    close_run(journal, "third", "upgraded")
    assert moved_since(seen, open_run(journal, "fourth", {}, HERE, 1800, BOOT)["previous"])
    assert moved_since({}, {"run": "fourth", "updated": NOW})
