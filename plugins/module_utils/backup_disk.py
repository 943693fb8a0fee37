# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The disk a backup goes to: is it usable before anything stops, and what an OS error while writing it means.

A full, read-only or forbidden backup directory must be found by the preflight, and an OS error during the
backup must reach the operator as a sentence (the error, the path, the variable to change), never as a
traceback in module_stderr. Python 3.8 runs this on managed hosts.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
from typing import Any, Dict, Iterator, List, Optional

PROBE_NAME = ".lorawan-tts-probe"
PROBE_BYTES = 64 * 1024
# What the backup needs besides the sizes stack_info reports: 1.5 times them plus 100 MiB.
SIZE_FACTOR = 1.5
SIZE_MARGIN = 100 * 1024 * 1024
FULL = (errno.ENOSPC, errno.EDQUOT)
FORBIDDEN = (errno.EACCES, errno.EPERM)


class BackupDiskError(Exception):
    """The backup directory cannot be used; the message says why, where and what to change."""

    def __init__(self, message: str, changed: bool = False) -> None:
        super().__init__(message)
        self.changed = changed


def human_size(size: float) -> str:
    size = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return "%d %s" % (size, unit) if unit == "B" else "%.1f %s" % (size, unit)
        size /= 1024
    return "%.1f TiB" % size  # pragma: no cover


def user_name() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return "uid %d" % os.geteuid()


def under(path: str, directory: str) -> bool:
    path, directory = os.path.abspath(path), os.path.abspath(directory)
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def os_error_advice(error: OSError) -> str:
    """What to do about an OS error met while writing the backup."""
    if error.errno in FULL:
        return "free space under tts_backup_dir or set tts_backup_dir to a file system with room"
    if error.errno == errno.EROFS:
        return "the file system is read-only: set tts_backup_dir to a writable place (or remount it read-write)"
    if error.errno in FORBIDDEN:
        return "%s may not write there: fix the owner or mode, or set tts_backup_dir to a writable place" % user_name()
    return "check the file system (dmesg), or set tts_backup_dir elsewhere"


@contextlib.contextmanager
def writing_to(path: str) -> Iterator[None]:
    """Give an OSError raised without a file name (a write(2) or fsync(2) on an open file) the path written."""
    try:
        yield
    except OSError as error:
        if error.filename is None and error.errno is not None:
            raise OSError(error.errno, error.strerror or os.strerror(error.errno), path) from error
        raise


def os_error_message(doing: str, error: OSError, backup: str, writing: Optional[bool] = None) -> str:
    """'<doing> failed: No space left on device writing <path>; free space under tts_backup_dir ...'.

    backup is the directory the backup writes to: unless writing says otherwise, a path under it was written and
    any other one read.
    """
    reason = error.strerror or str(error)
    path = error.filename
    if path is not None:
        path = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    if writing is None:
        writing = path is None or under(path, backup) or error.errno in (*FULL, errno.EROFS)
    where = "%s %s" % ("writing" if writing else "reading", path) if path is not None else "under %s" % backup
    advice = os_error_advice(error) if writing else "check that %s can read it" % user_name()
    return "%s failed: %s %s; %s" % (doing, reason, where, advice)


def out_of_space(stderr: str) -> bool:
    """Whether a command's error output says the disk was full (docker, pg_dump and cp say it in English)."""
    text = (stderr or "").lower()
    return "no space left on device" in text or "disk quota exceeded" in text


def disk_full(path: str) -> OSError:
    """The OSError a command that wrote path and said it ran out of space would have raised here."""
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


def needed_bytes(sizes: Optional[Dict[str, Any]]) -> int:
    """The room a backup of these sizes (bytes by part; None counts as 0) needs, with margin."""
    total = sum(int(value or 0) for value in (sizes or {}).values())
    return int(total * SIZE_FACTOR + SIZE_MARGIN)


def missing_directories(path: str) -> List[str]:
    """path and those of its parents that do not exist, the outermost last."""
    missing = []
    current = os.path.abspath(path)
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return missing


def remove_directories(created: List[str]) -> None:
    for directory in created:
        with contextlib.suppress(OSError):
            os.rmdir(directory)


def write_probe(directory: str) -> None:
    """Write, fsync and delete a small file in directory, as the backup will write its files."""
    probe = os.path.join(directory, "%s-%d" % (PROBE_NAME, os.getpid()))
    descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            os.write(descriptor, b"\0" * PROBE_BYTES)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(probe)


def free_bytes(path: str) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def nearest_existing(path: str) -> str:
    current = os.path.abspath(path)
    while not os.path.exists(current) and os.path.dirname(current) != current:
        current = os.path.dirname(current)
    return current


def shortage_message(directory: str, free: int, sizes: Dict[str, Any], needed: int) -> str:
    parts = ", ".join("%s %s" % (name, human_size(int(value or 0))) for name, value in sizes.items())
    return (
        "%s has %s free; the backup (%s) needs %s with margin. Free space under tts_backup_dir or set "
        "tts_backup_dir to a file system with room. Nothing was changed."
        % (directory, human_size(free), parts or "sizes unknown", human_size(needed))
    )


def check_backup_dir(path: str, sizes: Optional[Dict[str, Any]] = None, check_mode: bool = False) -> Dict[str, Any]:
    """Make sure the backup directory path can be made: create its parent (if missing), write, fsync and delete a
    probe file there, then compare the free space with what a backup of sizes needs. Raises BackupDiskError, with
    whatever this created removed again; returns {parent, created, free, needed}.

    In check mode nothing is created or written: the free space is read at the nearest existing parent.
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    sizes = dict(sizes or {})
    needed = needed_bytes(sizes)
    created: List[str] = []
    try:
        if check_mode:
            measured = nearest_existing(parent)
        else:
            missing = missing_directories(parent)
            for directory in reversed(missing):
                os.mkdir(directory, 0o700)
                created.insert(0, directory)
            write_probe(parent)
            measured = parent
        free = free_bytes(measured)
    except OSError as error:
        remove_directories(created)
        raise BackupDiskError(
            "%s. Nothing was changed."
            % os_error_message("preparing the backup directory %s" % path, error, parent, writing=True)
        ) from error
    if free < needed:
        remove_directories(created)
        raise BackupDiskError(shortage_message(measured, free, sizes, needed))
    return {"parent": parent, "created": created, "free": free, "needed": needed}
