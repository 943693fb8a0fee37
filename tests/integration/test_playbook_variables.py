"""The playbooks' own variables (README.md, "Playbook variables") on the README's inventory: their defaults select
the hosts the README says, and a value that would not do what it says is refused before any host is touched."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import run

ROOT = Path(__file__).resolve().parents[2]
README_HOSTS = {"staging": ["tts-staging-1"], "production": ["tts-eu-1", "tts-eu-2"]}


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The inventory of the README's "Upgrading a fleet" (its hosts are not reachable: nothing may touch them)."""
    (block,) = re.findall(r"```ini\n(# inventory\.ini\n.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    path = tmp_path_factory.mktemp("readme") / "inventory.ini"
    path.write_text(block)
    return path


def playbook(ansible_env: dict[str, str], inventory: Path, name: str, *options: str) -> tuple[int, dict, str]:
    result = run(["ansible-playbook", f"lorawan.tts.{name}", "-i", str(inventory), *options], env=ansible_env)
    try:
        output = json.loads(result.stdout)
    except ValueError:
        output = {}
    return result.returncode, output, result.stdout + result.stderr


def plays_run(output: dict) -> list[str]:
    return [play["play"]["name"] for play in output.get("plays", []) if play["tasks"]]


def test_the_backup_playbook_backs_up_the_readme_groups(ansible_env: dict[str, str], inventory: Path) -> None:
    result = run(["ansible-playbook", "lorawan.tts.backup", "-i", str(inventory), "--list-hosts"], env=ansible_env)
    assert result.returncode == 0, result.stdout + result.stderr
    (listing,) = re.findall(r"Back up The Things Stack.*?hosts \(\d+\):\n(.*?)(?:\n\n|\Z)", result.stdout, re.DOTALL)
    assert sorted(listing.split()) == sorted(README_HOSTS["staging"] + README_HOSTS["production"])


@pytest.mark.parametrize(
    ("name", "options", "named"),
    [
        ("restore", [], "target=!all names no host"),
        ("restore", ["-e", "target=tts-eu-9"], "target=tts-eu-9 names no host"),
        ("backup", ["-e", "target="], "target='' is not a host pattern"),
        ("upgrade", ["-e", "tts_hosts=tts-eu-9"], "tts_hosts=tts-eu-9 names no host of the groups staging"),
        ("upgrade", ["-e", "tts_allow_no_staging=maybe"], "tts_allow_no_staging='maybe'"),
        ("upgrade", ["-e", '{"tts_hosts": ["tts-eu-1"]}'], "tts_hosts=['tts-eu-1'] is not a host pattern"),
        # The check runs under --limit too (it used to run on localhost, which --limit left out).
        ("upgrade", ["--limit", "tts-eu-1", "-e", "tts_upgrade_serial=0"], "tts_upgrade_serial='0' is not a batch"),
        ("upgrade", ["-e", "tts_skip_staging_gate=true"], "tts_skip_staging_gate=true needs tts_skip_staging_gate_"),
    ],
)
def test_a_bad_playbook_variable_is_refused_before_any_host(
    ansible_env: dict[str, str], inventory: Path, name: str, options: list[str], named: str
) -> None:
    rc, output, text = playbook(ansible_env, inventory, name, *options)
    assert rc != 0, text[-3000:]
    assert named in text, text[-3000:]
    assert plays_run(output) == ["Check the playbook's variables"], text[-3000:]


def test_a_named_restore_target_passes_the_check(ansible_env: dict[str, str], inventory: Path) -> None:
    """The check lets a target through to the restore play (which then cannot reach the README's host)."""
    _rc, output, text = playbook(ansible_env, inventory, "restore", "-e", "target=tts-eu-1", "-e", "ansible_timeout=2")
    assert plays_run(output) == ["Check the playbook's variables", "Restore The Things Stack"], text[-3000:]
