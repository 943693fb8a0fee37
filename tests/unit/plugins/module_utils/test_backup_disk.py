"""The backup's disk: the preflight's probe, and the messages OS errors become."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from ansible_collections.lorawan.tts.plugins.module_utils import backup_disk
from ansible_collections.lorawan.tts.plugins.module_utils.backup_disk import (
    BackupDiskError,
    check_backup_dir,
    needed_bytes,
    os_error_message,
    out_of_space,
    writing_to,
)
from ansible_collections.lorawan.tts.plugins.module_utils.backup_files import (
    BackupFilesError,
    capture,
    project_roots,
)

MiB = 1024 * 1024


def os_error(number: int, path: str | None = None) -> OSError:
    return OSError(number, os.strerror(number), path) if path else OSError(number, os.strerror(number))


def test_a_full_disk_names_the_error_the_path_and_the_variable():
    message = os_error_message("copying X", os_error(errno.ENOSPC, "/b/tts-1/run/files/a.part"), "/b/tts-1/run")
    assert message == (
        "copying X failed: No space left on device writing /b/tts-1/run/files/a.part; free space under "
        "tts_backup_dir or set tts_backup_dir to a file system with room"
    )


@pytest.mark.parametrize(
    ("number", "advice"),
    [
        (errno.EROFS, "the file system is read-only: set tts_backup_dir to a writable place"),
        (errno.EACCES, "may not write there: fix the owner or mode, or set tts_backup_dir"),
        (errno.EDQUOT, "free space under tts_backup_dir"),
        (errno.EIO, "check the file system (dmesg), or set tts_backup_dir elsewhere"),
    ],
)
def test_each_os_error_says_what_to_do(number, advice):
    message = os_error_message("writing Y", os_error(number, "/b/run/x"), "/b/run")
    assert f"{os.strerror(number)} writing /b/run/x; " in message
    assert advice in message


def test_an_error_reading_outside_the_backup_is_a_read():
    message = os_error_message("copying Z", os_error(errno.EACCES, "/srv/tts/config/key.pem"), "/b/run")
    assert "Permission denied reading /srv/tts/config/key.pem" in message
    assert "can read it" in message


def test_an_error_without_a_path_names_the_backup():
    message = os_error_message("copying Z", os_error(errno.ENOSPC), "/b/run")
    assert "No space left on device under /b/run;" in message


def test_writing_to_names_the_file_a_write_failed_on():
    with pytest.raises(OSError) as raised, writing_to("/b/run/f.part"):
        raise os_error(errno.ENOSPC)
    assert raised.value.filename == "/b/run/f.part"
    assert raised.value.errno == errno.ENOSPC
    with pytest.raises(OSError) as raised, writing_to("/b/run/f.part"):
        raise os_error(errno.EROFS, "/b/other")
    assert raised.value.filename == "/b/other"


def test_out_of_space_reads_commands_output():
    assert out_of_space("Error response from daemon: write /x: no space left on device")
    assert out_of_space("cp: error writing 'x': Disk quota exceeded")
    assert not out_of_space("permission denied")
    assert not out_of_space(None)


def test_needed_bytes_is_one_and_a_half_times_the_sizes_plus_100_mib():
    assert needed_bytes({"postgres": 100 * MiB, "redis": None, "blob": "0"}) == 250 * MiB
    assert needed_bytes(None) == 100 * MiB


def test_check_creates_the_parent_and_leaves_no_probe(tmp_path: Path):
    run = tmp_path / "backups" / "tts-1" / "20260101T000000Z_3.31.1"
    result = check_backup_dir(str(run), {"postgres": 1})
    assert result["created"] == [str(tmp_path / "backups" / "tts-1"), str(tmp_path / "backups")]
    assert list((tmp_path / "backups" / "tts-1").iterdir()) == []
    assert not run.exists()
    assert check_backup_dir(str(run), {})["created"] == []


def test_check_mode_creates_nothing(tmp_path: Path):
    result = check_backup_dir(str(tmp_path / "backups" / "tts-1" / "run"), {}, check_mode=True)
    assert result["created"] == []
    assert not (tmp_path / "backups").exists()


def test_an_unwritable_directory_fails_and_what_was_created_is_removed(tmp_path: Path, monkeypatch):
    def probe(directory):
        raise os_error(errno.EROFS, f"{directory}/.probe")

    monkeypatch.setattr(backup_disk, "write_probe", probe)
    with pytest.raises(BackupDiskError) as raised:
        check_backup_dir(str(tmp_path / "backups" / "tts-1" / "run"), {})
    message = str(raised.value)
    assert f"Read-only file system writing {tmp_path}/backups/tts-1/.probe" in message
    assert "tts_backup_dir" in message and message.endswith("Nothing was changed.")
    assert not (tmp_path / "backups").exists()


def test_a_disk_without_room_fails_with_the_sizes(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(backup_disk, "free_bytes", lambda path: 50 * MiB)
    with pytest.raises(BackupDiskError) as raised:
        check_backup_dir(str(tmp_path / "b" / "tts-1" / "run"), {"postgres": 20 * MiB, "redis": 0, "blob": None})
    assert str(raised.value) == (
        f"{tmp_path}/b/tts-1 has 50.0 MiB free; the backup (postgres 20.0 MiB, redis 0 B, blob 0 B) needs "
        "130.0 MiB with margin. Free space under tts_backup_dir or set tts_backup_dir to a file system with room. "
        "Nothing was changed."
    )
    assert not (tmp_path / "b").exists()


def test_a_full_disk_while_copying_files_is_a_message(tmp_path: Path, monkeypatch):
    project = tmp_path / "srv"
    (project / "config").mkdir(parents=True)
    (project / "config" / "big").write_bytes(b"x" * 10)
    (project / "docker-compose.yml").write_text("services: {}\n")

    def full(reader, writer, length=0):
        raise os_error(errno.ENOSPC)

    monkeypatch.setattr(shutil, "copyfileobj", full)
    backup = tmp_path / "b" / "run"
    with pytest.raises(BackupFilesError) as raised:
        capture(str(backup), project_roots(str(project), None, None))
    message = str(raised.value)
    assert message.startswith(f"copying the deployment's files into {backup} failed: No space left on device writing")
    assert f"{backup}/files/" in message and ".part;" in message
    assert "free space under tts_backup_dir" in message
    assert raised.value.changed
