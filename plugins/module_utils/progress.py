# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""How far a long copy, dump or checksum has come, in a small JSON file the collection's action plugins print."""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any, Callable, Optional

PROGRESS_ARGUMENT_SPEC = dict(progress_file=dict(type="path"), expected_bytes=dict(type="int"))
WRITE_EVERY_SECONDS = 1.0


class Progress:
    """Writes {"step", "files", "bytes", "total_files", "total_bytes", "elapsed"} at most once a second."""

    def __init__(self, path: Optional[str], clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.clock = clock
        self.started = clock()
        self.written = None
        self.state: dict = {"step": "", "files": 0, "bytes": 0, "total_files": None, "total_bytes": None}

    def update(self, force: bool = False, **fields: Any) -> None:
        self.state.update(fields)
        if not self.path:
            return
        now = self.clock()
        if not force and self.written is not None and now - self.written < WRITE_EVERY_SECONDS:
            return
        self.written = now
        temporary = self.path + ".part"
        try:
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump(dict(self.state, elapsed=round(now - self.started, 1)), handle)
            os.replace(temporary, self.path)
        except OSError:
            pass  # progress is for the operator's eyes; it never fails the work

    def step(self, name: str, **totals: Any) -> None:
        self.update(force=True, step=name, files=0, bytes=0, **totals)

    def add(self, files: int = 0, size: int = 0) -> None:
        self.update(files=self.state["files"] + files, bytes=self.state["bytes"] + size)

    def close(self) -> None:
        if self.path:
            for path in (self.path, self.path + ".part"):
                with contextlib.suppress(OSError):
                    os.unlink(path)
