"""The action group lorawan.tts.tts: `module_defaults` gives a deployment's compose options once for every module
that runs its compose CLI, as roles and operators' playbooks use it."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .conftest import DeployFactory, run

ROOT = Path(__file__).resolve().parents[2]
GROUP = "lorawan.tts.tts"
COMPOSE_OPTIONS = {"project_src", "files", "project_name", "env_files"}
VERSION = "3.31.1"


def test_the_group_holds_every_module_that_takes_the_compose_options(ansible_env: dict[str, str]) -> None:
    """A default for any of the four options must suit every module of the group (a module without one fails on
    it), and no module that takes all four is left out."""
    names = sorted(path.stem for path in (ROOT / "plugins" / "modules").glob("*.py"))
    result = run(["ansible-doc", "--json", *(f"lorawan.tts.{name}" for name in names)], env=ansible_env)
    assert result.returncode == 0, result.stderr
    options = {fqcn: doc["doc"]["options"] for fqcn, doc in json.loads(result.stdout).items()}
    takes_them = sorted(name for name in names if COMPOSE_OPTIONS.issubset(options[f"lorawan.tts.{name}"]))
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    assert sorted(runtime["action_groups"]["tts"]) == takes_them


def test_module_defaults_give_the_deployment_once(deploy: DeployFactory, run_playbook) -> None:
    deployment = deploy(VERSION, "--seed", "small")
    compose = {"project_src": str(deployment.dir), "files": ["docker-compose.yml"], "project_name": deployment.dir.name}
    tasks = [
        {"name": "Read the deployment", "lorawan.tts.stack_info": {}, "register": "info"},
        {"name": "Ask TTS for its version", "lorawan.tts.stack_health": {"version": VERSION, "timeout": 60}},
        {"name": "Start the stack", "lorawan.tts.compose_service": {"services": ["stack"], "state": "started"}},
    ]
    playbook = [
        {
            "name": "With module_defaults",
            "hosts": "localhost",
            "gather_facts": False,
            "module_defaults": {f"group/{GROUP}": compose},
            "tasks": tasks,
        },
        {
            "name": "Without",
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [{"name": "Read without a project", "lorawan.tts.stack_info": {}, "ignore_errors": True}],
        },
    ]
    result = run_playbook(yaml.safe_dump(playbook))
    assert result.rc == 0, result.stderr
    info = result.result("Read the deployment")
    assert info["tts"]["stack_version"] == VERSION, info
    assert [file["path"] for file in info["tts"]["compose_files"]] == [str(deployment.dir / "docker-compose.yml")]
    assert not result.result("Ask TTS for its version").get("failed"), result.result("Ask TTS for its version")
    started = result.result("Start the stack")
    assert not started.get("failed") and not started["changed"], started
    without = result.result("Read without a project")
    assert without["failed"] and "project_src" in without["msg"], without
