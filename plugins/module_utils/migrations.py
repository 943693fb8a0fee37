# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run the `*-db migrate` commands one hop of an upgrade needs, with the hop's image."""

from __future__ import annotations

import json
import re
import shlex
import time
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlparse

from ansible_collections.lorawan.tts.plugins.module_utils.compose import ComposeError, environment_dict, postgres_login
from ansible_collections.lorawan.tts.plugins.module_utils.compose_file import parse_image
from ansible_collections.lorawan.tts.plugins.module_utils.editions import stack_binary, stack_edition
from ansible_collections.lorawan.tts.plugins.module_utils.postgres_backup import PostgresService
from ansible_collections.lorawan.tts.plugins.module_utils.versions import (
    NOC_GENERALLY_AVAILABLE,
    REDIS_SCHEMA_KEYS,
    VersionError,
    migration_plan,
    parse_version,
    redis_schema_keys,
)

UP_TO_DATE = "Database is up to date"
# `is-db status` exists from 3.32.2; it logs one zap line: INFO<TAB>Status fetched<TAB>{"unapplied_migrations": 0, ...}
IS_DB_STATUS_SINCE = (3, 32, 2)
STATUS_FETCHED = re.compile(r"Status fetched\s+(\{.*\})")
OUTPUT_TAIL_LINES = 5
# redis-cli --no-raw prints an MGET reply as `1) "1"` or `2) (nil)` (a single key: without the number).
MGET_ITEM = re.compile(r'^\s*(?:\d+\)\s+)?(?:"(?P<value>[^"]*)"|\(nil\))\s*$')
RUNNER_SECONDS = 3600
# Every schema-version key the Redis components read or record, each component's own key first.
ALL_REDIS_SCHEMA_KEYS = [key for component in REDIS_SCHEMA_KEYS for key in redis_schema_keys(component)]
# Where the stack's environment names the NOC's database (the docs' Enterprise compose file sets both).
NOC_DATABASE_URI_VARIABLES = ("TTN_LW_NOC_STORE_DATABASE_URI", "TTN_LW_IS_DATABASE_URI")
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


def words(value: Any) -> List[str]:
    """A compose entrypoint or command as argv: a string is split as a shell would, a list is taken as is."""
    if not value:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(word) for word in value]


def config_flags(argv: List[str]) -> List[str]:
    """The TTS config file flags (-c FILE, --config FILE, --config=FILE) in argv, in order."""
    flags: List[str] = []
    for index, word in enumerate(argv):
        if word in ("-c", "--config") and index + 1 < len(argv):
            flags += [word, argv[index + 1]]
        elif word.startswith("--config="):
            flags.append(word)
    return flags


def output_summary(text):
    """The command's last lines, without the compose CLI's own progress and warning lines."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not COMPOSE_NOISE.match(line)]
    return " | ".join(lines[-OUTPUT_TAIL_LINES:])


def noc_database(stack_config, postgres_config) -> str:
    """The database the NOC keeps its data in: the one of the stack's NOC (else Identity Server) database URI, else
    the postgres service's own (POSTGRES_DB, which defaults to POSTGRES_USER)."""
    stack_environment = environment_dict(stack_config.get("environment"))
    for name in NOC_DATABASE_URI_VARIABLES:
        database = urlparse(stack_environment.get(name) or "").path.strip("/")
        if database:
            return database
    return postgres_login(environment_dict(postgres_config.get("environment")))[1]


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
        self.postgres_config = services[postgres_service]
        self.edition = detect_edition(self.stack_config) if edition == "auto" else edition
        self._entrypoint: Optional[List[str]] = None
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

    def read_redis_schema_keys(self) -> Dict[str, Optional[str]]:
        """The value of every key of ALL_REDIS_SCHEMA_KEYS (None when missing), with one MGET."""
        dummy_rc, out, dummy_err = self.project.exec_in(
            self.redis_service,
            ["redis-cli", "--no-raw", "MGET", *ALL_REDIS_SCHEMA_KEYS],
            what="reading Redis schema versions",
        )
        values = [MGET_ITEM.match(line) for line in out.splitlines() if line.strip()]
        if len(values) != len(ALL_REDIS_SCHEMA_KEYS) or not all(values):
            raise ComposeError("unexpected answer from redis-cli MGET reading the schema versions: %r" % out[:200])
        # zip(strict=) needs Python 3.10, which a managed host may not have; the lengths were compared above.
        return {key: match.group("value") for key, match in zip(ALL_REDIS_SCHEMA_KEYS, values)}  # noqa: B905

    def redis_schema_versions(self) -> Dict[str, Optional[str]]:
        """Each Redis component's schema version, the value of its key of REDIS_SCHEMA_KEYS (None when missing)."""
        values = self.read_redis_schema_keys()
        return {component: values[key] for component, key in REDIS_SCHEMA_KEYS.items()}

    def plan(self, components: Optional[List[str]] = None, force: bool = False) -> List[List[str]]:
        """The hop's commands; components replaces the plan, force adds --force to its Redis components."""
        plan = migration_plan(
            self.edition,
            self.from_version,
            self.to_version,
            self.redis_schema_versions(),
            noc_set_up=not self.crosses_noc_availability() or self.noc_set_up(),
        )
        if components:
            plan = [argv for argv in plan if argv[0] in components]
            planned = {argv[0] for argv in plan}
            plan += [[name, "migrate"] for name in components if name not in planned]
        if force:
            plan = [[*argv, "--force"] if argv[0] in REDIS_SCHEMA_KEYS and "--force" not in argv else argv
                    for argv in plan]  # fmt: skip
        return plan

    def crosses_noc_availability(self) -> bool:
        """An Enterprise hop from before 3.21.0, where the NOC became generally available, to 3.21.0 or later."""
        return self.edition == "enterprise" and parse_version(
            self.from_version
        ) < NOC_GENERALLY_AVAILABLE <= parse_version(self.to_version)

    def noc_set_up(self) -> bool:
        """Whether the NOC was ever set up: its database has TimescaleDB hypertables, where the NOC keeps its
        metrics. (Inferred: Enterprise is closed source, and its own migration table is not documented.)"""
        postgres = PostgresService(self.project, self.postgres_service)
        database = noc_database(self.stack_config, self.postgres_config)
        what = "looking for the NOC's TimescaleDB hypertables in database %s" % database
        extension = postgres.psql(
            "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'", database=database, what=what
        )
        if extension != "1":
            return False
        hypertables = postgres.psql(
            "SELECT count(*) FROM timescaledb_information.hypertables", database=database, what=what
        )
        return hypertables != "0"

    def check_applied(self) -> Dict[str, Any]:
        """After the start, what the hop's migrations must have left: every Redis schema version current and,
        where `is-db status` exists, no unapplied Identity Server migration. From 3.23 TTS starts with its schema
        behind and its health endpoint answers all the same, so this is the evidence that the migrations ran."""
        versions = self.redis_schema_versions()
        outdated = [
            argv[0]
            for argv in migration_plan(self.edition, self.to_version, self.to_version, versions)
            if argv[0] in REDIS_SCHEMA_KEYS
        ]
        if outdated:
            raise ComposeError(
                "%s runs, but the Redis schema version of %s is missing or below 1 (%s): its migrate did not run, "
                "and TTS starts without it"
                % (
                    self.to_version,
                    ", ".join(outdated),
                    ", ".join("%s=%s" % (REDIS_SCHEMA_KEYS[name], versions.get(name)) for name in outdated),
                )
            )
        checked: Dict[str, Any] = {"redis_schema_versions": versions}
        if parse_version(self.to_version) < IS_DB_STATUS_SINCE:
            return checked
        rc, out, err = self.run_in_service(["is-db", "status"])
        output = "\n".join(part for part in (out, err) if part)
        fetched = STATUS_FETCHED.search(output)
        if rc != 0 or not fetched:
            raise ComposeError(
                "is-db status of %s failed (exit %d): %s" % (self.to_version, rc, output_summary(output)), stderr=err
            )
        status = json.loads(fetched.group(1))
        if status.get("unapplied_migrations"):
            raise ComposeError(
                "%s runs, but is-db status reports %s of its %s Identity Server migrations unapplied"
                % (self.to_version, status.get("unapplied_migrations"), status.get("migrations"))
            )
        checked["is_db_status"] = status
        return checked

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

    def entrypoint(self) -> List[str]:
        """The stack service's entrypoint: the compose file's, else its image's (read once)."""
        if self._entrypoint is None:
            self._entrypoint = words(self.stack_config.get("entrypoint"))
            if not self._entrypoint:
                out = self.project.docker_command(
                    ["image", "inspect", "--format", "{{json .Config.Entrypoint}}", self.stack_config.get("image", "")],
                    what="reading the entrypoint of the stack image",
                )
                self._entrypoint = [str(word) for word in json.loads(out.strip() or "null") or []]
        return self._entrypoint

    def command_prefix(self) -> List[str]:
        """What a command of the plan needs after the entrypoint, since it replaces the service's command: the
        binary when there is no entrypoint (TTS's image has none), and the config file flags of the service's
        command (`entrypoint: ttn-lw-stack`, `command: start all -c /config/ttn-lw-stack.yml`) when the entrypoint
        has none."""
        entrypoint = self.entrypoint()
        prefix = [] if entrypoint else [stack_binary(self.stack_config, self.edition) or "ttn-lw-stack"]
        if not config_flags(entrypoint):
            prefix += config_flags(words(self.stack_config.get("command")))
        return prefix

    def run_in_service(self, argv: List[str]) -> Tuple[int, str, str]:
        """One command of the stack's binary in a one-off container of the service (compose run --rm)."""
        return self.project.run("run", "--rm", "-T", self.service, *self.command_prefix(), *argv, check=False)

    def start_runner(self):
        """A one-off container of the stack service, idle, for running every command of the hop with docker exec.

        One container start instead of one per command. None when the image cannot idle (no sleep).
        """
        rc, out, dummy_err = self.project.run(
            "run", "-d", "--rm", "--no-deps", "-T", "--entrypoint", "sleep", self.service, str(RUNNER_SECONDS),
            check=False,
        )  # fmt: skip
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        return lines[-1] if rc == 0 and lines else None

    def run(self, plan: List[List[str]]) -> Tuple[List[Dict[str, Any]], Optional[Dict[str, Any]]]:
        """Run the plan; the results and the failed one (None when all succeeded).

        A Redis command counts as applied when it changed one of its schema-version keys, any other command when
        it did not say "Database is up to date". Redis is read before and after only for a plan with Redis commands.
        """
        runs_redis_commands = any(argv[0] in REDIS_SCHEMA_KEYS for argv in plan)
        before = self.read_redis_schema_keys() if runs_redis_commands else {}
        results, failed = self.run_commands(plan)
        succeeded_redis_results = [
            result for result in results if result["argv"][0] in REDIS_SCHEMA_KEYS and result["rc"] == 0
        ]
        if succeeded_redis_results:
            after = self.read_redis_schema_keys()
            for result in succeeded_redis_results:
                keys = redis_schema_keys(result["argv"][0])
                result["applied"] = any(after[key] != before[key] for key in keys)
        return results, failed

    def run_commands(self, plan: List[List[str]]) -> Tuple[List[Dict[str, Any]], Optional[Dict[str, Any]]]:
        """Run each command with the compose file's image, entrypoint and environment; stop at the first failure.

        A single command runs in its own `compose run --rm`; several in one idle runner container.
        """
        results: List[Dict[str, Any]] = []
        runner = self.start_runner() if len(plan) > 1 else None
        try:
            command = [*self.entrypoint(), *self.command_prefix()] if runner else []
            for argv in plan:
                if runner:
                    rc, out, err = self.project.module.run_command(
                        [self.project.docker, "exec", runner, *command, *argv]
                    )
                else:
                    rc, out, err = self.run_in_service(argv)
                output = "\n".join(part for part in (out, err) if part)
                result = {"argv": argv, "rc": rc, "summary": output_summary(output), "applied": False}
                results.append(result)
                if rc != 0:
                    return results, result
                result["applied"] = UP_TO_DATE not in output
        finally:
            if runner:
                self.project.module.run_command([self.project.docker, "rm", "--force", runner])
        return results, None
