"""The benchmark's plan: per size and repetition runbook, ours (and its no-op re-run), floor; rollback; fleet."""

from __future__ import annotations

import secrets
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from . import floor, playbook, runbook
from .commands import BenchError
from .config import FAILING_VERSION, FLEET_DEPLOY_OPTIONS, FROM_VERSION, SIZES, TARGET_VERSION
from .sandbox import Deployment, Sandbox

Record = dict[str, object]


@dataclass
class Plan:
    sizes: list[str]
    repetitions: int
    rollback_repetitions: int
    fleet: list[int]
    smoke: bool


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, plan: Plan, work: Path, logs: Path) -> None:
        self.plan = plan
        self.work = work
        self.logs = logs
        self.run_id = secrets.token_hex(3)
        self.sandbox = Sandbox(work, logs)
        self.ansible = playbook.Ansible(work, logs)
        self.problems: list[str] = []

    def name(self, *parts: object) -> str:
        return "-".join(["lwb" + self.run_id, *(str(part) for part in parts)])

    def measure(
        self, label: str, deploy: Callable[[], list[Deployment]], act: Callable[[list[Deployment]], Record]
    ) -> Record:
        """Deploy, act, tear down; a failure is recorded (the benchmark goes on) rather than raised."""
        began = time.monotonic()
        deployments: list[Deployment] = []
        try:
            deployments = deploy()
            record = act(deployments)
        except BenchError as error:
            record = {"ok": False, "problems": [str(error)]}
        finally:
            for deployment in deployments:
                self.sandbox.teardown(deployment)
                shutil.rmtree(self.ansible.backup_dir(deployment), ignore_errors=True)
                shutil.rmtree(self.work / "runbook-backups" / deployment.name, ignore_errors=True)
                shutil.rmtree(self.work / "floor-redis" / deployment.name, ignore_errors=True)
        if len(deployments) == 1:
            record["deployment"] = deployments[0].as_dict()
        elif deployments:
            record["deployments"] = [item.as_dict() for item in deployments]
        problems = [str(problem) for problem in record.get("problems", [])]  # type: ignore[union-attr]
        self.problems += [f"{label}: {problem}" for problem in problems]
        say(f"{label}: {summary(record)} ({time.monotonic() - began:.0f} s){' PROBLEM' if problems else ''}")
        return record

    def deploy_one(self, name: str, size: str) -> Callable[[], list[Deployment]]:
        return lambda: [self.sandbox.deploy(name, FROM_VERSION, SIZES[size])]

    def size(self, size: str) -> Record:
        result: dict[str, list[Record]] = {"upgrades": [], "noop": [], "floor": [], "rollback": []}
        for repetition in range(1, self.plan.repetitions + 1):
            tag = f"{size} r{repetition}"

            def runbook_act(items: list[Deployment]) -> Record:
                return runbook.upgrade(items[0], self.work / "runbook-backups" / items[0].name, self.logs)

            name = self.name(size, f"r{repetition}", "runbook")
            record = self.measure(f"{tag} runbook", self.deploy_one(name, size), runbook_act)
            result["upgrades"].append({"size": size, "repetition": repetition, **record, "method": "runbook"})

            def ours_act(items: list[Deployment], repetition: int = repetition) -> Record:
                upgraded = playbook.upgrade(self.ansible, items[0])
                if upgraded["ok"]:
                    again = self.measure_noop(items[0], f"{size} r{repetition} no-op")
                    result["noop"].append({"size": size, "repetition": repetition, **again})
                return upgraded

            name = self.name(size, f"r{repetition}", "ours")
            record = self.measure(f"{tag} ours", self.deploy_one(name, size), ours_act)
            result["upgrades"].append({"size": size, "repetition": repetition, **record, "method": "ours"})

            name = self.name(size, f"r{repetition}", "floor")
            record = self.measure(
                f"{tag} floor", self.deploy_one(name, size), lambda items: floor.measure(items[0], self.work, self.logs)
            )
            result["floor"].append({"size": size, "repetition": repetition, **record, "method": "floor"})

            if repetition <= self.plan.rollback_repetitions:
                name = self.name(size, f"r{repetition}", "rollback")
                record = self.measure(
                    f"{tag} rollback to {FROM_VERSION} after {FAILING_VERSION}",
                    self.deploy_one(name, size),
                    lambda items: playbook.rollback(self.ansible, items[0]),
                )
                result["rollback"].append({"size": size, "repetition": repetition, **record, "method": "rollback"})
        return {"deploy_options": list(SIZES[size]), **result}

    def measure_noop(self, deployment: Deployment, label: str) -> Record:
        try:
            record = playbook.noop(self.ansible, deployment)
        except BenchError as error:
            record = {"ok": False, "problems": [str(error)]}
        problems = [str(problem) for problem in record.get("problems", [])]  # type: ignore[union-attr]
        self.problems += [f"{label}: {problem}" for problem in problems]
        say(f"{label}: {summary(record)}{' PROBLEM' if problems else ''}")
        return record

    def fleet(self) -> Record:
        """Ours on 1, 4, 8 deployments in one run; then the floor's operations on as many at once, for what the
        machine allows."""
        runs, floor_runs = [], []
        for count in self.plan.fleet:

            def deploy(method: str, count: int = count) -> Callable[[], list[Deployment]]:
                return lambda: [
                    self.sandbox.deploy(
                        self.name(f"fleet{count}", method, f"h{index}"), FROM_VERSION, FLEET_DEPLOY_OPTIONS
                    )
                    for index in range(1, count + 1)
                ]

            runs.append(
                self.measure(f"fleet of {count}", deploy("ours"), lambda items: playbook.fleet(self.ansible, items))
            )
            floor_runs.append(
                self.measure(
                    f"floor fleet of {count}", deploy("floor"), lambda items: floor.fleet(items, self.work, self.logs)
                )
            )
        return {"deploy_options": list(FLEET_DEPLOY_OPTIONS), "runs": runs, "floor_runs": floor_runs}

    def run(self) -> Record:
        started = time.time()
        sizes = {}
        try:
            for size in self.plan.sizes:
                sizes[size] = self.size(size)
            fleet = self.fleet() if self.plan.fleet else {"runs": []}
        finally:
            self.sandbox.close()
        return {
            "started": started,
            "finished": time.time(),
            "plan": asdict(self.plan),
            "versions": {"from": FROM_VERSION, "to": TARGET_VERSION, "failing": FAILING_VERSION},
            "sizes": sizes,
            "fleet": fleet,
            "problems": self.problems,
        }


def summary(record: Record) -> str:
    parts = []
    for key, label in (
        ("downtime_seconds", "downtime"),
        ("floor_seconds", "floor"),
        ("wall_seconds", "wall"),
    ):
        value = record.get(key)
        if isinstance(value, int | float):
            parts.append(f"{label} {value:.1f} s")
    if "changed" in record:
        parts.append(f"changed={record['changed']}")
    return ", ".join(parts) or "failed"
