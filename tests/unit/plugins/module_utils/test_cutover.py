"""The rollback's restore (plugins/module_utils/cutover.py), its steps faked: no Docker."""

from __future__ import annotations

import pytest
from ansible_collections.lorawan.tts.plugins.module_utils import cutover
from ansible_collections.lorawan.tts.plugins.module_utils.compose import ComposeError
from ansible_collections.lorawan.tts.plugins.module_utils.journal import CutoverJournal


class FakeProject:
    """Postgres' container started at each of started_at in turn (None: not running)."""

    project_src = "/srv/tts"
    command_name = "docker compose"

    def __init__(self, *started_at) -> None:
        self.started_at = list(started_at)

    def require_services(self, names):
        return {name: {"environment": ["POSTGRES_USER=root"]} for name in names}

    def forget_config(self) -> None:
        pass

    def containers(self, services):
        started = self.started_at.pop(0)
        state = {"Status": "running", "StartedAt": started} if started else {"Status": "exited"}
        return {services[0]: [{"State": state}]}


def rollback(project: FakeProject, monkeypatch, outcomes: list) -> tuple[cutover.Cutover, list[str]]:
    """A cutover whose Postgres restore answers each of outcomes in turn (an exception is raised)."""
    calls: list[str] = []

    def restore_postgres(pg, name):
        calls.append("restore " + name)
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def in_parallel(parts):
        try:
            return {"postgres": parts["postgres"]()}, {}
        except ComposeError as error:
            return {}, {"postgres": {"msg": str(error)}}

    monkeypatch.setattr(cutover, "restore_files", lambda dest: calls.append("files"))
    monkeypatch.setattr(cutover, "restore_snapshot", restore_postgres)
    monkeypatch.setattr(cutover, "in_parallel", in_parallel)
    monkeypatch.setattr(cutover.PostgresService, "wait_ready", lambda self, timeout: calls.append("wait"))
    monkeypatch.setattr(cutover.Cutover, "start_databases", lambda self: calls.append("start databases"))
    step = cutover.Cutover.__new__(cutover.Cutover)
    step.project = project
    step.dest = "/backups/x"
    step.clock = lambda: 0.0
    step.journal = CutoverJournal(None, "")
    step.params = {"postgres_service": "postgres", "redis_service": "redis", "snapshot": "snap", "backup_timeout": 5}
    step.result = {"marks": [], "captured": True, "capture": {}, "rolled_back": False, "migrations": []}
    step.old_images_in_place = False
    return step, calls


def test_a_postgres_that_went_away_during_the_restore_is_started_and_restored_again(monkeypatch) -> None:
    project = FakeProject("t1", None)
    step, calls = rollback(project, monkeypatch, [ComposeError("psql failed (exit 137): "), {"changed": True}])
    step.restore()
    assert calls == ["files", "start databases", "restore snap", "start databases", "wait", "restore snap"]
    assert step.result["rollback_restore_retried"] == "psql failed (exit 137): "
    assert [mark[0] for mark in step.result["marks"]] == ["rollback restore postgres again"]


def test_a_restore_that_fails_with_the_server_up_is_not_retried(monkeypatch) -> None:
    project = FakeProject("t1", "t1")
    step, calls = rollback(project, monkeypatch, [ComposeError("No space left on device")])
    with pytest.raises(ComposeError, match="restoring postgres failed: No space left on device"):
        step.restore()
    assert calls == ["files", "start databases", "restore snap"]
    assert "rollback_restore_retried" not in step.result


def test_a_second_failure_names_both(monkeypatch) -> None:
    project = FakeProject("t1", "t2")
    step, dummy_calls = rollback(project, monkeypatch, [ComposeError("killed"), ComposeError("killed again")])
    with pytest.raises(ComposeError, match=r"killed again \(the server had gone away .*first attempt.*: killed\)"):
        step.restore()
