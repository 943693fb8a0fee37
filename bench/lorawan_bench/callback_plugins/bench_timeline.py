"""Ansible callback for the benchmark: one JSON line per task start (epoch seconds, host-independent).

Enabled only by bench/run (ANSIBLE_CALLBACKS_ENABLED=bench_timeline); writes to $LORAWAN_BENCH_TIMELINE.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_timeline
type: aggregate
short_description: record when each task starts, for bench/run
description:
  - Appends one JSON line per task start to the file named by the environment variable LORAWAN_BENCH_TIMELINE.
requirements:
  - enabled in the callbacks_enabled setting
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timeline"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._path = os.environ.get("LORAWAN_BENCH_TIMELINE", "")

    def _write(self, event: str, name: str) -> None:
        if self._path:
            with Path(self._path).open("a", encoding="utf-8") as timeline:
                timeline.write(json.dumps({"at": time.time(), "event": event, "name": name}) + "\n")

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._write("task", task.get_name())

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._write("task", task.get_name())

    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._write("end", "")
