"""The wait command the progress action runs on the host, run here with /bin/sh against real files."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

from ansible_collections.lorawan.tts.plugins.plugin_utils.progress_action import (
    RUNNING_PREFIX,
    progress_text,
    wait_command,
)

RUNNING = json.dumps({"started": 1, "finished": 0, "ansible_job_id": "j1.2"})  # as async_wrapper writes it


def wait(results: Path, progress: Path, interval: float = 0.15, tick: float = 0.05) -> tuple[str, str]:
    out = subprocess.run(
        ["/bin/sh", "-c", wait_command(str(results), str(progress), interval, tick)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    state, _newline, content = out.partition("\n")
    return state, content


def test_the_running_prefix_is_what_async_wrapper_writes() -> None:
    assert RUNNING.startswith(RUNNING_PREFIX)


def test_a_running_job_returns_its_progress_after_the_interval(tmp_path: Path) -> None:
    results, progress = tmp_path / "j1.2", tmp_path / "progress.json"
    results.write_text(RUNNING)
    progress.write_text(json.dumps({"step": "pg_dump of ttn_lorawan", "bytes": 2048, "elapsed": 12}))
    begin = time.monotonic()
    state, content = wait(results, progress)
    assert time.monotonic() - begin >= 0.1
    assert state == "running"
    assert progress_text(content, 0) == "pg_dump of ttn_lorawan, 2.0 KiB, 12 s"
    assert results.exists()


def test_a_running_job_without_progress_says_how_long(tmp_path: Path) -> None:
    results = tmp_path / "j1.2"
    results.write_text(RUNNING)
    state, content = wait(results, tmp_path / "none.json")
    assert (state, content) == ("running", "")
    assert progress_text(content, 21.4) == "working, 21 s"


def test_a_finished_job_returns_its_result_at_once_and_removes_the_file(tmp_path: Path) -> None:
    results = tmp_path / "j1.2"
    results.write_text(json.dumps({"changed": True, "files": 3}))
    begin = time.monotonic()
    state, content = wait(results, tmp_path / "progress.json", interval=5)
    assert time.monotonic() - begin < 2
    assert state == "finished"
    assert json.loads(content) == {"changed": True, "files": 3}
    assert not results.exists()


def test_a_job_that_ends_while_waiting_returns_within_a_tick(tmp_path: Path) -> None:
    results = tmp_path / "j1.2"
    results.write_text(RUNNING)

    def finish() -> None:
        time.sleep(0.2)
        temporary = tmp_path / "j1.2.tmp"
        temporary.write_text(json.dumps({"changed": False}))
        temporary.rename(results)

    writer = threading.Thread(target=finish)
    writer.start()
    state, content = wait(results, tmp_path / "progress.json", interval=10)
    writer.join()
    assert state == "finished"
    assert json.loads(content) == {"changed": False}


def test_a_missing_job_says_so(tmp_path: Path) -> None:
    assert wait(tmp_path / "j1.2", tmp_path / "progress.json")[0] == "missing"
