# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run the `*-db migrate` commands one hop of an upgrade needs, with the hop's image."""

from __future__ import annotations

import re
import time

from ansible_collections.lorawan.tts.plugins.module_utils.compose import ComposeError
from ansible_collections.lorawan.tts.plugins.module_utils.compose_file import parse_image
from ansible_collections.lorawan.tts.plugins.module_utils.editions import stack_edition
from ansible_collections.lorawan.tts.plugins.module_utils.versions import (
    REDIS_SCHEMA_KEYS,
    VersionError,
    migration_plan,
    parse_version,
)

UP_TO_DATE = "Database is up to date"
OUTPUT_TAIL_LINES = 5
COMPOSE_NOISE = re.compile(r"^\s*(Container|Network|Volume|Image) \S+ \w+|^time=\".*level=warning")


def detect_edition(service_config):
    """The edition of the stack service (see editions.stack_edition); raises when neither binary nor image tells."""
    edition = stack_edition(service_config)
    if edition is None:
        raise VersionError(
            "cannot tell the edition of the stack service (image %r): set edition to open-source or enterprise"
            % service_config.get("image")
        )
    return edition


def output_summary(text):
    """The command's last lines, without the compose CLI's own progress and warning lines."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not COMPOSE_NOISE.match(line)]
    return " | ".join(lines[-OUTPUT_TAIL_LINES:])


class StackMigration:
    """One hop: check the compose file's stack image, plan the commands, run them."""

    def __init__(self, project, service, redis_service, postgres_service, edition, from_version, to_version):
        self.project = project
        self.service = service
        self.redis_service = redis_service
        self.postgres_service = postgres_service
        self.from_version = from_version
        self.to_version = to_version
        for version in (from_version, to_version):
            parse_version(version)
        services = project.require_services([service, redis_service, postgres_service])
        self.stack_config = services[service]
        self.edition = detect_edition(self.stack_config) if edition == "auto" else edition
        self.check_image_tag()

    def check_image_tag(self):
        image = self.stack_config.get("image", "")
        tag = parse_image(image).tag
        if tag is None or parse_version(tag) != parse_version(self.to_version):
            raise VersionError(
                "the compose file runs %s for service %s, not %s: set the tag first "
                "(lorawan.tts.compose_image) so that the migrations run with the target image"
                % (image, self.service, self.to_version)
            )

    def redis_schema_present(self):
        present = {}
        for component, key in REDIS_SCHEMA_KEYS.items():
            dummy_rc, out, dummy_err = self.project.exec_in(
                self.redis_service, ["redis-cli", "--raw", "EXISTS", key], what="reading Redis schema versions"
            )
            present[component] = out.strip() == "1"
        return present

    def redis_schema_version(self, component):
        key = REDIS_SCHEMA_KEYS.get(component)
        if key is None:
            return None
        dummy_rc, out, dummy_err = self.project.exec_in(self.redis_service, ["redis-cli", "--raw", "GET", key])
        return out.strip()

    def plan(self, components=None, force=False):
        present = self.redis_schema_present()
        plan = migration_plan(self.edition, self.from_version, self.to_version, present)
        if components:
            plan = [argv for argv in plan if argv[0] in components]
            planned = {argv[0] for argv in plan}
            plan += [[name, "migrate"] for name in components if name not in planned]
        if force:
            plan = [[*argv, "--force"] if argv[0] in REDIS_SCHEMA_KEYS and "--force" not in argv else argv
                    for argv in plan]  # fmt: skip
        return plan

    def wait_for_postgres(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            rc, dummy_out, err = self.project.exec_in(self.postgres_service, ["pg_isready", "--quiet"], check=False)
            if rc == 0:
                return
            if time.monotonic() > deadline:
                raise ComposeError(
                    "Postgres (service %s) did not accept connections within %d s: start it "
                    "(lorawan.tts.compose_service state=started) and check its logs" % (self.postgres_service, timeout),
                    stderr=err,
                )
            time.sleep(1)

    def run(self, plan):
        """Run each command with the compose file's image and entrypoint; stop at the first failure."""
        results = []
        for argv in plan:
            before = self.redis_schema_version(argv[0])
            rc, out, err = self.project.run("run", "--rm", "-T", self.service, *argv, check=False)
            output = "\n".join(part for part in (out, err) if part)
            result = {"argv": argv, "rc": rc, "summary": output_summary(output)}
            if rc != 0:
                result["applied"] = False
                results.append(result)
                return results, result
            if argv[0] in REDIS_SCHEMA_KEYS:
                result["applied"] = self.redis_schema_version(argv[0]) != before
            else:
                result["applied"] = UP_TO_DATE not in output
            results.append(result)
        return results, None
