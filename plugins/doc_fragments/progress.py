# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The progress option of the modules whose work can take minutes (keep in sync with module_utils/progress.py).
    DOCUMENTATION = r"""
options:
  progress_file:
    description:
      - A file on the managed host where the module writes, about once a second, how far it has come (step,
        files, bytes, totals, elapsed seconds), and which it removes at the end.
      - The collection's action plugin for this module sets it. While the module runs, it prints that progress
        every C(tts_progress_interval) seconds (a variable; default 10), instead of showing nothing for minutes. Set it
        yourself only to watch the file.
    type: path
  expected_bytes:
    description:
      - About how many bytes the module reads, from what the caller already knows (the role passes the sizes that
        M(lorawan.tts.stack_info) reported).
      - The action plugin runs the module in the foreground, without progress lines, when this much would take less
        than one C(tts_progress_interval) at 50 MiB per second; otherwise, or without it, in the background with
        progress lines. The module itself does not use it.
    type: int
"""
