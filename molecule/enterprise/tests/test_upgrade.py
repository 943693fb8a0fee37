"""Verify the enterprise scenario: the docs' Enterprise file, 3.19.2 upgraded to 3.32.0 through 3.24.2, the NOC set
up on the way (noc-db init), grafana's tag with the stack's, every byte kept."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
SANDBOX = ROOT / "tests" / "sandbox" / "tts-sandbox"
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
DEPLOYMENT = EPHEMERAL / f"upgrade-{os.environ['MOLECULE_SCENARIO_NAME']}"
BACKUPS = EPHEMERAL / "backups"
FROM = "3.19.2"
TARGET = "3.32.0"
HOPS = ["3.24.2", TARGET]
BINARY = "tti-lw-stack"


@pytest.fixture(scope="module")
def sandbox() -> dict:
    return json.loads((EPHEMERAL / "sandbox.json").read_text())


def stack_version(host) -> str:
    result = host.run(f"cd {DEPLOYMENT} && docker compose exec -T stack {BINARY} version")
    assert result.rc == 0, result.stderr
    return next(line.split()[-1] for line in result.stdout.splitlines() if line.startswith("Version:"))


def test_runs_the_target_version(host):
    assert stack_version(host) == TARGET


def test_compose_file_is_the_docs_with_the_target_pinned(host):
    docs = (ROOT / "tests" / "sandbox" / "templates" / "docs" / "docker-compose-enterprise.yml").read_text()
    pinned = (
        docs.replace("lorawan-stack:latest", f"lorawan-stack:{TARGET}")
        .replace("lorawan-stack-noc-grafana:latest", f"lorawan-stack-noc-grafana:{TARGET}")
        .replace("image: redis:latest", "image: redis:7.0")
    )
    assert host.file(str(DEPLOYMENT / "docker-compose.yml")).content_string == pinned


def test_the_noc_was_set_up_crossing_3_21():
    hypertables = "SELECT count(*) FROM timescaledb_information.hypertables"
    result = subprocess.run(
        ["docker", "compose", "exec", "-T", "postgres", "psql", "-U", "root", "-d", "ttn_lorawan", "-A", "-t", "-c",
         hypertables],
        cwd=DEPLOYMENT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 1


def test_healthz_answers(sandbox):
    # The deploy recorded 3.19.2's /healthz/live; 3.32.0 answers on /healthz, from 3.24.0.
    url = urlsplit(sandbox["healthz"])._replace(path="/healthz").geturl()
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback sandbox URL)
        assert response.status == 200


def test_data_kept(tmp_path):
    after = subprocess.run([str(SANDBOX), "fingerprint", str(DEPLOYMENT)], capture_output=True, text=True, check=True)
    (tmp_path / "after.json").write_text(after.stdout)
    compare = subprocess.run(
        [str(SANDBOX), "compare", str(EPHEMERAL / "fingerprints" / "before.json"), str(tmp_path / "after.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert compare.returncode == 0, compare.stdout + compare.stderr


def test_report_and_backup():
    reports = sorted((BACKUPS / "reports").glob("*/*_upgraded.json"))
    assert len(reports) == 1, reports
    report = json.loads(reports[0].read_text())
    assert report["result"] == "upgraded"
    assert report["from"] == FROM
    assert report["to"] == TARGET
    assert report["hops"] == HOPS
    assert [hop["commands"] for hop in report["migrations"]] == [
        ["is-db migrate", "noc-db init", "storage-db migrate"],
        ["is-db migrate", "noc-db migrate", "storage-db migrate"],
    ]
    assert report["downtime_seconds"] > 0
    backup = Path(report["backup"]["path"])
    assert (backup / "manifest.json").is_file()
    assert (backup / "postgres" / "ttn_lorawan.dump").is_file()
    # The idempotence run reported the deployment as already current.
    assert sorted((BACKUPS / "reports").glob("*/*_already-current.json"))


def test_journal_closed_with_the_outcome(host):
    journal = host.file(str(DEPLOYMENT / ".lorawan-tts.journal"))
    assert journal.mode == 0o600
    record = json.loads(journal.content_string)
    assert record["outcome"] == "upgraded", record
    assert record["worker"] is None
