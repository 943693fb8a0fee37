"""The lorawan.tts.upgrade playbook, run on generated inventories and measured from outside."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .commands import Completed, run
from .config import CALLBACK_DIR, FAILING_VERSION, FROM_VERSION, ROOT, TARGET_VERSION, VENV_BIN
from .machine import busy_core_seconds, busy_since
from .observe import Observed, observe
from .phases import clipped, durations, intervals, playbook_marks
from .sandbox import Deployment

RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
    r"failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)\s+ignored=(?P<ignored>\d+)",
    re.MULTILINE,
)


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP's counters per host."""
    recap = output.rpartition("PLAY RECAP")[2]
    return {
        match.group("host"): {key: int(value) for key, value in match.groupdict().items() if key != "host"}
        for match in RECAP.finditer(recap)
    }


class Ansible:
    """ansible-playbook with this checkout as the collection lorawan.tts, and the bench's timeline callback."""

    def __init__(self, work: Path, logs: Path) -> None:
        self.work = work
        self.logs = logs
        collection = work / "collections" / "ansible_collections" / "lorawan" / "tts"
        collection.parent.mkdir(parents=True, exist_ok=True)
        if not collection.is_symlink():
            collection.symlink_to(ROOT)
        self.collections = work / "collections"

    def backup_dir(self, deployment: Deployment) -> Path:
        return self.work / "backups" / deployment.name

    def inventory(self, name: str, group: str, deployments: list[Deployment], target: str) -> Path:
        hosts = {
            item.name: {
                "ansible_connection": "local",
                "ansible_python_interpreter": str(VENV_BIN / "python"),
                "tts_project_dir": str(item.dir),
                "tts_backup_dir": str(self.backup_dir(item)),
                "tts_target_version": target,
                # The stand-in's failing release, 3.98.0, is newer than any real one.
                "tts_allow_unreleased_version": True,
            }
            for item in deployments
        }
        path = self.work / "inventories" / f"{name}.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({group: {"hosts": hosts}}, indent=2) + "\n")  # JSON is YAML
        return path

    def playbook(
        self, name: str, inventory: Path, *, forks: int = 5, extra_vars: dict[str, object] | None = None
    ) -> tuple[Completed, Path]:
        timeline = self.logs / f"{name}.timeline.jsonl"
        timeline.unlink(missing_ok=True)
        argv = [str(VENV_BIN / "ansible-playbook"), "lorawan.tts.upgrade", "-i", str(inventory), "--forks", str(forks)]
        if extra_vars:
            argv += ["-e", json.dumps(extra_vars)]
        env = {
            "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
            "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACK_DIR),
            "ANSIBLE_CALLBACKS_ENABLED": "bench_timeline",
            "LORAWAN_BENCH_TIMELINE": str(timeline),
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        return run(argv, env=env, log=self.logs / f"{name}.ansible.log"), timeline

    def report(self, deployment: Deployment) -> dict[str, object]:
        """The host's newest JSON report, or {} when it wrote none."""
        folder = self.backup_dir(deployment) / "reports" / deployment.name
        reports = sorted(folder.glob("*.json"), key=lambda path: path.stat().st_mtime) if folder.is_dir() else []
        return dict(json.loads(reports[-1].read_text())) if reports else {}


def _record(
    ansible: Ansible, deployment: Deployment, completed: Completed, timeline: Path, observed: Observed
) -> dict[str, object]:
    downtime = observed.downtime[deployment.name]
    marks, end = playbook_marks(timeline)
    phases = intervals(marks, end or completed.finished)
    report = ansible.report(deployment)
    # The downtime is one task (the cutover): its own steps, from the report's marks, say where it goes.
    report_marks = [(str(name), float(at)) for name, at in report.get("marks") or []]
    inside = intervals(report_marks, end or completed.finished) if report_marks else phases
    recap = parse_recap(completed.stdout).get(deployment.name, {})
    return {
        "method": "ours",
        "returncode": completed.returncode,
        "wall_seconds": round(completed.seconds, 3),
        "downtime_seconds": None if downtime.seconds is None else round(downtime.seconds, 3),
        "downtime": observed.downtime_dict(deployment.name),
        "phases": durations(phases),
        "downtime_phases": clipped(inside, downtime.down_at, downtime.up_at),
        "report_result": report.get("result"),
        "report_downtime_seconds": report.get("downtime_seconds"),
        "report_timings": report.get("timings"),
        "recap": recap,
        "log": completed.log,
    }


def upgrade(ansible: Ansible, deployment: Deployment) -> dict[str, object]:
    """One host in group staging, upgraded to the target."""
    name = f"{deployment.name}.upgrade"
    inventory = ansible.inventory(name, "staging", [deployment], TARGET_VERSION)
    (completed, timeline), observed = observe([deployment], lambda: ansible.playbook(name, inventory), TARGET_VERSION)
    record = _record(ansible, deployment, completed, timeline, observed)
    problems = []
    if completed.returncode != 0 or record["report_result"] != "upgraded":
        problems.append(
            f"the playbook exited {completed.returncode}, report {record['report_result']}: {completed.tail(5)}"
        )
    if record["downtime_seconds"] is None:
        problems.append(f"/healthz did not answer 200 with {TARGET_VERSION} after the playbook")
    return {**record, "ok": not problems, "problems": problems}


def noop(ansible: Ansible, deployment: Deployment) -> dict[str, object]:
    """The playbook again on a deployment already at the target: nothing may stop or change."""
    name = f"{deployment.name}.noop"
    inventory = ansible.inventory(name, "staging", [deployment], TARGET_VERSION)
    (completed, timeline), observed = observe([deployment], lambda: ansible.playbook(name, inventory), TARGET_VERSION)
    record = _record(ansible, deployment, completed, timeline, observed)
    recap = parse_recap(completed.stdout)
    changed = sum(row["changed"] for row in recap.values())
    went_down = observed.downtime[deployment.name].went_down
    problems = []
    if completed.returncode != 0 or record["report_result"] != "already-current":
        problems.append(f"the re-run exited {completed.returncode}, report {record['report_result']}")
    if changed != 0:
        problems.append(f"the re-run at the target reported changed={changed}")
    if went_down:
        problems.append("/healthz went down during the re-run at the target")
    return {
        **record,
        "method": "noop",
        "changed": changed,
        "went_down": went_down,
        "ok": not problems,
        "problems": problems,
    }


def rollback(ansible: Ansible, deployment: Deployment) -> dict[str, object]:
    """Upgrade to FAILING_VERSION, whose migration fails half-way: the playbook must bring FROM_VERSION back."""
    name = f"{deployment.name}.rollback"
    inventory = ansible.inventory(name, "staging", [deployment], FAILING_VERSION)
    (completed, timeline), observed = observe([deployment], lambda: ansible.playbook(name, inventory), FROM_VERSION)
    record = _record(ansible, deployment, completed, timeline, observed)
    problems = []
    if completed.returncode == 0:
        problems.append(f"the upgrade to {FAILING_VERSION} succeeded; it must fail and roll back")
    if record["report_result"] != "rolled-back":
        problems.append(f"report result {record['report_result']}, not rolled-back: {completed.tail(5)}")
    if record["downtime_seconds"] is None:
        problems.append(f"/healthz did not answer 200 with {FROM_VERSION} again after the rollback")
    return {**record, "method": "rollback", "ok": not problems, "problems": problems}


def fleet(ansible: Ansible, deployments: list[Deployment]) -> dict[str, object]:
    """Every host in group production (no staging), one batch, as many forks as hosts."""
    count = len(deployments)
    name = f"fleet-{count}"
    inventory = ansible.inventory(name, "production", deployments, TARGET_VERSION)
    extra: dict[str, object] = {"tts_allow_no_staging": True, "tts_upgrade_serial": count}
    busy_before = busy_core_seconds()
    (completed, _timeline), observed = observe(
        deployments, lambda: ansible.playbook(name, inventory, forks=count, extra_vars=extra), TARGET_VERSION
    )
    # On a machine with few cores a fleet's wall time is bound by CPU: these say how close to that bound it ran.
    busy = busy_since(busy_before, completed.seconds)
    reports = {item.name: ansible.report(item).get("result") for item in deployments}
    downtimes = {name: observed.downtime[name].seconds for name in observed.downtime}
    problems = []
    if completed.returncode != 0 or any(result != "upgraded" for result in reports.values()):
        problems.append(f"fleet of {count}: exit {completed.returncode}, results {reports}: {completed.tail(5)}")
    return {
        "hosts": count,
        "ok": not problems,
        "problems": problems,
        "returncode": completed.returncode,
        "wall_seconds": round(completed.seconds, 3),
        **busy,
        "downtime_seconds": {key: None if value is None else round(value, 3) for key, value in downtimes.items()},
        "report_results": reports,
        "recap": parse_recap(completed.stdout),
        "log": completed.log,
    }
