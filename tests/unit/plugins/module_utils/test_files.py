"""write_record: the upgrade's record, written in one step with the modes the role promises."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from ansible_collections.lorawan.tts.plugins.module_utils import files
from ansible_collections.lorawan.tts.plugins.module_utils.files import write_record


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_creates_the_directories_and_writes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "tts-1" / "20261127T101500Z_upgraded.json"
    assert write_record(str(path), '{"result": "upgraded"}\n') is True
    assert path.read_text() == '{"result": "upgraded"}\n'
    assert mode(path) == 0o640
    assert mode(path.parent) == 0o750
    assert mode(path.parent.parent) == 0o750
    assert [item.name for item in path.parent.iterdir()] == [path.name], "no temporary file is left"


def test_the_same_record_again_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "tts-1" / "record.json"
    write_record(str(path), "one\n")
    assert write_record(str(path), "one\n") is False
    assert write_record(str(path), "two\n") is True
    assert path.read_text() == "two\n"


def test_an_existing_directory_gets_its_mode(tmp_path: Path) -> None:
    directory = tmp_path / "tts-1"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    assert write_record(str(directory / "record.json"), "x") is True
    assert mode(directory) == 0o750


def test_check_mode_predicts_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "tts-1" / "record.json"
    assert write_record(str(path), "x", check_mode=True) is True
    assert not path.parent.exists()
    write_record(str(path), "x")
    assert write_record(str(path), "x", check_mode=True) is False
    assert write_record(str(path), "y", check_mode=True) is True
    assert path.read_text() == "x"


def test_a_file_in_the_way_fails(tmp_path: Path) -> None:
    (tmp_path / "reports").write_text("not a directory")
    with pytest.raises(OSError):
        write_record(str(tmp_path / "reports" / "tts-1" / "record.json"), "x")


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(source: str, destination: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_record(str(tmp_path / "tts-1" / "record.json"), "x")
    assert list((tmp_path / "tts-1").iterdir()) == []
