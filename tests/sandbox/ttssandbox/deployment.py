"""`tts-sandbox deploy` and `teardown`: docs-shaped deployments, started, migrated and seeded."""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import secrets
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

from .common import (
    DEPLOYMENTS_DIR,
    EDITIONS,
    REGISTRY,
    STACK_TAGS,
    TEMPLATES_DIR,
    SandboxError,
    compose,
    psql_args,
    run,
)
from .host import docker_answers, registry_answers
from .seed import SEED_SIZES, postgres_sql, redis_commands, write_pictures

__all__ = ["SEED_SIZES", "deploy", "healthz_port", "teardown", "teardown_all"]

# Automatic offsets put every published port above 10000, in steps of 100. The docs' ports differ by a
# multiple of 100 only for 1881-1888 and 8881-8888 (7000 apart), so 70 deployments never share a port.
AUTO_OFFSET_BASE = 10000
PORT_OFFSET_STEP = 100
AUTO_OFFSET_SLOTS = 70
HIGHEST_DOCS_PORT = 8888
HEALTH_TIMEOUT = 90


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


def healthz_port(directory: Path) -> int:
    """The loopback port mapped to the stack's 1885, read from the compose file."""
    text = (directory / "docker-compose.yml").read_text()
    match = re.search(r'"127\.0\.0\.1:(\d+):1885"', text)
    if match is None:
        raise SandboxError(f"{directory / 'docker-compose.yml'} maps no loopback port to the stack's 1885")
    return int(match.group(1))


def healthz_status(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def stack_health(directory: Path) -> str:
    container = compose(directory, "ps", "--quiet", "stack", check=False).stdout.decode().strip()
    if not container:
        return "missing"
    result = run(["docker", "inspect", "--format", "{{.State.Health.Status}}", container], check=False)
    return result.stdout.decode().strip()


def wait_healthy(directory: Path, timeout: float = HEALTH_TIMEOUT) -> None:
    """Until /healthz answers 200 and Docker's own health check says healthy, as operators see it."""
    port = healthz_port(directory)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthz_status(port) == 200 and stack_health(directory) == "healthy":
            return
        time.sleep(0.5)
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
    """What a first install of this version runs; Redis schema keys are new, so --force."""
    commands = [
        ["is-db", "migrate"],
        ["ns-db", "migrate", "--force"],
        ["as-db", "migrate", "--force"],
        ["js-db", "migrate", "--force"],
    ]
    if edition == "enterprise":
        commands += [["noc-db", "migrate"], ["storage-db", "migrate"]]
        if tuple(int(part) for part in version.split(".")) < (3, 26, 0):
            commands.append(["dcs-db", "migrate", "--force"])
    return commands


def check_inputs(directory: Path, version: str, ports_offset: int | None) -> None:
    if version not in STACK_TAGS:
        raise SandboxError(f"unknown version {version!r}; the sandbox has {', '.join(STACK_TAGS)}")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise SandboxError(f"{directory} exists and is not an empty directory; choose a new one or tear it down")
    if ports_offset is not None and not 0 <= ports_offset <= 65535 - HIGHEST_DOCS_PORT:
        raise SandboxError(f"--ports-offset must be between 0 and {65535 - HIGHEST_DOCS_PORT}")
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
    postgres: str = "15",
    seed: str = "small",
    ports_offset: int | None = None,
) -> dict:
    directory = directory.absolute()
    check_inputs(directory, version, ports_offset)
    postgres_repository = "timescale/timescaledb:latest-pg" if edition == "enterprise" else "library/postgres:"
    values = {
        "registry": REGISTRY,
        "version": version,
        "postgres_image": f"{REGISTRY}/{postgres_repository}{postgres}",
        "redis_image": f"{REGISTRY}/library/redis:{redis}",
        "cookie_block_key": secrets.token_hex(32),
        "cookie_hash_key": secrets.token_hex(64),
    }
    summary = {
        "dir": str(directory),
        "edition": edition,
        "version": version,
        "redis": redis,
        "postgres": postgres,
        "seed": seed,
    }
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    summary["ports_offset"] = offset = reserve_ports(directory, summary, ports_offset)
    try:
        lay_out(directory, edition, values, offset, seed)
        start_and_seed(directory, version, edition, seed)
    except BaseException:
        teardown(directory, remove_dir=created)
        raise
    summary["project"] = project_name(directory)
    summary["healthz"] = f"http://127.0.0.1:{healthz_port(directory)}/healthz"
    return summary


def lay_out(directory: Path, edition: str, values: dict[str, str], offset: int, seed: str) -> None:
    template = (TEMPLATES_DIR / f"docker-compose.{edition}.yml.tmpl").read_text()
    (directory / "docker-compose.yml").write_text(render(template, values, offset))
    config = directory / "config" / "stack"
    config.mkdir(parents=True)
    config_template = (TEMPLATES_DIR / "config" / "stack" / "ttn-lw-stack-docker.yml.tmpl").read_text()
    (config / "ttn-lw-stack-docker.yml").write_text(render(config_template, values, offset))
    (directory / "acme").mkdir()
    write_pictures(directory / "blob", seed)


def start_and_seed(directory: Path, version: str, edition: str, seed: str) -> None:
    compose(directory, "up", "--detach", "--quiet-pull", "postgres", "redis")
    wait_for_databases(directory)
    for command in migrations(version, edition):
        compose(directory, "run", "--rm", "-T", "--no-deps", "stack", *command)
    compose(directory, *psql_args("-q"), input=postgres_sql(seed).encode())
    piped = compose(directory, "exec", "-T", "redis", "redis-cli", "--pipe", input=redis_commands(seed))
    if b"errors: 0" not in piped.stdout:
        raise SandboxError(f"seeding Redis in {directory} failed: {piped.stdout.decode(errors='replace').strip()}")
    compose(directory, "up", "--detach", "--quiet-pull")
    wait_healthy(directory)


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
        if f"/{spec['repository']}:" in text:
            return edition
    raise SandboxError(f"{directory / 'docker-compose.yml'} has no lorawan-stack image")
