# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.lorawan.tts.plugins.plugin_utils.progress_action import ProgressAction


class ActionModule(ProgressAction):
    """lorawan.tts.backup_files, printing its progress while it runs (state=ready, a preflight check, runs at once)."""

    QUICK_STATES = ("ready",)
