"""Paths, names and the command runner shared by the sandbox's commands."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

SANDBOX_DIR = Path(__file__).resolve().parent.parent
IMAGES_DIR = SANDBOX_DIR / "images"
TEMPLATES_DIR = SANDBOX_DIR / "templates"
STATE_DIR = Path(os.environ.get("TTS_SANDBOX_STATE_DIR", "/var/lib/lorawan-tts-sandbox"))
CACHE_DIR = Path(os.environ.get("TTS_SANDBOX_CACHE_DIR", "/var/cache/lorawan-tts-sandbox"))
DEPLOYMENTS_DIR = STATE_DIR / "deployments"

REGISTRY = "localhost:5000"
REGISTRY_URL = "http://127.0.0.1:5000"

STACK_TAGS = (
    "3.18.2",
    "3.19.2",
    "3.22.2",
    "3.23.1",
    "3.24.2",
    "3.25.0",
    "3.26.0",
    # Not a release: fails its is-db migrate inside the bun trap (3.20 to 3.32.1).
    "3.30.9",
    "3.31.1",
    "3.32.0",
    "3.32.2",
    "3.33.0",
    "3.34.1",
    "3.35.0",
    "3.36.0",
    "3.98.0",
    "3.98.1",
    "3.98.2",
)
# What `latest` runs, as on Docker Hub: the newest release.
LATEST_TAG = "3.36.0"
# /healthz from 3.24.0; /healthz/live and /healthz/ready before.
HEALTHZ_SINCE = (3, 24, 0)


def health_path(tag: str) -> str:
    """The path that says the stack of this image tag is up (`latest` and X.Y tags: the newest)."""
    parts = tag.split(".")
    if len(parts) == 3 and all(part.isdigit() for part in parts) and tuple(map(int, parts)) < HEALTHZ_SINCE:
        return "/healthz/live"
    return "/healthz"


EDITIONS = {
    "open-source": {"repository": "thethingsnetwork/lorawan-stack", "binary": "ttn-lw-stack"},
    "enterprise": {"repository": "thethingsindustries/lorawan-stack", "binary": "tti-lw-stack"},
}
GRAFANA_REPOSITORY = "thethingsindustries/lorawan-stack-noc-grafana"
# The Enterprise compose file's grafana registry: the sandbox serves it from its own registry's store.
GHCR_HOST = "ghcr.io"
REDIS_MAJORS = ("6", "7")
# 13 and 15: plain PostgreSQL (Enterprise deployments name them timescale/timescaledb:latest-pg13/15 without the
# extension); 17: real TimescaleDB, Enterprise only.
TIMESCALEDB_MAJOR = "17"
POSTGRES_MAJORS = ("13", "15", TIMESCALEDB_MAJOR)
# What the docs' Enterprise file runs; in the sandbox, the TimescaleDB image above under that name.
DOCS_TIMESCALEDB_IMAGE = "timescale/timescaledb:latest-pg16"


class SandboxError(Exception):
    """An error the command line prints as one line before exiting non-zero."""


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    input: bytes | None = None,  # noqa: A002 - mirrors subprocess.run
    check: bool = True,
    what: str | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run argv (never through a shell) and capture its output; raise SandboxError on failure."""
    try:
        result = subprocess.run(list(argv), cwd=cwd, input=input, capture_output=True, check=False)
    except FileNotFoundError as error:
        raise SandboxError(f"{argv[0]} is not installed; run 'tts-sandbox setup' first") from error
    if check and result.returncode != 0:
        tail = result.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise SandboxError(f"{what or ' '.join(argv[:3])} failed (exit {result.returncode}): {' | '.join(tail)}")
    return result


def compose(directory: Path, *args: str, check: bool = True, input: bytes | None = None):  # noqa: A002
    return run(["docker", "compose", *args], cwd=directory, check=check, input=input, what=f"docker compose {args[0]}")


def compose_streamed(directory: Path, *args: str, chunks: Iterable[bytes]) -> subprocess.CompletedProcess[bytes]:
    """`docker compose ARGS` fed from chunks as they are made, for inputs too big to build in memory first."""
    argv = ["docker", "compose", *args]
    process = subprocess.Popen(
        argv, cwd=directory, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdin is not None
    try:
        for chunk in chunks:
            process.stdin.write(chunk)
    except BrokenPipeError:
        pass  # the command ended early; its exit code and stderr say why
    except BaseException:
        process.kill()
        process.wait()
        raise
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        tail = stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise SandboxError(f"docker compose {args[0]} failed (exit {process.returncode}): {' | '.join(tail)}")
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def psql_args(*options: str) -> list[str]:
    """`docker compose` arguments that run psql in a deployment's database as its superuser, stopping at an error."""
    return ["exec", "-T", "postgres", "psql", *options, "-v", "ON_ERROR_STOP=1", "-U", "root", "-d", "ttn_lorawan"]
