"""The controller is killed (SIGKILL of ansible-playbook, its workers and the module on the host) while the stack
is stopped: the next run takes the interrupted one over, rolls it back from its capture, then upgrades."""

from __future__ import annotations

import signal

import pytest

from tests.faults.interrupt import TARGET, mid_migration, phase
from tests.faults.takeover_checks import interrupt_then_run_again

MOMENTS = {
    "after the stop": phase("backup"),
    "after the backup": phase("migrate " + TARGET),
    "mid-migration": mid_migration,
}


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_run_killed_while_the_stack_is_stopped_is_rolled_back_and_redone(moment, deploy, ansible_env, tmp_path):
    interrupted, output = interrupt_then_run_again(deploy, ansible_env, tmp_path, signal.SIGKILL, MOMENTS[moment])
    assert "taking over the interrupted run " + interrupted["run"] in output, output[-4000:]
    assert "its ansible-playbook process has ended" in output
    assert "rolling back to 3.31.1 from its capture" in output
    assert "upgraded 3.31.1 -> " + TARGET in output
