# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The deployment's files in a backup: blob pictures, config/, acme/, .env and the compose files.

An upgrade changes none of them but the compose files' image tags, so they are copied while the stack still
runs; inside the downtime a second pass compares each file's size and mtime with the first and copies only
what changed. The index ``files.json`` in the backup records where each file came from, with its type, mode,
owner, size and mtime, so that a restore puts back exactly that, and again copies only what differs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import time
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.lorawan.tts.plugins.module_utils.backup_disk import os_error_message, writing_to
from ansible_collections.lorawan.tts.plugins.module_utils.files import ensure_directory
from ansible_collections.lorawan.tts.plugins.module_utils.progress import Progress

INDEX_NAME = "files.json"
INDEX_FORMAT = 1
BLOB_ROOT = "files/blob"
PROJECT_ROOT = "files/project"
PROJECT_DIRECTORIES = ("config", "acme")
ENV_FILE = ".env"
# Every name docker compose reads by default, and the overrides and variants operators keep beside them.
COMPOSE_FILE_PATTERN = re.compile(r"^(docker-)?compose([.-][^/]*)?\.ya?ml$")
COPY_BLOCK = 1024 * 1024

Entry = Dict[str, Any]


class BackupFilesError(Exception):
    """Copying the deployment's files failed; the message says what, where and what to do."""

    def __init__(self, message: str, changed: bool = False) -> None:
        super().__init__(message)
        self.changed = changed


def project_roots(project_src: str, compose_files: Optional[List[str]], blob_dir: Optional[str]) -> Dict[str, str]:
    """What a backup keeps: its name in the backup -> the absolute path on the host (file or directory)."""
    project_src = os.path.abspath(project_src)
    if not os.path.isdir(project_src):
        raise BackupFilesError(f"{project_src} is not a directory: point tts_project_dir at the deployment")
    roots = {BLOB_ROOT: os.path.abspath(blob_dir or os.path.join(project_src, "blob"))}
    for name in PROJECT_DIRECTORIES:
        roots[f"{PROJECT_ROOT}/{name}"] = os.path.join(project_src, name)
    names = {name for name in os.listdir(project_src) if COMPOSE_FILE_PATTERN.match(name)}
    names.update(compose_files or [])
    names.add(ENV_FILE)
    for name in sorted(names):
        path = os.path.join(project_src, name)
        if os.path.isfile(path):
            roots[f"{PROJECT_ROOT}/{os.path.normpath(name)}"] = path
    return roots


def describe(status: os.stat_result) -> Entry:
    entry: Entry = {"mode": stat.S_IMODE(status.st_mode), "uid": status.st_uid, "gid": status.st_gid}
    if stat.S_ISDIR(status.st_mode):
        entry["type"] = "dir"
    elif stat.S_ISLNK(status.st_mode):
        entry["type"] = "link"
    else:
        entry.update(type="file", size=status.st_size, mtime_ns=status.st_mtime_ns)
    return entry


def scan(roots: Dict[str, str]) -> Dict[str, Entry]:
    """Every directory, regular file and symbolic link under the roots, by its name in the backup."""
    entries: Dict[str, Entry] = {}
    for name, root in roots.items():
        try:
            status = os.lstat(root)
        except FileNotFoundError:
            continue
        entries[name] = dict(describe(status), source=root)
        if not stat.S_ISDIR(status.st_mode):
            continue
        for directory, subdirectories, files in os.walk(root):
            subdirectories.sort()
            relative = os.path.relpath(directory, root)
            for child in sorted(subdirectories) + sorted(files):
                path = os.path.join(directory, child)
                status = os.lstat(path)
                if stat.S_ISDIR(status.st_mode) or stat.S_ISREG(status.st_mode) or stat.S_ISLNK(status.st_mode):
                    key = name + "/" + (child if relative == "." else f"{relative}/{child}")
                    entry = describe(status)
                    if entry["type"] == "link":
                        entry["target"] = os.readlink(path)
                    entries[key] = entry
    return entries


def source_path(roots: Dict[str, str], name: str) -> str:
    for root_name, root in roots.items():
        if name == root_name:
            return root
        if name.startswith(root_name + "/"):
            return os.path.join(root, name[len(root_name) + 1 :])
    raise BackupFilesError(f"{name} is under none of the backup's roots")


def same_file(old: Optional[Entry], new: Entry) -> bool:
    return (
        old is not None
        and old["type"] == new["type"] == "file"
        and old["size"] == new["size"]
        and old["mtime_ns"] == new["mtime_ns"]
    )


def copy_file(source: str, destination: str, mode: int) -> None:
    """Copy source's bytes to destination through a temporary file in the same directory."""
    temporary = os.path.join(os.path.dirname(destination), f".{os.path.basename(destination)}.part")
    with open(source, "rb") as reader, writing_to(temporary), open(temporary, "wb") as writer:
        os.fchmod(writer.fileno(), mode)
        shutil.copyfileobj(reader, writer, COPY_BLOCK)
    os.replace(temporary, destination)


def read_index(backup: str) -> Optional[Dict[str, Any]]:
    try:
        with open(os.path.join(backup, INDEX_NAME), encoding="utf-8") as handle:
            index = json.load(handle)
    except FileNotFoundError:
        return None
    except ValueError as error:
        raise BackupFilesError(
            f"{os.path.join(backup, INDEX_NAME)} is not JSON ({error}): the backup is damaged"
        ) from error
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT:
        raise BackupFilesError(f"{os.path.join(backup, INDEX_NAME)} is not a format {INDEX_FORMAT} files index")
    return index


def write_index(backup: str, index: Dict[str, Any]) -> None:
    path = os.path.join(backup, INDEX_NAME)
    temporary = path + ".part"
    with writing_to(temporary), open(temporary, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        json.dump(index, handle, sort_keys=True, separators=(",", ":"))
    os.replace(temporary, path)


class Stats:
    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.files = 0
        self.bytes = 0
        self.copied_files = 0
        self.copied_bytes = 0
        self.removed = 0
        self.attributes_fixed = 0

    def result(self) -> Dict[str, Any]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "copied_files": self.copied_files,
            "copied_bytes": self.copied_bytes,
            "removed": self.removed,
            "attributes_fixed": self.attributes_fixed,
            "seconds": round(self.clock() - self.started, 3),
        }


def capture(
    backup: str,
    roots: Dict[str, str],
    check_mode: bool = False,
    clock=time.monotonic,
    progress: Optional[Progress] = None,
    flush: bool = False,
) -> Tuple[bool, Dict[str, Any]]:
    """Make the backup's files/ mirror the roots, copying only files new or changed since the last pass.

    With flush, what was copied is on disk before this returns: the pass before the stop flushes, so that the
    downtime's snapshot does not compete with the write-back of this copy.
    """
    stats = Stats(clock)
    previous = read_index(backup) if os.path.isdir(backup) else None
    previous_entries: Dict[str, Entry] = (previous or {}).get("entries", {})
    entries = scan(roots)
    changed = previous is None or previous.get("roots") != roots
    to_copy = []
    for name, entry in entries.items():
        if entry["type"] == "file":
            stats.files += 1
            stats.bytes += entry["size"]
            if not (same_file(previous_entries.get(name), entry) and os.path.isfile(os.path.join(backup, name))):
                to_copy.append(name)
        elif previous_entries.get(name) != entry:
            changed = True
    stale = [name for name in previous_entries if name not in entries]
    changed = changed or bool(to_copy) or bool(stale)
    stats.copied_files = len(to_copy)
    stats.copied_bytes = sum(entries[name]["size"] for name in to_copy)
    stats.removed = len(stale)
    if check_mode or not changed:
        return changed, stats.result()
    try:
        ensure_directory(backup)
        for name in sorted(stale, reverse=True):
            target = os.path.join(backup, name)
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            elif os.path.lexists(target):
                os.unlink(target)
        for name, entry in entries.items():
            if entry["type"] == "dir":
                ensure_directory(os.path.join(backup, name))
        progress = progress or Progress(None)
        progress.step("copying files", total_files=stats.copied_files, total_bytes=stats.copied_bytes)
        for name in to_copy:
            destination = os.path.join(backup, name)
            ensure_directory(os.path.dirname(destination))
            copy_file(source_path(roots, name), destination, 0o600)
            progress.add(1, entries[name]["size"])
        write_index(backup, {"format": INDEX_FORMAT, "roots": roots, "entries": entries})
        if flush:
            os.sync()
    except OSError as error:
        raise BackupFilesError(
            os_error_message(f"copying the deployment's files into {backup}", error, backup), changed=True
        ) from error
    return True, stats.result()


def apply_attributes(path: str, entry: Entry, current: Optional[os.stat_result]) -> bool:
    """Give path the recorded owner and mode; return whether anything had to change."""
    fixed = False
    if current is None or (current.st_uid, current.st_gid) != (entry["uid"], entry["gid"]):
        os.lchown(path, entry["uid"], entry["gid"])
        fixed = True
    if entry["type"] != "link" and (current is None or stat.S_IMODE(current.st_mode) != entry["mode"]):
        os.chmod(path, entry["mode"])
        fixed = True
    return fixed


def lstat_or_none(path: str) -> Optional[os.stat_result]:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def relocate(roots: Dict[str, str], project_src: str, blob_dir: Optional[str]) -> Dict[str, str]:
    """The backup's roots in another deployment directory (a restore onto a new host or directory)."""
    project_src = os.path.abspath(project_src)
    moved = {}
    for name in roots:
        if name == BLOB_ROOT:
            moved[name] = os.path.abspath(blob_dir or os.path.join(project_src, "blob"))
        else:
            moved[name] = os.path.join(project_src, name[len(PROJECT_ROOT) + 1 :])
    return moved


def restore(
    backup: str,
    check_mode: bool = False,
    clock=time.monotonic,
    progress: Optional[Progress] = None,
    project_src: Optional[str] = None,
    blob_dir: Optional[str] = None,
) -> Tuple[bool, Dict[str, Any]]:
    """Put the backup's files back, copying only what differs, with owners and modes.

    They go where they came from, or into project_src (and blob_dir) when given.
    """
    stats = Stats(clock)
    index = read_index(backup)
    if index is None:
        raise BackupFilesError(f"{backup} has no {INDEX_NAME}: it is not a backup of a deployment's files")
    roots: Dict[str, str] = index["roots"] if project_src is None else relocate(index["roots"], project_src, blob_dir)
    wanted: Dict[str, Entry] = index["entries"]
    present = scan(roots)
    plan: List[Tuple[str, str]] = []
    for name, entry in wanted.items():
        now = present.get(name)
        if entry["type"] == "file":
            stats.files += 1
            stats.bytes += entry["size"]
            if not same_file(now, entry):
                plan.append(("copy", name))
                stats.copied_files += 1
                stats.copied_bytes += entry["size"]
                continue
        elif entry["type"] == "link" and (now is None or now["type"] != "link" or now["target"] != entry["target"]):
            plan.append(("link", name))
            continue
        elif entry["type"] == "dir" and (now is None or now["type"] != "dir"):
            plan.append(("dir", name))
            continue
        if any(now[key] != entry[key] for key in ("mode", "uid", "gid")):
            plan.append(("attributes", name))
            stats.attributes_fixed += 1
    extra = sorted((name for name in present if name not in wanted and name.rsplit("/", 1)[0] in wanted), reverse=True)
    stats.removed = len(extra)
    changed = bool(plan or extra)
    if check_mode or not changed:
        return changed, stats.result()
    progress = progress or Progress(None)
    progress.step("restoring files", total_files=stats.copied_files, total_bytes=stats.copied_bytes)
    try:
        for name in extra:
            path = source_path(roots, name)
            if os.path.lexists(path):
                remove(path)
        for action, name in sorted(plan, key=lambda item: item[1]):
            entry = wanted[name]
            path = source_path(roots, name)
            current = lstat_or_none(path)
            if action == "dir":
                if current is not None:
                    remove(path)
                os.makedirs(path, entry["mode"], exist_ok=True)
                current = None
            elif action == "link":
                if current is not None:
                    remove(path)
                os.symlink(entry["target"], path)
                current = None
            elif action == "copy":
                if current is not None and stat.S_ISDIR(current.st_mode):
                    remove(path)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                copy_file(os.path.join(backup, name), path, entry["mode"])
                os.utime(path, ns=(entry["mtime_ns"], entry["mtime_ns"]))
                current = None
                progress.add(1, entry["size"])
            apply_attributes(path, entry, current)
    except OSError as error:
        raise BackupFilesError(
            f"putting the files of {backup} back failed: {error}; the files restored so far stay restored, fix the "
            "cause and run the restore again",
            changed=True,
        ) from error
    return True, stats.result()
