"""The filters that show the upgrade's plan."""

from __future__ import annotations

from ansible_collections.lorawan.tts.plugins.filter.upgrade_path import FilterModule


def test_migration_plan_lines() -> None:
    lines = FilterModule().filters()["migration_plan_lines"]("3.18.2", ["3.19.2", "3.24.2"])
    assert lines == ["3.18.2 -> 3.19.2: is-db migrate", "3.19.2 -> 3.24.2: is-db migrate"]
    enterprise = FilterModule().filters()["migration_plan_lines"]("3.24.2", ["3.32.0"], "enterprise")
    assert enterprise == ["3.24.2 -> 3.32.0: is-db migrate, noc-db migrate, storage-db migrate"]
