# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""lorawan.tts.upgrade_journal: tell the module who the controller is, and wait while another run holds the host.

Whether a run from this controller still lives is only visible here: its ansible-playbook process. The worker
that runs this plugin is a child of this run's ansible-playbook process.
"""

from __future__ import annotations

import os
import socket
import time

from ansible.plugins.action import ActionBase
from ansible_collections.lorawan.tts.plugins.module_utils.journal import JOURNAL_FILE, process_start

POLL_SECONDS = 2.0


def ansible_processes():
    """(pid, start) of this controller's Ansible processes, or None where /proc does not list them."""
    if not os.path.isdir("/proc/self"):
        return None
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as handle:
                command = handle.read()
        except OSError:
            continue
        if b"ansible" in command:
            found.append({"pid": int(name), "start": process_start(int(name)) or ""})
    return found


def controller():
    pid = os.getppid()
    return {
        "host": socket.gethostname(),
        "pid": pid,
        "start": process_start(pid) or "",
        "processes": ansible_processes(),
    }


class ActionModule(ActionBase):
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        timeout = int(args.get("timeout") or 0)
        deadline = time.monotonic() + timeout
        while True:
            args["controller"] = controller()
            outcome = self._execute_module(module_args=args, task_vars=task_vars)
            if not outcome.get("held_by") or time.monotonic() >= deadline:
                break
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        if outcome.get("held_by"):
            outcome["msg"] = (
                "Another run holds the upgrade lock (the journal %s) %s: %s; nothing was changed. "
                "Wait for it (tts_lock_timeout) and run again."
                % (
                    os.path.join(args.get("project_src", ""), JOURNAL_FILE),
                    "and did not release it within %d s" % timeout if timeout else "now",
                    outcome["held_by"],
                )
            )
        result.update(outcome)
        return result
