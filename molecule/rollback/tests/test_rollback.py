"""Verify the rollback scenario: after upgrades to 3.98.0 and 3.98.1 that fail, and one to 3.32.0 whose post-upgrade
tasks fail, 3.31.1 runs with every byte kept."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
SANDBOX = ROOT / "tests" / "sandbox" / "tts-sandbox"
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
DEPLOYMENT = EPHEMERAL / f"upgrade-{os.environ['MOLECULE_SCENARIO_NAME']}"
BACKUPS = EPHEMERAL / "backups"
FINGERPRINTS = EPHEMERAL / "fingerprints"
FAILING = ["3.98.0", "3.98.1", "3.32.0"]
DOCS_FILE = ROOT / "tests" / "sandbox" / "templates" / "docs" / "docker-compose-open-source.yml"


@pytest.mark.parametrize("version", FAILING)
def test_upgrade_failed_and_was_rolled_back(version):
    outcome = json.loads((FINGERPRINTS / f"outcome-{version}.json").read_text())
    assert outcome["result"] == "failed"
    assert "ROLLED BACK" in outcome["msg"], outcome["msg"]
    assert str(BACKUPS) in outcome["msg"]


@pytest.mark.parametrize("version", FAILING)
def test_data_equal_to_before(version):
    compare = subprocess.run(
        [str(SANDBOX), "compare", str(FINGERPRINTS / "before.json"), str(FINGERPRINTS / f"after-{version}.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert compare.returncode == 0, compare.stdout + compare.stderr


def test_old_version_runs(host):
    result = host.run(f"cd {DEPLOYMENT} && docker compose exec -T stack ttn-lw-stack version")
    assert result.rc == 0, result.stderr
    assert "3.31.1" in result.stdout
    # The docs' file as it was, on `latest`: the rollback pointed the engine's `latest` back at 3.31.1's image.
    assert host.file(str(DEPLOYMENT / "docker-compose.yml")).content_string == DOCS_FILE.read_text()


@pytest.mark.parametrize("version", FAILING)
def test_report_and_backup_intact(version):
    reports = sorted((BACKUPS / "reports").glob("*/*_rolled-back.json"))
    report = next(json.loads(path.read_text()) for path in reports if json.loads(path.read_text())["to"] == version)
    assert report["result"] == "rolled-back"
    backup = Path(report["backup"]["path"])
    manifest = json.loads((backup / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        data = (backup / name).read_bytes()
        assert len(data) == entry["size"], name
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name


def test_journal_closed_with_the_outcome(host):
    journal = host.file(str(DEPLOYMENT / ".lorawan-tts.journal"))
    assert journal.mode == 0o600
    record = json.loads(journal.content_string)
    assert record["outcome"] == "rolled-back", record
    assert record["worker"] is None
