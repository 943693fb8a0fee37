# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The upgrade's journal: one JSON file in the project directory that holds a run's state on the host.

A run opens the journal (that is the host's upgrade lock), the cutover writes each step into it as it happens
(stopped, captured, each hop, started, serving, and the rollback's steps), and the run closes it with its
outcome. A closed journal is the record of the last run. A journal that is open but whose run no longer lives
(the controller was killed, the connection lost, the host restarted) is taken over by the next run, which reads
from it what that run did: nothing stopped yet, a stack to roll back from the capture, or an upgrade (or a
rollback) that already serves and whose backup only needs sealing.

Whether a run lives is decided from what the host and the controller can see: the process of a step that
still runs on the host, the controller's process when the new run comes from the same controller, the host's
boot id, and, for a run from another controller, the time since it last wrote (tts_lock_stale_after).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from typing import Any, Dict, Iterator, List, Optional

JOURNAL_FILE = ".lorawan-tts.journal"
BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"

FREE = "free"
LIVE = "live"
INTERRUPTED = "interrupted"

# What a run that takes over does for the interrupted one.
NOTHING_STOPPED = "nothing-stopped"
ROLL_BACK = "roll-back"
SEAL = "seal"
# What tells one state of the journal from another: another run opening it, or writing to it, changes these.
SEEN_KEYS = ("run", "updated")
# Marks after which a version serves: the cutover's (or its rollback's) last step, and sealing the backup after it.
SERVING_MARKS = ("serving", "seal", "rollback seal")
# How a closed run ended.
UPGRADED = "upgraded"
ROLLED_BACK = "rolled-back"
FAILED = "failed"
FAILURE_LIMIT = 1500


class JournalError(Exception):
    pass


def boot_id() -> str:
    try:
        with open(BOOT_ID_FILE) as handle:
            return handle.read().strip()
    except OSError:
        return ""


def process_start(pid: int) -> Optional[str]:
    """The process's start time (clock ticks since boot, from /proc), "" where /proc does not tell, None when
    no such process runs."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            stat = handle.read()
    except FileNotFoundError:
        return None
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""
    # The command name (field 2) may hold spaces and parentheses: the fields after the last ")" are fixed.
    return stat[stat.rindex(")") + 2 :].split()[19]


def process_alive(process: Optional[Dict[str, Any]]) -> bool:
    if not process or not process.get("pid"):
        return False
    started = process_start(int(process["pid"]))
    return started is not None and (not started or not process.get("start") or started == process["start"])


def this_process() -> Dict[str, Any]:
    return {"pid": os.getpid(), "start": process_start(os.getpid()) or ""}


def judge(
    record: Optional[Dict[str, Any]],
    now: float,
    host_boot_id: str,
    controller: Dict[str, Any],
    stale_after: int,
) -> Dict[str, str]:
    """Whether the run in record still holds the host: {'state': free|live|interrupted, 'why': ...}.

    controller is the asking run's controller: its host name and the (pid, start) of its live ansible processes,
    which tells whether a run from the same controller still lives.
    """
    if not record or record.get("outcome"):
        return {"state": FREE, "why": ""}
    who = "run %s from %s (pid %s), in phase %s since %s" % (
        record.get("run"),
        (record.get("controller") or {}).get("host", "?"),
        (record.get("controller") or {}).get("pid", "?"),
        record.get("phase", "?"),
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.get("updated", 0))),
    )
    if record.get("abandoned"):
        return {"state": INTERRUPTED, "why": "%s: it ended with the stack stopped" % who}
    if record.get("boot_id") and host_boot_id and record["boot_id"] != host_boot_id:
        return {"state": INTERRUPTED, "why": "%s: the host has restarted since" % who}
    if process_alive(record.get("worker")):
        return {"state": LIVE, "why": "%s: its step still runs as process %s" % (who, record["worker"]["pid"])}
    recorded = record.get("controller") or {}
    same_controller = recorded.get("host") and recorded.get("host") == controller.get("host")
    if same_controller and controller.get("processes") is not None:
        alive = any(
            str(process.get("pid")) == str(recorded.get("pid"))
            and str(process.get("start")) == str(recorded.get("start"))
            for process in controller.get("processes") or []
        )
        if alive:
            return {"state": LIVE, "why": who}
        return {"state": INTERRUPTED, "why": "%s: its ansible-playbook process has ended" % who}
    silent = now - float(record.get("updated", 0))
    if silent > stale_after:
        return {
            "state": INTERRUPTED,
            "why": "%s: it has written nothing for %d s, more than tts_lock_stale_after (%d s)"
            % (who, silent, stale_after),
        }
    return {
        "state": LIVE,
        "why": "%s; it is taken for interrupted after %d s without news (tts_lock_stale_after), %d s from now"
        % (who, stale_after, stale_after - silent),
    }


def phases(record: Dict[str, Any]) -> List[str]:
    return [mark[0] for mark in record.get("marks") or []]


def run_state(record: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """What the run in record has done: stopped the stack, captured the data, a version serves (after the stop),
    rolled back; and how it ends if it is closed now (its outcome)."""
    record = record or {}
    done = phases(record)
    state = {
        "stopped": "stop" in done,
        "captured": bool(record.get("captured")),
        "serving": bool(done) and done[-1] in SERVING_MARKS,
        "rolled_back": bool(record.get("rolled_back")),
        "failed": bool(record.get("failure")),
    }
    state["outcome"] = (ROLLED_BACK if state["rolled_back"] else FAILED) if state["failed"] else UPGRADED
    return state


def failure_text(task: str, result: Dict[str, Any]) -> str:
    """What failed, from the failed task's name and result: the cutover describes its own failure; a loop's
    failed items each give their message."""
    if result.get("failure"):
        return str(result["failure"])[:FAILURE_LIMIT]
    messages = [str(item.get("msg") or "failed") for item in result.get("results") or [] if item.get("failed")]
    text = "; ".join(messages) or str(result.get("msg") or "failed")
    return ("%s: %s" % (task or "a task", text))[:FAILURE_LIMIT]


def takeover_action(record: Dict[str, Any]) -> str:
    """What a run that takes over must do for the interrupted run in record."""
    done = phases(record)
    if "stop" not in done:
        return NOTHING_STOPPED
    if done[-1] in SERVING_MARKS:
        # The target serves (or, after a rollback, the old version does again): only the backup is left to seal.
        return SEAL if record.get("captured") else NOTHING_STOPPED
    return ROLL_BACK


def open_run(
    journal: "Journal",
    run: str,
    recorded: Dict[str, Any],
    controller: Dict[str, Any],
    stale_after: int,
    host_boot_id: str,
) -> Dict[str, Any]:
    """Open the journal for run, unless a live run holds it: {'opened', 'held_by', 'taken_over', 'journal'} and,
    once opened, 'previous' (seen_state of the record it replaced).

    A run that takes over an interrupted one that stopped the stack adopts its record (its marks, capture and
    cutover), so that when this run is interrupted in turn, the next one still finds what there is to undo.
    """
    with journal.locked():
        previous = journal.read()
        verdict = judge(previous, journal.clock(), host_boot_id, controller, stale_after)
        if verdict["state"] == LIVE:
            return {"opened": False, "held_by": verdict["why"], "taken_over": None, "journal": previous}
        identity = {
            "run": run,
            "controller": {key: controller.get(key) for key in ("host", "pid", "start")},
            "boot_id": host_boot_id,
            "worker": None,
            "outcome": None,
            "abandoned": False,
        }
        taken_over = None
        if verdict["state"] == INTERRUPTED:
            taken_over = dict(previous, action=takeover_action(previous), why=verdict["why"])
        if taken_over and taken_over["action"] != NOTHING_STOPPED:
            record = dict(previous, adopted_from=previous.get("run"), **identity)
        else:
            started = float(recorded.get("started") or journal.clock())
            record = dict(
                recorded,
                started=started,
                phase="preflight",
                marks=[["preflight", started]],
                captured=False,
                capture={},
                migrations=[],
                rolled_back=False,
                failure=None,
                rollback_failure=None,
                **identity,
            )
        journal.write(record)
        return {
            "opened": True,
            "held_by": "",
            "taken_over": taken_over,
            "journal": record,
            "previous": seen_state(previous),
        }


def seen_state(record: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """What tells this state of the journal from another (SEEN_KEYS), or None without a journal."""
    return {key: record.get(key) for key in SEEN_KEYS} if record else None


def moved_since(seen: Optional[Dict[str, Any]], previous: Optional[Dict[str, Any]]) -> bool:
    """Whether the journal another read saw (stack_info's `journal`) is not the one open_run replaced: another run
    opened or wrote it in between, so what that read found may have changed."""
    return seen_state(seen) != previous


def close_run(journal: "Journal", run: str, outcome: str = "") -> Dict[str, Any]:
    """Record how the run ended: outcome, or what its record says (run_state). A run that failed with the stack
    stopped (its rollback failed, or was not wanted) abandons the journal instead: the next run takes it over at
    once and rolls back from its capture, or seals the backup of the version that serves."""
    with journal.locked():
        record = journal.owned(run)
        state = run_state(record)
        outcome = outcome or state["outcome"]
        if outcome == FAILED and state["stopped"]:
            record.update(abandoned=True, worker=None)
        else:
            record.update(outcome=outcome, worker=None)
        journal.write(record)
        return record


class Journal:
    """The journal file of one project directory. Every write replaces the file atomically (0600)."""

    def __init__(self, project_dir: str, clock=time.time) -> None:
        self.directory = project_dir
        self.path = os.path.join(project_dir, JOURNAL_FILE)
        self.clock = clock

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the project directory's lock while reading, deciding and writing: two runs opening at once see
        each other."""
        descriptor = os.open(self.directory, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    def read(self) -> Optional[Dict[str, Any]]:
        try:
            with open(self.path) as handle:
                record = json.load(handle)
        except FileNotFoundError:
            return None
        except ValueError as error:
            raise JournalError(
                "%s is not a journal this collection wrote (%s): move it away if no run is active" % (self.path, error)
            ) from error
        if not isinstance(record, dict):
            raise JournalError(
                "%s is not a journal this collection wrote: move it away if no run is active" % self.path
            )
        return record

    def write(self, record: Dict[str, Any]) -> None:
        record["updated"] = self.clock()
        descriptor, temporary = tempfile.mkstemp(prefix=JOURNAL_FILE + ".", dir=self.directory)
        try:
            with os.fdopen(descriptor, "w") as handle:
                json.dump(record, handle, indent=1, sort_keys=True)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def owned(self, run: str) -> Dict[str, Any]:
        """The record of run; refuse when another run holds the journal."""
        record = self.read()
        if not record or record.get("run") != run:
            raise JournalError(
                "%s belongs to %s, not to this run (%s): another run took the deployment over"
                % (self.path, (record or {}).get("run", "no run"), run)
            )
        return record

    def held_by(self, run: str) -> Optional[Dict[str, Any]]:
        """The record of run, or None when the journal is not (or no longer) that run's: missing, another run's,
        or one that cannot be read, which this run cannot have written."""
        try:
            record = self.read()
        except (JournalError, OSError):
            return None
        return record if record and record.get("run") == run else None

    def update(self, run: str, mark: str = "", **changes: Any) -> Dict[str, Any]:
        """Write changes (and the mark of a phase that starts now) into the open record of run; refuse when another
        run holds the journal. Nothing to write writes nothing."""
        with self.locked():
            record = self.owned(run)
            if mark:
                changes.update(phase=mark, marks=(record.get("marks") or []) + [[mark, self.clock()]])
            if changes:
                record.update(changes)
                self.write(record)
            return record


class CutoverJournal:
    """What the cutover writes into the journal: each mark, the capture, and the process that runs it."""

    def __init__(self, journal: Optional[Journal], run: str) -> None:
        self.journal = journal
        self.run = run
        # The run's marks before this process: its preflight, a cutover before a rollback, a run taken over.
        self.earlier_marks: List[List[Any]] = []

    def recorded(self) -> Optional[Dict[str, Any]]:
        return self.journal.read() if self.journal else None

    def begin(self, **recorded: Any) -> None:
        if self.journal:
            record = self.journal.update(self.run, worker=this_process(), **recorded)
            self.earlier_marks = record.get("marks") or []

    def note(self, result: Dict[str, Any], **extra: Any) -> None:
        if self.journal:
            # What this process did not see (it only rolls back) stays as an earlier step recorded it.
            described = {
                key: result[key] for key in ("failure", "rollback_failure", "images_before") if result.get(key)
            }
            self.journal.update(
                self.run,
                phase=result["marks"][-1][0] if result["marks"] else "cutover",
                marks=self.earlier_marks + result["marks"],
                captured=result["captured"],
                capture=result["capture"],
                rolled_back=result["rolled_back"],
                migrations=result["migrations"],
                **described,
                **extra,
            )

    def end(self, result: Dict[str, Any]) -> None:
        self.note(result, worker=None)
