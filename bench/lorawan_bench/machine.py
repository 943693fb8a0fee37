"""What the numbers were measured on."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

from .commands import BenchError, run


def first_line(argv: list[str]) -> str:
    try:
        result = run(argv)
    except BenchError:
        return "unknown"
    lines = result.stdout.strip().splitlines()
    return lines[0].strip() if result.returncode == 0 and lines else "unknown"


def field(path: Path, prefix: str) -> str:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def machine() -> dict[str, object]:
    memory_kb = field(Path("/proc/meminfo"), "MemTotal").split()[0]
    os_name = pretty_os()
    try:
        ansible_core = metadata.version("ansible-core")
    except metadata.PackageNotFoundError:
        ansible_core = "unknown"
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": field(Path("/proc/cpuinfo"), "model name"),
        "memory_gb": round(int(memory_kb) / 1024 / 1024, 1) if memory_kb.isdigit() else None,
        "kernel": platform.release(),
        "os": os_name,
        "docker": first_line(["docker", "version", "--format", "{{.Server.Version}}"]),
        "compose": first_line(["docker", "compose", "version"]),
        "ansible_core": ansible_core,
        "python": platform.python_version(),
    }


def busy_core_seconds() -> float | None:
    """CPU time the whole machine has spent busy since boot (every core, every process: Ansible, Docker, the
    containers, this bench's observers), from /proc/stat; None where there is no /proc/stat."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def pretty_os() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def busy_since(before: float | None, seconds: float) -> dict[str, object]:
    """How busy the machine was since busy_core_seconds() gave `before`, over `seconds` of wall time: its busy
    core-seconds and the share of all its cores (None where /proc/stat does not tell)."""
    after = busy_core_seconds()
    busy = None if before is None or after is None else after - before
    return {
        "machine_busy_core_seconds": None if busy is None else round(busy, 1),
        "machine_busy_percent": None if busy is None else round(100 * busy / seconds / (os.cpu_count() or 1)),
    }
