# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The options of POSTGRES_ARGUMENT_SPEC that postgres_dump and postgres_restore describe alike; database and
    # user say different things in each module, so each module documents those.
    DOCUMENTATION = r"""
options:
  service:
    description:
      - The compose service that runs PostgreSQL. It must be running.
    type: str
    default: postgres
  password:
    description:
      - The role's password, given to the tools in the container as C(PGPASSWORD) through the environment only.
      - Defaults to C(POSTGRES_PASSWORD) in the service's compose environment. Connections over the container's
        local socket usually need none.
    type: str
"""
