"""What a refused or recovered run must leave as it was: the deployment's files and its containers."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path


def project_files(directory: Path) -> dict[str, str]:
    """sha256 of every file of the deployment but the databases' own data (which they write on their own) and the
    upgrade journal (a run refused under the lock records that it failed)."""
    data = directory / ".env" / "data"
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and data not in path.parents and path.name != ".lorawan-tts.journal"
    }


def containers(directory: Path) -> list[tuple[str, str, str]]:
    """(name, id, started at) of each container: a stop, start or recreation changes one of them."""
    ids = subprocess.run(
        ["docker", "compose", "ps", "--all", "--quiet"], cwd=directory, capture_output=True, text=True, check=True
    ).stdout.split()
    inspected = json.loads(
        subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=True).stdout
    )
    return sorted((item["Name"], item["Id"], item["State"]["StartedAt"]) for item in inspected)
