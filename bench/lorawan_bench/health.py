"""Outside measurement: a thread polls GET /healthz; downtime is read from its samples afterwards."""

from __future__ import annotations

import http.client
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType

from .config import POLL_INTERVAL, POLL_TIMEOUT

OK = 200
# The sandbox's stand-in names its version in this header; real TTS does not, and then any 200 counts.
VERSION_HEADER = "X-TTS-Version"


@dataclass(frozen=True)
class Sample:
    at: float  # epoch seconds
    status: int | None  # None: no HTTP answer (refused, reset, timed out)
    version: str | None


@dataclass
class Downtime:
    """From the first answer other than 200 to the first 200 (of the expected version) after the last one."""

    went_down: bool
    seconds: float | None  # 0.0 when it never went down; None when it did not come back
    down_at: float | None
    up_at: float | None
    outages: list[tuple[float, float | None]]  # every stretch without a 200, (start, end) epoch seconds

    def as_dict(self, origin: float) -> dict[str, object]:
        def rel(value: float | None) -> float | None:
            return None if value is None else round(value - origin, 3)

        return {
            "went_down": self.went_down,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "down_at": rel(self.down_at),
            "up_at": rel(self.up_at),
            "outages": [[rel(start), rel(end)] for start, end in self.outages],
        }


def probe(port: int, timeout: float = POLL_TIMEOUT) -> tuple[int | None, str | None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader(VERSION_HEADER)
    except (OSError, http.client.HTTPException):
        return None, None
    finally:
        connection.close()


def is_up(sample: Sample, version: str | None) -> bool:
    return sample.status == OK and (version is None or sample.version is None or sample.version == version)


def analyse(samples: list[Sample], version: str | None = None) -> Downtime:
    """Downtime in a list of samples; `version` is the one that must answer for the stack to count as back."""
    outages: list[tuple[float, float | None]] = []
    start: float | None = None
    for sample in samples:
        if sample.status != OK and start is None:
            start = sample.at
        elif sample.status == OK and start is not None:
            outages.append((start, sample.at))
            start = None
    if start is not None:
        outages.append((start, None))
    first_down = next((sample for sample in samples if sample.status != OK), None)
    if first_down is None:
        return Downtime(False, 0.0, None, None, outages)
    last_bad = max(index for index, sample in enumerate(samples) if not is_up(sample, version))
    if last_bad == len(samples) - 1:
        return Downtime(True, None, first_down.at, None, outages)
    up = samples[last_bad + 1]
    return Downtime(True, up.at - first_down.at, first_down.at, up.at, outages)


class Poller:
    """GET /healthz every `interval` seconds, from `with` to its end.

    Each probe runs in its own worker, so a probe that hangs (while a container starts, Docker's port proxy may
    accept a connection that nothing answers yet) does not delay the next ones; a sample is stamped with the time
    its request began.
    """

    def __init__(self, port: int, interval: float = POLL_INTERVAL) -> None:
        self.port = port
        self.interval = interval
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"healthz-{port}", daemon=True)

    def _probe(self) -> None:
        at = time.time()
        status, version = probe(self.port)
        with self._lock:
            self._samples.append(Sample(at, status, version))

    def _loop(self) -> None:
        workers = max(2, int(POLL_TIMEOUT / self.interval) + 2)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"healthz-{self.port}") as pool:
            next_at = time.monotonic()
            while not self._stop.is_set():
                pool.submit(self._probe)
                next_at = max(next_at + self.interval, time.monotonic())
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def samples(self) -> list[Sample]:
        """The samples so far, in the order their requests began."""
        with self._lock:
            return sorted(self._samples, key=lambda sample: sample.at)

    def wait_until(self, up: bool, version: str | None, timeout: float) -> bool:
        """Until the newest sample is up (of `version`) or, with up=False, not up; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            samples = self.samples
            if samples and is_up(samples[-1], version) == up:
                return True
            time.sleep(self.interval / 2)
        return False
