"""Every module's and filter's documentation renders with ansible-doc, and its EXAMPLES are valid tasks."""

from __future__ import annotations

import json

import pytest
import yaml

from .conftest import run

MODULES = [
    "backup_capture",
    "backup_files",
    "backup_manifest",
    "compose_image",
    "compose_service",
    "redis_backup",
    "redis_restore",
    "postgres_dump",
    "postgres_restore",
    "postgres_snapshot",
    "stack_health",
    "stack_migrate",
    "stack_info",
    "upgrade_report",
]
FILTERS = ["upgrade_path", "migration_plan", "migration_plan_lines"]


def ansible_doc(ansible_env: dict[str, str], *args: str) -> dict:
    result = run(["ansible-doc", "--json", *args], env=ansible_env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("name", MODULES)
def test_module_documentation_renders(ansible_env: dict[str, str], name: str) -> None:
    fqcn = f"lorawan.tts.{name}"
    doc = ansible_doc(ansible_env, fqcn)[fqcn]
    assert doc["doc"]["short_description"]
    assert {"check_mode", "diff_mode", "idempotent"} <= set(doc["doc"]["attributes"])
    examples = yaml.safe_load(doc["examples"])
    assert examples, f"{fqcn} has no EXAMPLES"
    assert any(fqcn in task for task in examples), f"no example of {fqcn} uses it by its full name"
    assert doc["return"], f"{fqcn} documents no return values"
    text = run(["ansible-doc", fqcn], env=ansible_env)
    assert text.returncode == 0, text.stderr


@pytest.mark.parametrize("name", FILTERS)
def test_filter_documentation_renders(ansible_env: dict[str, str], name: str) -> None:
    fqcn = f"lorawan.tts.{name}"
    doc = ansible_doc(ansible_env, "-t", "filter", fqcn)[fqcn]
    assert doc["doc"]["short_description"]
