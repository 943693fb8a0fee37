"""The fleet: `ansible-playbook lorawan.tts.upgrade` on five sandbox deployments, each its own inventory host.

Two staging hosts (one reached over SSH on 127.0.0.2, through the sshd fixture of conftest.py) and three production
hosts. A staging host that fails leaves production untouched; a production host that fails stops the rollout at
the failure threshold; every failed host is rolled back; the others end at the target with their data intact.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ttssandbox.fingerprint import data_differences

from .conftest import DeployFactory, Deployment, PlaybookRun, SshServer, run, ssh_host_vars

BASE = "3.31.1"
TARGET = "3.32.0"
FAILS_MIGRATING = "3.98.0"  # its is-db migrate applies part of its work, then exits 1
NEVER_HEALTHY = "3.98.1"  # migrates and starts, but /healthz never answers 200


def test_modules_run_over_ssh(deploy: DeployFactory, sshd: SshServer, ansible_env, tmp_path: Path) -> None:
    """The SSH host works for ad-hoc modules: ping, and the collection's stack_info on a deployment."""
    deployment = deploy(BASE)
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"over-ssh": ssh_host_vars(sshd)}}}))
    ping = run(["ansible", "over-ssh", "-i", str(inventory), "-m", "ansible.builtin.ping"], env=ansible_env)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    info = run(
        [
            "ansible",
            "over-ssh",
            "-i",
            str(inventory),
            "-m",
            "lorawan.tts.stack_info",
            "-a",
            f"project_src={deployment.dir}",
        ],
        env=ansible_env,
    )
    assert info.returncode == 0, info.stdout + info.stderr
    assert f'"stack_version": "{BASE}"' in info.stdout


@dataclass
class FleetHost:
    name: str
    group: str
    deployment: Deployment
    host_vars: dict[str, object] = field(default_factory=dict)
    before: dict = field(default_factory=dict)
    compose_file: bytes = b""

    def snapshot(self) -> None:
        self.before = self.deployment.fingerprint()
        self.compose_file = (self.deployment.dir / "docker-compose.yml").read_bytes()


@dataclass
class Fleet:
    hosts: dict[str, FleetHost]
    inventory: Path
    report_dir: Path

    def reports(self, name: str) -> list[dict]:
        return [json.loads(path.read_text()) for path in sorted((self.report_dir / name).glob("*.json"))]


def build_fleet(
    deploy: DeployFactory, server: SshServer, directory: Path, overrides: dict[str, dict[str, object]]
) -> Fleet:
    """Five fresh deployments at BASE: staging stg-local, stg-ssh (over SSH); production prod-1..3, in that order."""
    layout = [("stg-local", "staging"), ("stg-ssh", "staging"), ("prod-1", "production")]
    layout += [("prod-2", "production"), ("prod-3", "production")]
    with ThreadPoolExecutor(max_workers=len(layout)) as pool:
        deployments = list(pool.map(lambda _: deploy(BASE), layout))
    hosts = {}
    for (name, group), deployment in zip(layout, deployments, strict=True):
        host_vars: dict[str, object] = (
            ssh_host_vars(server, pipelining=True) if name == "stg-ssh" else {"ansible_connection": "local"}
        )
        host_vars |= {"tts_project_dir": str(deployment.dir), **overrides.get(name, {})}
        hosts[name] = FleetHost(name, group, deployment, host_vars)
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        list(pool.map(FleetHost.snapshot, hosts.values()))
    report_dir = directory / "reports"
    # tts_target_version is an inventory variable so that a host can override it; extra vars would win over it.
    inventory = {
        "all": {
            "vars": {
                "tts_target_version": TARGET,
                # The stand-in's failing releases, 3.98.x, are newer than any real one.
                "tts_allow_unreleased_version": True,
                "tts_backup_dir": str(directory / "backups"),
                "tts_report_dir": str(report_dir),
            },
            "children": {
                group: {"hosts": {host.name: host.host_vars for host in hosts.values() if host.group == group}}
                for group in ("staging", "production")
            },
        }
    }
    path = directory / "inventory.json"
    path.write_text(json.dumps(inventory, indent=2))
    return Fleet(hosts, path, report_dir)


def upgrade(fleet: Fleet, env: dict[str, str], **playbook_variables: object) -> PlaybookRun:
    """The collection's playbook, one host per batch, the first failure stops a group."""
    options = json.dumps({"tts_upgrade_serial": 1, "tts_max_fail_percentage": 0, **playbook_variables})
    result = run(["ansible-playbook", "lorawan.tts.upgrade", "-i", str(fleet.inventory), "-e", options], env=env)
    try:
        output = json.loads(result.stdout)
    except ValueError:
        output = {}
    return PlaybookRun(result.returncode, output, result.stderr + result.stdout[-4000:])


def assert_upgraded(fleet: Fleet, name: str) -> None:
    host = fleet.hosts[name]
    after = host.deployment.fingerprint()
    assert after["stack_version"] == TARGET, f"{name}: {after['stack_version']}"
    assert data_differences(host.before, after) == [], name
    assert host.deployment.healthz() == 200, name
    assert [report["result"] for report in fleet.reports(name)] == ["upgraded"], name


def assert_rolled_back(fleet: Fleet, name: str) -> None:
    host = fleet.hosts[name]
    after = host.deployment.fingerprint()
    assert after["stack_version"] == BASE, f"{name}: {after['stack_version']}"
    assert after == host.before, f"{name}: not the state before the upgrade"
    assert (host.deployment.dir / "docker-compose.yml").read_bytes() == host.compose_file, name
    assert host.deployment.healthz() == 200, name
    reports = fleet.reports(name)
    assert [report["result"] for report in reports] == ["rolled-back"], name
    assert reports[0]["to"] == host.host_vars["tts_target_version"], reports[0]
    assert reports[0]["failure"], reports[0]
    assert Path(reports[0]["backup"]["path"]).is_dir(), reports[0]


def assert_untouched(fleet: Fleet, name: str, output: dict) -> None:
    host = fleet.hosts[name]
    assert name not in output.get("stats", {}), f"{name} was run"
    assert (host.deployment.dir / "docker-compose.yml").read_bytes() == host.compose_file, name
    assert host.deployment.fingerprint() == host.before, name
    assert host.deployment.healthz() == 200, name
    assert not (fleet.report_dir / name).exists(), name


def test_failing_staging_host_leaves_production_untouched(
    deploy: DeployFactory, sshd: SshServer, ansible_env, tmp_path: Path
) -> None:
    """stg-ssh (second in staging, over SSH) fails its is-db migration half-way: rolled back, production not run."""
    fleet = build_fleet(deploy, sshd, tmp_path, {"stg-ssh": {"tts_target_version": FAILS_MIGRATING}})
    result = upgrade(fleet, ansible_env)
    assert result.rc != 0, result.stderr
    assert result.output, f"no JSON from the test_results callback: {result.stderr}"
    stats = result.output["stats"]
    assert stats["stg-ssh"]["failures"] >= 1, stats
    assert stats["stg-local"]["failures"] == 0, stats
    assert_upgraded(fleet, "stg-local")
    assert_rolled_back(fleet, "stg-ssh")
    for name in ("prod-1", "prod-2", "prod-3"):
        assert_untouched(fleet, name, result.output)


def test_failing_production_host_stops_the_rollout(
    deploy: DeployFactory, sshd: SshServer, ansible_env, tmp_path: Path
) -> None:
    """Staging (one host over SSH) succeeds; prod-2 never gets healthy: rolled back, prod-3 is not run.

    prod-2's target is not what staging runs, so the staging gate would refuse it (tests/integration/
    test_staging_gate.py): the run skips the gate, as an operator may, to reach a failure in production."""
    overrides = {"prod-2": {"tts_target_version": NEVER_HEALTHY, "tts_healthcheck_timeout": 30}}
    fleet = build_fleet(deploy, sshd, tmp_path, overrides)
    result = upgrade(
        fleet,
        ansible_env,
        tts_skip_staging_gate=True,
        tts_skip_staging_gate_reason="prod-2 tries a release staging lacks",
    )
    assert result.rc != 0, result.stderr
    assert result.output, f"no JSON from the test_results callback: {result.stderr}"
    stats = result.output["stats"]
    assert stats["prod-2"]["failures"] >= 1, stats
    for name in ("stg-local", "stg-ssh", "prod-1"):
        assert stats[name]["failures"] == 0, stats
        assert_upgraded(fleet, name)
    assert_rolled_back(fleet, "prod-2")
    assert_untouched(fleet, "prod-3", result.output)
