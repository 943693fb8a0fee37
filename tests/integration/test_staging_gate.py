"""The upgrade playbook's staging gate, and its summary, as an operator meets them with `--limit`.

Two sandbox deployments: stg-1 in group staging, prod-1 in group production. The gate reads the staging hosts' state
on them, so a run limited to production cannot skip it; a failure ends with the run's summary; every host's line
goes to the run's statistics (set_stats, AWX's job artifacts).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ttssandbox.fingerprint import data_differences

from .conftest import DeployFactory, Deployment, PlaybookRun, run

BASE = "3.31.1"
TARGET = "3.32.0"
FAILS_MIGRATING = "3.98.0"
REASON = "staging is being rebuilt; change CHG-1234"


def write_inventory(directory: Path, staging: Deployment, production: Deployment) -> Path:
    host = {"ansible_connection": "local"}
    inventory = {
        "all": {
            "vars": {
                "tts_target_version": TARGET,
                "tts_backup_dir": str(directory / "backups"),
                "tts_report_dir": str(directory / "reports"),
            },
            "children": {
                "staging": {"hosts": {"stg-1": dict(host, tts_project_dir=str(staging.dir))}},
                "production": {"hosts": {"prod-1": dict(host, tts_project_dir=str(production.dir))}},
            },
        }
    }
    path = directory / "inventory.json"
    path.write_text(json.dumps(inventory))
    return path


def upgrade(inventory: Path, env: dict[str, str], *options: str) -> PlaybookRun:
    result = run(["ansible-playbook", "lorawan.tts.upgrade", "-i", str(inventory), *options], env=env)
    try:
        output = json.loads(result.stdout)
    except ValueError:
        output = {}
    return PlaybookRun(result.returncode, output, result.stderr + result.stdout[-6000:])


def reports(directory: Path, host: str) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted((directory / "reports" / host).glob("*.json"))]


def summary(result: PlaybookRun) -> list[str]:
    return result.result("Upgrade | summary | One line per host")["msg"]


@pytest.fixture
def pair(deploy: DeployFactory) -> tuple[Deployment, Deployment]:
    return deploy(BASE, "--seed", "small"), deploy(BASE, "--seed", "small")


def test_limit_to_production_cannot_skip_the_staging_gate(pair, ansible_env, tmp_path: Path) -> None:
    staging, production = pair
    inventory = write_inventory(tmp_path, staging, production)
    before = production.fingerprint()
    compose_file = (production.dir / "docker-compose.yml").read_bytes()

    refused = upgrade(inventory, ansible_env, "--limit", "prod-1")
    assert refused.rc != 0, refused.stderr
    message = refused.result("Upgrade | gate | Refuse this host unless every staging host runs its target and upgraded")
    assert message.get("failed"), message
    assert "The staging gate refuses to upgrade prod-1 to 3.32.0" in message["msg"], message
    assert "stg-1 runs 3.31.1, not 3.32.0" in message["msg"], message
    assert (production.dir / "docker-compose.yml").read_bytes() == compose_file
    assert production.fingerprint() == before
    assert not (tmp_path / "reports" / "prod-1").exists()

    # A staging failure is rolled back and ends the run with its summary; production is not run.
    failing = upgrade(
        inventory, ansible_env, "-e", f"tts_target_version={FAILS_MIGRATING}", "-e", "tts_allow_unreleased_version=true"
    )
    assert failing.rc != 0, failing.stderr
    ending = failing.result("Upgrade | rollout | Fail with the run's summary")
    assert ending.get("failed"), ending
    assert ending["msg"].startswith("stg-1 failed (above). The run so far: stg-1: rolled-back 3.31.1 -> 3.98.0"), ending
    assert ending["msg"].endswith("| prod-1: not upgraded in this run"), ending
    assert failing.output["custom_stats"]["tts_upgrade"]["stg-1"]["result"] == "rolled-back", failing.output
    assert "prod-1" not in failing.output["stats"], failing.output["stats"]
    assert staging.fingerprint()["stack_version"] == BASE

    # Staging alone, then production alone: the gate now reads stg-1 at the target and lets prod-1 go.
    staged = upgrade(inventory, ansible_env, "--limit", "stg-1")
    assert staged.rc == 0, staged.stderr
    assert summary(staged)[0].startswith("stg-1: upgraded 3.31.1 -> 3.32.0"), summary(staged)
    assert summary(staged)[1] == "prod-1: not upgraded in this run", summary(staged)
    produced = upgrade(inventory, ansible_env, "--limit", "prod-1")
    assert produced.rc == 0, produced.stderr
    after = production.fingerprint()
    assert after["stack_version"] == TARGET
    assert data_differences(before, after) == []
    assert [report["result"] for report in reports(tmp_path, "prod-1")] == ["upgraded"]
    assert summary(produced)[1].startswith("prod-1: upgraded 3.31.1 -> 3.32.0"), summary(produced)
    assert produced.output["custom_stats"]["tts_upgrade"]["prod-1"]["result"] == "upgraded", produced.output


def test_skipping_the_gate_needs_a_reason_and_records_it(pair, ansible_env, tmp_path: Path) -> None:
    staging, production = pair
    inventory = write_inventory(tmp_path, staging, production)

    no_reason = upgrade(inventory, ansible_env, "--limit", "prod-1", "-e", "tts_skip_staging_gate=true")
    assert no_reason.rc != 0, no_reason.stderr
    check = no_reason.result("Upgrade | input | Refuse playbook variables that would not do what they say")
    assert "needs tts_skip_staging_gate_reason" in check["msg"] and "No host was touched" in check["msg"], check
    assert production.fingerprint()["stack_version"] == BASE

    skipped = upgrade(
        inventory,
        ansible_env,
        "--limit",
        "prod-1",
        "-e",
        json.dumps({"tts_skip_staging_gate": True, "tts_skip_staging_gate_reason": REASON}),
    )
    assert skipped.rc == 0, skipped.stderr
    assert production.fingerprint()["stack_version"] == TARGET
    assert staging.fingerprint()["stack_version"] == BASE
    (report,) = reports(tmp_path, "prod-1")
    assert report["notes"] == [f"staging gate skipped (tts_skip_staging_gate): {REASON}"], report
    assert REASON in report["summary"] and REASON in summary(skipped)[1], report
