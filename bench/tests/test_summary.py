from pathlib import Path

import pytest
from lorawan_bench import docs
from lorawan_bench.cli import parser
from lorawan_bench.plot import plot
from lorawan_bench.summary import fit, markdown, phase_medians, size_rows

MACHINE = {"cpu_count": 2, "memory_gb": 4.0, "kernel": "6.1", "docker": "20.10", "ansible_core": "2.18.0"}


def upgrade(method: str, downtime: float, postgres_mb: float, phases: dict[str, float]) -> dict[str, object]:
    return {
        "method": method,
        "ok": True,
        "downtime_seconds": downtime,
        "wall_seconds": downtime + 10,
        "downtime_phases": phases,
        "phases": phases,
        "deployment": {"sizes": {"postgres_mb": postgres_mb, "redis_memory_mb": 2.0, "blob_files": 12}},
    }


def results() -> dict[str, object]:
    def size(scale: float, postgres_mb: float) -> dict[str, object]:
        return {
            "upgrades": [
                upgrade("runbook", 5 * scale, postgres_mb, {"stop": 1.0, "pg_dump": 4 * scale - 1}),
                upgrade("ours", 3 * scale, postgres_mb, {"stop": 1.0, "backup_capture": 2 * scale - 1}),
                upgrade("runbook", 7 * scale, postgres_mb, {"stop": 1.0, "pg_dump": 6 * scale - 1}),
                {"method": "ours", "ok": False, "problems": ["failed"]},
            ],
            "floor": [{"ok": True, "floor_seconds": 2.0 * scale, "steps": {"stop": 1.0, "capture": 2 * scale - 1}}],
            "rollback": [{"ok": True, "downtime_seconds": 9.0, "wall_seconds": 20.0, "downtime_phases": {}}],
            "noop": [{"ok": True, "wall_seconds": 4.0, "changed": 0, "went_down": False}],
        }

    return {
        "plan": {"repetitions": 2},
        "started": 1000.0,
        "finished": 4600.0,
        "versions": {"from": "3.31.1", "to": "3.32.0", "failing": "3.98.0"},
        "sizes": {"medium": size(1.0, 10.0), "big": size(4.0, 1034.0)},
        "fleet": {
            "deploy_options": ["--seed", "small"],
            "runs": [
                {"hosts": 1, "ok": True, "wall_seconds": 20.0, "downtime_seconds": {"a": 5.0}},
                {
                    "hosts": 4,
                    "ok": True,
                    "wall_seconds": 30.0,
                    "machine_busy_core_seconds": 48.0,
                    "machine_busy_percent": 80,
                    "downtime_seconds": {"a": 5.0, "b": 7.0},
                },
            ],
            "floor_runs": [
                {"hosts": 1, "ok": True, "wall_seconds": 4.0},
                {"hosts": 4, "ok": True, "wall_seconds": 10.0, "machine_busy_core_seconds": 12.0},
            ],
        },
        "problems": [],
    }


def test_fit_is_exact_on_a_line() -> None:
    line = fit([(0.0, 1.0), (10.0, 21.0), (20.0, 41.0)])
    assert line is not None
    assert line.intercept == pytest.approx(1.0)
    assert line.slope == pytest.approx(2.0)
    assert line.r_squared == pytest.approx(1.0)
    assert fit([(5.0, 1.0), (5.0, 2.0)]) is None


def test_phase_medians_count_a_missing_phase_as_zero() -> None:
    records = [{"p": {"a": 1.0, "b": 2.0}}, {"p": {"a": 3.0}}, {"p": None}]
    assert phase_medians(records, "p") == {"a": 1.0, "b": 0.0}


def test_size_rows_use_only_successful_runs() -> None:
    medium = size_rows(results())[0]
    assert medium["runbook"] == 6.0
    assert medium["ours"] == 3.0
    assert medium["ours_n"] == 1
    assert medium["ours_vs_runbook"] == 0.5
    assert medium["floor"] == 2.0
    assert medium["runbook_phases"] == {"stop": 1.0, "pg_dump": 4.0}


def test_markdown_and_plot(tmp_path: Path) -> None:
    text = markdown(results(), MACHINE, "plot.png")
    assert "| medium | 10.0 | 2.0 | 12 | 6.0 | 3.0 | 0.50x | 2.0 | 3.00x | 1.50x | 2, 1, 1 |" in text
    assert "| 4 | 30.0 | 1.50x | 10.0, 2.50x, 3.0 | 6.0, 7.0 | 80% | 12.0 | yes |" in text
    assert "| 1 | 20.0 | 1.00x | 4.0, 1.00x, - | 5.0, 5.0 | - | - | yes |" in text
    assert "- ours: downtime = " in text
    assert "![" in text
    assert "The whole run took 60 minutes." in text
    plot(results(), tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes().startswith(b"\x89PNG")


def test_docs_section_is_replaced(tmp_path: Path) -> None:
    page = tmp_path / "docs" / "performance.md"
    page.parent.mkdir()
    page.write_text(f"# Performance\n\nintro\n\n{docs.BEGIN}\nold\n{docs.END}\n\nafter\n")
    results_dir = tmp_path / "bench" / "results"
    plot_path = results_dir / "2026-01-01.png"
    assert docs.update("table ![plot](2026-01-01.png)\n", results_dir / "2026-01-01.json", plot_path, page)
    text = page.read_text()
    assert "old" not in text
    assert "](../bench/results/2026-01-01.png)" in text
    assert text.startswith("# Performance\n\nintro\n\n")
    assert text.endswith(f"{docs.END}\n\nafter\n")
    page.write_text("no markers")
    assert not docs.update("x", results_dir / "a.json", results_dir / "a.png", page)


def test_command_line() -> None:
    args = parser().parse_args(["--sizes", "medium,big", "--repetitions", "2", "--fleet", "1,4"])
    assert (args.sizes, args.repetitions, args.fleet) == (["medium", "big"], 2, [1, 4])
    with pytest.raises(SystemExit):
        parser().parse_args(["--sizes", "huge"])


def test_a_fleet_only_run_shows_only_the_fleet() -> None:
    fleet_only = dict(results(), sizes={})
    del fleet_only["fleet"]["floor_runs"]  # results from before the floor fleet was measured
    text = markdown(fleet_only, MACHINE, "plot.png")
    assert "### Fleet" in text and "| 4 | 30.0 | 1.50x | -, -, - |" in text
    assert "### Downtime per size" not in text and "![" not in text and "least squares" not in text
    args = parser().parse_args(["--skip-sizes", "--fleet", "1,8"])
    assert args.skip_sizes and args.fleet == [1, 8]
