# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A stdout callback for the tests: prints every task's per-host result as one JSON document at the end."""

from __future__ import annotations

import json

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: test_results
type: stdout
short_description: JSON of every task's per-host results, for lorawan.tts's tests
description:
  - Prints {"plays":[{"play":{"name"},"tasks":[{"task":{"name"},"hosts":{host:result}}]}],"stats":{},
    "custom_stats":{}} at the end; custom_stats holds what set_stats gave for the whole run.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "test_results"

    def __init__(self):
        super().__init__()
        self.plays = []

    def v2_playbook_on_play_start(self, play):
        self.plays.append({"play": {"name": play.get_name()}, "tasks": []})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.plays[-1]["tasks"].append({"task": {"name": task.get_name()}, "hosts": {}})

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def _record(self, result, **status):
        self.plays[-1]["tasks"][-1]["hosts"][result._host.get_name()] = dict(result._result, **status)

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, failed=True)

    def v2_runner_on_unreachable(self, result):
        self._record(result, unreachable=True)

    def v2_runner_on_skipped(self, result):
        self._record(result, skipped=True)

    def v2_playbook_on_stats(self, stats):
        summary = {host: stats.summarize(host) for host in sorted(stats.processed)}
        custom = stats.custom.get("_run", {})
        self._display.display(json.dumps({"plays": self.plays, "stats": summary, "custom_stats": custom}, default=str))
