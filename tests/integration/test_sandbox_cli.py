"""tts-sandbox itself: fingerprints that prove data was kept, and one-line errors on bad input."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from ttssandbox.fingerprint import data_differences
from ttssandbox.seed import SEED_SIZES
from ttssandbox.sizes import MIB

from .conftest import SANDBOX, run, sandbox

ROOT = Path(__file__).resolve().parents[2]


def changed_entries(before: dict, after: dict) -> list[str]:
    return sorted(
        f"{section} {name}"
        for section in ("postgres", "redis", "blob")
        for name in before[section].keys() | after[section].keys()
        if before[section].get(name) != after[section].get(name)
    )


def test_fingerprint_changes_exactly_where_the_data_changed(deploy) -> None:
    deployment = deploy("3.31.1")
    first = deployment.fingerprint()
    assert first["stack_version"] == "3.31.1"
    assert first["images"]["stack"].endswith("/thethingsnetwork/lorawan-stack:3.31.1")
    assert first["postgres"]["public.end_devices"]["rows"] == 40
    assert any(key.startswith("ttn:v3:ns:devices:uid:") for key in first["redis"])
    assert len(first["blob"]) == 6

    assert deployment.fingerprint() == first

    deployment.sql("UPDATE users SET name = 'Renamed' WHERE user_id = 'user-2'")
    after_row = deployment.fingerprint()
    assert changed_entries(first, after_row) == ["postgres public.users"]

    key = next(key for key in first["redis"] if key.startswith("ttn:v3:as:devices:uid:"))
    deployment.redis("HSET", key, "formatters", "none")
    after_key = deployment.fingerprint()
    assert changed_entries(after_row, after_key) == [f"redis {key}"]

    picture = sorted((deployment.dir / "blob").rglob("*.png"))[0]
    picture.write_bytes(picture.read_bytes() + b"\0")
    after_blob = deployment.fingerprint()
    assert changed_entries(after_key, after_blob) == [f"blob {picture.relative_to(deployment.dir / 'blob')}"]
    assert data_differences(first, after_blob) == [
        "postgres public.users: changed",
        f"redis {key}: changed",
        f"blob {picture.relative_to(deployment.dir / 'blob')}: changed",
    ]


SIZES = ("--extra-blob-files", "30", "--extra-redis-mb", "2", "--postgres-mb", "20")


def test_sizes_add_blob_files_redis_data_and_postgres_rows_the_fingerprint_sees(deploy) -> None:
    deployment = deploy("3.31.1", *SIZES)
    added, sizes = deployment.summary["added"], deployment.summary["sizes"]
    assert (deployment.summary["extra_blob_files"], deployment.summary["postgres_mb"]) == (30, 20)
    assert added["blob_files"] == 30
    assert added["blob_bytes"] == 30 * 20 * 1024
    assert added["redis_value_bytes"] >= 2 * MIB
    assert added["postgres_end_devices"] == 1000 * added["postgres_applications"] > 0
    assert sizes["postgres_bytes"] >= 20 * MIB
    assert sizes["blob_files"] == 6 + 30
    assert deployment.healthz() == 200

    first = deployment.fingerprint()
    pictures = [name for name in first["blob"] if name.startswith("end_device_pictures/fleet-")]
    assert len(pictures) == 30
    assert "end_device_pictures/fleet-1/sensor-1/picture-1.png" in pictures
    assert (deployment.dir / "blob" / pictures[0]).stat().st_size == 20 * 1024
    assert first["redis"]["ttn:v3:ns:devices:uid:fleet-1.sensor-1"].startswith("string:")
    assert first["redis"]["ttn:v3:as:devices:uid:fleet-1.sensor-1"].startswith("hash:")
    assert len(first["redis"]) == sizes["redis_keys"]
    assert len([key for key in first["redis"] if "fleet-" in key]) == added["redis_keys"]
    devices = SEED_SIZES["small"]["devices"] + added["postgres_end_devices"]
    assert first["postgres"]["public.end_devices"]["rows"] == devices
    assert first["postgres"]["public.end_device_locations"]["rows"] == added["postgres_end_devices"]

    # The Redis data is in the AOF: it survives a restart of Redis.
    assert deployment.compose("restart", "redis").returncode == 0
    assert deployment.fingerprint()["redis"] == first["redis"]

    deployment.sql("UPDATE end_devices SET picture = picture || 'x' WHERE device_id = 'sensor-1000'")
    deployment.redis("SETRANGE", "ttn:v3:ns:devices:uid:fleet-1.sensor-7", "100", "x")
    (deployment.dir / "blob" / pictures[-1]).write_bytes(b"not a picture")
    assert changed_entries(first, deployment.fingerprint()) == sorted(
        ["postgres public.end_devices", "redis ttn:v3:ns:devices:uid:fleet-1.sensor-7", f"blob {pictures[-1]}"]
    )

    # The same options give the same data.
    again = deploy("3.31.1", *SIZES)
    assert data_differences(first, again.fingerprint()) == []
    assert again.summary["added"] == added


def test_runbook_upgrades_3_31_1_to_3_32_0_and_keeps_the_data(deploy, tmp_path: Path) -> None:
    deployment = deploy("3.31.1", "--seed", "medium")
    before = deployment.fingerprint()
    backup = tmp_path / "runbook-backup"

    upgraded = run([str(ROOT / "bench" / "runbook.sh"), str(deployment.dir), "3.32.0", str(backup)])
    assert upgraded.returncode == 0, upgraded.stderr[-2000:]

    after = deployment.fingerprint()
    assert after["stack_version"] == "3.32.0"
    assert after["images"]["stack"].endswith(":3.32.0")
    assert data_differences(before, after) == []
    assert after["postgres"]["public.bun_migrations"]["rows"] == before["postgres"]["public.bun_migrations"]["rows"] + 1
    assert deployment.healthz() == 200

    assert oct((backup / "ttn_lorawan.dump").stat().st_mode & 0o777) == "0o600"
    with (backup / "ttn_lorawan.dump").open("rb") as dump:
        listed = run(
            ["docker", "compose", "exec", "-T", "postgres", "pg_restore", "--list"], cwd=deployment.dir, stdin=dump
        )
    assert listed.returncode == 0, listed.stderr
    assert "TABLE DATA public end_devices" in listed.stdout
    assert (backup / "appendonlydir" / "appendonly.aof.manifest").is_file()

    report = tmp_path / "before.json", tmp_path / "after.json"
    report[0].write_text(json.dumps(before))
    report[1].write_text(json.dumps(after))
    compared = sandbox("compare", str(report[0]), str(report[1]))
    assert compared.returncode == 0
    assert "stack version: 3.31.1 -> 3.32.0" in compared.stdout
    assert "every table, key and file kept" in compared.stdout


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_deploy_rejects_an_unknown_version(tmp_path: Path) -> None:
    result = sandbox("deploy", str(tmp_path / "new"), "--version", "3.77.0")
    assert_one_line_error(result, "unknown version '3.77.0'", "3.31.1")
    assert not (tmp_path / "new").exists()


def test_deploy_rejects_a_non_empty_directory_and_leaves_it_alone(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    result = sandbox("deploy", str(tmp_path), "--version", "3.31.1")
    assert_one_line_error(result, "is not an empty directory")
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]


def test_deploy_without_docker_permission_says_so() -> None:
    # A user who is not root and not in the docker group; /tmp lets it look for the target.
    target = Path("/tmp") / f"tts-unprivileged-{uuid.uuid4().hex[:8]}"
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/nonexistent"}
    result = run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            str(SANDBOX),
            "deploy",
            str(target),
            "--version",
            "3.31.1",
        ],
        env=env,
    )
    assert_one_line_error(result, "no permission to use the Docker engine")
    assert not target.exists()


def test_usage_errors_are_one_line() -> None:
    assert_one_line_error(sandbox("deploy"), "required")
    assert_one_line_error(sandbox("fingerprint", "/nonexistent/tts"), "has no docker-compose.yml")
    assert_one_line_error(sandbox("frobnicate"), "invalid choice")
    for option in ("--extra-blob-files", "--extra-redis-mb", "--postgres-mb"):
        assert_one_line_error(
            sandbox("deploy", "/nonexistent/tts", "--version", "3.31.1", option, "-1"), f"{option} must be 0 or more"
        )
    assert_one_line_error(
        sandbox("deploy", "/nonexistent/tts", "--version", "3.31.1", "--postgres-mb", "1G"), "invalid int value"
    )


def test_setup_is_quick_when_already_done() -> None:
    result = sandbox("setup")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == ["tts-sandbox setup: ready"]
