"""From raw records to medians, ratios, a fitted line and Markdown tables."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Record = dict[str, Any]
METHODS = ("runbook", "ours")


def median(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def ok(records: Iterable[Record]) -> list[Record]:
    return [record for record in records if record.get("ok")]


def phase_medians(records: list[Record], key: str = "downtime_phases") -> dict[str, float]:
    """Median seconds per phase over the records (a phase a record lacks counts 0), in first-seen order."""
    tables = [
        {name: float(value) for name, value in (record.get(key) or {}).items() if isinstance(value, int | float)}
        for record in records
    ]
    names: list[str] = []
    for phases in tables:
        names += [name for name in phases if name not in names]
    return {name: statistics.median([phases.get(name, 0.0) for phases in tables]) for name in names}


@dataclass
class Fit:
    intercept: float
    slope: float  # seconds per MB
    r_squared: float | None
    points: int

    def text(self) -> str:
        r2 = "" if self.r_squared is None else f", R² {self.r_squared:.2f}"
        per_gb = self.slope * 1024
        sign = "-" if per_gb < 0 else "+"
        return (
            f"downtime = {self.intercept:.2f} s {sign} {abs(per_gb):.2f} s/GB * Postgres size ({self.points} runs{r2})"
        )


def fit(points: list[tuple[float, float]]) -> Fit | None:
    """Least squares y = a + b·x; None without two different x."""
    xs = [x for x, _y in points]
    ys = [y for _x, y in points]
    if len(set(xs)) < 2:
        return None
    mean_x = statistics.fmean(xs)
    mean_y = statistics.fmean(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    total = sum((y - mean_y) ** 2 for y in ys)
    residual = sum((y - intercept - slope * x) ** 2 for x, y in points)
    return Fit(intercept, slope, None if total == 0 else 1 - residual / total, len(points))


def size_rows(results: Record) -> list[Record]:
    """Per size: the medians the tables and the plot show."""
    rows = []
    for size, data in results["sizes"].items():
        upgrades = data["upgrades"]
        by_method = {method: ok(r for r in upgrades if r.get("method") == method) for method in METHODS}
        floors = ok(data["floor"])
        deployment = next((r["deployment"] for r in upgrades if "deployment" in r), {})
        row: Record = {
            "size": size,
            "sizes": deployment.get("sizes", {}),
            "floor": median(r.get("floor_seconds") for r in floors),
            "floor_steps": phase_medians(floors, "steps"),
            "floor_n": len(floors),
        }
        for method, records in by_method.items():
            row[method] = median(r.get("downtime_seconds") for r in records)
            row[f"{method}_wall"] = median(r.get("wall_seconds") for r in records)
            row[f"{method}_phases"] = phase_medians(records)
            row[f"{method}_all_phases"] = phase_medians(records, "phases")
            row[f"{method}_n"] = len(records)
            row[f"{method}_report_timings"] = phase_medians(records, "report_timings")
        row["ours_vs_runbook"] = ratio(row["ours"], row["runbook"])
        row["runbook_vs_floor"] = ratio(row["runbook"], row["floor"])
        row["ours_vs_floor"] = ratio(row["ours"], row["floor"])
        rollbacks = ok(data["rollback"])
        row["rollback"] = median(r.get("downtime_seconds") for r in rollbacks)
        row["rollback_wall"] = median(r.get("wall_seconds") for r in rollbacks)
        row["rollback_n"] = len(rollbacks)
        row["rollback_phases"] = phase_medians(rollbacks)
        noops = data["noop"]
        row["noop_wall"] = median(r.get("wall_seconds") for r in ok(noops))
        row["noop_changed"] = max((r.get("changed", 0) or 0 for r in noops), default=None)
        row["noop_went_down"] = any(r.get("went_down") for r in noops)
        row["noop_n"] = len(noops)
        rows.append(row)
    return rows


def fits(results: Record) -> dict[str, Fit | None]:
    lines = {}
    for method in METHODS:
        points = [
            (float(r["deployment"]["sizes"]["postgres_mb"]), float(r["downtime_seconds"]))
            for data in results["sizes"].values()
            for r in ok(data["upgrades"])
            if r.get("method") == method and "deployment" in r and r.get("downtime_seconds") is not None
        ]
        lines[method] = fit(points)
    return lines


def single_host_wall(runs: list[Record]) -> float | None:
    return next((r.get("wall_seconds") for r in runs if r.get("hosts") == 1 and r.get("ok")), None)


def fleet_rows(results: Record) -> list[Record]:
    """One row per fleet size: ours, and the floor's operations on as many deployments at once (where measured)."""
    runs = results.get("fleet", {}).get("runs", [])
    floor_runs = {r.get("hosts"): r for r in results.get("fleet", {}).get("floor_runs", []) if r.get("ok")}
    single = single_host_wall(runs)
    floor_single = single_host_wall(list(floor_runs.values()))
    rows = []
    for run in runs:
        downtimes = list((run.get("downtime_seconds") or {}).values())
        floor_run = floor_runs.get(run.get("hosts"), {})
        rows.append(
            {
                "hosts": run.get("hosts"),
                "ok": bool(run.get("ok")),
                "wall": run.get("wall_seconds"),
                "ratio": ratio(run.get("wall_seconds"), single),
                "floor_wall": floor_run.get("wall_seconds"),
                "floor_ratio": ratio(floor_run.get("wall_seconds"), floor_single),
                "floor_core_seconds_per_host": ratio(floor_run.get("machine_busy_core_seconds"), run.get("hosts")),
                "downtime_median": median(downtimes),
                "downtime_max": max((d for d in downtimes if d is not None), default=None),
                "busy_percent": run.get("machine_busy_percent"),
                "core_seconds_per_host": ratio(run.get("machine_busy_core_seconds"), run.get("hosts")),
            }
        )
    return rows


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def phases_text(phases: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.1f}" for name, value in phases.items() if value >= 0.05) or "-"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _name in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown(results: Record, machine: Record, plot_name: str | None) -> str:
    """The results as Markdown: downtime per size, phases, rollback, no-op, fleet, fitted line."""
    rows = size_rows(results)
    plan = results["plan"]
    out = [
        f"Upgrade {results['versions']['from']} → {results['versions']['to']} of sandbox deployments; "
        f"{plan['repetitions']} repetition(s) per size, runbook and playbook alternating, each on a fresh "
        "deployment. Downtime is measured from outside: GET /healthz every 0.1 s, from the first answer other "
        "than 200 to the first 200 of the new version. Medians; seconds. The whole run took "
        f"{(results['finished'] - results['started']) / 60:.0f} minutes.\n",
    ]
    sections = [
        "\n### Downtime per size\n\n",
        table(
            [
                "size",
                "Postgres MB",
                "Redis MB",
                "blob files",
                "runbook",
                "ours",
                "ours / runbook",
                "floor",
                "runbook / floor",
                "ours / floor",
                "runs (runbook, ours, floor)",
            ],
            [
                [
                    row["size"],
                    seconds(row["sizes"].get("postgres_mb")),
                    seconds(row["sizes"].get("redis_memory_mb")),
                    str(row["sizes"].get("blob_files", "-")),
                    seconds(row["runbook"]),
                    seconds(row["ours"]),
                    times(row["ours_vs_runbook"]),
                    seconds(row["floor"]),
                    times(row["runbook_vs_floor"]),
                    times(row["ours_vs_floor"]),
                    f"{row['runbook_n']}, {row['ours_n']}, {row['floor_n']}",
                ]
                for row in rows
            ],
        ),
        "\n### Downtime per phase\n\n",
        "Runbook: its steps (`runbook-phase` markers); ours: the role's task phases (from the playbook's task "
        "start times); both cut to the outside-measured downtime. Floor: its timed steps.\n\n",
        table(
            ["size", "method", "phases inside the downtime (median s)"],
            [
                [row["size"], method, phases_text(row[key])]
                for row in rows
                for method, key in (("runbook", "runbook_phases"), ("ours", "ours_phases"), ("floor", "floor_steps"))
            ],
        ),
        "\n### Wall time of the whole command\n\n",
        table(
            ["size", "runbook", "ours", "ours: the role's own timings (report)"],
            [
                [
                    row["size"],
                    seconds(row["runbook_wall"]),
                    seconds(row["ours_wall"]),
                    phases_text(row["ours_report_timings"]),
                ]
                for row in rows
            ],
        ),
        f"\n### Rollback (upgrade to {results['versions']['failing']}, whose is-db migrate fails half-way)\n\n",
        table(
            ["size", "downtime (until the old version answers)", "wall", "runs", "phases inside the downtime"],
            [
                [
                    row["size"],
                    seconds(row["rollback"]),
                    seconds(row["rollback_wall"]),
                    str(row["rollback_n"]),
                    phases_text(row["rollback_phases"]),
                ]
                for row in rows
            ],
        ),
        "\n### No-op re-run (the playbook again at the target)\n\n",
        table(
            ["size", "wall", "changed (max)", "/healthz went down", "runs"],
            [
                [
                    row["size"],
                    seconds(row["noop_wall"]),
                    str(row["noop_changed"]) if row["noop_changed"] is not None else "-",
                    "yes" if row["noop_went_down"] else "no",
                    str(row["noop_n"]),
                ]
                for row in rows
            ],
        ),
    ]
    if rows:  # a fleet-only run (bench/run --skip-sizes) has none
        out += sections
    fleet = fleet_rows(results)
    if fleet:
        options = " ".join(results["fleet"].get("deploy_options", []))
        out += [
            f"\n### Fleet (`{options}` deployments, one playbook run, forks = serial = hosts)\n\n",
            table(
                [
                    "hosts",
                    "wall",
                    "wall / 1 host",
                    "floor alone: wall, / 1 host, CPU s per host",
                    "downtime per host (median, max)",
                    "machine CPU busy",
                    "CPU s per host (all processes)",
                    "all upgraded",
                ],
                [
                    [
                        str(row["hosts"]),
                        seconds(row["wall"]),
                        times(row["ratio"]),
                        f"{seconds(row['floor_wall'])}, {times(row['floor_ratio'])}, "
                        f"{seconds(row['floor_core_seconds_per_host'])}",
                        f"{seconds(row['downtime_median'])}, {seconds(row['downtime_max'])}",
                        "-" if row["busy_percent"] is None else f"{row['busy_percent']}%",
                        seconds(row["core_seconds_per_host"]),
                        "yes" if row["ok"] else "no",
                    ]
                    for row in fleet
                ],
            ),
        ]
    if rows:
        out.append("\n### Downtime against database size (least squares over every run)\n\n")
        for method, line in fits(results).items():
            out.append(f"- {method}: {line.text() if line else 'needs runs at two database sizes'}\n")
    if plot_name and rows:
        out.append(f"\n![Downtime per phase, runbook vs ours vs floor, per size]({plot_name})\n")
    out.append("\n### Machine\n\n" + machine_text(machine) + "\n")
    if results["problems"]:
        out.append("\n### Problems\n\n" + "".join(f"- {problem}\n" for problem in results["problems"]))
    return "".join(out)


def machine_text(machine: Record) -> str:
    return (
        f"{machine.get('cpu_count')} CPUs ({machine.get('cpu_model')}), {machine.get('memory_gb')} GB memory, "
        f"Linux {machine.get('kernel')}, {machine.get('os')}, Docker {machine.get('docker')}, "
        f"{machine.get('compose')}, ansible-core {machine.get('ansible_core')}, Python {machine.get('python')}."
    )
