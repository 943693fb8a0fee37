# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Files on the managed host that backups and upgrade records write: checksums, private directories, records."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile


def file_sha256(path):
    """The SHA-256 of a file's bytes, as hex, read in blocks of 1 MiB."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_directory(path, mode=0o700, check_mode=False):
    """Create path and its missing parents with mode (0700); return whether anything was (or would be) created."""
    missing = []
    current = path
    while current and not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    if check_mode:
        return bool(missing)
    for directory in reversed(missing):
        os.mkdir(directory, mode)
        os.chmod(directory, mode)
    return bool(missing)


def write_record(path, content, mode=0o640, directory_mode=0o750, check_mode=False):
    """Write the text content to path, replacing it atomically (a temporary file beside it, then a rename).

    The directory and its missing parents are created with directory_mode, and an existing directory gets that
    mode; the file gets mode. Return whether anything changed (or, in check mode, would change).
    """
    directory = os.path.dirname(os.path.abspath(path))
    changed = ensure_directory(directory, directory_mode, check_mode)
    if not changed and stat.S_IMODE(os.stat(directory).st_mode) != directory_mode:
        changed = True
        if not check_mode:
            os.chmod(directory, directory_mode)
    data = content.encode("utf-8")
    try:
        with open(path, "rb") as handle:
            same = handle.read() == data and stat.S_IMODE(os.fstat(handle.fileno()).st_mode) == mode
    except FileNotFoundError:
        same = False
    if same or check_mode:
        return changed or not same
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return True
