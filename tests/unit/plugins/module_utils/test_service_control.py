"""service_control's error paths that a real deployment does not produce on demand, with a fake compose runner."""

from __future__ import annotations

import pytest
from ansible_collections.lorawan.tts.plugins.module_utils import service_control
from ansible_collections.lorawan.tts.plugins.module_utils.compose import ComposeError
from ansible_collections.lorawan.tts.plugins.module_utils.service_control import ServiceControl, pull_failure_message

IMAGE = "registry.example.com/tti/lorawan-stack:3.32.0"


def test_pull_refused_by_the_registry_says_to_log_in() -> None:
    stderr = "Error response from daemon: unauthorized: authentication required\n"
    message = pull_failure_message("/srv/tts", {"stack": IMAGE}, stderr)
    assert message.startswith(f"pulling {IMAGE} of service stack failed in /srv/tts:")
    assert "registry registry.example.com refused access" in message
    assert "docker login registry.example.com" in message
    assert "Nothing was stopped" in message
    assert "unauthorized: authentication required" in message


def test_pull_failure_of_an_unknown_kind_still_says_nothing_was_stopped() -> None:
    message = pull_failure_message("/srv/tts", {"stack": IMAGE, "redis": "redis:7"}, "Error: disk full\n")
    assert "redis:7 of service redis, " + IMAGE + " of service stack" in message
    assert "registry docker.io, registry.example.com did not deliver it" in message
    assert "Nothing was stopped" in message
    assert "Error: disk full" in message


def exited_container() -> dict:
    return {
        "Id": "abc",
        "Name": "/tts-stack-1",
        "State": {"Status": "exited", "ExitCode": 3},
        "Config": {"Image": IMAGE, "Labels": {}},
        "Image": "sha256:1",
    }


class FakeProject:
    project_src = "/srv/tts"
    docker = "docker"

    def __init__(self) -> None:
        self.module = None
        self.ran = []

    def services(self) -> dict:
        return {"stack": {"image": IMAGE}}

    def require_services(self, names):
        return self.services()

    def containers(self, services=None) -> dict:
        return {"stack": [exited_container()]}

    def run(self, *args, **kwargs):
        self.ran.append(args)
        return 0, "stack-1  | FATAL could not open the config file\n", ""


def test_wait_fails_at_once_when_the_container_exits(monkeypatch) -> None:
    monkeypatch.setattr(service_control.time, "sleep", lambda seconds: pytest.fail("waited for an exited container"))
    control = ServiceControl(FakeProject(), ["stack"])
    with pytest.raises(ComposeError) as error:
        control.wait(120)
    message = str(error.value)
    assert "container tts-stack-1 of service stack exited (exit code 3) while waiting" in message
    assert "FATAL could not open the config file" in message
    assert "docker compose logs stack" in message
    assert control.result["containers"]["stack"]["state"] == "exited"
