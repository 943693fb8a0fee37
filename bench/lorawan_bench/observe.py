"""Run an action against deployments while their /healthz is polled from outside."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TypeVar

from .commands import BenchError
from .config import SETTLE_TIMEOUT
from .health import OK, Downtime, Poller, Sample, analyse
from .sandbox import Deployment

T = TypeVar("T")


@dataclass
class Observed:
    origin: float  # epoch seconds when the action began; times in the records are relative to it
    samples: dict[str, list[Sample]]
    downtime: dict[str, Downtime]
    settle_seconds: float  # how long after the action ended /healthz still needed to answer as expected

    def downtime_dict(self, name: str) -> dict[str, object]:
        return self.downtime[name].as_dict(self.origin)


def observe(deployments: list[Deployment], action: Callable[[], T], version: str | None) -> tuple[T, Observed]:
    """Poll every deployment's /healthz while `action` runs, then until each answers with `version`."""
    with ExitStack() as stack:
        pollers = {item.name: stack.enter_context(Poller(item.port)) for item in deployments}
        for name, poller in pollers.items():
            if not poller.wait_until(up=True, version=None, timeout=60):
                raise BenchError(f"{name}'s /healthz did not answer 200 before the measurement")
        origin = time.time()
        result = action()
        ended = time.monotonic()
        for poller in pollers.values():
            # A stack that never went down (a no-op, or a run that failed before the stop) is not waited for.
            if any(sample.status != OK for sample in poller.samples if sample.at >= origin):
                poller.wait_until(up=True, version=version, timeout=SETTLE_TIMEOUT)
        settle = time.monotonic() - ended
    samples = {name: [s for s in poller.samples if s.at >= origin] for name, poller in pollers.items()}
    downtime = {name: analyse(items, version) for name, items in samples.items()}
    return result, Observed(origin, samples, downtime, round(settle, 3))
