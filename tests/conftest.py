"""Shared by unit and integration tests: the sandbox's helpers and this checkout as the
collection `ansible_collections.lorawan.tts` are importable."""

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "sandbox"))

_collections = Path(tempfile.mkdtemp(prefix="lorawan-tts-collections-"))
(_collections / "ansible_collections" / "lorawan").mkdir(parents=True)
(_collections / "ansible_collections" / "lorawan" / "tts").symlink_to(ROOT)
sys.path.insert(0, str(_collections))
