"""Streams to and from files through a real AnsibleModule's run_command (plugins/module_utils/compose.py): a command's
stdout goes to a file chunk by chunk, and its standard input comes from a file."""

from __future__ import annotations

import hashlib
import itertools
import os
import sys
from pathlib import Path

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.lorawan.tts.plugins.module_utils.compose import standard_input_from, stream_stdout

# Writes 3 MiB of every byte value to stdout (more than a pipe holds), then a line to stderr.
WRITER = (
    "import sys; block = bytes(range(256)) * 4096; "
    "[sys.stdout.buffer.write(block) for _ in range(3)]; sys.stdout.flush(); sys.stderr.write('done\\n')"
)
WRITTEN = bytes(range(256)) * 4096 * 3


@pytest.fixture
def module() -> AnsibleModule:
    with patch_module_args({}):
        return AnsibleModule(argument_spec={})


def test_stdout_goes_to_the_file_byte_for_byte_and_stderr_is_kept(module: AnsibleModule, tmp_path: Path) -> None:
    dest = tmp_path / "out.bin"
    streamed: dict = {}
    ticks = itertools.count(step=2)  # every reading of the clock is 2 s after the one before
    waits: list[int] = []

    rc, out, err = module.run_command(
        [sys.executable, "-c", WRITER],
        before_communicate_callback=lambda process: streamed.update(
            stream_stdout(process, str(dest), on_wait=lambda: waits.append(1), clock=lambda: next(ticks))
        ),
    )

    assert (rc, out, err) == (0, "", "")
    assert dest.read_bytes() == WRITTEN
    assert streamed == {"stderr": "done\n"}
    assert waits


def test_a_file_that_cannot_be_written_kills_the_command(module: AnsibleModule, tmp_path: Path) -> None:
    streamed: dict = {}
    endless = "import sys\nwhile True: sys.stdout.buffer.write(bytes(65536))"

    rc, dummy_out, dummy_err = module.run_command(
        [sys.executable, "-c", endless],
        before_communicate_callback=lambda process: streamed.update(
            stream_stdout(process, str(tmp_path / "missing" / "out.bin"))
        ),
    )

    assert rc == -9
    assert isinstance(streamed["error"], FileNotFoundError)


def test_a_command_reads_the_file_as_its_standard_input(module: AnsibleModule, tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(WRITTEN)
    digest = "import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())"
    before = os.fstat(0)

    with source.open("rb") as stdin, standard_input_from(stdin):
        rc, out, dummy_err = module.run_command([sys.executable, "-c", digest])

    assert (rc, out.strip()) == (0, hashlib.sha256(WRITTEN).hexdigest())
    assert os.path.samestat(os.fstat(0), before)  # this process' standard input is back
