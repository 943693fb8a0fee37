"""backup_files on a real file system: a full copy, cheap refreshes, a restore that copies only what differs."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from ansible_collections.lorawan.tts.plugins.module_utils.backup_files import (
    BackupFilesError,
    capture,
    project_roots,
    restore,
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "tts"
    (root / "blob" / "applications" / "app-1").mkdir(parents=True)
    for number in range(3):
        (root / "blob" / "applications" / "app-1" / f"picture-{number}.png").write_bytes(bytes([number]) * 100)
    (root / "config" / "stack").mkdir(parents=True)
    (root / "config" / "stack" / "ttn-lw-stack-docker.yml").write_text("http:\n  cookie:\n")
    (root / "acme").mkdir()
    (root / "acme" / "cert.pem").write_text("certificate")
    (root / "acme").chmod(0o700)
    (root / "docker-compose.yml").write_text("services: {}\n")
    (root / "docker-compose.override.yml").write_text("services: {}\n")
    (root / "notes.yml").write_text("not a compose file\n")
    (root / ".env").mkdir()  # TTS keeps the databases' data here: never copied
    (root / ".env" / "data").write_text("database files")
    return root


def backup_names(backup: Path) -> set[str]:
    return {str(path.relative_to(backup)) for path in backup.rglob("*") if path.is_file()}


def test_roots_are_blob_config_acme_and_the_compose_files(project: Path) -> None:
    roots = project_roots(str(project), None, None)
    assert sorted(roots) == [
        "files/blob",
        "files/project/acme",
        "files/project/config",
        "files/project/docker-compose.override.yml",
        "files/project/docker-compose.yml",
    ]


def test_first_capture_copies_everything_private(project: Path, tmp_path: Path) -> None:
    backup = tmp_path / "backups" / "host" / "20260101T000000Z_3.31.1"
    changed, stats = capture(str(backup), project_roots(str(project), None, None))
    assert changed
    assert stats["copied_files"] == stats["files"] == 7
    assert "files/blob/applications/app-1/picture-2.png" in backup_names(backup)
    assert not any(".env" in name for name in backup_names(backup))
    for path in [backup, *backup.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path
    assert stat.S_IMODE((tmp_path / "backups").stat().st_mode) == 0o700
    index = json.loads((backup / "files.json").read_text())
    assert index["entries"]["files/project/acme"]["mode"] == 0o700


def test_second_capture_copies_only_what_changed(project: Path, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    roots = project_roots(str(project), None, None)
    capture(str(backup), roots)
    changed, stats = capture(str(backup), roots)
    assert not changed
    assert (stats["copied_files"], stats["removed"]) == (0, 0)

    picture = project / "blob" / "applications" / "app-1" / "picture-0.png"
    picture.write_bytes(b"new picture, another size")
    (project / "blob" / "applications" / "app-1" / "picture-1.png").unlink()
    changed, stats = capture(str(backup), roots)
    assert changed
    assert stats["copied_files"] == 1
    assert stats["removed"] == 1
    assert (backup / "files/blob/applications/app-1/picture-0.png").read_bytes() == b"new picture, another size"
    assert not (backup / "files/blob/applications/app-1/picture-1.png").exists()


def test_restore_puts_back_exactly_the_backed_up_files(project: Path, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    capture(str(backup), project_roots(str(project), None, None))
    before = {str(p.relative_to(project)): p.read_bytes() for p in project.rglob("*") if p.is_file()}

    (project / "docker-compose.yml").write_text("services: {stack: {image: 'x:3.32.0'}}\n")
    (project / "blob" / "applications" / "app-1" / "picture-2.png").unlink()
    (project / "blob" / "applications" / "app-2").mkdir()
    (project / "blob" / "applications" / "app-2" / "new.png").write_bytes(b"uploaded after the backup")
    (project / "acme" / "cert.pem").chmod(0o600)

    changed, stats = restore(str(backup))
    assert changed
    assert stats["copied_files"] == 2
    assert stats["removed"] == 1
    assert stats["attributes_fixed"] == 1
    after = {str(p.relative_to(project)): p.read_bytes() for p in project.rglob("*") if p.is_file()}
    assert after == before
    assert stat.S_IMODE((project / "acme" / "cert.pem").stat().st_mode) == 0o644, "the mode it had"
    assert restore(str(backup))[0] is False


def test_restore_without_index_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackupFilesError, match=r"files\.json"):
        restore(str(tmp_path))


def test_restore_into_another_deployment(project: Path, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    capture(str(backup), project_roots(str(project), None, None))
    other = tmp_path / "other"
    (other / "pictures").mkdir(parents=True)
    (other / "pictures" / "stale.png").write_bytes(b"not in the backup")

    restore(str(backup), project_src=str(other), blob_dir=str(other / "pictures"))
    assert (other / "docker-compose.yml").read_text() == (project / "docker-compose.yml").read_text()
    assert (other / "pictures" / "applications" / "app-1" / "picture-0.png").read_bytes() == bytes([0]) * 100
    assert not (other / "pictures" / "stale.png").exists()
    assert (other / "acme" / "cert.pem").read_text() == "certificate"
