# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which edition of The Things Stack a compose service runs, and the binary that edition ships."""

from __future__ import annotations

import posixpath
import shlex

from ansible_collections.lorawan.tts.plugins.module_utils.compose_file import parse_image

BINARIES = {"ttn-lw-stack": "open-source", "tti-lw-stack": "enterprise"}
REPOSITORIES = {"thethingsnetwork/lorawan-stack": "open-source", "thethingsindustries/lorawan-stack": "enterprise"}


def entrypoint_binary(service_config):
    """The TTS binary (ttn-lw-stack or tti-lw-stack) the service's entrypoint names, with or without a path."""
    entrypoint = service_config.get("entrypoint")
    words = shlex.split(entrypoint) if isinstance(entrypoint, str) else [str(word) for word in entrypoint or []]
    for word in words:
        if posixpath.basename(word) in BINARIES:
            return posixpath.basename(word)
    return None


def stack_edition(service_config):
    """'open-source' or 'enterprise' from the entrypoint's binary, else from the image repository; None if neither."""
    binary = entrypoint_binary(service_config)
    if binary:
        return BINARIES[binary]
    repository = parse_image(service_config.get("image") or "").repository
    for suffix, edition in REPOSITORIES.items():
        if repository == suffix or repository.endswith("/" + suffix):
            return edition
    return None


def stack_binary(service_config, edition):
    """The binary to run in the service: the entrypoint's, else the edition's (None when neither is known)."""
    binary = entrypoint_binary(service_config)
    if binary or not edition:
        return binary
    return next(name for name, named_edition in BINARIES.items() if named_edition == edition)
