"""The sandbox's own helpers that need no Docker: templates, seed and size generators, fingerprints."""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections import defaultdict
from pathlib import Path, PurePosixPath

import pytest
import yaml
from ttssandbox.cli import parser
from ttssandbox.deployment import migrations, render
from ttssandbox.fingerprint import data_differences, redis_command_line
from ttssandbox.host import EE_PYTHON_PACKAGES, image_plan, pulled_names, wheel_platforms
from ttssandbox.seed import SEED_SIZES, png, postgres_sql, redis_commands
from ttssandbox.sizes import (
    BLOB_FILE_BYTES,
    MIB,
    POSTGRES_DEVICE_FOOTPRINT,
    POSTGRES_DEVICES_PER_APPLICATION,
    STACK_UID,
    RedisExtra,
    extra_blob_paths,
    extra_redis_devices,
    noise_png,
    postgres_padding_devices,
    postgres_padding_sql,
    write_extra_blob_files,
)

BASES = {"bookworm": "base:bookworm", "bullseye": "base:bullseye", "trixie": "base:trixie"}


def test_a_first_install_forces_only_ns_db() -> None:
    first_install = ["is-db migrate", "ns-db migrate --force", "as-db migrate", "js-db migrate"]
    assert [" ".join(argv) for argv in migrations("3.31.1", "open-source")] == first_install
    enterprise = [" ".join(argv) for argv in migrations("3.25.0", "enterprise")]
    assert enterprise == [*first_install, "storage-db migrate", "noc-db init", "dcs-db migrate"]
    assert "dcs-db migrate" not in [" ".join(argv) for argv in migrations("3.26.0", "enterprise")]


def test_an_enterprise_install_before_3_21_leaves_the_noc_never_set_up() -> None:
    assert not [argv for argv in migrations("3.19.2", "enterprise") if argv[0] == "noc-db"]


def test_render_offsets_ports_and_fills_values() -> None:
    text = render(
        'image: {{registry}}/x:{{version}}\n- "127.0.0.1:{{port 1885}}:1885"',
        {"registry": "localhost:5000", "version": "3.32.0"},
        300,
    )
    assert text == 'image: localhost:5000/x:3.32.0\n- "127.0.0.1:2185:1885"'


def test_png_is_a_valid_image() -> None:
    data = png(3, 2, (10, 20, 30))
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (3, 2)
    idat_length = struct.unpack(">I", data[33:37])[0]
    assert zlib.decompress(data[41 : 41 + idat_length]) == (b"\x00" + bytes((10, 20, 30)) * 3) * 2


def test_seeds_are_deterministic_and_sized() -> None:
    assert postgres_sql("small") == postgres_sql("small")
    assert postgres_sql("small").count("'dev-") == SEED_SIZES["small"]["devices"]
    assert redis_commands("medium") == redis_commands("medium")
    assert "O'Brien" not in postgres_sql("small")


def fingerprint(tables: dict, keys: dict, blobs: dict, acme: dict | None = None) -> dict:
    return {"postgres": tables, "redis": keys, "blob": blobs, "acme": acme or {"localhost": "k 886:886 0600"}}


def test_data_differences_allow_only_schema_bookkeeping_and_empty_new_tables() -> None:
    before = fingerprint(
        {"public.users": {"rows": 2, "md5": "a"}, "public.bun_migrations": {"rows": 3, "md5": "m"}},
        {"ttn:v3:ns:devices:uid:x": "string:1", "ttn:v3:ns:devices:schema-version": "string:s"},
        {"p.png": "f"},
    )
    upgraded = fingerprint(
        {
            "public.users": {"rows": 2, "md5": "a"},
            "public.bun_migrations": {"rows": 4, "md5": "n"},
            "public.new_table": {"rows": 0, "md5": "empty"},
        },
        {"ttn:v3:ns:devices:uid:x": "string:1", "ttn:v3:ns:devices:schema-version": "string:t"},
        {"p.png": "f"},
    )
    assert data_differences(before, upgraded) == []

    damaged = fingerprint(
        {"public.bun_migrations": {"rows": 4, "md5": "n"}, "public.filled": {"rows": 1, "md5": "x"}},
        {"ttn:v3:ns:devices:uid:x": "string:2"},
        {},
        {"localhost": "k 0:0 0644"},
    )
    assert data_differences(before, damaged) == [
        "postgres public.users: missing",
        "postgres public.filled: appeared",
        "redis ttn:v3:ns:devices:uid:x: changed",
        "blob p.png: missing",
        "acme localhost: changed",
    ]


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks.append((kind, body))
        offset += 12 + length
    return chunks


def test_extra_pictures_are_valid_incompressible_pngs_of_20_kib() -> None:
    picture = noise_png("end_device_pictures/fleet-1/sensor-1/picture-1.png")
    assert len(picture) == BLOB_FILE_BYTES == 20 * 1024
    assert picture == noise_png("end_device_pictures/fleet-1/sensor-1/picture-1.png")
    assert picture != noise_png("end_device_pictures/fleet-1/sensor-1/picture-2.png")
    chunks = dict(png_chunks(picture))
    assert list(chunks) == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, color) == (8, 0)
    assert len(zlib.decompress(chunks[b"IDAT"])) == height * (width + 1)
    assert len(zlib.compress(picture, 9)) > 0.99 * len(picture)


def test_extra_blob_layout_is_deterministic_and_spread_over_directories() -> None:
    paths = list(extra_blob_paths(10000))
    assert paths == list(extra_blob_paths(10000))
    assert paths[:1000] == list(extra_blob_paths(1000))
    assert len(set(paths)) == 10000
    assert paths[0] == "end_device_pictures/fleet-1/sensor-1/picture-1.png"
    assert all(re.fullmatch(r"end_device_pictures/fleet-\d+/sensor-\d+/picture-\d\.png", path) for path in paths)
    children: dict[PurePosixPath, set[str]] = defaultdict(set)
    for path in map(PurePosixPath, paths):
        for entry in (path, *path.parents[:-2]):
            children[entry.parent].add(entry.name)
    assert len(children[PurePosixPath("end_device_pictures")]) == 25
    assert max(len(names) for names in children.values()) == 200


def test_write_extra_blob_files(tmp_path: Path) -> None:
    assert write_extra_blob_files(tmp_path, 5) == 5 * BLOB_FILE_BYTES
    files = sorted(path for path in tmp_path.rglob("*") if path.is_file())
    assert [str(path.relative_to(tmp_path)) for path in files] == sorted(extra_blob_paths(5))
    assert all(path.read_bytes() == noise_png(str(path.relative_to(tmp_path))) for path in files)
    if os.geteuid() == 0:
        assert {(path.stat().st_uid, path.stat().st_gid) for path in tmp_path.rglob("*")} == {(STACK_UID, STACK_UID)}


def parse_resp(data: bytes) -> list[list[bytes]]:
    """Commands in the Redis protocol, as `redis-cli --pipe` reads them."""
    commands, offset = [], 0
    while offset < len(data):
        end = data.index(b"\r\n", offset)
        assert data[offset : offset + 1] == b"*"
        count, offset = int(data[offset + 1 : end]), end + 2
        words = []
        for _word in range(count):
            end = data.index(b"\r\n", offset)
            assert data[offset : offset + 1] == b"$"
            length = int(data[offset + 1 : end])
            words.append(data[end + 2 : end + 2 + length])
            assert data[end + 2 + length : end + 4 + length] == b"\r\n"
            offset = end + 4 + length
        commands.append(words)
    return commands


def test_extra_redis_data_is_deterministic_and_sized() -> None:
    devices = list(extra_redis_devices(3))
    assert devices == list(extra_redis_devices(3))
    total = sum(device.value_bytes for device in devices)
    assert 3 * MIB <= total < 3 * MIB + 4096
    assert all(1024 <= len(device.ns_record) <= 3072 and 256 <= len(device.as_session) <= 1024 for device in devices)
    assert len({device.uid for device in devices}) == len(devices)
    assert devices[0].uid == "fleet-1.sensor-1"

    extra = RedisExtra()
    chunks = list(extra.commands(3))
    assert b"".join(chunks) == b"".join(RedisExtra().commands(3))
    assert extra.devices == len(devices)
    assert extra.value_bytes == total
    assert extra.keys == 2 * len(devices) + len({device.application for device in devices})
    commands = parse_resp(b"".join(chunks))
    assert [command[0] for command in commands[:3]] == [b"SET", b"HSET", b"SADD"]
    assert len(commands) == 3 * len(devices)
    assert commands[0] == [b"SET", b"ttn:v3:ns:devices:uid:fleet-1.sensor-1", devices[0].ns_record]
    assert RedisExtra().keys == 0
    assert list(RedisExtra().commands(0)) == []


def test_postgres_padding_is_sized_from_the_target_alone() -> None:
    assert postgres_padding_sql(1024) == postgres_padding_sql(1024)
    assert postgres_padding_devices(1024) * POSTGRES_DEVICE_FOOTPRINT >= 1024 * MIB
    applications = -(-postgres_padding_devices(1024) // POSTGRES_DEVICES_PER_APPLICATION)
    sql = postgres_padding_sql(1024)
    assert f"WHILE a < {applications} OR pg_database_size(current_database()) < 1024 * {MIB}" in sql
    assert f"generate_series(1, {POSTGRES_DEVICES_PER_APPLICATION})" in sql
    assert "random()" not in sql


def test_redis_command_lines_quote_every_word() -> None:
    assert redis_command_line("EVALSHA", "abc", "1", 'a "b" \\c') == '"EVALSHA" "abc" "1" "a \\"b\\" \\\\c"'


@pytest.mark.parametrize("option", ["--extra-blob-files", "--extra-redis-mb", "--postgres-mb"])
def test_size_options_default_to_nothing_extra(option: str) -> None:
    args = parser().parse_args(["deploy", "/srv/tts", "--version", "3.31.1", option, "7"])
    assert getattr(args, option.lstrip("-").replace("-", "_")) == 7
    defaults = parser().parse_args(["deploy", "/srv/tts", "--version", "3.31.1"])
    assert (defaults.extra_blob_files, defaults.extra_redis_mb, defaults.postgres_mb) == (0, 0, 0)


def test_stack_images_check_health_as_the_real_image_does() -> None:
    plan = image_plan(BASES)
    stack_images = [
        dockerfile for name, dockerfile, _context in plan if name.startswith("lorawan-tts-sandbox/stack-tt")
    ]
    assert len(stack_images) == 2
    for dockerfile in stack_images:
        assert "HEALTHCHECK --interval=1m --timeout=5s CMD curl -f $TTN_LW_HEALTHCHECK_URL || exit 1\n" in dockerfile
    # The URL is the version's: /healthz from 3.24.0, /healthz/live before; latest runs the newest release.
    urls = {name.rsplit(":", 1)[1]: dockerfile for name, dockerfile, _context in plan if "/lorawan-stack:" in name}
    assert "ENV TTN_LW_HEALTHCHECK_URL=http://localhost:1885/healthz/live\n" in urls["3.23.1"]
    assert "ENV TTN_LW_HEALTHCHECK_URL=http://localhost:1885/healthz\n" in urls["3.24.2"]
    assert "ENV LORAWAN_STACK_VERSION=3.36.0\n" in urls["latest"]


def test_stack_images_have_no_entrypoint_and_run_as_uid_886_and_databases_have_latest() -> None:
    plan = image_plan(BASES)
    dockerfiles = {name: dockerfile for name, dockerfile, _context in plan}
    for binary in ("ttn-lw-stack", "tti-lw-stack"):
        dockerfile = dockerfiles[f"lorawan-tts-sandbox/stack-{binary}:latest"]
        assert "ENTRYPOINT" not in dockerfile and "CMD [" not in dockerfile
        assert dockerfile.endswith("USER 886:886\n")
    assert dockerfiles["localhost:5000/library/postgres:latest"] == dockerfiles["localhost:5000/library/postgres:15"]
    assert dockerfiles["localhost:5000/library/redis:latest"] == dockerfiles["localhost:5000/library/redis:7"]
    # TimescaleDB's image is Debian trixie's PostgreSQL 17; there is no plain postgres:17.
    assert dockerfiles["localhost:5000/timescale/timescaledb:latest-pg17"].startswith("FROM base:trixie\n")
    assert "localhost:5000/library/postgres:17" not in dockerfiles
    # The docs' Enterprise file's TimescaleDB is that image too.
    pg16 = dockerfiles["localhost:5000/timescale/timescaledb:latest-pg16"]
    assert pg16 == dockerfiles["localhost:5000/timescale/timescaledb:latest-pg17"]


def test_images_are_also_tagged_by_the_names_the_docs_files_pull() -> None:
    assert pulled_names("localhost:5000/library/postgres:latest") == ["postgres:latest"]
    assert pulled_names("localhost:5000/thethingsnetwork/lorawan-stack:3.36.0") == [
        "thethingsnetwork/lorawan-stack:3.36.0"
    ]
    assert pulled_names("localhost:5000/thethingsindustries/lorawan-stack-noc-grafana:latest") == [
        "thethingsindustries/lorawan-stack-noc-grafana:latest",
        "ghcr.io/thethingsindustries/lorawan-stack-noc-grafana:latest",
    ]


def test_the_execution_environment_base_has_what_the_definition_pip_installs() -> None:
    """The base's build has no package index: ansible-builder's pip must find the definition's packages there."""
    definition = yaml.safe_load((Path(__file__).resolve().parents[2] / "execution-environment.yml").read_text())
    wanted = [definition["dependencies"][name]["package_pip"] for name in ("ansible_core", "ansible_runner")]
    assert set(wanted) <= set(EE_PYTHON_PACKAGES), (wanted, EE_PYTHON_PACKAGES)


def test_wheels_are_fetched_for_every_manylinux_the_base_can_load() -> None:
    platforms = wheel_platforms("x86_64")
    assert {"manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_41_x86_64"} <= set(platforms)
    assert "manylinux_2_42_x86_64" not in platforms
