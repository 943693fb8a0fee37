# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The compose project options every module that drives the compose CLI shares.
    DOCUMENTATION = r"""
options:
  project_src:
    description:
      - The directory of the TTS deployment, the one holding C(docker-compose.yml).
      - Relative paths in the compose files (C(./blob), C(${DEV_DATA_DIR:-.env/data})) are resolved from here.
    type: path
    required: true
  files:
    description:
      - Compose files to use, relative to O(project_src), in order; later files override earlier ones.
      - When omitted, the compose CLI's defaults apply (C(compose.yaml), C(docker-compose.yml) and their
        C(.override) files).
    type: list
    elements: path
  project_name:
    description:
      - The compose project name. When omitted, the compose CLI derives it (from C(COMPOSE_PROJECT_NAME),
        the C(name) key, or the directory's name).
    type: str
  env_files:
    description:
      - Environment files for variable interpolation, relative to O(project_src).
    type: list
    elements: path
notes:
  - Uses C(docker compose) (the Compose v2 plugin) when the Docker CLI has it, otherwise a standalone
    C(docker-compose) of version 2 or later. Compose v1 is refused.
  - Commands run as argument lists, never through a shell, and never with a TTY.
requirements:
  - Python 3.8 or later on the managed host.
  - Docker CLI with the Compose v2 plugin (or a standalone docker-compose of version 2 or later) on the managed host.
"""
