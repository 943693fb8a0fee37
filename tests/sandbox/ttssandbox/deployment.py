"""`tts-sandbox deploy` and `teardown`: docs-shaped deployments, started, migrated and seeded."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import re
import secrets
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .common import (
    DEPLOYMENTS_DIR,
    EDITIONS,
    GHCR_HOST,
    GRAFANA_REPOSITORY,
    REGISTRY,
    STACK_TAGS,
    TEMPLATES_DIR,
    TIMESCALEDB_MAJOR,
    SandboxError,
    compose,
    compose_streamed,
    health_path,
    psql_args,
    run,
)
from .host import docker_answers, registry_answers
from .seed import SEED_SIZES, noc_sql, postgres_sql, redis_commands, write_pictures
from .sizes import (
    POSTGRES_DEVICES_PER_APPLICATION,
    RedisExtra,
    give_to_stack,
    postgres_padding_sql,
    write_extra_blob_files,
)

__all__ = ["SEED_SIZES", "deploy", "healthz_port", "stack_health_path", "teardown", "teardown_all"]

# Automatic offsets put every published port above 10000, in steps of 100. The docs' ports differ by a
# multiple of 100 only for 1881-1888 and 8881-8888 (7000 apart), so 70 deployments never share a port.
AUTO_OFFSET_BASE = 10000
PORT_OFFSET_STEP = 100
AUTO_OFFSET_SLOTS = 70
HIGHEST_DOCS_PORT = 8889
HEALTH_TIMEOUT = 90
OVERRIDE_FILE = "docker-compose.override.yml"
VERSION_TAG = re.compile(r"\d+\.\d+\.\d+")
POLL_SECONDS = 0.2
NOC_SET_UP_SINCE = (3, 21, 0)


def record_path(directory: Path) -> Path:
    return DEPLOYMENTS_DIR / (hashlib.sha256(str(directory).encode()).hexdigest()[:16] + ".json")


def records() -> list[dict]:
    """Deployment records; a record whose directory is gone (a killed test run) is dropped."""
    if not DEPLOYMENTS_DIR.is_dir():
        return []
    found = []
    for path in sorted(DEPLOYMENTS_DIR.glob("*.json")):
        record = json.loads(path.read_text())
        if Path(record["dir"]).exists():
            found.append(record)
        else:
            path.unlink(missing_ok=True)
    return found


def free_port_offset() -> int:
    used = {record["ports_offset"] for record in records()}
    for slot in range(AUTO_OFFSET_SLOTS):
        offset = AUTO_OFFSET_BASE + slot * PORT_OFFSET_STEP
        if offset not in used:
            return offset
    raise SandboxError(f"all {AUTO_OFFSET_SLOTS} automatic port offsets are in use: tear deployments down")


def reserve_ports(directory: Path, summary: dict, requested: int | None) -> int:
    """Record the deployment with its port offset; a lock keeps concurrent deploys apart."""
    DEPLOYMENTS_DIR.mkdir(parents=True, exist_ok=True)
    with (DEPLOYMENTS_DIR / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        offset = free_port_offset() if requested is None else requested
        record_path(directory).write_text(json.dumps({**summary, "ports_offset": offset}))
    return offset


def render(template: str, values: dict[str, str], offset: int) -> str:
    text = re.sub(r"\{\{port (\d+)\}\}", lambda match: str(int(match.group(1)) + offset), template)
    return re.sub(r"\{\{(\w+)\}\}", lambda match: values[match.group(1)], text)


def compose_text(directory: Path) -> str:
    """The compose file and, in the docs' layout, the override that moves its ports."""
    return "".join(
        (directory / name).read_text() for name in ("docker-compose.yml", OVERRIDE_FILE) if (directory / name).exists()
    )


def healthz_port(directory: Path) -> int:
    """The loopback port mapped to the stack's 1885, read from the compose files."""
    match = re.search(r'"127\.0\.0\.1:(\d+):1885"', compose_text(directory))
    if match is None:
        raise SandboxError(f"the compose files in {directory} map no loopback port to the stack's 1885")
    return int(match.group(1))


def stack_health_path(directory: Path) -> str:
    """The health path of the stack that runs (TTS before 3.24: /healthz/live): the image's tag says which, or on
    `latest` (the docs' file) the running stack does."""
    match = re.search(r"lorawan-stack:([^\s\"']+)", compose_text(directory))
    tag = match.group(1) if match else "latest"
    if VERSION_TAG.fullmatch(tag) is None:
        tag = running_stack_version(directory) or tag
    return health_path(tag)


def running_stack_version(directory: Path) -> str | None:
    binary = EDITIONS[edition_of(directory)]["binary"]
    result = compose(directory, "exec", "-T", "stack", binary, "version", check=False)
    for line in result.stdout.decode(errors="replace").splitlines():
        if line.startswith("Version:"):
            return line.split()[1]
    return None


def healthz_status(port: int, path: str = "/healthz") -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def wait_healthy(directory: Path, timeout: float = HEALTH_TIMEOUT) -> None:
    """Until the health path answers 200. Docker's own health check runs every minute, as in TTS: not waited for."""
    port, path = healthz_port(directory), stack_health_path(directory)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthz_status(port, path) == 200:
            return
        time.sleep(POLL_SECONDS)
    logs = compose(directory, "logs", "--no-color", "--tail", "3", "stack", check=False).stdout.decode(errors="replace")
    raise SandboxError(
        f"the stack in {directory} was not healthy within {timeout:.0f} s: {' | '.join(logs.splitlines())}"
    )


def wait_for_databases(directory: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        postgres = compose(
            directory, "exec", "-T", "postgres", "pg_isready", "-U", "root", "-d", "ttn_lorawan", check=False
        )
        redis = compose(directory, "exec", "-T", "redis", "redis-cli", "ping", check=False)
        if postgres.returncode == 0 and redis.stdout.strip() == b"PONG":
            return
        time.sleep(0.5)
    raise SandboxError(f"postgres or redis in {directory} did not accept connections within 60 s")


def migrations(version: str, edition: str) -> list[list[str]]:
    """What a first install of this version runs. Redis has no schema keys yet: `ns-db migrate` of 3.25 and later
    refuses that without --force (earlier versions ignore it); the other Redis components need none. Enterprise
    sets the NOC up from 3.21.0, where it is generally available; before, it is left as most deployments left the
    experimental NOC: never set up."""
    commands = [
        ["is-db", "migrate"],
        ["ns-db", "migrate", "--force"],
        ["as-db", "migrate"],
        ["js-db", "migrate"],
    ]
    if edition == "enterprise":
        commands.append(["storage-db", "migrate"])
        if version_tuple(version) >= NOC_SET_UP_SINCE:
            commands.append(["noc-db", "init"])
        if version_tuple(version) < (3, 26, 0):
            commands.append(["dcs-db", "migrate"])
    return commands


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def check_inputs(directory: Path, version: str, ports_offset: int | None, sizes: dict[str, int]) -> None:
    if version not in STACK_TAGS:
        raise SandboxError(f"unknown version {version!r}; the sandbox has {', '.join(STACK_TAGS)}")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise SandboxError(f"{directory} exists and is not an empty directory; choose a new one or tear it down")
    if ports_offset is not None and not 0 <= ports_offset <= 65535 - HIGHEST_DOCS_PORT:
        raise SandboxError(f"--ports-offset must be between 0 and {65535 - HIGHEST_DOCS_PORT}")
    for option, value in sizes.items():
        if value < 0:
            raise SandboxError(f"--{option.replace('_', '-')} must be 0 or more")
    if not docker_answers():
        raise SandboxError("the Docker engine does not answer: run 'tts-sandbox setup' first")
    if not registry_answers():
        raise SandboxError(f"the registry at {REGISTRY} does not answer: run 'tts-sandbox setup' first")


def deploy(
    directory: Path,
    version: str,
    *,
    edition: str = "open-source",
    redis: str = "7",
    postgres: str | None = None,
    seed: str = "small",
    ports_offset: int | None = None,
    extra_blob_files: int = 0,
    extra_redis_mb: int = 0,
    postgres_mb: int = 0,
    layout: str = "sandbox",
) -> dict:
    started = time.monotonic()
    directory = directory.absolute()
    sizes = {"extra_blob_files": extra_blob_files, "extra_redis_mb": extra_redis_mb, "postgres_mb": postgres_mb}
    check_inputs(directory, version, ports_offset, sizes)
    # Enterprise runs TimescaleDB, as the docs' Enterprise compose file does.
    postgres = postgres or (TIMESCALEDB_MAJOR if edition == "enterprise" else "15")
    if layout == "docs":
        # What the docs' files run: the mirror's redis:latest and postgres:latest (Open Source), or
        # timescale/timescaledb:latest-pg16, the sandbox's TimescaleDB (Enterprise).
        redis, postgres = "7", TIMESCALEDB_MAJOR if edition == "enterprise" else "15"
    if postgres == TIMESCALEDB_MAJOR and edition != "enterprise":
        raise SandboxError(f"--postgres {TIMESCALEDB_MAJOR} is TimescaleDB, which only --edition enterprise runs")
    postgres_repository = "timescale/timescaledb:latest-pg" if edition == "enterprise" else "library/postgres:"
    values = {
        "registry": REGISTRY,
        "version": version,
        "postgres_image": f"{REGISTRY}/{postgres_repository}{postgres}",
        "redis_image": f"{REGISTRY}/library/redis:{redis}",
        "cookie_block_key": secrets.token_hex(32),
        "cookie_hash_key": secrets.token_hex(64),
    }
    summary: dict = {
        "dir": str(directory),
        "edition": edition,
        "version": version,
        "compose": layout,
        "redis": redis,
        "postgres": postgres,
        "seed": seed,
        **sizes,
    }
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    summary["ports_offset"] = offset = reserve_ports(directory, summary, ports_offset)
    try:
        with local_latest(edition, version) if layout == "docs" else contextlib.nullcontext():
            lay_out(directory, edition, values, offset, seed, layout)
            start_and_seed(directory, version, edition, seed)
            summary["added"] = add_extras(directory, extra_blob_files, extra_redis_mb, postgres_mb)
            compose(directory, "up", "--detach", "--quiet-pull")
        wait_healthy(directory)
        summary["sizes"] = measure(directory)
    except BaseException:
        teardown(directory, remove_dir=created)
        raise
    summary["project"] = project_name(directory)
    summary["healthz"] = f"http://127.0.0.1:{healthz_port(directory)}{stack_health_path(directory)}"
    summary["deploy_seconds"] = round(time.monotonic() - started, 1)
    return summary


@contextlib.contextmanager
def local_latest(edition: str, version: str) -> Iterator[None]:
    """The engine's `<repository>:latest` is `version` while the deployment's containers are made, as on a host
    that pulled `latest` when that was the newest release; then the mirror's `latest` again, as after a later
    `docker pull` (so a compose file on `latest` no longer names the image that runs). One deploy at a time."""
    repositories = [EDITIONS[edition]["repository"]]
    if edition == "enterprise":  # its grafana's tag goes with the stack's
        repositories.append(f"{GHCR_HOST}/{GRAFANA_REPOSITORY}")
    DEPLOYMENTS_DIR.mkdir(parents=True, exist_ok=True)
    with (DEPLOYMENTS_DIR / ".latest.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for repository in repositories:
            run(["docker", "pull", "-q", f"{repository}:{version}"], what=f"docker pull {repository}:{version}")
            run(["docker", "image", "tag", f"{repository}:{version}", f"{repository}:latest"], what="docker image tag")
        try:
            yield
        finally:
            for repository in repositories:
                run(["docker", "pull", "-q", f"{repository}:latest"], what=f"docker pull {repository}:latest")


def docs_port_override(compose_file: str, offset: int) -> str:
    """An override that publishes the docs' ports on loopback, moved by the deployment's offset."""
    lines = [
        "# tts-sandbox: the docs' docker-compose.yml publishes these ports on every address; here they are on",
        "# loopback, moved by this deployment's port offset, so that deployments side by side do not collide.",
        "services:",
    ]
    service = None
    for line in compose_file.splitlines():
        named = re.match(r"^  ([\w-]+):\s*$", line)
        if named:
            service = named.group(1)
            lines += [f"  {service}:", "    ports: !override"]
            continue
        port = re.match(r'^\s+- "(?:127\.0\.0\.1:)?(\d+):(\d+(?:/udp)?)"', line)
        if port and service:
            lines.append(f'      - "127.0.0.1:{int(port.group(1)) + offset}:{port.group(2)}"')
    return "\n".join(lines) + "\n"


def lay_out(directory: Path, edition: str, values: dict[str, str], offset: int, seed: str, layout: str) -> None:
    if layout == "docs":
        text = (TEMPLATES_DIR / "docs" / f"docker-compose-{edition}.yml").read_text()
        (directory / "docker-compose.yml").write_text(text)
        (directory / OVERRIDE_FILE).write_text(docs_port_override(text, offset))
    else:
        template = (TEMPLATES_DIR / f"docker-compose.{edition}.yml.tmpl").read_text()
        (directory / "docker-compose.yml").write_text(render(template, values, offset))
    config = directory / "config" / "stack"
    config.mkdir(parents=True)
    config_template = (TEMPLATES_DIR / "config" / "stack" / "ttn-lw-stack-docker.yml.tmpl").read_text()
    (config / "ttn-lw-stack-docker.yml").write_text(render(config_template, values, offset))
    write_acme_cache(directory / "acme")
    write_pictures(directory / "blob", seed)
    # The stack (uid 886) wrote these: a backup and a restore must keep their owner and mode.
    give_to_stack(directory / "acme")
    give_to_stack(directory / "blob")


def write_acme_cache(acme: Path) -> None:
    """What Let's Encrypt's client keeps in acme/: an account key and a certificate per host name, 0600."""
    acme.mkdir()
    for name in ("acme_account+key", "localhost"):
        path = acme / name
        path.write_text(f"-----BEGIN SANDBOX PEM-----\n{hashlib.sha256(name.encode()).hexdigest()}\n")
        path.chmod(0o600)


def start_and_seed(directory: Path, version: str, edition: str, seed: str) -> None:
    """Databases up, migrated for this version and seeded; the stack is not started yet."""
    compose(directory, "up", "--detach", "--quiet-pull", "postgres", "redis")
    wait_for_databases(directory)
    for command in migrations(version, edition):
        compose(directory, "run", "--rm", "-T", "--no-deps", "stack", *command)
    compose(directory, *psql_args("-q"), input=postgres_sql(seed).encode())
    if edition == "enterprise":
        compose(directory, *psql_args("-q"), input=noc_sql().encode())
    pipe_to_redis(directory, [redis_commands(seed)])


def pipe_to_redis(directory: Path, chunks: Iterable[bytes]) -> None:
    piped = compose_streamed(directory, "exec", "-T", "redis", "redis-cli", "--pipe", chunks=chunks)
    if b"errors: 0" not in piped.stdout:
        raise SandboxError(f"seeding Redis in {directory} failed: {piped.stdout.decode(errors='replace').strip()}")


def add_extras(directory: Path, blob_files: int, redis_mb: int, postgres_mb: int) -> dict[str, int]:
    """The --extra-blob-files, --extra-redis-mb and --postgres-mb data, made side by side; what each added."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        blob = pool.submit(write_extra_blob_files, directory / "blob", blob_files)
        redis = pool.submit(add_redis_data, directory, redis_mb)
        postgres = pool.submit(pad_postgres, directory, postgres_mb)
        added = {"blob_files": blob_files, "blob_bytes": blob.result()}
        added.update(redis.result())
        added.update(postgres.result())
    return added


def add_redis_data(directory: Path, megabytes: int) -> dict[str, int]:
    """Device records of about `megabytes` MiB, written to the AOF and a snapshot before this returns."""
    extra = RedisExtra()
    if megabytes:
        pipe_to_redis(directory, extra.commands(megabytes))
        settle_redis(directory)
    return {"redis_keys": extra.keys, "redis_value_bytes": extra.value_bytes}


def redis_info(directory: Path, section: str) -> dict[str, str]:
    result = compose(directory, "exec", "-T", "redis", "redis-cli", "INFO", section)
    lines = result.stdout.decode().splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def settle_redis(directory: Path, timeout: float = 300) -> None:
    """Rewrite the AOF, then snapshot: everything is in both files, and no automatic save starts later."""

    def redis_cli(*args: str) -> str:
        result = compose(directory, "exec", "-T", "redis", "redis-cli", *args, check=False)
        return result.stdout.decode(errors="replace").strip()

    rewriting = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # Refused while an automatic rewrite runs: that one may not hold the last writes compacted.
        if not rewriting:
            rewriting = redis_cli("BGREWRITEAOF").startswith("Background append only file rewriting")
        else:
            info = redis_info(directory, "persistence")
            if info.get("aof_last_bgrewrite_status") == "err":
                raise SandboxError(f"rewriting the AOF of the redis in {directory} failed; see its logs")
            busy = ("aof_rewrite_in_progress", "aof_rewrite_scheduled", "rdb_bgsave_in_progress")
            # SAVE fails if the save policy started a snapshot meanwhile: then wait for that one too.
            if all(info.get(field) == "0" for field in busy) and redis_cli("SAVE") == "OK":
                return
        time.sleep(POLL_SECONDS)
    raise SandboxError(f"the redis in {directory} did not finish writing its files within {timeout:.0f} s")


def pad_postgres(directory: Path, megabytes: int) -> dict[str, int]:
    if not megabytes:
        return {"postgres_applications": 0, "postgres_end_devices": 0}
    compose(directory, *psql_args("-q"), input=postgres_padding_sql(megabytes).encode())
    # A parallel VACUUM puts maintenance_work_mem (64 MB) in /dev/shm, which Docker limits to 64 MB.
    compose(directory, *psql_args("-q", "-c", "VACUUM (ANALYZE, PARALLEL 0)"))
    applications = int(sql_value(directory, "SELECT count(*) FROM applications WHERE application_id LIKE 'fleet-%'"))
    return {
        "postgres_applications": applications,
        "postgres_end_devices": applications * POSTGRES_DEVICES_PER_APPLICATION,
    }


def sql_value(directory: Path, query: str) -> str:
    return compose(directory, *psql_args("-X", "-A", "-t", "-c", query)).stdout.decode().strip()


def measure(directory: Path) -> dict[str, int]:
    """What the deployment holds: database size, Redis memory and files, blob files."""
    blob = [path.stat().st_size for path in (directory / "blob").rglob("*") if path.is_file()]
    redis_files = [path.stat().st_size for path in (directory / ".env" / "data" / "redis").rglob("*") if path.is_file()]
    return {
        "postgres_bytes": int(sql_value(directory, "SELECT pg_database_size('ttn_lorawan')")),
        "redis_keys": int(redis_info(directory, "keyspace").get("db0", "keys=0").split(",")[0].split("=")[1]),
        "redis_used_memory_bytes": int(redis_info(directory, "memory")["used_memory"]),
        "redis_files_bytes": sum(redis_files),
        "blob_files": len(blob),
        "blob_bytes": sum(blob),
    }


def project_name(directory: Path) -> str:
    result = compose(directory, "config", "--format", "json")
    return json.loads(result.stdout)["name"]


def teardown(directory: Path, *, remove_dir: bool = True) -> None:
    directory = directory.absolute()
    if (directory / "docker-compose.yml").exists():
        compose(directory, "down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)
    if remove_dir and directory.exists():
        shutil.rmtree(directory)
    record_path(directory).unlink(missing_ok=True)


def teardown_all() -> None:
    for record in records():
        teardown(Path(record["dir"]))


def edition_of(directory: Path) -> str:
    text = (directory / "docker-compose.yml").read_text()
    for edition, spec in EDITIONS.items():
        if re.search(rf"(^|[\s\"'/]){re.escape(spec['repository'])}:", text, re.M):
            return edition
    raise SandboxError(f"{directory / 'docker-compose.yml'} has no lorawan-stack image")
