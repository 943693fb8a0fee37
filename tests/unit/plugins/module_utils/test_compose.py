"""Which compose command a project runs. The sandbox has the Compose v2 plugin (tested for real everywhere); a host
with only a standalone docker-compose, v1 or v2, can't be made here without installing one machine-wide."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.lorawan.tts.plugins.module_utils.compose import ComposeError, ComposeProject

STANDALONE = "/usr/bin/docker-compose"


class StandaloneOnlyHost:
    """A host whose docker CLI has no compose plugin and whose docker-compose prints `version`."""

    def __init__(self, version: str) -> None:
        self.version = version

    def get_bin_path(self, name: str) -> str:
        return {"docker": "/usr/bin/docker", "docker-compose": STANDALONE}[name]

    def run_command(self, argv: list[str]) -> tuple[int, str, str]:
        if argv == [STANDALONE, "version", "--short"]:
            return 0, self.version + "\n", ""
        return 1, "", "docker: 'compose' is not a docker command."


def test_a_standalone_compose_v2_is_used(tmp_path: Path) -> None:
    project = ComposeProject(StandaloneOnlyHost("2.26.1"), str(tmp_path))
    assert (project.command, project.command_name, project.version()) == ([STANDALONE], "docker-compose", "2.26.1")


def test_compose_v1_is_refused_naming_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ComposeError) as refused:
        ComposeProject(StandaloneOnlyHost("1.29.2"), str(tmp_path))
    assert str(refused.value).startswith(f"{STANDALONE} is Compose 1.29.2 (v1), which has neither")
    assert "install Compose v2 (the docker-compose-plugin package" in str(refused.value)
