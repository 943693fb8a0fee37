"""backup_manifest on a real file system: written last, checked file by file, old backups pruned."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from ansible_collections.lorawan.tts.plugins.module_utils.backup_manifest import (
    BackupManifestError,
    newest,
    prune,
    verify,
    write,
)

METADATA = {"stack_version": "3.31.1", "host": "tts-1"}


def make_backup(parent: Path, name: str) -> Path:
    backup = parent / name
    (backup / "postgres").mkdir(parents=True)
    (backup / "postgres" / "ttn_lorawan.dump").write_bytes(b"PGDMP" + bytes(range(256)) * 64)
    (backup / "redis" / "redis-1" / "appendonlydir").mkdir(parents=True)
    (backup / "redis" / "redis-1" / "appendonlydir" / "appendonly.aof.1.base.rdb").write_bytes(b"REDIS0010")
    (backup / "files" / "blob").mkdir(parents=True)
    for number in range(50):
        (backup / "files" / "blob" / f"{number}.png").write_bytes(bytes([number]) * 1000)
    return backup


def seal(backup: Path) -> dict:
    postgres = {"path": str(backup / "postgres" / "ttn_lorawan.dump"), "tables": 12, "sha256": "x", "size": 5}
    redis = {"path": str(backup / "redis" / "redis-1"), "format": "aof-multipart", "key_count": 7}
    return write(str(backup), METADATA, postgres, redis)


def test_write_lists_every_file_and_makes_the_backup_private(tmp_path: Path) -> None:
    backup = make_backup(tmp_path, "20260101T000000Z_3.31.1")
    summary = seal(backup)
    assert summary["files"] == 52
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["postgres"] == {
        "file": "postgres/ttn_lorawan.dump",
        "database": None,
        "tables": 12,
        "sha256": "x",
        "size": 5,
    }
    assert manifest["redis"] == {"path": "redis/redis-1", "format": "aof-multipart", "keys": 7}
    assert "manifest.json" not in manifest["files"]
    assert "files" not in summary["manifest"], "the file list is not returned"
    for path in [backup, *backup.rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    assert verify(str(backup))["files"] == 52


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: (b / "files" / "blob" / "3.png").write_bytes(b"changed"), "size or sha256 differ: files/blob/3.png"),
        (lambda b: (b / "files" / "blob" / "4.png").unlink(), "missing: files/blob/4.png"),
        (lambda b: (b / "files" / "blob" / "extra.png").write_bytes(b"x"), "not in the manifest: files/blob/extra.png"),
        (lambda b: (b / "manifest.json").unlink(), "manifest.json is missing"),
        (lambda b: (b / "manifest.json").write_text("{"), "not JSON"),
    ],
)
def test_verify_names_what_is_wrong(tmp_path: Path, damage, message: str) -> None:
    backup = make_backup(tmp_path, "20260101T000000Z_3.31.1")
    seal(backup)
    damage(backup)
    with pytest.raises(BackupManifestError, match=message.replace("(", r"\(")):
        verify(str(backup))


def test_newest_complete_backup_and_pruning(tmp_path: Path) -> None:
    names = [f"2026010{day}T000000Z_3.31.1" for day in range(1, 6)]
    for name in names:
        seal(make_backup(tmp_path, name))
    make_backup(tmp_path, "20260109T000000Z_3.31.1_to_3.32.0")  # no manifest: incomplete
    assert newest(str(tmp_path)) == str(tmp_path / names[-1])

    removed, kept = prune(str(tmp_path), 3, str(tmp_path / names[0]), check_mode=True)
    assert [Path(path).name for path in kept] == [names[0], names[3], names[4]], "the current one is always kept"
    assert all(Path(path).exists() for path in removed)
    removed, dummy_kept = prune(str(tmp_path), 3, str(tmp_path / names[0]))
    assert sorted(Path(path).name for path in removed) == names[1:3]
    assert not any(Path(path).exists() for path in removed)
    assert (tmp_path / "20260109T000000Z_3.31.1_to_3.32.0").is_dir(), "incomplete backups are not counted"
    assert prune(str(tmp_path), 0, str(tmp_path / names[0])) == ([], [])


def test_write_needs_the_parts(tmp_path: Path) -> None:
    backup = make_backup(tmp_path, "20260101T000000Z_3.31.1")
    with pytest.raises(BackupManifestError, match="postgres option needs the path"):
        write(str(backup), METADATA, {}, {"path": str(backup / "redis")})
