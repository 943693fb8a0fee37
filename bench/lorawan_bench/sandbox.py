"""Sandbox deployments the benchmark creates (and tears down again), and their data sizes."""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .commands import BenchError, run
from .config import SANDBOX, SANDBOX_PACKAGE_DIR


@dataclass
class Deployment:
    dir: Path
    name: str  # the compose project and the inventory host name
    port: int  # loopback port of the stack's /healthz
    deploy_seconds: float
    options: list[str]
    sizes: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "dir": str(self.dir),
            "name": self.name,
            "healthz_port": self.port,
            "deploy_seconds": round(self.deploy_seconds, 2),
            "options": self.options,
            "sizes": self.sizes,
        }

    def compose(self, *args: str, log: Path | None = None, check: bool = True) -> str:
        return run(["docker", "compose", *args], cwd=self.dir, log=log, check=check).stdout


def healthz_port(directory: Path) -> int:
    """The sandbox's own reading of the compose file (tests/sandbox/ttssandbox/deployment.py)."""
    if str(SANDBOX_PACKAGE_DIR) not in sys.path:
        sys.path.append(str(SANDBOX_PACKAGE_DIR))
    deployment = importlib.import_module("ttssandbox.deployment")
    return int(deployment.healthz_port(directory))


class Sandbox:
    """Deploys with `tts-sandbox deploy` and remembers every deployment, so that `close` tears all of them down."""

    def __init__(self, work: Path, logs: Path) -> None:
        self.work = work
        self.logs = logs
        self.created: list[Path] = []

    def deploy(self, name: str, version: str, options: tuple[str, ...] | list[str]) -> Deployment:
        directory = self.work / "deployments" / name
        directory.parent.mkdir(parents=True, exist_ok=True)
        self.created.append(directory)
        argv = [str(SANDBOX), "deploy", str(directory), "--version", version, *options]
        result = run(argv, log=self.logs / f"{name}.deploy.log")
        if result.returncode != 0:
            raise BenchError(f"tts-sandbox deploy {name} failed (exit {result.returncode}):\n{result.tail()}")
        deployment = Deployment(directory, name, healthz_port(directory), result.seconds, list(options))
        deployment.sizes = data_sizes(deployment)
        return deployment

    def teardown(self, deployment: Deployment | Path) -> None:
        directory = deployment.dir if isinstance(deployment, Deployment) else deployment
        if directory in self.created:
            run([str(SANDBOX), "teardown", str(directory)], log=self.logs / f"{directory.name}.teardown.log")
            self.created.remove(directory)

    def close(self) -> None:
        for directory in list(self.created):
            self.teardown(directory)


def data_sizes(deployment: Deployment) -> dict[str, float]:
    """Postgres database, Redis (memory and files) and blob sizes, in MB and files."""
    postgres_bytes = int(
        deployment.compose(
            "exec",
            "-T",
            "postgres",
            "psql",
            "-U",
            "root",
            "-d",
            "ttn_lorawan",
            "-tAc",
            "SELECT pg_database_size('ttn_lorawan')",
        ).strip()
    )
    info = deployment.compose("exec", "-T", "redis", "redis-cli", "info", "memory")
    used_memory = next((int(line.split(":", 1)[1]) for line in info.splitlines() if line.startswith("used_memory:")), 0)
    redis_files = tree_size(deployment.dir / ".env" / "data" / "redis")[0]
    blob_bytes, blob_files = tree_size(deployment.dir / "blob")
    mb = 1024 * 1024
    return {
        "postgres_mb": round(postgres_bytes / mb, 2),
        "redis_memory_mb": round(used_memory / mb, 2),
        "redis_files_mb": round(redis_files / mb, 2),
        "blob_mb": round(blob_bytes / mb, 2),
        "blob_files": blob_files,
    }


def tree_size(path: Path) -> tuple[int, int]:
    total = files = 0
    for folder, _folders, names in os.walk(path):
        for name in names:
            try:
                total += (Path(folder) / name).stat().st_size
                files += 1
            except OSError:
                continue
    return total, files
