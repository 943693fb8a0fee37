"""Which endpoint a version answers on, which versions match a target, which published port reaches TTS."""

from __future__ import annotations

import pytest
from ansible_collections.lorawan.tts.plugins.module_utils.stack_health import (
    health_path,
    published_address,
    version_matches,
)


@pytest.mark.parametrize(
    ("version", "path"),
    [
        ("3.23.2", "/healthz/ready"),
        ("3.24.0", "/healthz"),
        ("3.32.1", "/healthz"),
        (None, "/healthz"),
        ("3.9", "/healthz/ready"),
    ],
)
def test_health_path(version, path) -> None:
    assert health_path(version) == path


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        ("3.32.0", "3.32.0", True),
        ("3.32.0", "3.32.1", False),
        ("3.32", "3.32.1", True),
        ("3.32", "3.3.2", False),
        ("3.32", "3.320.0", False),
        ("3.32.0", None, False),
    ],
)
def test_version_matches(expected, actual, matches) -> None:
    assert version_matches(expected, actual) is matches


def test_published_address() -> None:
    ports = [
        {"target": 1700, "published": "1700", "protocol": "udp"},
        {"target": 1885, "published": "80", "host_ip": "0.0.0.0"},  # noqa: S104 as compose prints it,
    ]
    assert published_address({"ports": ports}) == ("127.0.0.1", "80")
    assert published_address({"ports": [{"target": 1885, "published": "11885", "host_ip": "127.0.0.2"}]}) == (
        "127.0.0.2",
        "11885",
    )
    assert published_address({"ports": [{"target": 1885, "published": "::1", "host_ip": "::1"}]}) is None
    assert published_address({"ports": [{"target": 1885, "published": "8080", "host_ip": "::1"}]}) == ("[::1]", "8080")
    assert published_address({}) is None
