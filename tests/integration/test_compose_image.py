"""lorawan.tts.compose_image run through ansible against sandbox deployments."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Deployment, run

OLD, NEW = "3.31.1", "3.32.0"
OPEN_SOURCE_IMAGE = "localhost:5000/thethingsnetwork/lorawan-stack"
ENTERPRISE_IMAGE = "localhost:5000/thethingsindustries/lorawan-stack"
GRAFANA_IMAGE = "localhost:5000/thethingsindustries/lorawan-stack-noc-grafana"


@pytest.fixture(scope="module")
def open_source(deploy) -> Deployment:
    return deploy(OLD)


@pytest.fixture(scope="module")
def enterprise(deploy) -> Deployment:
    return deploy(OLD, "--edition", "enterprise")


@pytest.fixture
def pristine(open_source: Deployment) -> Iterator[Deployment]:
    """The Open Source deployment; its directory's files are put back as they were after each test."""
    yield from restoring(open_source)


@pytest.fixture
def pristine_enterprise(enterprise: Deployment) -> Iterator[Deployment]:
    yield from restoring(enterprise)


def restoring(deployment: Deployment) -> Iterator[Deployment]:
    compose_file = deployment.dir / "docker-compose.yml"
    original = compose_file.read_bytes()
    status = compose_file.stat()
    yield deployment
    compose_file.write_bytes(original)
    compose_file.chmod(stat.S_IMODE(status.st_mode))
    os.chown(compose_file, status.st_uid, status.st_gid)
    for extra in deployment.dir.glob("docker-compose.yml.*~"):
        extra.unlink()
    (deployment.dir / "docker-compose.override.yml").unlink(missing_ok=True)


def image_play(options: dict, *, check: bool = False, diff: bool = False) -> str:
    lines = "".join(f"        {key}: {json.dumps(value)}\n" for key, value in options.items())
    return f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: set image
      lorawan.tts.compose_image:
{lines}      check_mode: {str(check).lower()}
      diff: {str(diff).lower()}
      ignore_errors: true
"""


def set_image(run_playbook, options: dict, **modes: bool) -> dict:
    return run_playbook(image_play(options, **modes)).result("set image")


def compose_images(deployment: Deployment) -> dict[str, str]:
    """The images docker compose resolves for every service: the file is still valid."""
    result = deployment.compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return {name: service["image"] for name, service in json.loads(result.stdout)["services"].items()}


def compose_file(deployment: Deployment) -> Path:
    return deployment.dir / "docker-compose.yml"


def line_number(data: bytes, text: str) -> int:
    return next(number for number, line in enumerate(data.decode().splitlines(), 1) if text in line)


def test_sets_the_stack_tag_and_changes_only_its_bytes(pristine: Deployment, run_playbook) -> None:
    path = compose_file(pristine)
    path.chmod(0o640)
    os.chown(path, 1234, 2345)
    before = path.read_bytes()

    predicted = set_image(run_playbook, {"project_src": str(pristine.dir), "tag": NEW}, check=True, diff=True)
    assert predicted["changed"] is True, predicted
    assert predicted["files"] == [str(path)]
    assert predicted["diff"]["before"] == before.decode()
    assert predicted["diff"]["after"] == before.decode().replace(f"lorawan-stack:{OLD}", f"lorawan-stack:{NEW}")
    assert path.read_bytes() == before, "check mode changes nothing"

    result = set_image(run_playbook, {"project_src": str(pristine.dir), "tag": NEW})
    assert result.get("failed") is not True, result
    assert result["changed"] is True
    assert result["previous"]["stack"] == {
        "image": f"{OPEN_SOURCE_IMAGE}:{OLD}",
        "tag": OLD,
        "file": str(path),
        "line": line_number(before, f"lorawan-stack:{OLD}"),
    }
    assert result["image"] == {"stack": f"{OPEN_SOURCE_IMAGE}:{NEW}"}
    assert result["files"] == [str(path)]
    assert "backup_file" not in result

    after = path.read_bytes()
    assert before.count(f"lorawan-stack:{OLD}".encode()) == 1
    assert after == before.replace(f"lorawan-stack:{OLD}".encode(), f"lorawan-stack:{NEW}".encode())
    status = path.stat()
    assert (stat.S_IMODE(status.st_mode), status.st_uid, status.st_gid) == (0o640, 1234, 2345)
    assert compose_images(pristine)["stack"] == f"{OPEN_SOURCE_IMAGE}:{NEW}"
    assert pristine.compose("pull", "--quiet", "stack").returncode == 0, "the new tag names an image that exists"

    again = set_image(run_playbook, {"project_src": str(pristine.dir), "tag": NEW})
    assert again["changed"] is False
    assert again["files"] == []
    assert again["previous"]["stack"]["tag"] == NEW
    assert path.read_bytes() == after


def test_backup_keeps_the_original(pristine: Deployment, run_playbook) -> None:
    path = compose_file(pristine)
    before = path.read_bytes()
    result = set_image(run_playbook, {"path": str(path), "tag": NEW, "backup": True})
    assert result["changed"] is True, result
    backup = Path(result["backup_file"])
    assert backup.parent == pristine.dir
    assert backup.name.startswith("docker-compose.yml.")
    assert backup.read_bytes() == before
    assert result["backup_files"] == {str(path): str(backup)}
    assert path.read_bytes() != before


def test_diff_is_shown_as_a_one_line_change(pristine: Deployment, ansible_env: dict[str, str]) -> None:
    path = compose_file(pristine)
    before = path.read_bytes()
    result = run(
        [
            "ansible",
            "localhost",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-m",
            "lorawan.tts.compose_image",
            "-a",
            json.dumps({"project_src": str(pristine.dir), "tag": NEW}),
            "--check",
            "--diff",
        ],
        env={key: value for key, value in ansible_env.items() if key != "ANSIBLE_STDOUT_CALLBACK"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    removed = [line for line in result.stdout.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line for line in result.stdout.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert removed == [f"-    image: {OPEN_SOURCE_IMAGE}:{OLD}"]
    assert added == [f"+    image: {OPEN_SOURCE_IMAGE}:{NEW}"]
    assert f"--- before: {path}" in result.stdout
    assert path.read_bytes() == before


def test_enterprise_stack_and_grafana_move_together(pristine_enterprise: Deployment, run_playbook) -> None:
    path = compose_file(pristine_enterprise)
    before = path.read_bytes()
    options = {"project_src": str(pristine_enterprise.dir), "services": ["stack", "grafana"], "tag": NEW}
    result = set_image(run_playbook, options)
    assert result["changed"] is True, result
    assert result["image"] == {"stack": f"{ENTERPRISE_IMAGE}:{NEW}", "grafana": f"{GRAFANA_IMAGE}:{NEW}"}
    assert {service: info["tag"] for service, info in result["previous"].items()} == {"stack": OLD, "grafana": OLD}
    expected = before.replace(f"lorawan-stack:{OLD}".encode(), f"lorawan-stack:{NEW}".encode())
    expected = expected.replace(
        f"lorawan-stack-noc-grafana:{OLD}".encode(), f"lorawan-stack-noc-grafana:{NEW}".encode()
    )
    assert path.read_bytes() == expected
    images = compose_images(pristine_enterprise)
    assert (images["stack"], images["grafana"]) == (f"{ENTERPRISE_IMAGE}:{NEW}", f"{GRAFANA_IMAGE}:{NEW}")
    assert images["postgres"].endswith("timescale/timescaledb:latest-pg17"), "other services are left alone"
    assert set_image(run_playbook, options)["changed"] is False


def test_override_file_that_sets_the_image_is_the_one_edited(pristine: Deployment, run_playbook) -> None:
    path = compose_file(pristine)
    before = path.read_bytes()
    override = pristine.dir / "docker-compose.override.yml"
    override.write_text(f"services:\n  stack:\n    image: '{OPEN_SOURCE_IMAGE}:3.26.0'  # held back\n")
    result = set_image(run_playbook, {"project_src": str(pristine.dir), "tag": NEW})
    assert result["changed"] is True, result
    assert result["files"] == [str(override)]
    assert result["previous"]["stack"]["tag"] == "3.26.0"
    assert override.read_text() == f"services:\n  stack:\n    image: '{OPEN_SOURCE_IMAGE}:{NEW}'  # held back\n"
    assert path.read_bytes() == before
    assert compose_images(pristine)["stack"] == f"{OPEN_SOURCE_IMAGE}:{NEW}"


REFUSALS = [
    ({"tag": "3.32.0; rm -rf /"}, None, "is not a valid Docker image tag"),
    ({"tag": "$(reboot)"}, None, "for example 3.32.0"),
    ({"tag": NEW, "services": ["stack", "stak"]}, None, "the services there are: postgres, redis, stack"),
    (
        {"tag": NEW},
        (f"{OPEN_SOURCE_IMAGE}:{OLD}", f"{OPEN_SOURCE_IMAGE}@sha256:{'0' * 64}"),
        "set replace_digest: true",
    ),
    ({"tag": NEW}, (f"{OPEN_SOURCE_IMAGE}:{OLD}", f"{OPEN_SOURCE_IMAGE}:${{TTS_VERSION}}"), "update_env_file: true"),
    (
        {"tag": NEW, "update_env_file": True},
        (f"{OPEN_SOURCE_IMAGE}:{OLD}", f"{OPEN_SOURCE_IMAGE}:${{TTS_VERSION:-{OLD}}}"),
        "has no .env file",  # the TTS layout's .env is a directory (.env/data)
    ),
    ({"tag": NEW}, ("    command: start\n", "   command: start\n"), "is not valid YAML, line {line}"),
    ({"tag": NEW, "services": ["redis", "stack"]}, ("    image: localhost:5000/library/redis:7\n", ""), "no image"),
]


@pytest.mark.parametrize(("options", "edit", "message"), REFUSALS)
def test_refusals_leave_the_file_byte_identical(
    pristine: Deployment, run_playbook, options: dict, edit: tuple[str, str] | None, message: str
) -> None:
    path = compose_file(pristine)
    if edit is not None:
        text = path.read_text()
        assert edit[0] in text
        path.write_text(text.replace(edit[0], edit[1]))
    before = path.read_bytes()
    listing = sorted(item.name for item in pristine.dir.iterdir())
    for check in (True, False):
        result = set_image(run_playbook, {"project_src": str(pristine.dir), **options}, check=check)
        assert result.get("failed") is True, result
        assert message.format(line=line_number(before, "   command: start")) in result["msg"]
        assert path.read_bytes() == before
        assert sorted(item.name for item in pristine.dir.iterdir()) == listing, "no temporary or backup file left"


def test_replace_digest_puts_the_tag_in_its_place(pristine: Deployment, run_playbook) -> None:
    path = compose_file(pristine)
    pinned = f"{OPEN_SOURCE_IMAGE}@sha256:{'0' * 64}"
    path.write_text(path.read_text().replace(f"{OPEN_SOURCE_IMAGE}:{OLD}", pinned))
    before = path.read_bytes()
    result = set_image(run_playbook, {"path": str(path), "tag": NEW, "replace_digest": True})
    assert result["changed"] is True, result
    assert result["previous"]["stack"]["tag"] is None
    assert path.read_bytes() == before.replace(pinned.encode(), f"{OPEN_SOURCE_IMAGE}:{NEW}".encode())
    assert compose_images(pristine)["stack"] == f"{OPEN_SOURCE_IMAGE}:{NEW}"


def test_option_errors_come_from_the_argument_spec(pristine: Deployment, run_playbook) -> None:
    path = compose_file(pristine)
    before = path.read_bytes()
    both = set_image(run_playbook, {"project_src": str(pristine.dir), "path": str(path), "tag": NEW})
    assert both.get("failed") is True
    assert "mutually exclusive" in both["msg"]
    neither = set_image(run_playbook, {"tag": NEW})
    assert neither.get("failed") is True
    assert "one of the following is required: project_src, path" in neither["msg"]
    assert path.read_bytes() == before
