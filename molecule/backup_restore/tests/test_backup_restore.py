"""Testinfra verifier: the restore gave back exactly the data of backup time."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

SECTIONS = ("postgres", "redis", "blob")


@pytest.fixture(scope="module")
def sandbox() -> dict:
    state = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "sandbox.yml"
    return yaml.safe_load(state.read_text())


@pytest.fixture(scope="module")
def restored(host, sandbox) -> dict:
    tool = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / "tests" / "sandbox" / "tts-sandbox"
    result = host.run(f"{tool} fingerprint {sandbox['sandbox_dir']}")
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def saved(host, sandbox, name: str) -> dict:
    return json.loads(host.file(f"{sandbox['sandbox_workdir']}/{name}").content_string)


def test_more_data_was_written_after_the_backup(host, sandbox):
    at_backup, more = saved(host, sandbox, "fingerprint-backup.json"), saved(host, sandbox, "fingerprint-more.json")
    assert all(at_backup[section] != more[section] for section in SECTIONS)


@pytest.mark.parametrize("section", SECTIONS)
def test_restored_data_equals_backup_time(host, sandbox, restored, section):
    assert restored[section] == saved(host, sandbox, "fingerprint-backup.json")[section]


def test_restored_stack_runs_the_backup_version(host, sandbox, restored):
    assert restored["stack_version"] == saved(host, sandbox, "fingerprint-backup.json")["stack_version"]


def test_backup_directory_is_private(host, sandbox):
    backup = host.file(host.file(f"{sandbox['sandbox_workdir']}/backup-path").content_string.strip())
    assert backup.is_directory
    assert backup.mode == 0o700
    manifest = host.file(f"{backup.path}/manifest.json")
    assert manifest.mode == 0o600
    assert set(json.loads(manifest.content_string)["files"]) >= {"postgres/ttn_lorawan.dump"}
