"""`tts-sandbox fingerprint`: checksums of every Postgres table, Redis key and blob file.

The proof, in every test, that nothing was lost. `data_differences` compares two
fingerprints the way an upgrade must keep them: every table, key and file that
existed before is identical after; migrations may only add empty tables and move
the schema bookkeeping (`bun_migrations`, `*migrations`, `*schema-version`).
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .common import SandboxError, compose, psql_args
from .deployment import edition_of, running_stack_version

TABLE_CHECKSUMS = r"""
SELECT format('%I.%I', schemaname, tablename),
       (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', schemaname, tablename),
                                            false, true, '')))[1]::text,
       coalesce((xpath('/row/c/text()', query_to_xml(format(
           'SELECT md5(string_agg(md5(t::text), '''' ORDER BY md5(t::text))) AS c FROM %I.%I t',
           schemaname, tablename), false, true, '')))[1]::text, 'empty')
FROM pg_tables
WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
  AND format('%I.%I', schemaname, tablename) NOT IN (
    -- TimescaleDB's bookkeeping, not the deployment's data: the installation's telemetry uuid (pg_dump leaves it
    -- out, so a restore has a new one, by TimescaleDB's design) and the run statistics of its background jobs.
    '_timescaledb_catalog.metadata',
    '_timescaledb_internal.bgw_job_stat',
    '_timescaledb_internal.bgw_job_stat_history')
ORDER BY 1
"""

# The checksum of each key in KEYS; hashes and sets are sorted so the order Redis keeps them in does not matter.
KEY_CHECKSUMS = r"""
local function framed(items)
  local parts = {}
  for _, item in ipairs(items) do parts[#parts + 1] = #item .. ':' .. item end
  return table.concat(parts, ',')
end
local out = {}
for _, key in ipairs(KEYS) do
  local kind = redis.call('TYPE', key)['ok']
  local items
  if kind == 'string' then items = {redis.call('GET', key)}
  elseif kind == 'list' then items = redis.call('LRANGE', key, 0, -1)
  elseif kind == 'set' then items = redis.call('SMEMBERS', key); table.sort(items)
  elseif kind == 'zset' then items = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  elseif kind == 'hash' then
    local flat = redis.call('HGETALL', key)
    local pairs_ = {}
    for i = 1, #flat, 2 do pairs_[#pairs_ + 1] = framed({flat[i], flat[i + 1]}) end
    table.sort(pairs_)
    items = pairs_
  else items = {kind} end
  out[#out + 1] = key
  out[#out + 1] = kind .. ':' .. redis.sha1hex(framed(items))
end
return out
"""
# Keys per script call: each call blocks Redis only briefly, however much data it holds.
KEYS_PER_CALL = 1000

SCHEMA_TABLE_SUFFIX = "migrations"
SCHEMA_KEY_SUFFIX = "schema-version"
# TimescaleDB's catalog of hypertables and jobs: a migration that makes a hypertable adds to it. The data is in the
# hypertables (and their chunks in _timescaledb_internal), which are compared.
TIMESCALEDB_CATALOG_SCHEMAS = ("_timescaledb_catalog.", "_timescaledb_config.")


def postgres_tables(directory: Path) -> dict[str, dict[str, object]]:
    result = compose(directory, *psql_args("-X", "-A", "-t", "-F", "\t", "-c", TABLE_CHECKSUMS))
    tables: dict[str, dict[str, object]] = {}
    for line in result.stdout.decode().splitlines():
        name, rows, checksum = line.split("\t")
        tables[name] = {"rows": int(rows), "md5": checksum}
    return tables


def redis_command_line(*words: str) -> str:
    """One line of redis-cli's input: every word double-quoted, as redis-cli splits its lines."""
    return " ".join('"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"' for word in words)


def redis_keys(directory: Path) -> dict[str, str]:
    def redis_cli(*args: str, input: bytes | None = None) -> list[str]:  # noqa: A002
        result = compose(directory, "exec", "-T", "redis", "redis-cli", "--raw", *args, input=input)
        return result.stdout.decode().splitlines()

    keys = sorted(set(redis_cli("--scan")))
    if not keys:
        return {}
    (sha,) = redis_cli("SCRIPT", "LOAD", KEY_CHECKSUMS)
    calls = [
        redis_command_line("EVALSHA", sha, str(len(batch)), *batch)
        for batch in (keys[start : start + KEYS_PER_CALL] for start in range(0, len(keys), KEYS_PER_CALL))
    ]
    lines = redis_cli(input="\n".join(calls).encode() + b"\n")
    checksums = dict(zip(lines[::2], lines[1::2], strict=False))
    if len(lines) != 2 * len(keys) or sorted(checksums) != keys:
        raise SandboxError(f"unexpected reply from redis in {directory}: {lines[:2]}")
    return checksums


def files(root: Path) -> dict[str, str]:
    """Each file under root: its sha256, owner and mode (a restore must keep all three)."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            status = path.stat()
            found[str(path.relative_to(root))] = (
                f"{hashlib.sha256(path.read_bytes()).hexdigest()} {status.st_uid}:{status.st_gid} "
                f"{status.st_mode & 0o7777:04o}"
            )
    return found


def images(directory: Path) -> dict[str, str]:
    config = json.loads(compose(directory, "config", "--format", "json").stdout)
    return {name: service.get("image", "") for name, service in config["services"].items()}


def fingerprint(directory: Path) -> dict:
    directory = directory.absolute()
    if not (directory / "docker-compose.yml").is_file():
        raise SandboxError(f"{directory} has no docker-compose.yml: is it a sandbox deployment?")
    with ThreadPoolExecutor(max_workers=3) as pool:
        postgres = pool.submit(postgres_tables, directory)
        redis = pool.submit(redis_keys, directory)
        blob = pool.submit(files, directory / "blob")
        acme = pool.submit(files, directory / "acme")
        return {
            "dir": str(directory),
            "edition": edition_of(directory),
            "stack_version": running_stack_version(directory),
            "images": images(directory),
            "postgres": postgres.result(),
            "redis": redis.result(),
            "blob": blob.result(),
            "acme": acme.result(),
        }


DATA_SECTIONS = ("postgres", "redis", "blob", "acme")


def is_schema_bookkeeping(name: str) -> bool:
    return name.endswith((SCHEMA_TABLE_SUFFIX, SCHEMA_KEY_SUFFIX)) or name.startswith(TIMESCALEDB_CATALOG_SCHEMAS)


def data_differences(before: dict, after: dict) -> list[str]:
    """What an upgrade must not change, changed: empty when every byte of data was kept."""
    differences = []
    for section in DATA_SECTIONS:
        for name, value in before[section].items():
            if is_schema_bookkeeping(name):
                continue
            if name not in after[section]:
                differences.append(f"{section} {name}: missing")
            elif after[section][name] != value:
                differences.append(f"{section} {name}: changed")
        for name in after[section].keys() - before[section].keys():
            value = after[section][name]
            new_table_is_empty = section == "postgres" and value["rows"] == 0
            if not (is_schema_bookkeeping(name) or new_table_is_empty):
                differences.append(f"{section} {name}: appeared")
    return differences


def load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SandboxError(f"cannot read the fingerprint {path}: {error}") from error


def compare(before_path: Path, after_path: Path) -> tuple[str, bool]:
    """A report a person can read, and whether every byte of data was kept."""
    before, after = load(before_path), load(after_path)
    differences = data_differences(before, after)
    rows = sum(int(table["rows"]) for table in before["postgres"].values())
    lines = [
        f"stack version: {before['stack_version']} -> {after['stack_version']}",
        f"images: {', '.join(f'{name}={image}' for name, image in sorted(after['images'].items()))}",
        f"checked: {len(before['postgres'])} tables ({rows} rows), {len(before['redis'])} Redis keys, "
        f"{len(before['blob'])} blob files, {len(before['acme'])} acme files",
    ]
    lines += [f"LOST: {difference}" for difference in differences] or ["data: every table, key and file kept"]
    return "\n".join(lines), not differences
