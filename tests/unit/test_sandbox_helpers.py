"""The sandbox's own helpers that need no Docker: templates, seed files, fingerprint comparison."""

from __future__ import annotations

import struct
import zlib

from ttssandbox.deployment import render
from ttssandbox.fingerprint import data_differences
from ttssandbox.seed import SEED_SIZES, png, postgres_sql, redis_commands


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


def fingerprint(tables: dict, keys: dict, blobs: dict) -> dict:
    return {"postgres": tables, "redis": keys, "blob": blobs}


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
    )
    assert data_differences(before, damaged) == [
        "postgres public.users: missing",
        "postgres public.filled: appeared",
        "redis ttn:v3:ns:devices:uid:x: changed",
        "blob p.png: missing",
    ]
