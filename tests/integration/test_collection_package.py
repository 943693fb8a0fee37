"""The collection as operators get it: the tarball of `ansible-galaxy collection build`, installed with
`ansible-galaxy collection install` into an empty collections path, runs the upgrade demo from there."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from ttssandbox.fingerprint import data_differences

from .conftest import DeployFactory, run

ROOT = Path(__file__).resolve().parents[2]
# What tools, tests and runs leave in a checkout, planted in the copy the tarball is built from.
TOOL_STATE = [
    ".ansible/collections/ansible_collections/lorawan/tts/galaxy.yml",  # ansible-lint's copy of the collection
    ".venv/bin/python",
    ".venv-2.18/pyvenv.cfg",
    ".pytest_cache/README.md",
    ".ruff_cache/CACHEDIR.TAG",
    "plugins/module_utils/__pycache__/compose.cpython-311.pyc",
    "changelogs/.plugin-cache.yaml",
    "build/demo/docker-compose.yml",
    "context/Dockerfile",
    "tests/output/junit.xml",
    "lorawan-tts-0.0.9.tar.gz",
]
# Top-level entries that are for developing the collection, not for running it.
DEVELOPMENT_ONLY = {
    ".ansible",
    ".ansible-lint",
    ".ci",
    ".gitignore",
    ".pytest_cache",
    ".ruff_cache",
    ".venv",
    ".venv-2.18",
    "bench",
    "build",
    "collections",
    "context",
    "execution-environment.yml",
    "molecule",
    "pyproject.toml",
    "scripts",
    "tests",
}
SHIPPED_DIRECTORIES = ("docs", "meta", "playbooks", "plugins", "roles")
FROM, TARGET = "3.31.1", "3.32.0"


def checkout_files() -> list[str]:
    """The checkout's files, tracked and new (not ignored), as scripts/sanity copies them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    names = [name.decode() for name in listed.stdout.split(b"\0") if name]
    return [name for name in names if (ROOT / name).is_file() and not (ROOT / name).is_symlink()]


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory, ansible_env: dict[str, str]) -> Path:
    """The collection built from a copy of this checkout with every kind of tool state in it."""
    source = tmp_path_factory.mktemp("source")
    for name in checkout_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    for name in TOOL_STATE:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("tool state\n")
    output = tmp_path_factory.mktemp("dist")
    result = run(["ansible-galaxy", "collection", "build", "--output-path", str(output), str(source)], env=ansible_env)
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = output.glob("lorawan-tts-*.tar.gz")
    return built


def test_the_tarball_holds_what_runs_and_nothing_else(tarball: Path) -> None:
    with tarfile.open(tarball) as archive:
        members = archive.getnames()
        manifest = json.load(archive.extractfile("MANIFEST.json"))  # type: ignore[arg-type]
    top_level = {member.split("/", 1)[0] for member in members}
    assert top_level & DEVELOPMENT_ONLY == set(), sorted(top_level)
    assert [member for member in members if "__pycache__" in member or member.endswith((".pyc", ".tar.gz"))] == []
    assert "changelogs/.plugin-cache.yaml" not in members
    wanted = [name for name in checkout_files() if name.split("/", 1)[0] in SHIPPED_DIRECTORIES]
    assert sorted(set(wanted) - set(members)) == [], "files the collection needs are left out"
    assert {"README.md", "COPYING", "meta/runtime.yml", "playbooks/vars/upgrade.yml"} <= set(members)
    info = manifest["collection_info"]
    assert info["authors"] and all("developers" not in author for author in info["authors"]), info["authors"]
    for key in ("repository", "documentation", "homepage", "issues"):
        assert str(info[key]).startswith("https://"), (key, info[key])
    assert tarball.stat().st_size < 300_000, f"{tarball.stat().st_size} bytes"


def test_the_installed_collection_upgrades_a_deployment(
    tarball: Path, deploy: DeployFactory, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    """The demo's upgrade, with the installed copy as the only lorawan.tts Ansible can find."""
    collections = tmp_path / "collections"
    env = {
        **{name: value for name, value in ansible_env.items() if not name.startswith("ANSIBLE_")},
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_NOCOLOR": "1",
    }
    installed = run(["ansible-galaxy", "collection", "install", "-p", str(collections), str(tarball)], env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    listed = run(["ansible-galaxy", "collection", "list", "lorawan.tts", "--format", "json"], env=env)
    assert listed.returncode == 0, listed.stderr
    assert list(json.loads(listed.stdout)) == [str(collections / "ansible_collections")], listed.stdout

    deployment = deploy(FROM, "--seed", "small")
    before = deployment.fingerprint()
    backups = tmp_path / "backups"
    inventory = tmp_path / "inventory.yml"
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "tts_project_dir": str(deployment.dir),
        "tts_backup_dir": str(backups),
        "tts_target_version": TARGET,
    }
    inventory.write_text(yaml.safe_dump({"staging": {"hosts": {"demo-tts": host}}}))
    upgrade = run(["ansible-playbook", "lorawan.tts.upgrade", "-i", str(inventory)], env=env, cwd=tmp_path)
    assert upgrade.returncode == 0, upgrade.stdout[-4000:] + upgrade.stderr

    (report,) = (backups / "reports" / "demo-tts").glob("*.json")
    outcome = json.loads(report.read_text())
    assert (outcome["result"], outcome["to"]) == ("upgraded", TARGET), outcome
    assert deployment.healthz() == 200
    assert data_differences(before, deployment.fingerprint()) == []


def test_the_execution_environment_context_installs_the_collection(
    tarball: Path, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    """`ansible-builder create` on execution-environment.yml, with the tarball where its header says to build it;
    then the context's galaxy step, as its Containerfile runs it (in /build, a copy of _build), and ansible-builder's
    introspection of the installed collection: no Python or system package for the controller."""
    builder = shutil.which("ansible-builder", path=ansible_env["PATH"])
    if builder is None:
        pytest.fail("ansible-builder is missing: run scripts/setup (it installs tests/requirements.txt)")
    shutil.copy2(ROOT / "execution-environment.yml", tmp_path / "execution-environment.yml")
    (tmp_path / "build" / "ee").mkdir(parents=True)
    shutil.copy2(tarball, tmp_path / "build" / "ee" / tarball.name)
    context = tmp_path / "context"
    created = run(
        [builder, "create", "--file", str(tmp_path / "execution-environment.yml"), "--context", str(context)],
        env=ansible_env,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    assert "No matches" not in created.stdout + created.stderr, created.stdout + created.stderr
    (containerfile,) = [path for path in context.iterdir() if path.name in ("Containerfile", "Dockerfile")]
    assert {"COPY _build /build", "WORKDIR /build"} <= set(containerfile.read_text().splitlines())
    build = context / "_build"
    for entry in yaml.safe_load((build / "requirements.yml").read_text())["collections"]:
        assert (build / entry["name"]).is_file(), entry

    collections = tmp_path / "collections"
    env = {**ansible_env, "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_GALAXY_DISABLE_GPG_VERIFY": "1"}
    install = ["ansible-galaxy", "collection", "install", "-r", "requirements.yml", "--collections-path"]
    installed = run([*install, str(collections)], env=env, cwd=build)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    manifest = json.loads((collections / "ansible_collections" / "lorawan" / "tts" / "MANIFEST.json").read_text())
    assert manifest["collection_info"]["version"] == yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    introspect = [sys.executable, str(build / "scripts" / "introspect.py"), "introspect", str(collections)]
    needs = run(introspect, env=env)
    assert needs.returncode == 0, needs.stderr
    assert yaml.safe_load(needs.stdout) == {"python": [], "system": []}, needs.stdout


def test_an_awx_project_installs_the_collection_its_playbooks_use(ansible_env: dict[str, str], tmp_path: Path) -> None:
    """AWX's project update runs `ansible-galaxy collection install -r collections/requirements.yml` in the
    project's checkout, then runs the project's playbooks with what it installed."""
    project = tmp_path / "project"
    for name in checkout_files():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, project / name)
    requirements_collections = tmp_path / "requirements_collections"
    env = {**ansible_env, "ANSIBLE_COLLECTIONS_PATH": str(requirements_collections)}
    playbooks = ["playbooks/upgrade.yml", "playbooks/backup.yml", "playbooks/restore.yml"]
    syntax_check = ["ansible-playbook", "--syntax-check", "-i", "localhost,", *playbooks]
    before = run(syntax_check, env=env, cwd=project)
    assert before.returncode != 0 and "lorawan.tts.upgrade" in before.stdout + before.stderr, before.stdout
    install = ["ansible-galaxy", "collection", "install", "-r", "collections/requirements.yml", "--collections-path"]
    installed = run([*install, str(requirements_collections)], env=env, cwd=project)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    after = run(syntax_check, env=env, cwd=project)
    assert after.returncode == 0, after.stdout + after.stderr
