"""Running commands (argv lists, never a shell), timed, with their output kept in a log file."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


class BenchError(Exception):
    """A failure that stops the benchmark (not a measured upgrade that failed)."""


@dataclass
class Completed:
    argv: list[str]
    returncode: int
    started: float  # epoch seconds
    finished: float  # epoch seconds
    seconds: float  # wall time, from a monotonic clock
    stdout: str
    stderr: str
    log: str | None

    def tail(self, lines: int = 15) -> str:
        return "\n".join((self.stdout + self.stderr).strip().splitlines()[-lines:])


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    check: bool = False,
    timeout: float | None = None,
) -> Completed:
    """Run argv; stdout and stderr are captured and, with `log`, written there."""
    merged_env = {**os.environ, **(env or {})}
    started = time.time()
    begin = time.monotonic()
    try:
        result = subprocess.run(
            list(argv), cwd=cwd, env=merged_env, capture_output=True, check=False, timeout=timeout, text=True
        )
        returncode, stdout, stderr = result.returncode, result.stdout, result.stderr
    except subprocess.TimeoutExpired as error:
        returncode = -9
        stdout = _text(error.stdout)
        stderr = _text(error.stderr) + f"\nbench: timed out after {timeout} s"
    except FileNotFoundError as error:
        raise BenchError(f"{argv[0]} is not installed: {error}") from error
    seconds = time.monotonic() - begin
    completed = Completed(list(argv), returncode, started, time.time(), seconds, stdout, stderr, None)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ {' '.join(argv)}\n# exit {returncode} after {seconds:.2f} s\n{stdout}\n--- stderr\n{stderr}")
        completed.log = str(log)
    if check and returncode != 0:
        raise BenchError(f"{' '.join(argv[:4])} failed (exit {returncode}):\n{completed.tail()}")
    return completed


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")
