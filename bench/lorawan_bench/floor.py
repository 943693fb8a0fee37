"""The floor: the bare operations an upgrade cannot avoid, each timed, with the compose CLI directly.

stop the stack; capture Postgres (CREATE DATABASE ... TEMPLATE, STRATEGY FILE_COPY from PostgreSQL 15) and Redis
(a copy of its data directory; nothing writes to it with the stack stopped) in parallel; set the image tag; run
the migrations the hop needs; start the stack and wait until /healthz answers 200 with the new version.

fleet() does the same on several deployments at once: how far the machine itself lets a fleet scale.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .commands import BenchError, Completed, run
from .config import FLOOR_MIGRATIONS, FROM_VERSION, TARGET_VERSION
from .health import Sample, is_up, probe
from .machine import busy_core_seconds, busy_since
from .observe import observe
from .sandbox import Deployment

SNAPSHOT = "ttn_lorawan_floor_snapshot"
STACK_IMAGE = re.compile(r"(image:\s*['\"]?)(\S*/lorawan-stack):" + re.escape(FROM_VERSION) + r"\b")


class Steps:
    """Runs each step's commands, timing the step; a failed command stops the floor."""

    def __init__(self, deployment: Deployment, logs: Path) -> None:
        self.deployment = deployment
        self.logs = logs
        self.seconds: dict[str, float] = {}

    def compose(self, log: str, *args: str) -> Completed:
        completed = run(["docker", "compose", *args], cwd=self.deployment.dir, log=self.logs / log)
        if completed.returncode != 0:
            raise BenchError(f"floor: docker compose {' '.join(args[:4])} failed:\n{completed.tail(5)}")
        return completed

    def timed(self, name: str, step: Callable[[], object]) -> None:
        begin = time.monotonic()
        step()
        self.seconds[name] = round(time.monotonic() - begin, 3)


def psql(steps: Steps, sql: str, log: str) -> str:
    args = ("exec", "-T", "postgres", "psql", "-v", "ON_ERROR_STOP=1", "-U", "root", "-d", "postgres", "-tAc", sql)
    return steps.compose(log, *args).stdout.strip()


def measure(deployment: Deployment, work: Path, logs: Path) -> dict[str, object]:
    name = deployment.name
    steps = Steps(deployment, logs)
    compose_file = deployment.dir / "docker-compose.yml"
    text = compose_file.read_text()
    match = STACK_IMAGE.search(text)
    if match is None:
        raise BenchError(f"floor: no lorawan-stack:{FROM_VERSION} image in {compose_file}")
    # Not downtime: the image is pulled while the old version still serves.
    pulled = run(["docker", "pull", "--quiet", f"{match.group(2)}:{TARGET_VERSION}"], log=logs / f"{name}.pull.log")
    if pulled.returncode != 0:
        raise BenchError(f"floor: docker pull failed:\n{pulled.tail(5)}")
    major = int(psql(steps, "SHOW server_version_num", f"{name}.floor-version.log")) // 10000
    strategy = " STRATEGY FILE_COPY" if major >= 15 else ""
    redis_copy = work / "floor-redis" / name
    redis_copy.parent.mkdir(parents=True, exist_ok=True)
    parts: dict[str, float] = {}

    def timed_part(part: str, step: Callable[[], object]) -> None:
        begin = time.monotonic()
        step()
        parts[part] = round(time.monotonic() - begin, 3)

    def postgres() -> None:
        psql(steps, f"CREATE DATABASE {SNAPSHOT} TEMPLATE ttn_lorawan{strategy}", f"{name}.floor-snapshot.log")

    def redis() -> None:
        copied = run(["cp", "-a", str(deployment.dir / ".env" / "data" / "redis"), str(redis_copy)])
        if copied.returncode != 0:
            raise BenchError(f"floor: copying Redis' data directory failed:\n{copied.tail(5)}")

    def capture() -> None:
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [
                pool.submit(timed_part, "postgres_snapshot", postgres),
                pool.submit(timed_part, "redis_copy", redis),
            ]
            for future in futures:
                future.result()

    def set_tag() -> None:
        compose_file.write_text(text.replace(match.group(0), f"{match.group(1)}{match.group(2)}:{TARGET_VERSION}", 1))

    def migrate() -> None:
        for command in FLOOR_MIGRATIONS:
            steps.compose(f"{name}.floor-{'-'.join(command)}.log", "run", "--rm", "-T", "stack", *command)

    def start() -> None:
        timed_part("compose_up", lambda: steps.compose(f"{name}.floor-up.log", "up", "-d", "stack"))
        begin = time.monotonic()
        while time.monotonic() - begin < 120:
            status, version = probe(deployment.port)
            if is_up(Sample(time.time(), status, version), TARGET_VERSION):
                parts["until_healthz"] = round(time.monotonic() - begin, 3)
                return
            time.sleep(0.02)
        raise BenchError(f"floor: /healthz of {name} did not answer 200 with {TARGET_VERSION} within 120 s")

    def all_steps() -> None:
        steps.timed("stop", lambda: steps.compose(f"{name}.floor-stop.log", "stop", "stack"))
        steps.timed("capture", capture)
        steps.timed("tag", set_tag)
        steps.timed("migrate", migrate)
        steps.timed("start", start)

    observed = observe([deployment], all_steps, TARGET_VERSION)[1]
    downtime = observed.downtime[name]
    return {
        "method": "floor",
        "ok": True,
        "problems": [],
        "floor_seconds": round(sum(steps.seconds.values()), 3),
        "steps": steps.seconds,
        "parts": parts,
        "migrations": [" ".join(command) for command in FLOOR_MIGRATIONS],
        "postgres_major": major,
        "downtime_seconds": None if downtime.seconds is None else round(downtime.seconds, 3),
        "downtime": observed.downtime_dict(name),
    }


def fleet(deployments: list[Deployment], work: Path, logs: Path) -> dict[str, object]:
    """The floor's operations on every deployment at once, with the wall time and the machine's CPU."""
    count = len(deployments)
    busy_before = busy_core_seconds()
    begin = time.monotonic()
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = {item.name: pool.submit(measure, item, work, logs) for item in deployments}
        records, problems = {}, []
        for name, future in futures.items():
            try:
                records[name] = future.result()
            except BenchError as error:
                problems.append(f"{name}: {error}")
    wall = time.monotonic() - begin
    busy = busy_since(busy_before, wall)
    return {
        "hosts": count,
        "ok": not problems,
        "problems": problems,
        "wall_seconds": round(wall, 3),
        **busy,
        "downtime_seconds": {name: record["downtime_seconds"] for name, record in records.items()},
    }
