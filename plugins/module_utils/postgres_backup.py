# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Dump and restore the PostgreSQL database of a TTS deployment through its compose service.

Everything runs inside the postgres container with ``docker compose exec -T`` (no TTY, so binary
dumps stay intact), and the dump streams between the container and a file on the host. The
password travels only in the environment: the compose CLI gets ``-e PGPASSWORD`` (a name, no
value) and finds the value in its own environment.
"""

from __future__ import annotations

import datetime
import os
import re
import tempfile
import time

from ansible.module_utils.common.text.converters import to_text
from ansible_collections.lorawan.tts.plugins.module_utils.backup_disk import disk_full, os_error_message, out_of_space
from ansible_collections.lorawan.tts.plugins.module_utils.compose import (
    ComposeError,
    environment_dict,
    postgres_login,
    stderr_tail,
)
from ansible_collections.lorawan.tts.plugins.module_utils.files import ensure_directory, file_sha256
from ansible_collections.lorawan.tts.plugins.module_utils.progress import Progress

POSTGRES_ARGUMENT_SPEC = dict(
    service=dict(type="str", default="postgres"),
    database=dict(type="str", default="ttn_lorawan"),
    user=dict(type="str"),
    password=dict(type="str", no_log=True),
)

DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
MAINTENANCE_DATABASES = ("postgres", "template0", "template1")
IDENTIFIER_MAX = 63
PRE_RESTORE_INFIX = "_pre_restore_"
PRE_RESTORE_STAMP = re.compile(r"\d{8}_\d{6}")  # pre_restore_name's %Y%m%d_%H%M%S
PRE_RESTORE_SUFFIX_LENGTH = len(PRE_RESTORE_INFIX) + len("20260301_120000")
TOC_ENTRY = re.compile(r"^\s*\d+;\s+\d+\s+\d+\s+(?P<rest>.*)$")
DUMPED_FROM = re.compile(r"^;\s+Dumped from database version:\s*(?P<version>\S+)", re.MULTILINE)
TIMESCALEDB_VERSION_ROW = re.compile(r"^timescaledb_version\t(?P<version>[^\t\n]+)\t", re.MULTILINE)
UNSUPPORTED_ARCHIVE = re.compile(r"unsupported version \(([0-9.]+)\) in file header")
RENAME_ATTEMPTS = 50

# Tables the restore created, as pg_dump would list them: ordinary and partitioned tables outside
# the system schemas, without the tables an extension owns (pg_dump lists those as data only).
COUNT_TABLES = (
    "SELECT count(*) FROM pg_tables t"
    " WHERE t.schemaname NOT IN ('pg_catalog', 'information_schema')"
    " AND t.schemaname NOT LIKE 'pg\\_temp\\_%'"
    " AND NOT EXISTS (SELECT 1 FROM pg_depend d"
    " WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e'"
    " AND d.objid = (quote_ident(t.schemaname) || '.' || quote_ident(t.tablename))::regclass)"
)


class PostgresBackupError(ComposeError):
    """A dump or restore step failed; the message says what, where and what to do."""

    changed = False  # True when the failure left the host changed (a restore that could not be rolled back)


def quote_ident(name):
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text):
    return "'" + text.replace("'", "''") + "'"


def check_database_name(name):
    if not DATABASE_NAME.match(name or ""):
        raise PostgresBackupError(
            "database %r is not a plain PostgreSQL identifier: use letters, digits and underscores, "
            "starting with a letter or underscore, at most 63 characters (for TTS: ttn_lorawan)" % (name,)
        )


def pg_error_tail(stderr):
    """The stderr tail without the compose CLI's own warnings (obsolete `version` key and the like)."""
    lines = [
        line
        for line in to_text(stderr or "", errors="surrogate_or_replace").splitlines()
        if "level=warning" not in line
    ]
    return stderr_tail("\n".join(lines)) or stderr_tail(stderr or "")


def major_version(text):
    """'15.18 (Debian ...)' -> (15,); '9.6.24' -> (9, 6): the part of a version that fixes the on-disk format."""
    match = re.match(r"^\s*(\d+)(?:\.(\d+))?", text or "")
    if not match:
        return None
    major = int(match.group(1))
    if major >= 10:
        return (major,)
    return (major, int(match.group(2) or 0))


def major_from_version_num(number):
    """server_version_num (150018, 90624) -> (15,) / (9, 6)."""
    number = int(number)
    if number >= 100000:
        return (number // 10000,)
    return (number // 10000, (number // 100) % 100)


def format_major(major):
    return ".".join(str(part) for part in major) if major else "unknown"


def parse_archive_list(text):
    """Count the entries of `pg_restore --list` output and read its header."""
    tables = 0
    table_data = 0
    entries = 0
    extensions = []
    for line in text.splitlines():
        match = TOC_ENTRY.match(line)
        if not match:
            continue
        entries += 1
        rest = match.group("rest")
        if rest.startswith("EXTENSION - "):
            extensions.append(rest.split()[2])
        elif rest.startswith("TABLE DATA "):
            table_data += 1
        elif rest.startswith("TABLE ") and not rest.startswith("TABLE ATTACH "):
            tables += 1
    dumped_from = DUMPED_FROM.search(text)
    version = dumped_from.group("version") if dumped_from else None
    return {
        "entries": entries,
        "tables": tables,
        "table_data": table_data,
        "extensions": extensions,
        "dumped_from": version,
        "dumped_from_major": major_version(version) if version else None,
    }


def pre_restore_name(database, now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    suffix = PRE_RESTORE_INFIX + now.strftime("%Y%m%d_%H%M%S")
    return database[: IDENTIFIER_MAX - len(suffix)] + suffix


def leftover_names(names, database, keep=()):
    """The databases among `names` that a restore of `database` set aside and never dropped (an interrupted one).

    Only names pre_restore_name makes for this database: ``<database>_pre_restore_YYYYmmdd_HHMMSS``. Never the
    database itself, nor anything in `keep` (a snapshot still in use, this restore's own set-aside copy). A database
    name so long that pre_restore_name cuts it short gives none: another database sharing the cut prefix would
    match too.
    """
    if len(database) > IDENTIFIER_MAX - PRE_RESTORE_SUFFIX_LENGTH:
        return []
    prefix = database + PRE_RESTORE_INFIX
    return sorted(
        name
        for name in names
        if name.startswith(prefix)
        and PRE_RESTORE_STAMP.fullmatch(name[len(prefix) :])
        and name != database
        and name not in keep
    )


def interrupted_restore_advice(database, aside, src=None):
    """What to do when a restore failed and its database could not be put back: restore the backup, first."""
    backup = None
    if src:
        candidate = os.path.dirname(os.path.dirname(src))
        if os.path.isfile(os.path.join(candidate, "manifest.json")):
            backup = candidate
    if backup:
        first = "Restore the backup: run the lorawan.tts.restore role with tts_restore_from=%s" % backup
    else:
        first = (
            "Restore the backup: run the lorawan.tts.restore role with tts_restore_from set to the backup directory "
            "(the one holding manifest.json)"
        )
    if src:
        first += ", or lorawan.tts.postgres_restore with src=%s once PostgreSQL answers again" % src
    if not aside:
        return first + ". Database %s did not exist before: drop it if you do not restore" % database
    return (
        "%s; it replaces database %s and drops %s. Database %s holds what %s was before this restore (in a rollback, "
        "the half-migrated data): do not rename it back, and copy anything you need from it before that restore"
        % (first, database, aside, aside, database)
    )


class PostgresService:
    """The postgres service of a compose project, driven with psql, pg_dump and pg_restore inside it."""

    def __init__(self, project, service="postgres", database="ttn_lorawan", user=None, password=None):
        check_database_name(database)
        self.project = project
        self.service = service
        self.database = database
        services = project.require_services([service])
        environment = environment_dict((services.get(service) or {}).get("environment"))
        self.user = user or postgres_login(environment)[0]
        self.password = password if password is not None else environment.get("POSTGRES_PASSWORD")
        self.env = {"PGPASSWORD": self.password} if self.password else {}

    @classmethod
    def from_params(cls, project, params):
        return cls(project, params["service"], params["database"], params.get("user"), params.get("password"))

    @property
    def where(self):
        return "service %s of %s" % (self.service, self.project.project_src)

    def require_running(self):
        containers = self.project.containers([self.service]).get(self.service) or []
        if not any((container.get("State") or {}).get("Status") == "running" for container in containers):
            raise PostgresBackupError(
                "the %s service of %s is not running: start it (%s up -d %s) and retry"
                % (self.service, self.project.project_src, self.project.command_name, self.service)
            )

    def wait_ready(self, timeout, sleep=time.sleep, clock=time.monotonic):
        """Wait until the server accepts connections (pg_isready), for one that was just started."""
        deadline = clock() + timeout
        while True:
            rc, dummy_out, err = self.project.exec_in(self.service, ["pg_isready", "--quiet"], check=False)
            if rc == 0:
                return
            if clock() > deadline:
                raise PostgresBackupError(
                    "PostgreSQL (%s) did not accept connections within %d s; see %s logs %s"
                    % (self.where, timeout, self.project.command_name, self.service),
                    stderr=err,
                )
            sleep(1)

    def env_names(self):
        return ("PGPASSWORD",) if self.env else ()

    def exec_args(self, argv):
        args = ["exec", "-T"]
        for name in self.env_names():
            args += ["-e", name]
        return [*args, self.service, *argv]

    @staticmethod
    def _failed(error, what):
        """The same failure, its message without the compose CLI's warnings in the stderr tail."""
        return ComposeError(
            "%s failed (exit %s): %s" % (what, error.rc, pg_error_tail(error.stderr)),
            argv=error.argv,
            rc=error.rc,
            stderr=error.stderr,
        )

    def stream(self, argv, stdin_path=None, stdout_path=None, what=None, on_wait=None):
        """Run argv in the container with stdin and/or stdout connected to host files."""
        what = what or "%s in %s" % (argv[0], self.where)
        try:
            return self.project.run_with_files(
                self.exec_args(argv),
                stdin_path=stdin_path,
                stdout_path=stdout_path,
                env=self.env,
                what=what,
                on_wait=on_wait,
            )
        except ComposeError as error:
            raise self._failed(error, what) from error

    def psql(self, sql, database="postgres", what=None):
        """Run one SQL string, or a list of them each as its own command (outside any transaction block)."""
        argv = ["psql", "-X", "-w", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", self.user, "-d", database]
        for command in [sql] if isinstance(sql, str) else sql:
            argv += ["-c", command]
        what = what or "psql in %s" % self.where
        try:
            dummy_rc, out, dummy_err = self.project.exec_in(
                self.service,
                argv,
                env_names=self.env_names(),
                environ_update=self.env,
                what=what,
            )
        except ComposeError as error:
            raise self._failed(error, what) from error
        return to_text(out, errors="surrogate_or_replace").strip()

    def server_facts(self, database=None):
        """Server version, its major and whether the database exists."""
        database = database or self.database
        name = quote_literal(database)
        exists = "EXISTS (SELECT 1 FROM pg_database WHERE datname = %s)" % name  # noqa: S608 a quoted literal
        try:
            out = self.psql(
                "SELECT current_setting('server_version'), current_setting('server_version_num'), " + exists,
                what="connecting to PostgreSQL as %s in %s" % (self.user, self.where),
            )
        except ComposeError as error:
            raise PostgresBackupError(
                "%s. Check that the %s service runs PostgreSQL and that the user and password options are right "
                "(they default to POSTGRES_USER and POSTGRES_PASSWORD in its compose environment)"
                % (error, self.service),
                argv=error.argv,
                rc=error.rc,
                stderr=error.stderr,
            ) from error
        fields = out.splitlines()[-1].split("|") if out else []
        if len(fields) != 3:
            raise PostgresBackupError("unexpected answer from psql in %s: %r" % (self.where, out))
        return {
            "server_version": fields[0].split(" ")[0],
            "server_major": major_from_version_num(fields[1]),
            "exists": fields[2] == "t",
        }

    def inspect_archive(self, path, server_major=None, label=None):
        """Read a dump with pg_restore inside the container: its table of contents, then every byte."""
        label = label or "the dump %s" % path
        try:
            listing = self.stream(
                ["pg_restore", "--list"],
                stdin_path=path,
                what="reading %s with pg_restore --list in %s" % (label, self.where),
            )
            self.stream(
                ["pg_restore", "--file=/dev/null"],
                stdin_path=path,
                what="reading all of %s with pg_restore in %s" % (label, self.where),
            )
        except PostgresBackupError:
            raise
        except ComposeError as error:
            stderr = error.stderr or ""
            if "pg_restore:" not in stderr:
                raise
            unsupported = UNSUPPORTED_ARCHIVE.search(stderr)
            if unsupported:
                raise PostgresBackupError(
                    "the dump was made by a newer PostgreSQL than the server's %s: restore it on a server of "
                    "that major or newer (pg_restore in %s: unsupported archive version %s in %s)"
                    % (format_major(server_major), self.where, unsupported.group(1), path),
                    argv=error.argv,
                    rc=error.rc,
                    stderr=stderr,
                ) from error
            raise PostgresBackupError(
                "%s is truncated or not a pg_dump custom-format file: pg_restore in %s cannot read it (%s). "
                "Use a complete dump made with pg_dump --format=c (lorawan.tts.postgres_dump)"
                % (label, self.where, pg_error_tail(stderr)),
                argv=error.argv,
                rc=error.rc,
                stderr=stderr,
            ) from error
        archive = parse_archive_list(listing)
        if archive["entries"] == 0:
            raise PostgresBackupError(
                "%s has no entries in its table of contents (pg_restore --list in %s): it is not a dump of a "
                "database; use one made with pg_dump --format=c (lorawan.tts.postgres_dump)" % (label, self.where)
            )
        dumped_major = archive["dumped_from_major"]
        if server_major and dumped_major and dumped_major > tuple(server_major):
            raise PostgresBackupError(
                "the dump was made by a newer PostgreSQL than the server's %s: restore it on a server of that "
                "major or newer (%s was dumped from PostgreSQL %s; the server in %s runs %s)"
                % (
                    format_major(server_major),
                    path,
                    archive["dumped_from"],
                    self.where,
                    format_major(server_major),
                )
            )
        return archive

    def terminate_and_rename(self, old, new):
        """Close every connection to `old` and rename it; clients that reconnect in between are closed again."""
        sql = (
            "DO $lorawan_tts$ DECLARE attempt integer := 0; BEGIN LOOP "
            "PERFORM pg_stat_clear_snapshot(); "
            "PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %(old)s "
            "AND pid <> pg_backend_pid(); "
            "BEGIN EXECUTE format('ALTER DATABASE %%I RENAME TO %%I', %(old)s, %(new)s); RETURN; "
            "EXCEPTION WHEN object_in_use THEN attempt := attempt + 1; "
            "IF attempt >= %(attempts)d THEN RAISE; END IF; PERFORM pg_sleep(0.1); END; "
            "END LOOP; END $lorawan_tts$"
        ) % {"old": quote_literal(old), "new": quote_literal(new), "attempts": RENAME_ATTEMPTS}
        try:
            self.psql(sql, what="renaming database %s to %s in %s" % (old, new, self.where))
        except ComposeError as error:
            raise PostgresBackupError(
                "%s. Stop the services that keep connecting to database %s (the stack) and retry" % (error, old),
                argv=error.argv,
                rc=error.rc,
                stderr=error.stderr,
            ) from error

    def terminate(self, database):
        sessions = "pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()" % quote_literal(database)
        self.psql(
            "SELECT count(pg_terminate_backend(pid)) FROM " + sessions,  # noqa: S608 a quoted literal
            what="closing the connections to database %s in %s" % (database, self.where),
        )

    def drop_leftovers(self, keep=()):
        """Drop the set-aside databases of earlier, interrupted restores (leftover_names); once a restore succeeded.

        Returns (the names dropped, warnings): a leftover that cannot be dropped is a warning, not a failure.
        """
        try:
            out = self.psql("SELECT datname FROM pg_database", what="listing the databases in %s" % self.where)
        except ComposeError as error:
            return [], [
                "the restore succeeded, but listing the databases for leftovers of earlier restores failed (%s)" % error
            ]
        dropped, warnings = [], []
        for name in leftover_names(out.splitlines(), self.database, keep):
            try:
                self.terminate(name)
                self.psql(
                    "DROP DATABASE IF EXISTS %s" % quote_ident(name),
                    what="dropping %s, left by an earlier, interrupted restore, in %s" % (name, self.where),
                )
            except ComposeError as error:
                warnings.append(
                    "the restore succeeded, but %s, left by an earlier, interrupted restore, is still there (%s): "
                    "drop it" % (name, error)
                )
                continue
            dropped.append(name)
        return dropped, warnings

    def check_timescaledb_version(self, path):
        """A TimescaleDB dump restores only into the TimescaleDB version it was dumped from: compare the version the
        dump records (_timescaledb_catalog.metadata) with the one this server installs."""
        metadata = self.stream(
            ["pg_restore", "--file=-", "--data-only", "--schema=_timescaledb_catalog", "--table=metadata"],
            stdin_path=path,
            what="reading the TimescaleDB version of %s in %s" % (path, self.where),
        )
        dumped = TIMESCALEDB_VERSION_ROW.search(metadata)
        available = self.psql(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'",
            what="reading the TimescaleDB version of the server in %s" % self.where,
        ).strip()
        if dumped and dumped.group("version") != available:
            raise PostgresBackupError(
                "%s was dumped from TimescaleDB %s, and the server in %s has %s: a TimescaleDB dump restores only "
                "into the same version. Run the Postgres image the backup was made with (the backup keeps its "
                "compose file), then restore"
                % (path, dumped.group("version"), self.where, available or "no TimescaleDB")
            )

    def count_tables(self, database):
        out = self.psql(
            COUNT_TABLES, database=database, what="counting the tables of %s in %s" % (database, self.where)
        )
        try:
            return int(out.splitlines()[-1])
        except (IndexError, ValueError):
            raise PostgresBackupError(
                "unexpected answer from psql counting the tables of %s in %s: %r" % (database, self.where, out)
            ) from None


def run_dump(module, project):
    """Dump the database to params['dest'] (custom format, verified, 0600, atomic); return the module result."""
    params = module.params
    pg = PostgresService.from_params(project, params)
    progress = Progress(params.get("progress_file"))
    try:
        return dump_database(pg, params["dest"], params.get("compress"), module.check_mode, progress)
    finally:
        progress.close()


def dump_database(pg, dest, compress=None, check_mode=False, progress=None):
    """Dump pg's database to dest (custom format, verified, 0600, atomic); return the result."""
    dest = os.path.abspath(dest)
    if os.path.isdir(dest):
        raise PostgresBackupError(
            "dest %s is a directory: give the path of the dump file, such as %s"
            % (dest, os.path.join(dest, "%s.dump" % pg.database))
        )
    progress = progress or Progress(None)
    progress.step("connecting to PostgreSQL for the pg_dump of %s" % pg.database)
    pg.require_running()
    facts = pg.server_facts()
    if not facts["exists"]:
        raise PostgresBackupError(
            "database %s does not exist in %s: check the database option (TTS uses ttn_lorawan)"
            % (pg.database, pg.where)
        )
    result = dict(changed=True, path=dest, database=pg.database, server_version=facts["server_version"])
    if check_mode:
        return result

    directory = os.path.dirname(dest)
    doing = "the pg_dump of database %s in %s to %s" % (pg.database, pg.where, dest)
    try:
        ensure_directory(directory)
        fd, temp_path = tempfile.mkstemp(prefix=".%s." % os.path.basename(dest), suffix=".part", dir=directory)
    except OSError as error:
        raise PostgresBackupError(os_error_message(doing, error, directory, writing=True)) from error
    os.close(fd)
    try:
        argv = ["pg_dump", "-w", "-U", pg.user, "--format=c"]
        if compress is not None:
            argv += ["-Z", str(compress)]
        argv += ["-d", pg.database]
        progress.step("pg_dump of %s" % pg.database)
        try:
            pg.stream(
                argv,
                stdout_path=temp_path,
                what="pg_dump of database %s in %s" % (pg.database, pg.where),
                on_wait=lambda: progress.update(bytes=os.path.getsize(temp_path)),
            )
        except ComposeError as error:
            if out_of_space(error.stderr):
                raise disk_full(temp_path) from error
            raise PostgresBackupError(
                "pg_dump of database %s in %s failed (exit %s): %s; %s was left untouched"
                % (pg.database, pg.where, error.rc, pg_error_tail(error.stderr), dest),
                argv=error.argv,
                rc=error.rc,
                stderr=error.stderr,
            ) from error
        progress.step("verifying the dump with pg_restore", total_bytes=os.path.getsize(temp_path))
        archive = pg.inspect_archive(temp_path, label="the dump pg_dump just wrote (%s)" % temp_path)
        size = os.path.getsize(temp_path)
        checksum = file_sha256(temp_path)
        os.chmod(temp_path, 0o600)
        os.rename(temp_path, dest)
    except BaseException as error:
        if os.path.exists(temp_path):
            os.unlink(temp_path)
        if isinstance(error, OSError):
            raise PostgresBackupError(
                "%s; %s was left untouched" % (os_error_message(doing, error, directory), dest)
            ) from error
        raise
    result.update(size=size, sha256=checksum, tables=archive["table_data"])
    return result


def run_restore(module, project):
    """Replace the database with the dump params['src']; on failure put the previous database back."""
    params = module.params
    check_database_name(params["database"])
    return restore_dump(PostgresService.from_params(project, params), params["src"], module.check_mode, module.warn)


def restore_dump(pg, src, check_mode=False, warn=None):
    """Replace pg's database with the dump src (pg_restore); on failure put the previous database back."""
    src = os.path.abspath(src)
    if pg.database in MAINTENANCE_DATABASES:
        raise PostgresBackupError(
            "refusing to restore over the maintenance database %s: give the application database "
            "(TTS uses ttn_lorawan)" % pg.database
        )
    if not os.path.isfile(src):
        raise PostgresBackupError(
            "src %s does not exist or is not a file: give the path of a dump made by lorawan.tts.postgres_dump "
            "(pg_dump --format=c) on this host" % src
        )
    pg.require_running()
    facts = pg.server_facts()
    archive = pg.inspect_archive(src, server_major=facts["server_major"])
    timescaledb = "timescaledb" in archive["extensions"]
    if timescaledb:
        pg.check_timescaledb_version(src)
    database = pg.database
    result = dict(
        changed=True,
        restored_from=src,
        database=database,
        tables=archive["tables"],
        server_version=facts["server_version"],
        dump_server_version=archive["dumped_from"],
    )
    if check_mode:
        return result

    previous = pre_restore_name(database) if facts["exists"] else None
    if previous:
        if pg.server_facts(previous)["exists"]:
            raise PostgresBackupError(
                "database %s already exists in %s: a restore in the same second left it, or an earlier one "
                "failed; look at it, drop or rename it, and retry" % (previous, pg.where)
            )
        pg.terminate_and_rename(database, previous)
    try:
        pg.psql(
            "CREATE DATABASE %s OWNER %s" % (quote_ident(database), quote_ident(pg.user)),
            what="creating database %s in %s" % (database, pg.where),
        )
        if timescaledb:
            # TimescaleDB's restore procedure: its catalog is restored with the extension in restoring mode (and
            # its background workers stopped), never with pg_restore --jobs.
            pg.psql(
                ["CREATE EXTENSION IF NOT EXISTS timescaledb", "SELECT timescaledb_pre_restore()"],
                database=database,
                what="preparing database %s for a TimescaleDB restore in %s" % (database, pg.where),
            )
        pg.stream(
            ["pg_restore", "-w", "-U", pg.user, "-d", database, "--exit-on-error"],
            stdin_path=src,
            what="pg_restore of %s into database %s in %s" % (src, database, pg.where),
        )
        if timescaledb:
            pg.psql(
                "SELECT timescaledb_post_restore()",
                database=database,
                what="ending the TimescaleDB restore of database %s in %s" % (database, pg.where),
            )
        restored = pg.count_tables(database)
        if restored != archive["tables"]:
            raise PostgresBackupError(
                "the restored database %s in %s has %d tables, the dump %s has %d"
                % (database, pg.where, restored, src, archive["tables"])
            )
    except ComposeError as error:
        rollback_failure = roll_back(pg, database, previous)
        if rollback_failure:
            failure = PostgresBackupError(
                "restoring %s failed: %s. Putting the previous database back failed too: %s. %s"
                % (src, error, rollback_failure, interrupted_restore_advice(database, previous, src)),
                argv=error.argv,
                rc=error.rc,
                stderr=error.stderr,
            )
            failure.changed = True
            raise failure from error
        raise PostgresBackupError(
            "restoring %s failed: %s. The database was returned to its previous state%s; fix the cause and retry"
            % (src, error, "" if previous else " (it did not exist, and does not now)"),
            argv=error.argv,
            rc=error.rc,
            stderr=error.stderr,
        ) from error
    result["tables"] = restored
    if previous:
        try:
            pg.psql(
                "DROP DATABASE %s" % quote_ident(previous),
                what="dropping the previous database %s in %s" % (previous, pg.where),
            )
        except ComposeError as error:
            if warn:
                warn(
                    "the restore succeeded, but the previous database is still there as %s (%s): drop it when "
                    "you no longer need it" % (previous, error)
                )
            result["previous_database"] = previous
    dropped, warnings = pg.drop_leftovers(keep=(previous,) if previous else ())
    result["dropped_leftovers"] = dropped
    for message in warnings:
        if warn:
            warn(message)
        else:
            result.setdefault("warnings", []).append(message)
    return result


def roll_back(pg, database, previous):
    """Drop the half-restored database and rename the previous one back; return what failed, or None."""
    try:
        pg.terminate(database)
        pg.psql(
            "DROP DATABASE IF EXISTS %s" % quote_ident(database),
            what="dropping the half-restored database %s in %s" % (database, pg.where),
        )
        if previous:
            pg.terminate_and_rename(previous, database)
    except ComposeError as error:
        return str(error)
    return None


SNAPSHOT_INFIX = "_snapshot_"
FILE_COPY_FROM_MAJOR = (15,)


SNAPSHOT_ATTEMPTS = 3
SNAPSHOT_RETRY_SECONDS = 0.5
ACCESSED_BY_OTHERS = "being accessed by other users"


def snapshot_name(database, stamp):
    """ttn_lorawan + 20260314T021500Z -> ttn_lorawan_snapshot_20260314t021500z (an unquoted-safe identifier)."""
    suffix = SNAPSHOT_INFIX + stamp.lower()
    name = database[: IDENTIFIER_MAX - len(suffix)] + suffix
    check_database_name(name)
    return name


def database_size(pg, name):
    out = pg.psql(
        "SELECT pg_database_size(%s)" % quote_literal(name),
        what="measuring database %s in %s" % (name, pg.where),
    )
    return int(out.splitlines()[-1])


def plan_snapshot(pg, name):
    """What create_snapshot will do: one psql call that checks the database and reads the server's version.

    Nothing changes; it can run before the stack stops, so that only the copy itself is in the downtime.
    """
    check_database_name(name)
    exists = "EXISTS (SELECT 1 FROM pg_database WHERE datname = %s)"
    query = "SELECT current_setting('server_version_num'), %s, %s" % (
        exists % quote_literal(pg.database),
        exists % quote_literal(name),
    )
    fields = (
        pg.psql(query, what="connecting to PostgreSQL as %s in %s" % (pg.user, pg.where)).splitlines()[-1].split("|")
    )
    if fields[1] != "t":
        raise PostgresBackupError(
            "database %s does not exist in %s: check the database option (TTS uses ttn_lorawan)"
            % (pg.database, pg.where)
        )
    # FILE_COPY writes no WAL for the copy (WAL_LOG, 15's default, writes the whole database to the WAL).
    strategy = "FILE_COPY" if major_from_version_num(fields[0]) >= FILE_COPY_FROM_MAJOR else ""
    return {"snapshot": name, "exists": fields[2] == "t", "strategy": strategy}


def checkpoint(pg):
    """Flush the server's dirty pages now, before the stack stops: a FILE_COPY snapshot starts with a checkpoint of
    its own, which then has little left to write in the downtime. Best effort (CHECKPOINT needs a superuser, or
    pg_checkpoint from Postgres 15): whether it ran."""
    try:
        pg.psql("CHECKPOINT", what="CHECKPOINT in %s" % pg.where)
    except ComposeError:
        return False
    return True


def copy_database(pg, commands, what):
    """psql commands that close the template's sessions, then copy it (CREATE DATABASE ... TEMPLATE). A session can
    connect between the two: TimescaleDB's launcher starts its scheduler again in a database with the extension.
    Such a race is tried again; a stack that still runs is not, and raises the ComposeError."""
    for _attempt in range(1, SNAPSHOT_ATTEMPTS):
        try:
            return pg.psql(commands, what=what)
        except ComposeError as error:
            if ACCESSED_BY_OTHERS not in (error.stderr or ""):
                raise
        time.sleep(SNAPSHOT_RETRY_SECONDS)
    return pg.psql(commands, what=what)


def create_snapshot(pg, name, check_mode=False, plan=None):
    """Copy the database, inside the same server, into `name`: a file copy, seconds even for gigabytes.

    The copy needs no session on the source, which holds while the stack is stopped. Two psql calls in all, one
    when the plan (plan_snapshot) was made before.
    """
    plan = plan or plan_snapshot(pg, name)
    if plan["exists"]:
        return dict(changed=False, snapshot=name, database=pg.database, size=database_size(pg, name))
    strategy = plan["strategy"]
    result = dict(changed=True, snapshot=name, database=pg.database, strategy=strategy)
    if check_mode:
        return result
    sessions = "pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()" % quote_literal(pg.database)
    commands = [
        "SELECT count(pg_terminate_backend(pid)) FROM " + sessions,  # noqa: S608 a quoted literal
        "CREATE DATABASE %s TEMPLATE %s%s"
        % (quote_ident(name), quote_ident(pg.database), " STRATEGY " + strategy if strategy else ""),
        "SELECT pg_database_size(%s)" % quote_literal(name),
    ]
    try:
        out = copy_database(pg, commands, "copying database %s to %s in %s" % (pg.database, name, pg.where))
    except ComposeError as error:
        hint = (
            "stop the services that connect to it (the stack) and retry"
            if ACCESSED_BY_OTHERS in (error.stderr or "")
            else "free space in the Postgres data volume (the copy is as large as the database) and retry"
        )
        raise PostgresBackupError(
            "%s; %s" % (error, hint), argv=error.argv, rc=error.rc, stderr=error.stderr
        ) from error
    result["size"] = int(out.splitlines()[-1])
    return result


def drop_snapshot(pg, name, check_mode=False):
    check_database_name(name)
    pg.require_running()
    if not pg.server_facts(name)["exists"]:
        return dict(changed=False, snapshot=name)
    if not check_mode:
        # One psql call: its sessions closed, then the drop (each command on its own, outside a transaction).
        sessions = "pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()" % quote_literal(name)
        pg.psql(
            [
                "SELECT count(pg_terminate_backend(pid)) FROM " + sessions,  # noqa: S608 a quoted literal
                "DROP DATABASE %s" % quote_ident(name),
            ],
            what="dropping database %s in %s" % (name, pg.where),
        )
    return dict(changed=True, snapshot=name)


def restore_snapshot(pg, name, check_mode=False):
    """Make the database a copy of the snapshot again: the current one goes aside, a file copy takes its place.

    The snapshot stays (drop it with drop_snapshot once it was dumped); the aside copy is dropped at the end.
    """
    check_database_name(name)
    exists = "EXISTS (SELECT 1 FROM pg_database WHERE datname = %s)"
    query = "SELECT current_setting('server_version_num'), %s, %s" % (
        exists % quote_literal(pg.database),
        exists % quote_literal(name),
    )
    fields = pg.psql(query, what="connecting to PostgreSQL as %s in %s" % (pg.user, pg.where)).splitlines()[-1]
    version_num, database_exists, snapshot_exists = fields.split("|")
    if snapshot_exists != "t":
        raise PostgresBackupError(
            "database %s (the snapshot) does not exist in %s: restore the backup's dump with "
            "lorawan.tts.postgres_restore instead" % (name, pg.where)
        )
    result = dict(changed=True, snapshot=name, database=pg.database)
    if check_mode:
        return result
    aside = pre_restore_name(pg.database) if database_exists == "t" else None
    if aside:
        pg.terminate_and_rename(pg.database, aside)
    strategy = " STRATEGY FILE_COPY" if major_from_version_num(version_num) >= FILE_COPY_FROM_MAJOR else ""
    sessions = "pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()" % quote_literal(name)
    try:
        copy_database(
            pg,
            [
                "SELECT count(pg_terminate_backend(pid)) FROM " + sessions,  # noqa: S608 a quoted literal
                "CREATE DATABASE %s TEMPLATE %s%s" % (quote_ident(pg.database), quote_ident(name), strategy),
            ],
            "copying snapshot %s back to %s in %s" % (name, pg.database, pg.where),
        )
    except ComposeError as error:
        failure = roll_back(pg, pg.database, aside)
        disk_full = "No space left on device" in (error.stderr or "")
        raise PostgresBackupError(
            "copying snapshot %s back as %s failed: %s. %s%s"
            % (
                name,
                pg.database,
                error,
                "Moving the previous database back failed too (%s). %s"
                % (failure, interrupted_restore_advice(pg.database, aside))
                if failure
                else "Database %s is as it was; the snapshot is unchanged" % pg.database,
                ". Free space in the Postgres data volume: the copy is as large as the snapshot (%s), and the "
                "database it replaces stays until the copy is done" % name
                if disk_full and not failure
                else "",
            ),
            argv=error.argv,
            rc=error.rc,
            stderr=error.stderr,
        ) from error
    if aside:
        try:
            pg.psql("DROP DATABASE %s" % quote_ident(aside), what="dropping %s in %s" % (aside, pg.where))
        except ComposeError as error:
            result["warnings"] = [
                "the snapshot is back as %s, but the replaced database is still there as %s (%s): drop it"
                % (pg.database, aside, error)
            ]
    dropped, warnings = pg.drop_leftovers(keep=(name,) + ((aside,) if aside else ()))
    result["dropped_leftovers"] = dropped
    if warnings:
        result["warnings"] = result.get("warnings", []) + warnings
    return result
