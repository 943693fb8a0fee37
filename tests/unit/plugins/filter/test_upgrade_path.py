"""The filters as Jinja sees them."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.lorawan.tts.plugins.filter.upgrade_path import FilterModule

FILTERS = FilterModule().filters()


def test_upgrade_path_filter() -> None:
    assert FILTERS["upgrade_path"]("3.18.2", "3.32.2") == ["3.19.2", "3.24.2", "3.32.2"]


def test_migration_plan_filter_assumes_redis_keys_are_migrated() -> None:
    assert FILTERS["migration_plan"]("3.31.1", "3.32.0", "enterprise") == [["is-db", "migrate"], ["noc-db", "migrate"]]
    assert FILTERS["migration_plan"]("3.31.1", "3.32.0") == [["is-db", "migrate"]]


def test_migration_plan_filter_takes_redis_schema_versions() -> None:
    plan = FILTERS["migration_plan"]("3.31.1", "3.32.0", redis_schema_versions={"ns-db": None, "as-db": "0"})
    assert plan == [["is-db", "migrate"], ["ns-db", "migrate", "--force"], ["as-db", "migrate"]]


@pytest.mark.parametrize("name", ["upgrade_path", "migration_plan"])
def test_filters_fail_with_ansible_errors(name: str) -> None:
    with pytest.raises(AnsibleFilterError, match="not a The Things Stack version"):
        FILTERS[name]("latest", "3.32.0")
