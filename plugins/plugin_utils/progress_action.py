# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run a long module in the background on the host and print how far it has come, at a readable pace.

The module writes its progress to a small file (module_utils/progress.py); this action plugin starts the module
as an async job, waits for it, and every tts_progress_interval seconds (default 10) prints one line with the step,
files, bytes and elapsed time. Nothing is printed for work that ends sooner, and no retry lines appear.

Waiting costs one shell command on the host per interval, not a module: the command itself checks the job's
results file every WAIT_TICK seconds and returns as soon as the job ends (with its result, removing the file), or
after the interval (with the progress file). A step shorter than the interval costs the start and one command,
where polling with async_status cost a Python process on the host per poll, and another to clean up.
"""

from __future__ import annotations

import json
import math
import shlex
import time
import uuid

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.unsafe_proxy import wrap_var

display = Display()

DEFAULT_INTERVAL = 10.0
ASYNC_LIMIT_SECONDS = 7 * 24 * 3600  # the modules have their own timeouts
ASYNC_KEYS = ("ansible_job_id", "started", "finished", "results_file", "_ansible_suppress_tmpdir_delete")
# How often the wait command on the host looks at the job's results file: the delay after the job ends.
WAIT_TICK = 0.1
# What async_wrapper writes to the results file while the module runs; it replaces the file (rename) at the end.
RUNNING_PREFIX = '{"started": 1, "finished": 0'
# Waits up to TICKS * TICK s for the job's results file ($1) to hold a result, then prints "finished" and the result
# (and removes the file), or "running" and the progress file ($2), or "missing". Runs under /bin/sh on the host;
# only `sleep` (a fraction of a second: GNU coreutils, BusyBox) starts a process.
WAIT_SCRIPT = """\
i=0
while :; do
  [ -e "$1" ] || { echo missing; exit 0; }
  IFS= read -r head < "$1" || :
  case $head in
    %(running)s*) ;;
    *) echo finished; cat "$1" && rm -f "$1"; exit 0 ;;
  esac
  [ "$i" -lt %(ticks)d ] || { echo running; cat "$2" 2>/dev/null; exit 0; }
  i=$((i + 1))
  sleep %(tick)s
done"""


def human_bytes(size):
    size = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return "%.0f %s" % (size, unit) if unit == "B" else "%.1f %s" % (size, unit)
        size /= 1024
    return "%.1f GiB" % size


def progress_text(content, elapsed):
    """The progress line for the progress file's content, or the elapsed time when it can't be read."""
    try:
        return progress_line(json.loads(content))
    except (AttributeError, KeyError, TypeError, ValueError):
        return "working, %.0f s" % elapsed


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
        quick = self._task.args.get("state") in self.QUICK_STATES
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
        status = self.wait(started, async_dir, progress_file, interval, task_vars)
        for key in ASYNC_KEYS:
            status.pop(key, None)
        result.update(status)
        return result

    def wait(self, started, async_dir, progress_file, interval, task_vars):
        """The job's result, once it ends; a progress line every interval until then."""
        job_id = started["ansible_job_id"]
        results_file = started.get("results_file") or self._connection._shell.join_path(async_dir, job_id)
        script = WAIT_SCRIPT % {
            "running": shlex.quote(RUNNING_PREFIX),
            "ticks": max(1, math.ceil(interval / WAIT_TICK)),
            "tick": WAIT_TICK,
        }
        command = "/bin/sh -c %s lorawan-tts-wait %s %s" % (
            shlex.quote(script),
            shlex.quote(results_file),
            shlex.quote(progress_file),
        )
        begin = time.monotonic()
        while True:
            answer = self._low_level_execute_command(command, sudoable=True)
            state, _newline, content = answer.get("stdout", "").partition("\n")
            if answer.get("rc") != 0 or state not in ("running", "finished"):
                return {
                    "failed": True,
                    "msg": "could not find the job %s on the host (%s): %s"
                    % (job_id, results_file, (answer.get("stderr") or state or "no answer").strip()),
                }
            if state == "finished":
                status = self._parse_returned_data({"rc": 0, "stdout": content, "stderr": ""})
                status["finished"] = 1
                return wrap_var(status)
            # On stderr: a JSON stdout callback's output stays valid JSON.
            display.display(
                "%s: %s: %s"
                % (
                    task_vars.get("inventory_hostname"),
                    self._task.name or self._task.action,
                    progress_text(content, time.monotonic() - begin),
                ),
                stderr=True,
            )
