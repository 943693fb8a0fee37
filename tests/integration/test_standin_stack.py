"""The stand-in The Things Stack behaves like TTS where an upgrade depends on it."""

from __future__ import annotations

import json
import time

import pytest
from ttssandbox.common import EDITIONS, REGISTRY, STACK_TAGS
from ttssandbox.deployment import healthz_port, healthz_status, wait_healthy

from .conftest import run

GATE_ERROR = "database needs to be upgraded to v3.19 before upgrading to v3.20"
NS_DEVICES = "ttn:v3:ns:devices:schema-version"
NS_UPLINKS = "ttn:v3:ns:application-uplinks:schema-version"
AS_KEY = "ttn:v3:as:schema-version"
JS_KEY = "ttn:v3:js:keys:schema-version"


@pytest.mark.parametrize("edition", sorted(EDITIONS))
@pytest.mark.parametrize("tag", STACK_TAGS)
def test_version_prints_the_tag_in_tts_format(edition: str, tag: str) -> None:
    spec = EDITIONS[edition]
    result = run(["docker", "run", "--rm", f"{REGISTRY}/{spec['repository']}:{tag}", spec["binary"], "version"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith(f": {spec['binary']}")
    assert f"{'Version:':<20} {tag}" in lines


def image_config(image: str) -> dict:
    inspected = run(["docker", "image", "inspect", "--format", "{{json .Config}}", image])
    assert inspected.returncode == 0, inspected.stderr
    return json.loads(inspected.stdout)


@pytest.mark.parametrize("edition", sorted(EDITIONS))
def test_the_image_is_shaped_as_tts_s(edition: str) -> None:
    """No ENTRYPOINT or CMD (the compose file gives both), uid 886, a health check every minute."""
    image = f"{REGISTRY}/{EDITIONS[edition]['repository']}:3.31.1"
    config = image_config(image)
    assert (config.get("Entrypoint"), config.get("Cmd")) == (None, None)
    assert config["User"] == "886:886"
    assert config["Healthcheck"]["Interval"] == 60 * 10**9
    bare = run(["docker", "run", "--rm", image])
    assert bare.returncode != 0


def test_what_the_stack_wrote_belongs_to_uid_886(deploy) -> None:
    deployment = deploy("3.31.1")
    for directory in ("blob", "acme"):
        owners = {(path.stat().st_uid, path.stat().st_gid) for path in (deployment.dir / directory).rglob("*")}
        assert owners == {(886, 886)}, directory
    assert {oct(path.stat().st_mode & 0o777) for path in (deployment.dir / "acme").iterdir()} == {"0o600"}
    result = deployment.compose("exec", "-T", "stack", "id", "-u")
    assert result.stdout.strip() == "886"


def test_binary_is_on_path_in_the_running_stack(deploy) -> None:
    deployment = deploy("3.31.1")
    result = deployment.compose("exec", "-T", "stack", "ttn-lw-stack", "version")
    assert result.returncode == 0, result.stderr
    assert "Version:             3.31.1" in result.stdout


def test_is_db_migrate_is_idempotent_and_gated_at_3_19_2(deploy) -> None:
    deployment = deploy("3.18.2")
    applied = deployment.sql("SELECT count(*) FROM bun_migrations")

    again = deployment.stack("is-db", "migrate")
    assert again.returncode == 0, again.stderr
    # Before 3.20, GORM's AutoMigrate: no "up to date", whatever it did.
    assert "INFO\tSuccessfully migrated" in again.stderr
    assert deployment.sql("SELECT count(*) FROM bun_migrations") == applied

    deployment.set_stack_tag("3.23.1")
    skipped = deployment.stack("is-db", "migrate")
    assert skipped.returncode == 255
    assert GATE_ERROR in skipped.stderr
    assert deployment.sql("SELECT count(*) FROM bun_migrations") == applied

    deployment.set_stack_tag("3.19.2")
    assert deployment.stack("is-db", "migrate").returncode == 0
    deployment.set_stack_tag("3.23.1")
    hop = deployment.stack("is-db", "migrate")
    assert hop.returncode == 0, hop.stderr
    lines = [line for line in hop.stderr.splitlines() if line.startswith("INFO\t")]
    assert lines[0].startswith("INFO\tApplied: 20210401000000_initial_schema")
    assert lines[1].startswith("INFO\tUnapplied: 20220610000000_user_sessions")
    assert lines[-1].startswith("INFO\tDatabase migration done\t{")
    again = deployment.stack("is-db", "migrate")
    assert "INFO\tDatabase is up to date" in again.stderr
    assert int(deployment.sql("SELECT count(*) FROM bun_migrations")) > int(applied)


def test_a_first_install_records_every_redis_schema_version_at_1(deploy) -> None:
    deployment = deploy("3.31.1")
    assert [deployment.redis("GET", key) for key in (NS_DEVICES, NS_UPLINKS, AS_KEY, JS_KEY)] == ["1", "1", "1", "1"]


def test_ns_db_migrate_needs_force_from_3_25_on_a_redis_that_never_had_it(deploy) -> None:
    deployment = deploy("3.24.2")
    deployment.redis("DEL", NS_DEVICES, NS_UPLINKS)
    before_3_25 = deployment.stack("ns-db", "migrate")
    assert before_3_25.returncode == 0, before_3_25.stderr
    assert deployment.redis("GET", NS_DEVICES) == "1"
    assert deployment.redis("EXISTS", NS_UPLINKS) == "0"

    deployment.set_stack_tag("3.25.0")
    deployment.redis("DEL", NS_DEVICES)
    refused = deployment.stack("ns-db", "migrate")
    assert refused.returncode == 255
    assert "--force" in refused.stderr
    assert deployment.redis("EXISTS", NS_DEVICES) == "0"

    forced = deployment.stack("ns-db", "migrate", "--force")
    assert forced.returncode == 0, forced.stderr
    assert [deployment.redis("GET", key) for key in (NS_DEVICES, NS_UPLINKS)] == ["1", "1"]

    again = deployment.stack("ns-db", "migrate")
    assert again.returncode == 0, again.stderr
    assert "already current" in again.stderr


def test_as_and_js_db_migrate_need_no_force_and_stop_early_when_current(deploy) -> None:
    deployment = deploy("3.31.1")
    deployment.redis("DEL", AS_KEY, JS_KEY)
    for command, key in (("as-db", AS_KEY), ("js-db", JS_KEY)):
        migrated = deployment.stack(command, "migrate")
        assert migrated.returncode == 0, migrated.stderr
        assert "Migrated database schema" in migrated.stderr
        assert deployment.redis("GET", key) == "1"
        again = deployment.stack(command, "migrate")
        assert again.returncode == 0, again.stderr
        assert "already current" in again.stderr


def test_start_does_not_check_redis_schema_versions(deploy) -> None:
    deployment = deploy("3.31.1")
    deployment.compose("stop", "stack")
    deployment.redis("DEL", NS_DEVICES, NS_UPLINKS, AS_KEY, JS_KEY)
    assert deployment.compose("up", "--detach", "stack").returncode == 0
    wait_healthy(deployment.dir)


def test_up_to_3_22_start_refuses_while_migrations_are_pending(deploy) -> None:
    deployment = deploy("3.19.2")
    deployment.set_stack_tag("3.22.2")
    up = deployment.compose("up", "--detach", "stack")
    assert up.returncode == 0, up.stderr
    logs = deployment.wait_for_log("stack", "db_needs_migration")
    assert "is-db" in logs
    assert deployment.healthz() != 200


def test_from_3_23_start_serves_with_migrations_pending(deploy) -> None:
    deployment = deploy("3.31.1")
    deployment.set_stack_tag("3.32.2")
    assert deployment.compose("up", "--detach", "stack").returncode == 0
    wait_healthy(deployment.dir)
    status = deployment.stack("is-db", "status")
    assert status.returncode == 0, status.stderr
    fetched = [line for line in status.stderr.splitlines() if line.startswith("INFO\tStatus fetched")]
    level, message, fields = fetched[0].split("\t")
    assert (level, message) == ("INFO", "Status fetched")
    assert json.loads(fields)["unapplied_migrations"] == 2


def test_3_98_0_fails_half_way_through_its_migrations_in_transactions(deploy) -> None:
    deployment = deploy("3.32.2")
    deployment.set_stack_tag("3.98.0")
    failed = deployment.stack("is-db", "migrate")
    assert failed.returncode == 255
    assert "migration 20260102000000_backfill_gateway_regions failed" in failed.stderr
    applied = deployment.sql("SELECT name FROM bun_migrations WHERE name LIKE '2026%' ORDER BY name")
    assert applied == "20260101000000_gateway_regions"
    assert deployment.sql("SELECT to_regclass('public.gateway_regions') IS NOT NULL") == "t"
    again = deployment.stack("is-db", "migrate")
    assert again.returncode == 255, "3.32.2 and later mark a migration applied only when it succeeded"


def test_3_30_9_falls_into_the_bun_trap(deploy) -> None:
    deployment = deploy("3.26.0")
    deployment.set_stack_tag("3.30.9")
    failed = deployment.stack("is-db", "migrate")
    assert failed.returncode == 255
    assert "migration 20231102000000_backfill_gateway_status_history failed" in failed.stderr
    # Marked applied before it ran: a re-run says the database is up to date over a half-migrated schema.
    marked = deployment.sql("SELECT count(*) FROM bun_migrations WHERE name LIKE '20231102%'")
    assert marked == "1"
    again = deployment.stack("is-db", "migrate")
    assert again.returncode == 0, again.stderr
    assert "INFO\tDatabase is up to date" in again.stderr
    assert deployment.sql("SELECT count(*) FROM gateway_status_history") == "0"


@pytest.mark.parametrize(
    ("version", "argv", "code", "says"),
    [
        ("3.31.1", ["is-db"], 2, "ttn-lw-stack is-db [command]"),
        ("3.31.1", ["is-db", "status"], 2, "Available Commands:"),
        ("3.31.1", ["is-db", "init"], 255, "use migrate instead"),
        ("3.31.1", ["noc-db", "migrate"], 255, 'unknown command "noc-db" for "ttn-lw-stack"'),
        ("3.31.1", ["storage-db", "migrate"], 255, "not available in the open-source version"),
    ],
)
def test_exit_codes_are_ttss(version: str, argv: list[str], code: int, says: str) -> None:
    image = f"{REGISTRY}/{EDITIONS['open-source']['repository']}:{version}"
    result = run(["docker", "run", "--rm", image, "ttn-lw-stack", *argv])
    assert result.returncode == code, result.stdout + result.stderr
    assert says in result.stdout + result.stderr


def test_logs_go_to_stderr_in_zap_console_format(deploy) -> None:
    deployment = deploy("3.31.1")
    result = deployment.stack("is-db", "migrate")
    assert result.stdout.strip() == ""
    logged = [line for line in result.stderr.splitlines() if line.startswith(("INFO\t", "WARN\t", "ERROR\t"))]
    assert logged[-1] == "INFO\tDatabase is up to date"
    assert not [line for line in result.stderr.splitlines() if line[:4].isdigit()], "no timestamps"


@pytest.mark.parametrize(
    ("version", "path", "other"), [("3.23.1", "/healthz/live", "/healthz"), ("3.24.2", "/healthz", "/healthz/ready")]
)
def test_health_paths_follow_the_version(deploy, version: str, path: str, other: str) -> None:
    deployment = deploy(version)
    port = healthz_port(deployment.dir)
    assert healthz_status(port, path) == 200
    assert healthz_status(port, other) == 404


def stack_container(deployment) -> str:
    container = deployment.compose("ps", "--quiet", "stack").stdout.strip()
    assert container
    return container


def docker_health(container: str) -> str:
    return run(["docker", "inspect", "--format", "{{.State.Health.Status}}", container]).stdout.strip()


def run_image_health_check(container: str) -> int:
    """Run the image's HEALTHCHECK command in the container now, as Docker runs it every minute."""
    inspected = run(["docker", "inspect", "--format", "{{json .Config.Healthcheck.Test}}", container])
    kind, command = json.loads(inspected.stdout)
    assert kind == "CMD-SHELL"
    return run(["docker", "exec", container, "/bin/sh", "-c", command]).returncode


@pytest.mark.parametrize("edition", sorted(EDITIONS))
def test_images_check_health_every_minute_like_tts(edition: str) -> None:
    config = image_config(f"{REGISTRY}/{EDITIONS[edition]['repository']}:3.32.2")
    assert config["Healthcheck"] == {
        "Test": ["CMD-SHELL", "curl -f $TTN_LW_HEALTHCHECK_URL || exit 1"],
        "Interval": 60 * 10**9,
        "Timeout": 5 * 10**9,
    }
    assert "TTN_LW_HEALTHCHECK_URL=http://localhost:1885/healthz" in config["Env"]


def test_deploy_returns_once_healthz_answers_without_waiting_for_docker(deploy) -> None:
    started = time.monotonic()
    deployment = deploy("3.31.1")
    container = stack_container(deployment)
    assert deployment.healthz() == 200
    # Docker's first check comes a minute after the start; deploy did not wait for it.
    assert docker_health(container) == "starting"
    assert time.monotonic() - started < 60
    assert run_image_health_check(container) == 0


def test_3_98_1_migrates_and_starts_but_is_never_healthy(deploy) -> None:
    deployment = deploy("3.32.2")
    deployment.set_stack_tag("3.98.1")
    for command in (["is-db", "migrate"], ["ns-db", "migrate"], ["as-db", "migrate"], ["js-db", "migrate"]):
        migrated = deployment.stack(*command)
        assert migrated.returncode == 0, migrated.stdout
    assert deployment.compose("up", "--detach", "stack").returncode == 0
    deployment.wait_for_log("stack", "Started The Things Stack")
    container = stack_container(deployment)
    for _attempt in range(5):
        assert deployment.healthz() == 503
        time.sleep(0.2)
    # What Docker's check will find each minute until it says unhealthy after three.
    assert run_image_health_check(container) != 0
    assert docker_health(container) in ("starting", "unhealthy")


def test_3_98_2_says_its_migration_is_done_but_is_db_status_shows_one_unapplied(deploy) -> None:
    deployment = deploy("3.32.2")
    deployment.set_stack_tag("3.98.2")
    migrated = deployment.stack("is-db", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "INFO\tDatabase migration done" in migrated.stderr
    status = deployment.stack("is-db", "status")
    assert status.returncode == 0, status.stderr
    fetched = json.loads(status.stderr.split("Status fetched\t", 1)[1].splitlines()[0])
    assert fetched["unapplied_migrations"] == 1
    assert fetched["applied_migrations"] == fetched["migrations"] - 1


def test_enterprise_dcs_db_is_gone_from_3_26_and_prints_help() -> None:
    repository = EDITIONS["enterprise"]["repository"]
    removed = run(["docker", "run", "--rm", f"{REGISTRY}/{repository}:3.26.0", "tti-lw-stack", "dcs-db", "migrate"])
    # The command group stays, its migrate is gone: cobra prints the group's help and exits 2.
    assert removed.returncode == 2
    assert removed.stdout.startswith("Usage:\n  tti-lw-stack dcs-db [command]")
    assert "migrate" not in removed.stdout
    still_there = run(["docker", "run", "--rm", f"{REGISTRY}/{repository}:3.25.0", "tti-lw-stack", "help"])
    assert "  dcs-db\n" in still_there.stdout


def test_enterprise_deployment_runs_its_extra_migrations_and_grafana(deploy) -> None:
    deployment = deploy("3.25.0", "--edition", "enterprise")
    tables = deployment.sql("SELECT string_agg(name, ',' ORDER BY name) FROM noc_migrations")
    assert tables == "noc_application_metrics,noc_gateway_metrics"
    assert deployment.sql("SELECT count(*) FROM timescaledb_information.hypertables") == "2"
    assert deployment.redis("GET", "ttn:v3:dcs:schema-version") == "1"
    grafana = deployment.compose("ps", "--format", "{{.State}}", "grafana")
    assert grafana.stdout.strip() == "running"
    assert deployment.fingerprint()["stack_version"] == "3.25.0"


def test_an_enterprise_noc_never_set_up_needs_noc_db_init_from_3_21(deploy) -> None:
    # A 3.19.2 install that left the experimental NOC alone: nothing to migrate until 3.21.0, where migrate and
    # start refuse it, and init sets it up once.
    deployment = deploy("3.19.2", "--edition", "enterprise")
    assert deployment.sql("SELECT to_regclass('noc_migrations') IS NULL") == "t"
    assert "INFO\tDatabase is up to date" in deployment.stack("noc-db", "migrate").stderr
    deployment.set_stack_tag("3.22.2")
    refused = deployment.stack("noc-db", "migrate")
    assert refused.returncode == 255
    assert "the noc-db database is not initialized, run noc-db init" in refused.stderr
    assert deployment.stack("is-db", "migrate").returncode == 0
    started = deployment.stack("start")
    assert started.returncode == 255
    assert "db_needs_migration" in started.stderr and "noc-db (not initialized)" in started.stderr
    initialized = deployment.stack("noc-db", "init")
    assert initialized.returncode == 0, initialized.stderr
    assert "INFO\tDatabase initialized" in initialized.stderr
    assert deployment.sql("SELECT count(*) FROM timescaledb_information.hypertables") == "1"
    again = deployment.stack("noc-db", "init")
    assert again.returncode == 255
    assert "already initialized, use migrate instead" in again.stderr


@pytest.mark.parametrize(
    ("major", "present", "absent"), [("7", "appendonlydir", "appendonly.aof"), ("6", "appendonly.aof", "appendonlydir")]
)
def test_redis_persistence_format_follows_the_major(deploy, major: str, present: str, absent: str) -> None:
    deployment = deploy("3.31.1", "--redis", major)
    data = deployment.dir / ".env" / "data" / "redis"
    assert (data / present).exists()
    assert not (data / absent).exists()
    if major == "7":
        names = sorted(path.name for path in (data / "appendonlydir").iterdir())
        assert names == ["appendonly.aof.1.base.rdb", "appendonly.aof.1.incr.aof", "appendonly.aof.manifest"]
    assert deployment.redis("INFO", "server").count(f"redis_version:{major}.") == 1


def test_postgres_major_of_the_data_directory(deploy) -> None:
    deployment = deploy("3.31.1", "--postgres", "13")
    assert (deployment.dir / ".env" / "data" / "postgres" / "PG_VERSION").read_text().strip() == "13"
    assert deployment.sql("SHOW server_version").startswith("13.")


def test_pulling_a_missing_tag_fails_at_once(deploy) -> None:
    missing = f"{REGISTRY}/thethingsnetwork/lorawan-stack:3.99.9"
    pulled = run(["docker", "pull", missing])
    assert pulled.returncode != 0
    assert "manifest unknown" in pulled.stderr or "not found" in pulled.stderr

    deployment = deploy("3.31.1")
    deployment.set_stack_tag("3.99.9")
    compose_pull = deployment.compose("pull", "stack")
    assert compose_pull.returncode != 0
    assert deployment.healthz() == 200


def test_two_deployments_run_side_by_side(deploy) -> None:
    first = deploy("3.31.1")
    second = deploy("3.31.1", "--edition", "enterprise", "--redis", "6")
    assert first.summary["project"] != second.summary["project"]
    assert first.summary["healthz"] != second.summary["healthz"]
    assert first.healthz() == 200
    assert second.healthz() == 200
    assert first.fingerprint()["edition"] == "open-source"
    assert second.fingerprint()["edition"] == "enterprise"
