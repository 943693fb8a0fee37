"""AWX cancels a job through ansible-runner: its cancel_callback returns True, and ansible-runner SIGKILLs
ansible-playbook's process group (ansible-runner 2.4, Runner.handle_termination; in an execution environment it
kills the container). Here the upgrade job is cancelled during its downtime, the migration, and the next job of
the same template must leave the deployment serving a known version with its data, and nothing open.

ansible-runner runs ansible-playbook on this machine (no execution environment, process_isolation off) to keep the
test fast; tests/integration/test_execution_environment.py runs the job in the container.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import ansible_runner
from ttssandbox.fingerprint import data_differences

from tests.faults.interrupt import FROM, JOURNAL, TARGET, phase, read_journal, write_inventory
from tests.integration.conftest import awx_extra_vars

# ansible-runner sets its own stdout callback (awx_display): the tests' JSON callback is left out.
RUNNER_ENV_LEFT_OUT = ("ANSIBLE_STDOUT_CALLBACK", "ANSIBLE_CALLBACK_PLUGINS")


def runner_env(ansible_env: dict[str, str]) -> dict[str, str]:
    """What ansible-runner adds to its own environment: the tests' Ansible settings and PATH."""
    settings = {name: value for name, value in ansible_env.items() if name.startswith("ANSIBLE_")}
    return {name: value for name, value in settings.items() if name not in RUNNER_ENV_LEFT_OUT} | {
        "PATH": ansible_env["PATH"]
    }


def run_job(
    jobs: Path,
    inventory: Path,
    ansible_env: dict[str, str],
    ident: str,
    cancel_callback: Callable[[], bool] | None = None,
) -> ansible_runner.Runner:
    job = jobs / ident  # a directory per job, as AWX makes
    job.mkdir(parents=True)
    return ansible_runner.run(
        private_data_dir=str(job),
        playbook="lorawan.tts.upgrade",
        inventory=str(inventory),
        extravars=awx_extra_vars(TARGET),
        envvars=runner_env(ansible_env),
        ident=ident,
        cancel_callback=cancel_callback,
        # AWX asks its cancel flag whenever ansible-playbook writes, or every pexpect_timeout seconds: often enough
        # to catch the migration, which takes seconds here.
        settings={"pexpect_timeout": 0.2},
        quiet=True,
    )


def test_a_job_cancelled_during_the_migration_is_recovered_by_the_next_job(deploy, ansible_env, tmp_path: Path):
    deployment = deploy(FROM, "--seed", "small")
    before = deployment.fingerprint()
    # The next job waits for a step that still runs on the host (the cutover, in a worker the cancel did not reach).
    inventory = write_inventory(tmp_path, deployment.dir, tts_lock_timeout=300)
    during_migration = phase("migrate " + TARGET)
    seen: list[dict] = []

    def cancel() -> bool:
        journal = read_journal(deployment.dir)
        if during_migration(journal, ""):
            seen.append(journal)
            return True
        return False

    cancelled = run_job(tmp_path / "jobs", inventory, ansible_env, "cancelled", cancel)
    assert (cancelled.status, cancelled.rc) == ("canceled", 254), cancelled.stdout.read()[-4000:]
    assert seen, "the job ended before its migration"

    again = run_job(tmp_path / "jobs", inventory, ansible_env, "again")
    output = again.stdout.read()
    assert again.status == "successful", output[-4000:]
    assert "taking over the interrupted run " + seen[0]["run"] in output, output[-4000:]
    assert "its ansible-playbook process has ended" in output, output[-4000:]
    after = deployment.fingerprint()
    assert after["stack_version"] in (FROM, TARGET), after["stack_version"]
    assert data_differences(before, after) == []
    assert deployment.healthz() == 200
    journal = read_journal(deployment.dir)
    assert journal["outcome"] and journal["worker"] is None, journal
    assert not (deployment.dir / ".lorawan-tts.lock").exists()
    assert sorted(path.name for path in deployment.dir.glob(".lorawan-tts*")) == [JOURNAL]
    print(f"cancelled in phase {seen[0]['phase']}; the next job: {journal['outcome']}, {after['stack_version']}")
