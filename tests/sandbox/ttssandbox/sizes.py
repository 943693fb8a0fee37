"""Extra data on top of a seed, for benchmarks: blob pictures, Redis device records, Postgres devices.

Everything is deterministic (the same options give the same bytes) and incompressible enough that
backups, dumps and copies take the time real data would. The three kinds share one naming scheme:
application `fleet-A` with devices `sensor-K` (K counts from 1 in each application).
"""

from __future__ import annotations

import hashlib
import os
import random
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .seed import resp

MIB = 1024 * 1024

BLOB_FILE_BYTES = 20 * 1024
PICTURES_PER_DEVICE = 2
BLOB_DEVICES_PER_APPLICATION = 200
# The stack runs as uid/gid 886 (thethings) and owns what it writes in the blob directory.
STACK_UID = 886

REDIS_DEVICES_PER_APPLICATION = 500
REDIS_CHUNK_BYTES = MIB

POSTGRES_DEVICES_PER_APPLICATION = 1000
# Bytes one padding device adds to the database (row, indexes, location), a little under what
# PostgreSQL 13 and 15 measure, so ceil(target / this) devices reach the target.
POSTGRES_DEVICE_FOOTPRINT = 1800
PICTURE_HASHES = 16  # sha512 digests of 64 bytes: a 1 KiB picture, 1368 bytes of base64

# A grayscale noise PNG whose file is exactly BLOB_FILE_BYTES: the 68 bytes of signature and
# IHDR/IDAT/IEND framing plus a stored (uncompressed) zlib stream of 126 rows of 1 + 161 bytes.
NOISE_WIDTH, NOISE_HEIGHT = 161, 126


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def noise_png(name: str) -> bytes:
    """A valid 8-bit grayscale PNG of pseudo-random pixels, the same bytes for the same name."""
    pixels = hashlib.shake_256(name.encode()).digest(NOISE_WIDTH * NOISE_HEIGHT)
    raw = b"".join(b"\x00" + pixels[row * NOISE_WIDTH : (row + 1) * NOISE_WIDTH] for row in range(NOISE_HEIGHT))
    stored = b"\x78\x01\x01" + struct.pack("<HH", len(raw), len(raw) ^ 0xFFFF) + raw
    stored += struct.pack(">I", zlib.adler32(raw))
    header = struct.pack(">IIBBBBB", NOISE_WIDTH, NOISE_HEIGHT, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", stored) + png_chunk(b"IEND", b"")


def extra_blob_paths(count: int) -> Iterator[str]:
    """`end_device_pictures/fleet-A/sensor-K/picture-N.png`: 2 pictures per device, 200 devices per application."""
    for n in range(count):
        device = n // PICTURES_PER_DEVICE
        application = device // BLOB_DEVICES_PER_APPLICATION + 1
        sensor = device % BLOB_DEVICES_PER_APPLICATION + 1
        yield f"end_device_pictures/fleet-{application}/sensor-{sensor}/picture-{n % PICTURES_PER_DEVICE + 1}.png"


def give_to_stack(root: Path) -> None:
    """root and everything under it owned by the stack's uid, as what the stack writes is (when run as root)."""
    if os.geteuid() != 0:
        return
    for path in [root, *root.rglob("*")]:
        os.chown(path, STACK_UID, STACK_UID)


def write_extra_blob_files(blob: Path, count: int) -> int:
    """Write the files; return their total size. Owned by the stack's uid when run as root."""
    chown = os.geteuid() == 0
    made: set[Path] = set()
    for relative in extra_blob_paths(count):
        path = blob / relative
        for folder in reversed(path.relative_to(blob).parents[:-1]):
            target = blob / folder
            if target not in made:
                target.mkdir(parents=True, exist_ok=True)
                if chown:
                    os.chown(target, STACK_UID, STACK_UID)
                made.add(target)
        path.write_bytes(noise_png(relative))
        if chown:
            os.chown(path, STACK_UID, STACK_UID)
    return count * BLOB_FILE_BYTES


@dataclass(frozen=True)
class RedisDevice:
    uid: str
    application: str
    ns_record: bytes  # 1 to 3 KiB, like a marshalled end device
    as_session: bytes  # 256 B to 1 KiB

    @property
    def value_bytes(self) -> int:
        return len(self.ns_record) + len(self.as_session)


def extra_redis_devices(megabytes: int) -> Iterator[RedisDevice]:
    """Devices until their values add up to `megabytes` MiB."""
    rng = random.Random(f"redis-extra-{megabytes}")
    total = 0
    n = 0
    while total < megabytes * MIB:
        application = f"fleet-{n // REDIS_DEVICES_PER_APPLICATION + 1}"
        device = RedisDevice(
            uid=f"{application}.sensor-{n % REDIS_DEVICES_PER_APPLICATION + 1}",
            application=application,
            ns_record=rng.randbytes(rng.randint(1024, 3072)),
            as_session=rng.randbytes(rng.randint(256, 1024)),
        )
        total += device.value_bytes
        n += 1
        yield device


def device_commands(device: RedisDevice) -> bytes:
    """An NS device record (string), an AS device (hash) and the application's device set (set)."""
    return (
        resp("SET", f"ttn:v3:ns:devices:uid:{device.uid}", device.ns_record)
        + resp("HSET", f"ttn:v3:as:devices:uid:{device.uid}", "session", device.as_session, "formatters", "javascript")
        + resp("SADD", f"ttn:v3:ns:devices:application:{device.application}", device.uid)
    )


@dataclass
class RedisExtra:
    devices: int = 0
    value_bytes: int = 0
    applications: set[str] = field(default_factory=set)

    @property
    def keys(self) -> int:
        return 2 * self.devices + len(self.applications)

    def commands(self, megabytes: int) -> Iterator[bytes]:
        """RESP for `redis-cli --pipe` in chunks of about 1 MiB, counting what it adds."""
        chunk: list[bytes] = []
        size = 0
        for device in extra_redis_devices(megabytes):
            command = device_commands(device)
            chunk.append(command)
            size += len(command)
            self.devices += 1
            self.value_bytes += device.value_bytes
            self.applications.add(device.application)
            if size >= REDIS_CHUNK_BYTES:
                yield b"".join(chunk)
                chunk, size = [], 0
        if chunk:
            yield b"".join(chunk)


def postgres_padding_devices(megabytes: int) -> int:
    return -(-megabytes * MIB // POSTGRES_DEVICE_FOOTPRINT)


def postgres_padding_sql(megabytes: int) -> str:
    """Server-side SQL that adds `fleet-A` applications of 1000 devices, each device with a 1 KiB
    embedded picture and a location, until the database is at least `megabytes` MiB.

    The device count follows from the size alone; the loop after it only tops up if this PostgreSQL
    stores rows more compactly than POSTGRES_DEVICE_FOOTPRINT assumes.
    """
    per_app = POSTGRES_DEVICES_PER_APPLICATION
    applications = -(-postgres_padding_devices(megabytes) // per_app)
    picture = " || ".join(f"sha512(seed.b || '\\x{n:02x}'::bytea)" for n in range(PICTURE_HASHES))
    return f"""
CREATE FUNCTION pg_temp.add_fleet(a integer) RETURNS void LANGUAGE sql AS $fleet$
WITH app AS (
    INSERT INTO applications (application_id, name, owner_user_id, created_at)
    VALUES ('fleet-' || a, 'Fleet ' || a, 1, timestamptz '2024-04-01 00:00:00+00' + a * interval '1 hour')
    RETURNING id, application_id, created_at
), devices AS (
    INSERT INTO end_devices (application_id, device_id, dev_eui, join_eui, frequency_plan_id, picture, created_at)
    SELECT app.id,
           'sensor-' || k,
           substring(sha256(seed.b) FROM 1 FOR 8),
           '\\x70b3d57ed0000000'::bytea,
           (ARRAY['EU_863_870_TTN', 'US_902_928_FSB_2', 'AU_915_928_FSB_2'])[1 + k % 3],
           'data:image/png;base64,' || replace(encode({picture}, 'base64'), E'\\n', ''),
           app.created_at + k * interval '1 second'
    FROM app CROSS JOIN generate_series(1, {per_app}) AS k
    CROSS JOIN LATERAL (SELECT convert_to(app.application_id || '/sensor-' || k, 'UTF8') AS b) AS seed
    RETURNING id, dev_eui
)
INSERT INTO end_device_locations (end_device_id, service, latitude, longitude)
SELECT id, 'frame-payload', 35 + get_byte(dev_eui, 0) / 10.0 + get_byte(dev_eui, 1) / 2560.0,
       -10 + get_byte(dev_eui, 2) / 6.0 + get_byte(dev_eui, 3) / 1536.0
FROM devices
$fleet$;
DO $pad$
DECLARE
    a integer := 0;
BEGIN
    WHILE a < {applications} OR pg_database_size(current_database()) < {megabytes} * {MIB}::bigint LOOP
        a := a + 1;
        PERFORM pg_temp.add_fleet(a);
    END LOOP;
END
$pad$;
"""  # noqa: S608 - only integers are interpolated
