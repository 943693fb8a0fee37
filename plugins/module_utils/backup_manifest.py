# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A backup directory's manifest.json: every file's size and sha256, written and checked in one process.

A backup is complete when its manifest.json exists: it is written last, after every part was verified.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import time
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.lorawan.tts.plugins.module_utils.backup_disk import os_error_message, writing_to
from ansible_collections.lorawan.tts.plugins.module_utils.progress import Progress

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
BACKUP_NAME_PATTERN = re.compile(r"^[0-9]{8}T[0-9]{6}Z_[A-Za-z0-9._-]+$")
HASH_BLOCK = 1024 * 1024
REQUIRED_METADATA = ("postgres", "redis", "stack_version")


class BackupManifestError(Exception):
    """A manifest could not be written, or a backup does not match its manifest."""

    def __init__(self, message: str, changed: bool = False) -> None:
        super().__init__(message)
        self.changed = changed


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def backup_files(path: str) -> List[str]:
    """Every regular file of the backup but the manifest, relative, sorted."""
    found = []
    for directory, subdirectories, files in os.walk(path):
        subdirectories.sort()
        for name in files:
            relative = os.path.relpath(os.path.join(directory, name), path)
            if relative != MANIFEST_NAME:
                found.append(relative)
    return sorted(found)


def make_private(path: str) -> None:
    """Directories 0700, files 0600: a backup holds passwords (config/, .env) and every device's keys."""
    os.chmod(path, 0o700)
    for directory, subdirectories, files in os.walk(path):
        for name in subdirectories:
            child = os.path.join(directory, name)
            if stat.S_IMODE(os.lstat(child).st_mode) != 0o700:
                os.chmod(child, 0o700)
        for name in files:
            child = os.path.join(directory, name)
            status = os.lstat(child)
            if stat.S_ISREG(status.st_mode) and stat.S_IMODE(status.st_mode) != 0o600:
                os.chmod(child, 0o600)


def parts(path: str, postgres: Dict[str, Any], redis: Dict[str, Any]) -> Dict[str, Any]:
    """The manifest's postgres and redis records, from what postgres_dump and redis_backup returned."""
    for name, result, field in (("postgres", postgres, "path"), ("redis", redis, "path")):
        if not result.get(field):
            raise BackupManifestError(f"the {name} option needs the {field} that lorawan.tts.{name}_* returned")
    return {
        "postgres": {
            "file": os.path.relpath(postgres["path"], path),
            "database": postgres.get("database"),
            "tables": int(postgres.get("tables") or 0),
            "sha256": postgres.get("sha256", ""),
            "size": int(postgres.get("size") or 0),
        },
        "redis": {
            "path": os.path.relpath(redis["path"], path),
            "format": redis.get("format"),
            "keys": int(redis.get("key_count") or 0),
        },
    }


def write(
    path: str,
    metadata: Dict[str, Any],
    postgres: Dict[str, Any],
    redis: Dict[str, Any],
    clock=time.monotonic,
    progress: Optional[Progress] = None,
) -> Dict[str, Any]:
    """Checksum every file of the backup and write manifest.json last; return a summary."""
    started = clock()
    metadata = dict(metadata, **parts(path, postgres, redis))
    missing = [key for key in REQUIRED_METADATA if not metadata.get(key)]
    if missing:
        raise BackupManifestError(f"the manifest of {path} needs {', '.join(missing)}")
    if not os.path.isdir(path):
        raise BackupManifestError(f"the backup directory {path} does not exist")
    try:
        make_private(path)
        entries = {}
        names = backup_files(path)
        progress = progress or Progress(None)
        progress.step("checksumming", total_files=len(names))
        for relative in names:
            full = os.path.join(path, relative)
            entries[relative] = {"size": os.path.getsize(full), "sha256": sha256_of(full)}
            progress.add(1, entries[relative]["size"])
        manifest = dict(metadata, format=MANIFEST_FORMAT, files=entries)
        # The manifest says the backup is complete: the files it lists reach the disk before it does.
        os.sync()
        target = os.path.join(path, MANIFEST_NAME)
        temporary = target + ".part"
        with writing_to(temporary), open(temporary, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            json.dump(manifest, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except OSError as error:
        raise BackupManifestError(
            os_error_message(f"writing the manifest of {path}", error, path), changed=True
        ) from error
    return summary(path, manifest, clock() - started)


def summary(path: str, manifest: Dict[str, Any], seconds: float) -> Dict[str, Any]:
    """The manifest without its file list (which can hold tens of thousands of entries), and its totals."""
    result = {key: value for key, value in manifest.items() if key != "files"}
    return {
        "path": path,
        "manifest": result,
        "files": len(manifest["files"]),
        "size": sum(entry["size"] for entry in manifest["files"].values()),
        "seconds": round(seconds, 3),
    }


def newest(host_dir: str) -> Optional[str]:
    """The newest backup directory under host_dir that has a manifest (a complete backup)."""
    try:
        names = sorted(name for name in os.listdir(host_dir) if BACKUP_NAME_PATTERN.match(name))
    except FileNotFoundError:
        return None
    for name in reversed(names):
        if os.path.isfile(os.path.join(host_dir, name, MANIFEST_NAME)):
            return os.path.join(host_dir, name)
    return None


def load(path: str) -> Dict[str, Any]:
    target = os.path.join(path, MANIFEST_NAME)
    if not os.path.isfile(target):
        raise BackupManifestError(
            f"refusing {path}: {MANIFEST_NAME} is missing, so the backup is incomplete (or not a lorawan.tts backup); "
            "choose another one with tts_restore_from"
        )
    try:
        with open(target, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except ValueError as error:
        raise BackupManifestError(f"refusing {path}: its {MANIFEST_NAME} is not JSON ({error})") from error
    problems = []
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        problems.append(f"format {MANIFEST_FORMAT}")
    elif not isinstance(manifest.get("files"), dict):
        problems.append("files")
    else:
        problems = [key for key in REQUIRED_METADATA if not manifest.get(key)]
        if (manifest.get("postgres") or {}).get("file") not in manifest["files"]:
            problems.append("postgres.file listed in files")
    if problems:
        raise BackupManifestError(
            f"refusing {path}: its {MANIFEST_NAME} is not a lorawan.tts backup manifest (no {', '.join(problems)})"
        )
    return manifest


def verify(path: str, clock=time.monotonic, progress: Optional[Progress] = None) -> Dict[str, Any]:
    """Check that every file is there with its size and sha256 and that nothing else is; return a summary."""
    started = clock()
    manifest = load(path)
    listed = manifest["files"]
    present = backup_files(path)
    missing = sorted(set(listed) - set(present))
    unexpected = sorted(set(present) - set(listed))
    damaged = []
    progress = progress or Progress(None)
    progress.step("checking checksums", total_files=len(listed), total_bytes=sum(e["size"] for e in listed.values()))
    for relative in sorted(set(listed) & set(present)):
        full = os.path.join(path, relative)
        expected = listed[relative]
        if os.path.getsize(full) != expected["size"] or sha256_of(full) != expected["sha256"]:
            damaged.append(relative)
        progress.add(1, expected["size"])
    problems = []
    for label, names in (("missing", missing), ("not in the manifest", unexpected), ("size or sha256 differ", damaged)):
        if names:
            shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise BackupManifestError(
            f"refusing {path}: the backup is incomplete or was changed ({'; '.join(problems)}); nothing was changed"
        )
    return summary(path, manifest, clock() - started)


def prune(host_dir: str, keep: int, current: str, check_mode: bool = False) -> Tuple[List[str], List[str]]:
    """Delete the oldest complete backups beyond keep (never current); return (removed, kept)."""
    if keep <= 0:
        return [], []
    names = sorted(
        name
        for name in os.listdir(host_dir)
        if BACKUP_NAME_PATTERN.match(name) and os.path.isfile(os.path.join(host_dir, name, MANIFEST_NAME))
    )
    current_name = os.path.basename(os.path.normpath(current))
    others = [name for name in names if name != current_name]
    removed = others[: max(len(others) - (keep - 1), 0)]
    kept = [name for name in names if name not in removed]
    if not check_mode:
        for name in removed:
            shutil.rmtree(os.path.join(host_dir, name))
    return [os.path.join(host_dir, name) for name in removed], [os.path.join(host_dir, name) for name in kept]
