# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The part of a backup that needs the stack stopped, done at once: Postgres, Redis and the files' changes.

The three are independent, so each runs in a forked child of the module (forks, not threads: run_command's
preexec_fn is not safe in a threaded process) and the downtime pays for the slowest, not for the sum.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from typing import Any, Callable, Dict, Optional, Tuple

from ansible_collections.lorawan.tts.plugins.module_utils.backup_files import BackupFilesError, capture, project_roots
from ansible_collections.lorawan.tts.plugins.module_utils.compose import ComposeError
from ansible_collections.lorawan.tts.plugins.module_utils.postgres_backup import (
    PostgresService,
    create_snapshot,
    dump_database,
)
from ansible_collections.lorawan.tts.plugins.module_utils.redis_persistence import RedisPersistence

DUMP_FILE = "postgres/ttn_lorawan.dump"
REDIS_DIRECTORY = "redis"
CAPTURE_ERRORS = (ComposeError, BackupFilesError, OSError)
# The parts that are not the downtime's critical path give the CPU to the one that is (the Postgres snapshot).
YIELDING_NICENESS = 10


class CaptureError(ComposeError):
    """One or more parts of the capture failed; the message names each."""

    def __init__(self, message: str, changed: bool) -> None:
        super().__init__(message)
        self.changed = changed


def _child(part: Callable[[], Dict[str, Any]], connection, niceness: int) -> None:
    try:
        if niceness:
            os.nice(niceness)
        started = time.monotonic()
        result = part()
        result["seconds"] = round(time.monotonic() - started, 3)
        connection.send(("ok", result))
    except CAPTURE_ERRORS as error:
        connection.send(("failed", {"msg": str(error), "changed": bool(getattr(error, "changed", False))}))
    except BaseException:
        connection.send(("failed", {"msg": traceback.format_exc(), "changed": False}))
    finally:
        connection.close()


def in_parallel(
    parts: Dict[str, Callable[[], Dict[str, Any]]], yielding: Tuple[str, ...] = ()
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Run each part in its own forked process, those named in yielding at a lower CPU priority; return (results,
    failures) by part name."""
    context = multiprocessing.get_context("fork")
    running = {}
    for name, part in parts.items():
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_child, args=(part, sender, YIELDING_NICENESS if name in yielding else 0), name="lorawan-tts-" + name
        )
        process.start()
        sender.close()
        running[name] = (process, receiver)
    results, failures = {}, {}
    for name, (process, receiver) in running.items():
        try:
            status, payload = receiver.recv()
        except EOFError:
            status, payload = "failed", {"msg": "the process died (exit %s)" % process.exitcode, "changed": False}
        process.join()
        (results if status == "ok" else failures)[name] = payload
    return results, failures


def files_part(dest: str, roots: Dict[str, str], check_mode: bool) -> Dict[str, Any]:
    changed, stats = capture(dest, roots, check_mode)
    return dict(stats, changed=changed)


def capture_for_downtime(
    project,
    dest: str,
    snapshot: str,
    blob_dir,
    redis_timeout: int,
    redis_consistency: str = "idle",
    check_mode: bool = False,
    snapshot_plan: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """Postgres (a snapshot inside the server, or a dump when snapshot is empty), Redis and the files, at once."""
    dest = os.path.abspath(dest)
    pg = PostgresService(project)
    roots = project_roots(project.project_src, project.files, blob_dir)
    redis = RedisPersistence(project, timeout=redis_timeout)
    parts = {
        "postgres": (
            (lambda: create_snapshot(pg, snapshot, check_mode, snapshot_plan))
            if snapshot
            else (lambda: dump_database(pg, os.path.join(dest, DUMP_FILE), check_mode=check_mode))
        ),
        "redis": lambda: redis.backup(os.path.join(dest, REDIS_DIRECTORY), redis_consistency, check_mode),
        "files": lambda: files_part(dest, roots, check_mode),
    }
    results, failures = in_parallel(parts, yielding=("redis", "files"))
    if failures:
        raise CaptureError(
            "capturing the deployment for the backup in %s failed: %s"
            % (dest, "; ".join("%s: %s" % (name, failure["msg"]) for name, failure in sorted(failures.items()))),
            changed=bool(results) or any(failure["changed"] for failure in failures.values()),
        )
    return results
