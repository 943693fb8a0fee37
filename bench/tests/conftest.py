"""bench/tests: unit tests of the benchmark's parsing and arithmetic (no Docker, nothing timed)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
