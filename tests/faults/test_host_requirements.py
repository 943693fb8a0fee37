"""A managed host whose Python lacks ruamel.yaml is refused before anything stops, with the package to install.

The host's Python is a virtualenv made here without any package, given as ansible_python_interpreter: the modules
run with it as they would with a host's /usr/bin/python3 without python3-ruamel.yaml. It has no PyYAML either,
which nothing on the host needs (the compose configuration is read as JSON).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.interrupt import FROM, TARGET, run_upgrade, write_inventory
from tests.faults.observe import containers, project_files

MISSING_RUAMEL_YAML = "Failed to import the required Python library (ruamel.yaml)"
INSTALL_HINTS = ("python3-ruamel.yaml", "pip install 'ruamel.yaml>=0.17'")


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("bare-python")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True)
    python = directory / "bin" / "python"
    for library in ("ruamel.yaml", "yaml"):
        imported = subprocess.run([str(python), "-c", f"import {library}"], capture_output=True, check=False)
        assert imported.returncode != 0, f"the bare Python imports {library}"
    return python


@pytest.fixture(scope="module")
def deployment(deploy):
    return deploy(FROM, "--seed", "small")


def test_an_upgrade_on_a_host_without_ruamel_yaml_stops_nothing(deployment, bare_python, ansible_env, tmp_path):
    compose_file = deployment.dir / "docker-compose.yml"
    compose_bytes = compose_file.read_bytes()
    files, running = project_files(deployment.dir), containers(deployment.dir)
    inventory = write_inventory(tmp_path, deployment.dir, ansible_python_interpreter=str(bare_python))

    rc, output = run_upgrade(inventory, ansible_env)

    assert rc != 0, output[-3000:]
    refusal = next(line for line in output.splitlines() if "failed before anything was stopped" in line)
    assert "Upgrade | preflight | Check that the upgrade can start" in refusal, refusal
    assert MISSING_RUAMEL_YAML in refusal and str(bare_python) in refusal, refusal
    assert all(hint in refusal for hint in INSTALL_HINTS), refusal
    assert "No module named" not in output, output[-3000:]
    assert compose_file.read_bytes() == compose_bytes
    assert project_files(deployment.dir) == files
    assert containers(deployment.dir) == running
    assert deployment.healthz() == 200
    report = json.loads(next((tmp_path / "reports" / "tts-1").glob("*_failed.json")).read_text())
    assert (report["stopped"], report["captured"], report["downtime_seconds"], report["backup"]) == (
        False,
        False,
        None,
        None,
    )
    assert not any((tmp_path / "backups").rglob("manifest.json"))


def test_the_modules_that_edit_the_compose_file_name_the_package_to_install(
    deployment, bare_python, run_playbook, tmp_path
):
    compose_file = deployment.dir / "docker-compose.yml"
    compose_bytes = compose_file.read_bytes()
    running = containers(deployment.dir)
    capture = tmp_path / "capture"
    project = {"project_src": str(deployment.dir)}
    bare = {"ansible_python_interpreter": str(bare_python)}
    tasks = [
        {"name": "stack_info with the bare Python", "lorawan.tts.stack_info": project, "vars": bare},
        {"name": "stack_info with the tests' Python", "lorawan.tts.stack_info": project},
        {"name": "compose_image", "lorawan.tts.compose_image": {**project, "tag": TARGET}, "vars": bare},
        {
            "name": "stack_cutover",
            "lorawan.tts.stack_cutover": {**project, "from_version": FROM, "hops": [TARGET], "dest": str(capture)},
            "vars": bare,
        },
    ]
    playbook = json.dumps([{"hosts": "localhost", "gather_facts": False, "ignore_errors": True, "tasks": tasks}])

    # A failed module's traceback in its result (the `exception` key): ansible-core 2.18 always gives it, later releases
    # when asked.
    result = run_playbook(playbook, extra_env={"ANSIBLE_DISPLAY_TRACEBACK": "error"})

    bare_info = result.result("stack_info with the bare Python")
    assert not bare_info.get("failed"), bare_info
    assert bare_info["tts"]["stack_version"] == FROM
    python = bare_info["tts"]["python"]
    assert (python["executable"], python["ruamel_yaml"]) == (str(bare_python), None)
    assert len(python["problems"]) == 1 and MISSING_RUAMEL_YAML in python["problems"][0], python
    tests_python = result.result("stack_info with the tests' Python")["tts"]["python"]
    from ruamel.yaml import __version__ as ruamel_yaml_version

    assert (tests_python["ruamel_yaml"], tests_python["problems"]) == (ruamel_yaml_version, [])
    for name in ("compose_image", "stack_cutover"):
        failure = result.result(name)
        assert failure.get("failed"), failure
        assert MISSING_RUAMEL_YAML in failure["msg"] and str(bare_python) in failure["msg"], failure
        assert all(hint in failure["msg"] for hint in INSTALL_HINTS), failure
        assert "No module named 'ruamel'" in failure["exception"], failure
    assert compose_file.read_bytes() == compose_bytes
    assert containers(deployment.dir) == running
    assert not capture.exists()
