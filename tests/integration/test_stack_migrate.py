"""lorawan.tts.stack_migrate and the upgrade_path filter against sandbox deployments."""

from __future__ import annotations

import pytest
from ttssandbox.deployment import wait_healthy
from ttssandbox.fingerprint import data_differences


def migrate_play(deployment, from_version: str, to_version: str, *, check: bool = False, extra: str = "") -> str:
    return f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: migrate
      lorawan.tts.stack_migrate:
        project_src: {deployment.dir}
        from_version: "{from_version}"
        to_version: "{to_version}"
{extra}      check_mode: {str(check).lower()}
      ignore_errors: true
"""


NS_DEVICES = "ttn:v3:ns:devices:schema-version"
NS_UPLINKS = "ttn:v3:ns:application-uplinks:schema-version"
AS_KEY = "ttn:v3:as:schema-version"
DCS_KEY = "ttn:v3:dcs:schema-version"


def commands(result: dict) -> list[str]:
    return [" ".join(command["argv"]) for command in result["commands"]]


def test_one_hop_plans_runs_and_is_idempotent(deploy, run_playbook) -> None:
    deployment = deploy("3.31.1")
    applied = deployment.sql("SELECT count(*) FROM bun_migrations")
    deployment.compose("stop", "stack")
    deployment.set_stack_tag("3.32.0")

    predicted = run_playbook(migrate_play(deployment, "3.31.1", "3.32.0", check=True)).result("migrate")
    assert predicted["changed"] is True
    assert predicted["commands"] == []
    # Every Redis schema version is at 1 already: nothing to run but is-db migrate.
    assert [" ".join(argv) for argv in predicted["plan"]] == ["is-db migrate"]
    assert deployment.sql("SELECT count(*) FROM bun_migrations") == applied

    migrated = run_playbook(migrate_play(deployment, "3.31.1", "3.32.0")).result("migrate")
    assert migrated.get("failed") is not True, migrated
    assert migrated["changed"] is True
    assert commands(migrated) == ["is-db migrate"]
    assert [command["applied"] for command in migrated["commands"]] == [True]
    assert int(deployment.sql("SELECT count(*) FROM bun_migrations")) == int(applied) + 1

    again = run_playbook(migrate_play(deployment, "3.31.1", "3.32.0")).result("migrate")
    assert again["changed"] is False
    assert commands(again) == ["is-db migrate"]
    assert all(command["rc"] == 0 for command in again["commands"])

    assert deployment.compose("up", "--detach", "stack").returncode == 0
    wait_healthy(deployment.dir)


def test_refusals_run_nothing(deploy, run_playbook) -> None:
    deployment = deploy("3.31.1")
    before = deployment.fingerprint()

    deployment.set_stack_tag("3.32.0")
    wrong_tag = run_playbook(migrate_play(deployment, "3.31.1", "3.32.2")).result("migrate")
    assert wrong_tag["failed"] is True
    assert "not 3.32.2: set the tag first" in wrong_tag["msg"]

    gate = run_playbook(migrate_play(deployment, "3.18.2", "3.32.0")).result("migrate")
    assert gate["failed"] is True
    assert "upgrade to 3.19.2 first" in gate["msg"]
    assert "3.18.2 -> 3.19.2 -> 3.24.2 -> 3.32.0" in gate["msg"]
    assert gate["commands"] == []

    unknown = run_playbook(migrate_play(deployment, "3.31.1", "3.32.0", extra="        service: lorawan\n")).result(
        "migrate"
    )
    assert unknown["failed"] is True
    assert "unknown service(s) lorawan" in unknown["msg"]
    assert "postgres, redis, stack" in unknown["msg"]

    after = deployment.fingerprint()
    assert after["postgres"] == before["postgres"]
    assert after["redis"] == before["redis"]


def test_a_failing_migration_names_the_command_and_the_way_back(deploy, run_playbook) -> None:
    deployment = deploy("3.32.2")
    deployment.compose("stop", "stack")
    deployment.set_stack_tag("3.98.0")
    failed = run_playbook(migrate_play(deployment, "3.32.2", "3.98.0")).result("migrate")
    assert failed["failed"] is True
    assert failed["msg"].startswith("is-db migrate failed (exit 255) migrating 3.32.2 to 3.98.0")
    assert "backfill_gateway_regions failed" in failed["msg"]
    assert "restore the backup" in failed["msg"]
    assert commands(failed) == ["is-db migrate"]


def test_redis_components_run_only_for_missing_keys_and_only_ns_db_gets_force(deploy, run_playbook) -> None:
    deployment = deploy("3.31.1")
    deployment.redis("DEL", NS_DEVICES, NS_UPLINKS, AS_KEY)
    deployment.compose("stop", "stack")
    deployment.set_stack_tag("3.32.0")
    migrated = run_playbook(migrate_play(deployment, "3.31.1", "3.32.0")).result("migrate")
    assert migrated.get("failed") is not True, migrated
    assert commands(migrated) == ["is-db migrate", "ns-db migrate --force", "as-db migrate"]
    assert [command["applied"] for command in migrated["commands"]] == [True, True, True]
    assert [deployment.redis("GET", key) for key in (NS_DEVICES, NS_UPLINKS, AS_KEY)] == ["1", "1", "1"]

    again = run_playbook(migrate_play(deployment, "3.31.1", "3.32.0")).result("migrate")
    assert commands(again) == ["is-db migrate"]
    assert again["changed"] is False


def test_enterprise_hops_run_noc_every_hop_storage_across_3_26_and_dcs_when_missing(deploy, run_playbook) -> None:
    deployment = deploy("3.24.2", "--edition", "enterprise")
    deployment.compose("stop", "stack", "grafana")
    deployment.redis("DEL", DCS_KEY)
    for start, target, expected in (
        ("3.24.2", "3.25.0", ["is-db migrate", "noc-db migrate", "dcs-db migrate"]),
        ("3.25.0", "3.26.0", ["is-db migrate", "noc-db migrate", "storage-db migrate"]),
    ):
        deployment.set_stack_tag(target)
        migrated = run_playbook(migrate_play(deployment, start, target)).result("migrate")
        assert migrated.get("failed") is not True, migrated
        assert migrated["edition"] == "enterprise"
        assert commands(migrated) == expected
    assert deployment.redis("GET", DCS_KEY) == "1"
    storage = deployment.sql("SELECT string_agg(name, ',' ORDER BY name) FROM storage_migrations")
    assert storage == "storage_uplinks,storage_uplinks_partitions,storage_uplinks_received_at"
    assert deployment.compose("up", "--detach").returncode == 0
    wait_healthy(deployment.dir)


def test_multi_hop_upgrade_through_the_gates_keeps_the_data(deploy, run_playbook) -> None:
    deployment = deploy("3.18.2")
    before = deployment.fingerprint()
    hops = run_playbook(
        """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: plan
      ansible.builtin.debug:
        msg: "{{ '3.18.2' | lorawan.tts.upgrade_path('3.32.2') }}"
"""
    ).result("plan")["msg"]
    assert hops == ["3.19.2", "3.24.2", "3.32.2"]

    deployment.compose("stop", "stack")
    current = "3.18.2"
    for hop in hops:
        deployment.set_stack_tag(hop)
        migrated = run_playbook(migrate_play(deployment, current, hop)).result("migrate")
        assert migrated.get("failed") is not True, migrated
        assert commands(migrated) == ["is-db migrate"]
        current = hop
    assert deployment.compose("up", "--detach", "stack").returncode == 0
    wait_healthy(deployment.dir)

    after = deployment.fingerprint()
    assert after["stack_version"] == "3.32.2"
    assert data_differences(before, after) == []


@pytest.mark.parametrize(
    ("entrypoint", "command"),
    [
        ("entrypoint: ttn-lw-stack\n", "command: start all -c /config/ttn-lw-stack-docker.yml\n"),
        # The image has no ENTRYPOINT (as TTS's): the command names the binary.
        ("", "command: ttn-lw-stack -c /config/ttn-lw-stack-docker.yml start\n"),
    ],
    ids=["entrypoint-binary", "no-entrypoint"],
)
def test_an_upgrade_carries_the_config_file_flag_of_the_stack_command(
    deploy, run_playbook, tmp_path, entrypoint: str, command: str
) -> None:
    """Layouts real files use, with the database URI only in the config file: `entrypoint: ttn-lw-stack` and
    `command: start all -c FILE`, or no entrypoint. A migration command replaces the service's command, so it must
    carry the binary and `-c FILE` itself."""
    deployment = deploy("3.31.1")
    compose_file = deployment.dir / "docker-compose.yml"
    text = compose_file.read_text()
    for old, new in (
        ("    entrypoint: ttn-lw-stack -c /config/ttn-lw-stack-docker.yml\n", entrypoint and "    " + entrypoint),
        ("    command: start\n", "    " + command),
        ("      TTN_LW_IS_DATABASE_URI: postgres://root:root@postgres:5432/ttn_lorawan?sslmode=disable\n", ""),
    ):
        assert old in text
        text = text.replace(old, new)
    compose_file.write_text(text)
    config = deployment.dir / "config" / "stack" / "ttn-lw-stack-docker.yml"
    config.write_text(
        config.read_text().replace(
            "is:\n", 'is:\n  database-uri: "postgres://root:root@postgres:5432/ttn_lorawan?sslmode=disable"\n', 1
        )
    )
    assert deployment.compose("up", "--detach", "stack").returncode == 0
    wait_healthy(deployment.dir)
    applied = int(deployment.sql("SELECT count(*) FROM bun_migrations"))

    run = run_playbook(
        f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: upgrade
      ansible.builtin.include_role:
        name: lorawan.tts.upgrade
      vars:
        tts_project_dir: {deployment.dir}
        tts_backup_dir: {tmp_path / "backups"}
        tts_target_version: "3.32.2"
    - name: report
      ansible.builtin.debug:
        var: tts_upgrade
"""
    )
    assert run.rc == 0, run.stderr
    report = run.result("report")["tts_upgrade"]
    assert report["result"] == "upgraded", report
    assert report["migrations"][0]["applied"] == ["is-db migrate"]
    assert int(deployment.sql("SELECT count(*) FROM bun_migrations")) > applied
    assert deployment.fingerprint()["stack_version"] == "3.32.2"
