"""bench/run's command line."""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from . import docs, summary
from .commands import BenchError
from .config import DEFAULT_FLEET, RESULTS_DIR, SIZES, SMOKE_FLEET
from .machine import machine
from .scenarios import Bench, Plan, say


def numbers(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from error
    if any(value < 1 for value in values):
        raise argparse.ArgumentTypeError("host counts must be at least 1")
    return values


def size_names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in SIZES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"sizes are {', '.join(SIZES)}; not {', '.join(unknown) or 'none'}")
    return names


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="bench/run",
        description="Measure the downtime of TTS upgrades: the documented runbook against lorawan.tts.upgrade, "
        "the floor, rollback, the no-op re-run and a fleet. See docs/performance.md.",
    )
    cli.add_argument("--sizes", type=size_names, default=list(SIZES), help="comma-separated (default: %(default)s)")
    cli.add_argument("--repetitions", type=int, default=3, help="runbook/ours/floor runs per size (default: 3)")
    cli.add_argument("--rollback-repetitions", type=int, default=1, help="rollback runs per size (default: 1)")
    cli.add_argument(
        "--fleet", type=numbers, default=list(DEFAULT_FLEET), help="fleet sizes, comma-separated (default: 1,4,8)"
    )
    cli.add_argument("--skip-fleet", action="store_true", help="no fleet measurement")
    cli.add_argument(
        "--skip-sizes", action="store_true", help="only the fleet: results go to <date>-fleet.*, never into the docs"
    )
    cli.add_argument(
        "--smoke", action="store_true", help="medium only, 1 repetition, fleets of 1 and 2: proves the bench works"
    )
    cli.add_argument("--out", type=Path, default=RESULTS_DIR, help="results directory (default: bench/results)")
    cli.add_argument("--no-docs", action="store_true", help="do not update docs/performance.md (smoke runs never do)")
    cli.add_argument(
        "--render",
        type=Path,
        metavar="RESULTS.json",
        help="measure nothing: write the Markdown, the plot (and the docs, for bench/results) from a results file",
    )
    cli.add_argument("--keep-work", action="store_true", help="keep the work directory (inventories, backups)")
    return cli


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.render:
        path = args.render.absolute()
        results = json.loads(path.read_text())
        return report(results, path, update_docs=not args.no_docs and not path.name.startswith("smoke-"))
    if args.smoke:
        plan = Plan(["medium"], 1, 1, list(SMOKE_FLEET), smoke=True)
    else:
        plan = Plan(args.sizes, max(1, args.repetitions), max(0, args.rollback_repetitions), args.fleet, smoke=False)
    if args.skip_fleet:
        plan.fleet = []
    if args.skip_sizes:
        plan.sizes = []
    today = datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%d")
    stem = f"smoke-{today}" if plan.smoke else f"{today}-fleet" if not plan.sizes else today
    out: Path = args.out.absolute()
    logs = out / "logs" / stem
    work = Path(tempfile.mkdtemp(prefix="lorawan-bench-"))
    say(f"plan {plan}; work directory {work}; logs in {logs}")
    try:
        results = Bench(plan, work, logs).run()
    except BenchError as error:
        say(f"error: {error}")
        return 2
    except KeyboardInterrupt:
        say("interrupted; the deployments it made are torn down")
        return 130
    finally:
        if args.keep_work:
            say(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["machine"] = machine()
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{stem}.json"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    return report(results, json_path, update_docs=not plan.smoke and bool(plan.sizes) and not args.no_docs)


def report(results: dict[str, Any], json_path: Path, *, update_docs: bool) -> int:
    """Write <stem>.md and <stem>.png beside the JSON, print the tables, update the docs; 1 if a run misbehaved."""
    from .plot import plot  # matplotlib loads only now, after the measurements

    md_path, png_path = json_path.with_suffix(".md"), json_path.with_suffix(".png")
    if results["sizes"]:  # the plot shows the sizes; a fleet-only run has none
        plot(results, png_path)
    text = summary.markdown(results, results["machine"], png_path.name)
    md_path.write_text(f"# lorawan.tts benchmark, {json_path.stem}\n\n{text}")
    print(text)
    say(f"results: {json_path}, {md_path}" + (f", {png_path}" if results["sizes"] else ""))
    if update_docs and json_path.parent == RESULTS_DIR.absolute():
        if docs.update(text, json_path, png_path):
            say("docs/performance.md shows these results")
        else:
            say("docs/performance.md has no result markers; not updated")
    problems = list(results["problems"])
    if problems:
        say(f"{len(problems)} problem(s):")
        for problem in problems:
            say(f"  {problem}")
        return 1
    return 0
