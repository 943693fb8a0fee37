"""Verify the multihop scenario: 3.18.2 upgraded to 3.32.2 through 3.19.2 and 3.24.2 on the docs' compose file,
every byte kept."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
SANDBOX = ROOT / "tests" / "sandbox" / "tts-sandbox"
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
DEPLOYMENT = EPHEMERAL / f"upgrade-{os.environ['MOLECULE_SCENARIO_NAME']}"
BACKUPS = EPHEMERAL / "backups"
FROM = "3.18.2"
TARGET = "3.32.2"
HOPS = ["3.19.2", "3.24.2", "3.32.2"]
BINARY = "ttn-lw-stack"
DOCS_FILE = ROOT / "tests" / "sandbox" / "templates" / "docs" / "docker-compose-open-source.yml"


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
    # latest -> the target for the stack, and the majors that ran for the databases (tts_pin_database_images).
    pinned = (
        DOCS_FILE.read_text()
        .replace("lorawan-stack:latest", f"lorawan-stack:{TARGET}")
        .replace("image: postgres:latest", "image: postgres:15")
        .replace("image: redis:latest", "image: redis:7.0")
    )
    assert host.file(str(DEPLOYMENT / "docker-compose.yml")).content_string == pinned


def test_healthz_answers(sandbox):
    # The deployment's URL has 3.18.2's path (/healthz/live); the target answers /healthz, as TTS from 3.24.0.
    url = sandbox["healthz"].split("/healthz")[0] + "/healthz"
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


def test_every_hop_migrated():
    report = json.loads(sorted((BACKUPS / "reports").glob("*/*_upgraded.json"))[0].read_text())
    assert [(hop["from"], hop["to"]) for hop in report["migrations"]] == [
        ("3.18.2", "3.19.2"),
        ("3.19.2", "3.24.2"),
        ("3.24.2", "3.32.2"),
    ]
    assert all("is-db migrate" in hop["commands"] for hop in report["migrations"])
