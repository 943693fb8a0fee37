"""The capture's parts run at once, each in a forked process; the ones off the critical path yield the CPU."""

from __future__ import annotations

import os

from ansible_collections.lorawan.tts.plugins.module_utils.backup_capture import YIELDING_NICENESS, in_parallel


def niceness() -> dict:
    return {"niceness": os.nice(0)}


def test_the_yielding_parts_run_at_a_lower_priority_than_the_critical_one() -> None:
    base = os.nice(0)
    results, failures = in_parallel({"postgres": niceness, "redis": niceness}, yielding=("redis",))
    assert failures == {}
    assert results["postgres"]["niceness"] == base
    assert results["redis"]["niceness"] == min(base + YIELDING_NICENESS, 19)
    assert os.nice(0) == base, "the module's own process keeps its priority"


def test_a_failing_part_is_reported_by_name() -> None:
    def broken() -> dict:
        raise OSError(28, "No space left on device")

    results, failures = in_parallel({"files": broken, "redis": niceness})
    assert set(results) == {"redis"}
    assert "No space left on device" in failures["files"]["msg"]
