# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The options of REDIS_ARGUMENT_SPEC that redis_backup and redis_restore describe alike; timeout waits for
    # different steps in each module, so each module documents it.
    DOCUMENTATION = r"""
options:
  service:
    description: The Redis service in the compose project.
    type: str
    default: redis
"""
