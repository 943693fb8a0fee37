# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The upgrade's downtime in one process: stop, capture, migrate hop by hop, start, verify; and its rollback.

Every Ansible task costs the downtime half a second or more (a module shipped and a Python started), so the
steps that need the stack stopped run here, one after the other, with nothing between them. A failure after
the stop rolls back in the same process: the capture goes back (Postgres from its snapshot or dump, Redis, the
files with the old compose file), the old version starts and must answer. Each step leaves a mark (name, time)
for the role's report.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any, Callable, Dict, List, Optional

from ansible_collections.lorawan.tts.plugins.module_utils.backup_capture import (
    DUMP_FILE,
    REDIS_DIRECTORY,
    capture_for_downtime,
    in_parallel,
)
from ansible_collections.lorawan.tts.plugins.module_utils.backup_files import BackupFilesError
from ansible_collections.lorawan.tts.plugins.module_utils.backup_files import restore as restore_files
from ansible_collections.lorawan.tts.plugins.module_utils.compose import ComposeError, container_state
from ansible_collections.lorawan.tts.plugins.module_utils.compose_file import (
    ComposeFileError,
    TagChange,
    commit,
    compose_files,
    image_with_tag,
    parse_image,
    plan_tag_change,
)
from ansible_collections.lorawan.tts.plugins.module_utils.files import file_sha256
from ansible_collections.lorawan.tts.plugins.module_utils.journal import CutoverJournal, Journal, JournalError
from ansible_collections.lorawan.tts.plugins.module_utils.migrations import StackMigration
from ansible_collections.lorawan.tts.plugins.module_utils.postgres_backup import (
    PostgresService,
    checkpoint,
    plan_snapshot,
    restore_dump,
    restore_snapshot,
)
from ansible_collections.lorawan.tts.plugins.module_utils.redis_persistence import RedisPersistence
from ansible_collections.lorawan.tts.plugins.module_utils.stack_health import StackHealth
from ansible_collections.lorawan.tts.plugins.module_utils.versions import VersionError

UP_STATES = ("running", "restarting")
POSTGRES_READY_SECONDS = 60
KNOWN_ERRORS = (ComposeError, ComposeFileError, VersionError, BackupFilesError, JournalError, OSError)
# What a run that takes over an interrupted one needs to roll it back; never a secret.
RECORDED_PARAMS = (
    "project_src", "files", "project_name", "env_files", "services", "service", "redis_service", "postgres_service",
    "edition", "from_version", "hops", "dest", "snapshot", "blob_dir", "backup_timeout", "health_url",
    "health_timeout",
)  # fmt: skip
# A cutover once begun runs to a known state (upgraded, or rolled back): a controller that is cancelled (SIGTERM,
# SIGINT) or whose connection drops (SIGHUP) does not leave the stack stopped half-way.
SHIELDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def shielded():
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in SHIELDED_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class CutoverError(Exception):
    """A step failed; `phase` names it. The Cutover's result says what was done and undone."""

    def __init__(self, phase: str, message: str) -> None:
        super().__init__(message)
        self.phase = phase


class Cutover:
    """One deployment's switch from one version to another, while its stack is stopped."""

    def __init__(
        self,
        project,
        params: Dict[str, Any],
        check_mode: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.project = project
        self.params = params
        self.check_mode = check_mode
        self.clock = clock
        self.services: List[str] = params["services"]
        self.from_version: str = params["from_version"]
        self.hops: List[str] = params["hops"]
        self.dest = os.path.abspath(params["dest"])
        self.check_unchanged(params.get("unchanged_files") or [])
        # Read (and check) the configuration, and find the databases' containers, now: the downtime has not begun.
        project.require_services(
            [*self.services, params["service"], params["redis_service"], params["postgres_service"]]
        )
        for database in (params["redis_service"], params["postgres_service"]):
            project.running_inspect(database)
        # service -> tag, for the first hop's edit (pin_database_images)
        self.pins: Dict[str, str] = {
            params[part + "_service"]: pin for part, pin in (params.get("pin_database_images") or {}).items()
        }
        if self.pins and params.get("state", "upgraded") == "upgraded" and not check_mode:
            self.tag_running_images()
        # A rollback needs no plan: it must work even when the database is gone.
        self.snapshot_plan = None
        if params["snapshot"] and params.get("state", "upgraded") == "upgraded" and not check_mode:
            postgres = PostgresService(project, params["postgres_service"])
            self.snapshot_plan = plan_snapshot(postgres, params["snapshot"])
            if self.snapshot_plan["strategy"] == "FILE_COPY":
                self.snapshot_plan["checkpointed"] = checkpoint(postgres)
        journal = params.get("journal") or {}
        self.journal = CutoverJournal(Journal(project.project_src) if journal else None, journal.get("run", ""))
        self.journal_record: Dict[str, Any] = journal.get("record") or {}
        self.result: Dict[str, Any] = {
            "changed": False,
            "stopped": False,
            "captured": False,
            "capture": {},
            "migrations": [],
            "marks": [],
            "rolled_back": False,
        }
        if params.get("state", "upgraded") == "upgraded" and not check_mode:
            self.result["images_before"] = self.running_images()
        self.old_images_in_place = False

    @staticmethod
    def check_unchanged(expected: List[Dict[str, str]]) -> None:
        changed = [
            item["path"]
            for item in expected
            if not os.path.isfile(item["path"]) or file_sha256(item["path"]) != item["sha256"]
        ]
        if changed:
            raise ComposeError(
                "%s changed since the preflight read the deployment (by tts_pre_upgrade_tasks, or by hand): nothing "
                "was stopped. The backup holds the files as they were; run the upgrade again to start from the files "
                "as they are now" % ", ".join(changed)
            )

    def mark(self, phase: str) -> None:
        self.result["marks"].append([phase, self.clock()])
        self.journal.note(self.result)

    def step(self, phase: str, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except KNOWN_ERRORS as error:
            raise CutoverError(phase, str(error)) from error
        except Exception as error:  # whatever failed, the rollback must still run
            raise CutoverError(phase, "%s: %s" % (type(error).__name__, error)) from error

    # -- the upgrade ---------------------------------------------------------------------------------------

    def upgrade(self) -> Dict[str, Any]:
        """Stop, capture, migrate each hop, start, verify; on a failure after the stop, roll back (if asked)."""
        if self.check_mode:
            self.result["changed"] = True
            return self.result
        self.journal.begin(cutover={name: self.params.get(name) for name in RECORDED_PARAMS}, **self.journal_record)
        with shielded():
            try:
                return self.run_upgrade()
            finally:
                self.journal.end(self.result)

    def run_upgrade(self) -> Dict[str, Any]:
        try:
            self.mark("stop")
            self.result["stopped"] = self.result["changed"] = True
            self.step("stop", self.stop)
            self.mark("backup")
            self.result["capture"] = self.step("backup", self.capture)
            self.result["captured"] = True
            self.journal.note(self.result)
            for hop_from, hop_to in zip([self.from_version, *self.hops], self.hops):  # noqa: B905 (Python < 3.10)
                self.mark("migrate " + hop_to)
                self.step("migrate " + hop_to, lambda hop_from=hop_from, hop_to=hop_to: self.migrate(hop_from, hop_to))
            self.mark("start")
            self.step("start", self.start)
            self.mark("verify")
            self.result["health"] = self.step("verify", lambda: self.health().wait(self.params["health_timeout"],
                                                                                   expected=self.hops[-1]))  # fmt: skip
            self.mark("serving")
            # The stack serves already: this check is not downtime, but a failure still rolls back.
            self.result["migrations_checked"] = self.step("check migrations", self.check_migrations)
        except CutoverError as error:
            self.result["failed_phase"] = error.phase
            self.result["failure"] = "%s: %s" % (error.phase, error)
            if self.params["rollback"]:
                self.roll_back()
            raise
        return self.result

    def stop(self) -> None:
        self.project.run("stop", *self.services, what="stopping %s" % ", ".join(self.services))

    def capture(self) -> Dict[str, Any]:
        return capture_for_downtime(
            self.project,
            self.dest,
            self.params["snapshot"],
            self.params["blob_dir"],
            self.params["backup_timeout"],
            snapshot_plan=self.snapshot_plan,
        )

    def set_tag(self, tag: str) -> None:
        """The hop's tag on the services; with the first hop, the database images' pins (pin_database_images)."""
        pins = {} if self.result.get("pinned") else self.pins
        change = plan_tag_change(
            compose_files(self.project.project_src, self.project.files, None),
            self.services,
            tag,
            project_dir=self.project.project_src,
            pins=pins,
        )
        if change.changed:
            commit(change)
            self.project.retag_config(self.services, tag)
            for service, pin in pins.items():
                self.project.retag_config([service], pin)
        if pins:
            self.result["pinned"] = {service: change.image[service] for service in pins}
            self.recreate_databases(list(pins))

    def planned_change(self) -> TagChange:
        """The compose files' change from now to the target: its tag, and the database images' pins."""
        return plan_tag_change(
            compose_files(self.project.project_src, self.project.files, None),
            self.services,
            self.hops[-1],
            project_dir=self.project.project_src,
            pins=self.pins,
        )

    def tag_running_images(self) -> None:
        """Check that the edit can pin the images, then give each running database's image its pinned tag: the pin
        names exactly what runs now, and nothing needs pulling during the downtime."""
        self.planned_change()
        for service, pin in self.pins.items():
            running = self.project.running_inspect(service)
            if not running:
                raise ComposeError("%s does not run: its image can't be pinned to what runs" % service)
            image = self.project.services()[service].get("image") or ""
            pinned = image_with_tag(parse_image(image), pin)
            self.project.docker_command(
                ["image", "tag", running["Image"], pinned], what="tagging the image %s runs as %s" % (service, pinned)
            )

    def running_images(self) -> Dict[str, str]:
        """service -> the image ID its running container has, for the stack and the databases."""
        found = {}
        services = [*self.services, self.params["postgres_service"], self.params["redis_service"]]
        for service in dict.fromkeys(services):
            running = self.project.running_inspect(service)
            if running:
                found[service] = running["Image"]
        return found

    def recreate_databases(self, services: List[str]) -> None:
        """Run the pinned databases on their new image names now (compose would recreate them at its next start),
        and wait until they answer."""
        self.project.run("up", "--detach", "--no-deps", *services, what="recreating %s" % ", ".join(services))
        if self.params["postgres_service"] in services:
            PostgresService(self.project, self.params["postgres_service"]).wait_ready(POSTGRES_READY_SECONDS)
        if self.params["redis_service"] in services:
            RedisPersistence(self.project, self.params["redis_service"]).wait_ready()

    def hop_migration(self, hop_from: str, hop_to: str) -> StackMigration:
        return StackMigration(
            self.project,
            self.params["service"],
            self.params["redis_service"],
            self.params["postgres_service"],
            self.params["edition"],
            hop_from,
            hop_to,
        )

    def migrate(self, hop_from: str, hop_to: str) -> None:
        self.set_tag(hop_to)
        migration = self.hop_migration(hop_from, hop_to)
        plan = migration.plan()
        commands, failed = migration.run(plan)
        self.result["migrations"].append(
            {
                "from": hop_from,
                "to": hop_to,
                "commands": [" ".join(command["argv"]) for command in commands],
                "applied": [" ".join(command["argv"]) for command in commands if command["applied"]],
            }
        )
        if failed:
            raise ComposeError(
                "%s failed (exit %d) migrating %s to %s: %s"
                % (" ".join(failed["argv"]), failed["rc"], hop_from, hop_to, failed["summary"])
            )

    def check_migrations(self) -> Dict[str, Any]:
        """What the last hop's migrations must have left (see StackMigration.check_applied)."""
        return self.hop_migration(([self.from_version, *self.hops])[-2], self.hops[-1]).check_applied()

    def start(self) -> None:
        self.project.run("up", "--detach", *self.services, what="starting %s" % ", ".join(self.services))

    def health(self) -> StackHealth:
        return StackHealth(
            self.project, self.params["service"], self.params["health_url"], self.params["health_password"]
        )

    # -- the rollback --------------------------------------------------------------------------------------

    def roll_back_upgraded(self) -> Dict[str, Any]:
        """Roll back an upgrade whose cutover succeeded (a later step failed): the new version runs, dest holds
        the capture."""
        self.result.update(stopped=True, captured=True, changed=True)
        if self.check_mode:
            return self.result
        recorded = self.journal.recorded()
        if recorded:
            # The journal says how far the run got: a run interrupted during the capture has nothing to restore.
            self.result.update(
                captured=bool(recorded.get("captured")),
                capture=recorded.get("capture") or {},
                migrations=recorded.get("migrations") or [],
                images_before=recorded.get("images_before") or {},
            )
        self.journal.begin()
        with shielded():
            try:
                self.roll_back(new_version_started=True)
            finally:
                self.journal.end(self.result)
        if not self.result["rolled_back"]:
            raise CutoverError("rollback", self.result["rollback_failure"])
        return self.result

    def roll_back(self, new_version_started: bool = False) -> None:
        """Bring the old version back, answering; what fails here is in result['rollback_failure']."""
        try:
            if new_version_started or "start" in (phase for phase, dummy_at in self.result["marks"]):
                self.mark("rollback stop")
                self.step("rollback stop", self.stop)
            if self.result["captured"]:
                self.mark("rollback restore")
                self.step("rollback restore", self.restore)
            self.mark("rollback start")
            self.step("rollback start", self.start_as_before)
            self.mark("rollback verify")
            self.result["health"] = self.step(
                "rollback verify", lambda: self.health().wait(self.params["health_timeout"], expected=self.from_version)
            )
            self.mark("serving")
            self.result["rolled_back"] = True
        except CutoverError as error:
            self.result["rollback_failure"] = "%s: %s" % (error.phase, error)

    def start_as_before(self) -> None:
        self.bring_back_images()
        self.start()

    def bring_back_images(self) -> None:
        """Point each image the old compose file names at the image that ran before the upgrade, where it no longer
        is: a moving tag (latest, X.Y, none) names whatever was pulled last, and a pull of postgres:latest or of the
        stack's latest since the deployment started would otherwise bring back another version."""
        images_before = self.result.get("images_before") or {}
        if self.old_images_in_place or not images_before:
            return
        configs = self.project.services()
        for service, image_id in sorted(images_before.items()):
            image = (configs.get(service) or {}).get("image") or ""
            reference = parse_image(image)
            if not image or reference.digest:
                continue
            named = image_with_tag(reference, reference.tag or "latest")
            rc, out, dummy_err = self.project.module.run_command(
                [self.project.docker, "image", "inspect", "--format", "{{.Id}}", named]
            )
            if rc == 0 and out.strip() == image_id:
                continue
            self.project.docker_command(
                ["image", "tag", image_id, named],
                what="tagging the image %s ran before the upgrade as %s" % (service, named),
            )
            self.result.setdefault("images_brought_back", []).append(named)
        self.old_images_in_place = True

    def start_databases(self) -> None:
        """A rollback needs Postgres and Redis: start them when the fault stopped them."""
        databases = [self.params["postgres_service"], self.params["redis_service"]]
        by_service = self.project.containers(databases)
        down = [
            name
            for name in databases
            if not any(container_state(found)["state"] in UP_STATES for found in by_service.get(name) or [])
        ]
        if not down:
            return
        self.project.run("up", "--detach", "--wait", *down, what="starting %s for the rollback" % ", ".join(down))
        if self.params["postgres_service"] in down:
            PostgresService(self.project, self.params["postgres_service"]).wait_ready(POSTGRES_READY_SECONDS)

    def postgres_started_at(self) -> Optional[str]:
        """When the running Postgres container started; None when none runs."""
        service = self.params["postgres_service"]
        for found in self.project.containers([service]).get(service) or []:
            state = found.get("State") or {}
            if state.get("Status") == "running":
                return state.get("StartedAt") or ""
        return None

    def restore(self) -> None:
        """The files first (the old compose file, so that the databases run their old images), then Postgres and
        Redis at once."""
        restore_files(self.dest)
        self.project.forget_config()
        self.bring_back_images()
        self.start_databases()
        pg = PostgresService(self.project, self.params["postgres_service"])
        snapshot: Optional[str] = self.params["snapshot"]
        redis = RedisPersistence(self.project, self.params["redis_service"], timeout=self.params["backup_timeout"])

        def restore_postgres() -> Dict[str, Any]:
            if snapshot:
                return restore_snapshot(pg, snapshot)
            return restore_dump(pg, os.path.join(self.dest, DUMP_FILE))

        started_at = self.postgres_started_at()
        dummy_results, failures = in_parallel(
            {"postgres": restore_postgres, "redis": lambda: redis.restore(self.redis_copy())}
        )
        if "postgres" in failures and self.postgres_started_at() != started_at:
            # The server went away during the restore (killed, out of memory, restarted): start it, wait until it
            # accepts connections, and restore once more. The snapshot or dump is unchanged; what the interrupted
            # attempt set aside is dropped once this one succeeds.
            first = failures.pop("postgres")["msg"]
            self.result["rollback_restore_retried"] = first
            self.mark("rollback restore postgres again")
            try:
                self.start_databases()
                pg.wait_ready(POSTGRES_READY_SECONDS)
                restore_postgres()
            except KNOWN_ERRORS as error:
                failures["postgres"] = {
                    "msg": "%s (the server had gone away during a first attempt, which failed: %s)" % (error, first)
                }
        if failures:
            parts = sorted(failures.items())
            raise ComposeError("; ".join("restoring %s failed: %s" % (name, failure["msg"]) for name, failure in parts))

    def redis_copy(self) -> str:
        """This run's copy of Redis: the capture's, or the only one in dest (a rollback after the cutover)."""
        captured = self.result["capture"].get("redis")
        if captured:
            return captured["path"]
        directory = os.path.join(self.dest, REDIS_DIRECTORY)
        copies = sorted(name for name in os.listdir(directory) if name.startswith("redis-"))
        if len(copies) != 1:
            raise ComposeError(
                "%s holds %d copies of Redis, not one: restore the backup with lorawan.tts.restore instead"
                % (directory, len(copies))
            )
        return os.path.join(directory, copies[0])
