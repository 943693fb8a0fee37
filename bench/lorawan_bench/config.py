"""What the benchmark measures: versions, deployment sizes, where the project's tools are."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
PERFORMANCE_DOC = ROOT / "docs" / "performance.md"
SANDBOX = ROOT / "tests" / "sandbox" / "tts-sandbox"
SANDBOX_PACKAGE_DIR = ROOT / "tests" / "sandbox"
RUNBOOK = BENCH_DIR / "runbook.sh"
VENV_BIN = ROOT / ".venv" / "bin"
CALLBACK_DIR = Path(__file__).resolve().parent / "callback_plugins"

FROM_VERSION = "3.31.1"
TARGET_VERSION = "3.32.0"
# The stand-in's 3.98.0 applies part of its is-db migration, then exits 1: the playbook must roll back.
FAILING_VERSION = "3.98.0"
# What 3.31.1 -> 3.32.0 needs on Open Source (the release notes, shared/tts-facts.md): is-db migrate only.
FLOOR_MIGRATIONS: tuple[tuple[str, ...], ...] = (("is-db", "migrate"),)

# `tts-sandbox deploy` options per size (the definitions).
SIZES: dict[str, tuple[str, ...]] = {
    "medium": ("--seed", "medium"),
    "large": ("--seed", "large", "--extra-blob-files", "1000", "--extra-redis-mb", "50"),
    "big": (
        "--seed",
        "large",
        "--postgres-mb",
        "1024",
        "--extra-redis-mb",
        "200",
        "--extra-blob-files",
        "10000",
    ),
}
# The fleet measures Ansible's parallelism, not data volume: its deployments are small.
FLEET_DEPLOY_OPTIONS: tuple[str, ...] = ("--seed", "small")
DEFAULT_FLEET = (1, 4, 8)
SMOKE_FLEET = (1, 2)

# Outside measurement: one GET /healthz every POLL_INTERVAL seconds.
POLL_INTERVAL = 0.1
POLL_TIMEOUT = 1.0
# After a command ends, how long to wait for /healthz to answer with the expected version.
SETTLE_TIMEOUT = 120.0
