"""The controller dies once the new version was started, or is cancelled as AWX cancels a job (SIGTERM): the
next run finishes what the interrupted one left, and no person acts."""

from __future__ import annotations

import signal

from tests.faults.interrupt import TARGET, phase
from tests.faults.takeover_checks import interrupt_then_run_again


def test_a_run_killed_after_the_start_is_rolled_back_and_redone(deploy, ansible_env, tmp_path):
    interrupted, output = interrupt_then_run_again(deploy, ansible_env, tmp_path, signal.SIGKILL, phase("verify"))
    assert "taking over the interrupted run " + interrupted["run"] in output, output[-4000:]
    assert "rolling back to 3.31.1 from its capture" in output
    assert "upgraded 3.31.1 -> " + TARGET in output


def test_a_run_killed_while_sealing_its_backup_is_sealed_by_the_next(deploy, ansible_env, tmp_path):
    interrupted, output = interrupt_then_run_again(deploy, ansible_env, tmp_path, signal.SIGKILL, phase("seal"))
    assert "taking over the interrupted run " + interrupted["run"] in output, output[-4000:]
    assert "A version serves again: sealing its backup" in output
    assert "already-current" in output


def test_a_cancelled_run_finishes_its_cutover_and_the_next_seals_it(deploy, ansible_env, tmp_path):
    # AWX cancels with SIGTERM: the cutover ignores it and finishes. It upgrades, and the next run finds the upgrade
    # done; or, when the signal reached the migration's docker CLI (which stops its container on SIGTERM), it rolls
    # back, and the next run upgrades.
    interrupted, output = interrupt_then_run_again(
        deploy, ansible_env, tmp_path, signal.SIGTERM, phase("migrate " + TARGET)
    )
    assert "taking over the interrupted run " + interrupted["run"] in output, output[-4000:]
    assert "A version serves again: sealing its backup" in output
    assert "already-current" in output or "upgraded 3.31.1 -> " + TARGET in output, output[-4000:]
