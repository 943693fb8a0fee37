"""Deterministic seed data: rows for Postgres, keys for Redis, pictures for the blob directory."""

from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path

SEED_SIZES = {
    "small": {"users": 5, "applications": 8, "devices": 40, "gateways": 6, "pictures": 6},
    "medium": {"users": 25, "applications": 60, "devices": 1500, "gateways": 40, "pictures": 12},
    "large": {"users": 100, "applications": 250, "devices": 20000, "gateways": 200, "pictures": 24},
}


def sql_literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return f"'\\x{value.hex()}'::bytea"
    if isinstance(value, list):
        return "ARRAY[" + ",".join(sql_literal(item) for item in value) + "]::text[]"
    return "'" + str(value).replace("'", "''") + "'"


def insert(table: str, columns: tuple[str, ...], rows: list[tuple]) -> str:
    if not rows:
        return ""
    values = ",\n".join("(" + ",".join(sql_literal(value) for value in row) + ")" for row in rows)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES\n{values};\n"


def postgres_sql(size: str) -> str:
    """SQL that fills the tables of the Identity Server's initial schema."""
    counts = SEED_SIZES[size]
    rng = random.Random(f"postgres-{size}")
    created = "2024-03-01T12:00:00Z"
    users = [
        (
            f"user-{n}",
            f"User {n}",
            f"user-{n}@example.com",
            f"PBKDF2$sha512$20000${rng.randbytes(8).hex()}",
            n == 1,
            created,
        )
        for n in range(1, counts["users"] + 1)
    ]
    applications = [
        (f"app-{n}", f"Application {n}", rng.randint(1, counts["users"]), created)
        for n in range(1, counts["applications"] + 1)
    ]
    devices = [
        (
            rng.randint(1, counts["applications"]),
            f"dev-{n}",
            rng.randbytes(8),
            bytes(8),
            rng.choice(["EU_863_870_TTN", "US_902_928_FSB_2", "AU_915_928_FSB_2"]),
            None,
            created,
        )
        for n in range(1, counts["devices"] + 1)
    ]
    gateways = [(f"gw-{n}", rng.randbytes(8), "EU_863_870_TTN", created) for n in range(1, counts["gateways"] + 1)]
    api_keys = [
        (f"KEY{n:05d}", rng.randbytes(16).hex(), ["RIGHT_APPLICATION_ALL"], "application", n)
        for n in range(1, counts["applications"] + 1)
    ]
    return (
        "BEGIN;\n"
        + "".join(
            (
                insert("users", ("user_id", "name", "primary_email_address", "password", "admin", "created_at"), users),
                insert("organizations", ("organization_id", "name", "created_at"), [("org-1", "Org One", created)]),
                insert("applications", ("application_id", "name", "owner_user_id", "created_at"), applications),
                insert(
                    "end_devices",
                    (
                        "application_id",
                        "device_id",
                        "dev_eui",
                        "join_eui",
                        "frequency_plan_id",
                        "picture",
                        "created_at",
                    ),
                    devices,
                ),
                insert("gateways", ("gateway_id", "gateway_eui", "frequency_plan_id", "created_at"), gateways),
                insert("api_keys", ("api_key_id", "key", "rights", "entity_type", "entity_id"), api_keys),
            )
        )
        + "COMMIT;\n"
    )


def resp(*words: bytes | str) -> bytes:
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode() if isinstance(word, str) else word
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def redis_commands(size: str) -> bytes:
    """Redis protocol for `redis-cli --pipe`: NS and AS device records of every type Redis has."""
    counts = SEED_SIZES[size]
    rng = random.Random(f"redis-{size}")
    commands: list[bytes] = []
    for n in range(1, counts["devices"] + 1):
        app = f"app-{rng.randint(1, counts['applications'])}"
        uid = f"{app}.dev-{n}"
        commands.append(resp("SET", f"ttn:v3:ns:devices:uid:{uid}", rng.randbytes(96)))
        commands.append(resp("SADD", f"ttn:v3:ns:devices:application:{app}", uid))
        commands.append(
            resp("HSET", f"ttn:v3:as:devices:uid:{uid}", "session", rng.randbytes(32), "formatters", "javascript")
        )
        if n % 5 == 0:
            commands.append(
                resp("RPUSH", f"ttn:v3:as:devices:uid:{uid}:downlinks", rng.randbytes(12), rng.randbytes(12))
            )
        if n % 7 == 0:
            commands.append(resp("ZADD", "ttn:v3:ns:uplink-schedule", str(n), uid))
    return b"".join(commands)


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def write_pictures(blob: Path, size: str) -> None:
    rng = random.Random(f"blob-{size}")
    for n in range(1, SEED_SIZES[size]["pictures"] + 1):
        kind = "profile_pictures/user-{}" if n % 2 else "end_device_pictures/app-1/dev-{}"
        folder = blob / kind.format(n)
        folder.mkdir(parents=True, exist_ok=True)
        color = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        (folder / f"{rng.randbytes(10).hex()}.png").write_bytes(png(64 * n, 48, color))


def noc_sql() -> str:
    """Gateway metrics over 200 days (about 30 TimescaleDB chunks), where the NOC's migrations made the table."""
    return (
        "DO $$ BEGIN IF to_regclass('noc_gateway_metrics') IS NOT NULL THEN "
        "INSERT INTO noc_gateway_metrics (time, source, data) "
        "SELECT timestamptz '2024-03-01T00:00:00Z' + n * interval '5 days', 'gateway-' || (n % 3), "
        "jsonb_build_object('uplinks', n * 7, 'downlinks', n) FROM generate_series(1, 40) AS n; "
        "END IF; END $$;"
    )
