# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run a long module in the background on the host and print how far it has come, at a readable pace.

The module writes its progress to a small file (module_utils/progress.py); this action plugin starts the module
as an async job, polls it, and every tts_progress_interval seconds (default 10) prints one line with the step,
files, bytes and elapsed time. Nothing is printed for work that ends sooner, and no retry lines appear.
Work whose expected_bytes would take less than one interval at a slow disk's pace runs in the foreground: the
async job and its polls cost several module starts, which a fleet of hosts pays on the controller's CPU.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

DEFAULT_INTERVAL = 10.0
ASYNC_LIMIT_SECONDS = 7 * 24 * 3600  # the modules have their own timeouts
# The steps behind this plugin run before the stop or after the start: a later look adds no downtime.
POLL_SECONDS = (0.5, 1.0, 2.0)
# A pace slower than any disk a backup is written to: what it reads within one interval runs in the foreground.
FOREGROUND_BYTES_PER_SECOND = 50 * 1024 * 1024
ASYNC_KEYS = ("ansible_job_id", "started", "finished", "results_file", "_ansible_suppress_tmpdir_delete")


def human_bytes(size):
    size = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return "%.0f %s" % (size, unit) if unit == "B" else "%.1f %s" % (size, unit)
        size /= 1024
    return "%.1f GiB" % size


def progress_line(progress):
    parts = [progress.get("step") or "working"]
    files, total_files = progress.get("files") or 0, progress.get("total_files")
    if total_files or files:
        parts.append("%d%s files" % (files, " of %d" % total_files if total_files else ""))
    size, total_bytes = progress.get("bytes") or 0, progress.get("total_bytes")
    if total_bytes or size:
        parts.append("%s%s" % (human_bytes(size), " of %s" % human_bytes(total_bytes) if total_bytes else ""))
    parts.append("%.0f s" % (progress.get("elapsed") or 0))
    return ", ".join(parts)


class ProgressAction(ActionBase):
    _supports_check_mode = True
    _supports_async = True
    # Values of the module's `state` option for which it is quick: run in the foreground, without the async job.
    QUICK_STATES: tuple = ()

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        interval = float(self._templar.template(task_vars.get("tts_progress_interval", DEFAULT_INTERVAL)))
        quick = self._task.args.get("state") in self.QUICK_STATES or self.ends_within(interval)
        if quick or self._task.async_val or self._task.check_mode or interval <= 0 or self._connection.has_native_async:
            wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
            result.update(self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
            return result

        async_dir = self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))
        progress_file = self._connection._shell.join_path(async_dir, "lorawan-tts-progress-%s.json" % uuid.uuid4().hex)
        module_args = dict(self._task.args, progress_file=progress_file)
        # The async wrapper reads its time limit from the task; the task executor must not poll the job itself.
        self._task.async_val = ASYNC_LIMIT_SECONDS
        try:
            started = self._execute_module(module_args=module_args, task_vars=task_vars, wrap_async=True)
        finally:
            self._task.async_val = 0
        if started.get("failed") or "ansible_job_id" not in started:
            result.update(started)
            return result
        status = self.wait(started["ansible_job_id"], async_dir, progress_file, interval, task_vars)
        for key in ASYNC_KEYS:
            status.pop(key, None)
        result.update(status)
        return result

    def ends_within(self, interval):
        """Whether the module's expected_bytes say it ends before its first progress line would be printed."""
        try:
            expected = int(self._task.args.get("expected_bytes"))
        except (TypeError, ValueError):
            return False
        return expected < interval * FOREGROUND_BYTES_PER_SECOND

    def wait(self, job_id, async_dir, progress_file, interval, task_vars):
        started = last_print = time.monotonic()
        polls = 0
        while True:
            time.sleep(POLL_SECONDS[min(polls, len(POLL_SECONDS) - 1)])
            polls += 1
            status = self._execute_module(
                module_name="ansible.legacy.async_status",
                module_args={"jid": job_id, "_async_dir": async_dir},
                task_vars=task_vars,
            )
            if status.get("finished") or (status.get("failed") and not status.get("started")):
                self._execute_module(
                    module_name="ansible.legacy.async_status",
                    module_args={"jid": job_id, "mode": "cleanup", "_async_dir": async_dir},
                    task_vars=task_vars,
                )
                return status
            now = time.monotonic()
            if now - last_print >= interval:
                last_print = now
                # On stderr: a JSON stdout callback's output stays valid JSON.
                display.display(
                    "%s: %s: %s"
                    % (
                        task_vars.get("inventory_hostname"),
                        self._task.name or self._task.action,
                        self.read_progress(progress_file, now - started, task_vars),
                    ),
                    stderr=True,
                )

    def read_progress(self, progress_file, elapsed, task_vars):
        found = self._execute_module(
            module_name="ansible.legacy.slurp", module_args={"src": progress_file}, task_vars=task_vars
        )
        try:
            return progress_line(json.loads(base64.b64decode(found["content"])))
        except (KeyError, TypeError, ValueError):
            return "working, %.0f s" % elapsed
