"""Stand-in for The Things Stack's command line, for the lorawan.tts sandbox.

Installed in the sandbox's stack images as ``ttn-lw-stack`` (Open Source) or
``tti-lw-stack`` (Enterprise). It reproduces the behaviour an upgrade tool
depends on (see shared/tts-facts.md): ``version`` output, ``is-db migrate``
with versioned schema changes tracked in ``bun_migrations`` and the 3.19.2
gate, the Redis schema-version keys of ``ns-db``/``as-db``/``js-db`` (version 1,
``ns-db migrate`` of 3.25 and later needs ``--force`` on a Redis that never had
its key), the Enterprise ``noc-db``/``storage-db``/``dcs-db`` commands (``noc-db
init`` sets the NOC up, from 3.19.2; from 3.21.0 its ``migrate`` and ``start``
refuse a database where it never was: inferred, Enterprise is closed source), and
``start`` serving the health endpoints of its version on 1885 (``/healthz`` from
3.24.0, ``/healthz/live`` and ``/healthz/ready`` before). Up to 3.22 ``start``
refuses to run while Postgres migrations are pending (``db_needs_migration``);
from 3.23 it starts anyway, as TTS does (which never checks the Redis schema
versions either).

As TTS: logs go to stderr in zap's console format (``LEVEL<TAB>message<TAB>{json
fields}``, no timestamp); an error exits 255; a command group given an unknown or
no subcommand prints its help and exits 2; an unknown command exits 255.

The version comes from the image (``LORAWAN_STACK_VERSION``). Versions that fail
on purpose: 3.98.0's ``is-db migrate`` applies part of its work and then fails,
in transactions (as from 3.32.2); 3.30.9's fails the same way inside the bun
trap of 3.20 to 3.32.1 (each migration is marked applied before it runs, so the
failed one stays marked and a re-run says "Database is up to date"); 3.98.1
migrates and starts, but its health endpoint never answers 200; 3.98.2's
``is-db migrate`` leaves its last migration out and says it is done, so only
``is-db status`` after the start shows the schema behind.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

Version = tuple[int, int, int]

NEVER_HEALTHY = (3, 98, 1)
LEAVES_LAST_MIGRATION_OUT = (3, 98, 2)
# bun marks each migration applied before it runs it from 3.20 until 3.32.2 fixed it.
BUN_TRAP = ((3, 20, 0), (3, 32, 1))
BUN_SINCE = (3, 20, 0)
STATUS_SINCE = (3, 32, 2)
HEALTHZ_SINCE = (3, 24, 0)
# Up to 3.22 the stack refuses to start with the database behind; from 3.23 it starts anyway.
STARTS_BEHIND_SINCE = (3, 23, 0)
EXIT_ERROR = 255
EXIT_USAGE = 2
IS_DB_GATE = (3, 19, 2)
# The only Redis schema version of every component (TTS: since 3.17).
REDIS_SCHEMA_VERSION = 1
# From 3.25.0, ns-db migrate refuses a Redis without the devices' schema version unless --force, and also records
# the application uplinks' schema version.
NS_DB_FORCE_REQUIRED = (3, 25, 0)
NS_APPLICATION_UPLINKS_KEY = "ttn:v3:ns:application-uplinks:schema-version"


def parse_version(text: str) -> Version:
    major, minor, patch = (int(part) for part in text.strip().split("."))
    return major, minor, patch


def format_version(version: Version) -> str:
    return ".".join(str(part) for part in version)


@dataclass(frozen=True)
class SqlMigration:
    name: str
    version: Version
    up: tuple[str, ...]
    down: tuple[str, ...]


IS_MIGRATIONS = (
    SqlMigration(
        "20210401000000_initial_schema",
        (3, 10, 0),
        (
            "CREATE TABLE users (id serial PRIMARY KEY, user_id text UNIQUE NOT NULL, "
            "name text, primary_email_address text NOT NULL, password text NOT NULL, "
            "admin boolean NOT NULL DEFAULT false, created_at timestamptz NOT NULL)",
            "CREATE TABLE organizations (id serial PRIMARY KEY, organization_id text UNIQUE NOT NULL, "
            "name text, created_at timestamptz NOT NULL)",
            "CREATE TABLE applications (id serial PRIMARY KEY, application_id text UNIQUE NOT NULL, "
            "name text, owner_user_id integer REFERENCES users(id), created_at timestamptz NOT NULL)",
            "CREATE TABLE end_devices (id serial PRIMARY KEY, application_id integer NOT NULL "
            "REFERENCES applications(id), device_id text NOT NULL, dev_eui bytea, join_eui bytea, "
            "frequency_plan_id text, picture text, created_at timestamptz NOT NULL, "
            "UNIQUE (application_id, device_id))",
            "CREATE TABLE gateways (id serial PRIMARY KEY, gateway_id text UNIQUE NOT NULL, "
            "gateway_eui bytea, frequency_plan_id text, created_at timestamptz NOT NULL)",
            "CREATE TABLE api_keys (id serial PRIMARY KEY, api_key_id text UNIQUE NOT NULL, "
            "key text NOT NULL, rights text[] NOT NULL, entity_type text NOT NULL, entity_id integer NOT NULL)",
        ),
        (
            "DROP TABLE api_keys",
            "DROP TABLE gateways",
            "DROP TABLE end_devices",
            "DROP TABLE applications",
            "DROP TABLE organizations",
            "DROP TABLE users",
        ),
    ),
    SqlMigration(
        "20220113000000_end_device_locations",
        (3, 18, 0),
        (
            "CREATE TABLE end_device_locations (id serial PRIMARY KEY, end_device_id integer NOT NULL "
            "REFERENCES end_devices(id), service text, latitude double precision, longitude double precision)",
        ),
        ("DROP TABLE end_device_locations",),
    ),
    SqlMigration(
        "20220221000000_end_devices_dev_eui_index",
        (3, 18, 2),
        ("CREATE INDEX end_devices_dev_eui_index ON end_devices (dev_eui)",),
        ("DROP INDEX end_devices_dev_eui_index",),
    ),
    SqlMigration(
        "20220405000000_gateway_antennas",
        (3, 19, 0),
        (
            "CREATE TABLE gateway_antennas (id serial PRIMARY KEY, gateway_id integer NOT NULL "
            "REFERENCES gateways(id), gain double precision, placement integer)",
        ),
        ("DROP TABLE gateway_antennas",),
    ),
    SqlMigration(
        "20220520000000_prepare_bun_migrations",
        IS_DB_GATE,
        ("CREATE INDEX users_primary_email_address_index ON users (primary_email_address)",),
        ("DROP INDEX users_primary_email_address_index",),
    ),
    SqlMigration(
        "20220610000000_user_sessions",
        (3, 20, 0),
        (
            "CREATE TABLE user_sessions (id serial PRIMARY KEY, user_id integer NOT NULL REFERENCES users(id), "
            "session_secret text, expires_at timestamptz)",
        ),
        ("DROP TABLE user_sessions",),
    ),
    SqlMigration(
        "20220801000000_notifications",
        (3, 21, 0),
        ("CREATE TABLE notifications (id serial PRIMARY KEY, entity_type text, entity_id text, body jsonb)",),
        ("DROP TABLE notifications",),
    ),
    SqlMigration(
        "20221201000000_end_devices_activated_at",
        (3, 23, 0),
        ("CREATE TABLE end_device_activations (end_device_id integer PRIMARY KEY, activated_at timestamptz)",),
        ("DROP TABLE end_device_activations",),
    ),
    SqlMigration(
        "20230215000000_gateway_status_index",
        (3, 24, 0),
        ("CREATE INDEX gateways_gateway_eui_index ON gateways (gateway_eui)",),
        ("DROP INDEX gateways_gateway_eui_index",),
    ),
    SqlMigration(
        "20230401000000_notification_receivers",
        (3, 25, 0),
        ("CREATE TABLE notification_receivers (notification_id integer, receiver_user_id integer)",),
        ("DROP TABLE notification_receivers",),
    ),
    SqlMigration(
        "20230601000000_email_validations",
        (3, 26, 0),
        ("CREATE TABLE email_validations (id serial PRIMARY KEY, address text, token text)",),
        ("DROP TABLE email_validations",),
    ),
    SqlMigration(
        "20231101000000_gateway_status_history",
        (3, 30, 9),
        ("CREATE TABLE gateway_status_history (gateway_id integer, seen_at timestamptz)",),
        ("DROP TABLE gateway_status_history",),
    ),
    SqlMigration(
        "20231102000000_backfill_gateway_status_history",
        (3, 30, 9),
        # Only gateways created after the migration: the seeded data stays as it was.
        (
            "INSERT INTO gateway_status_history (gateway_id, seen_at) "
            "SELECT id, created_at FROM gateways WHERE created_at > now()",
        ),
        ("DELETE FROM gateway_status_history",),
    ),
    SqlMigration(
        "20240301000000_end_device_claims",
        (3, 31, 0),
        ("CREATE TABLE end_device_claims (id serial PRIMARY KEY, dev_eui bytea, claimed_at timestamptz)",),
        ("DROP TABLE end_device_claims",),
    ),
    SqlMigration(
        "20240701000000_api_key_expiry",
        (3, 32, 0),
        ("CREATE TABLE api_key_expiries (api_key_id integer PRIMARY KEY, expires_at timestamptz)",),
        ("DROP TABLE api_key_expiries",),
    ),
    SqlMigration(
        "20240905000000_end_devices_created_at_index",
        (3, 32, 2),
        ("CREATE INDEX end_devices_created_at_index ON end_devices (created_at)",),
        ("DROP INDEX end_devices_created_at_index",),
    ),
    SqlMigration(
        "20250301000000_user_bookmarks",
        (3, 33, 0),
        ("CREATE TABLE user_bookmarks (id serial PRIMARY KEY, user_id integer, entity_id text)",),
        ("DROP TABLE user_bookmarks",),
    ),
    SqlMigration(
        "20260101000000_gateway_regions",
        (3, 98, 0),
        ("CREATE TABLE gateway_regions (gateway_id integer PRIMARY KEY, region text)",),
        ("DROP TABLE gateway_regions",),
    ),
    SqlMigration(
        "20260102000000_backfill_gateway_regions",
        (3, 98, 0),
        ("INSERT INTO gateway_regions (gateway_id, region) SELECT id, frequency_plan_id FROM gateways",),
        ("DELETE FROM gateway_regions",),
    ),
)

# Versions that ship a broken backfill: it references a column that does not exist.
BROKEN_MIGRATIONS = {
    (3, 98, 0): {
        "20260102000000_backfill_gateway_regions": (
            "INSERT INTO gateway_regions (gateway_id, region) SELECT id, band_id FROM gateways",
        ),
    },
    (3, 30, 9): {
        "20231102000000_backfill_gateway_status_history": (
            "INSERT INTO gateway_status_history (gateway_id, seen_at) "
            "SELECT id, last_seen_at FROM gateways WHERE created_at > now()",
        ),
    },
}


@dataclass(frozen=True)
class RedisComponent:
    """A Redis-backed component and the key its ``migrate`` records the schema version in."""

    command: str
    key: str
    enterprise_only: bool = False
    removed_in: Version | None = None

    def available(self, version: Version, enterprise: bool) -> bool:
        if self.enterprise_only and not enterprise:
            return False
        return self.removed_in is None or version < self.removed_in


REDIS_COMPONENTS = (
    RedisComponent("ns-db", "ttn:v3:ns:devices:schema-version"),
    RedisComponent("as-db", "ttn:v3:as:schema-version"),
    RedisComponent("js-db", "ttn:v3:js:keys:schema-version"),
    RedisComponent("dcs-db", "ttn:v3:dcs:schema-version", enterprise_only=True, removed_in=(3, 26, 0)),
)


@dataclass(frozen=True)
class EnterpriseSqlComponent:
    """An Enterprise Postgres store with its own migration table."""

    command: str
    table: str
    uri_keys: tuple[tuple[str, ...], ...]
    history: tuple[tuple[Version, str], ...]
    # `init` sets the store up (its migration table and the version's schema); from init_required_since its
    # `migrate` refuses a store that was never set up. None: the store has no init.
    init_since: Version | None = None
    init_required_since: Version | None = None

    def pending(self, version: Version, applied: set[str]) -> list[str]:
        return [name for introduced, name in self.history if introduced <= version and name not in applied]

    def needs_init(self, version: Version) -> bool:
        return self.init_required_since is not None and version >= self.init_required_since


# The NOC's metrics: time series, in TimescaleDB hypertables.
TIME_SERIES_SUFFIXES = ("_metrics", "_uptime")

ENTERPRISE_SQL_COMPONENTS = (
    EnterpriseSqlComponent(
        "noc-db",
        "noc_migrations",
        (("noc", "store", "database-uri"), ("is", "database-uri")),
        (
            ((3, 19, 2), "noc_gateway_metrics"),
            ((3, 24, 0), "noc_application_metrics"),
            ((3, 26, 0), "noc_end_device_metrics"),
            ((3, 31, 0), "noc_alerts"),
            ((3, 32, 0), "noc_alert_receivers"),
            ((3, 33, 0), "noc_alert_silences"),
            ((3, 35, 0), "noc_gateway_uptime"),
            ((3, 36, 0), "noc_retention_policies"),
        ),
        # The experimental NOC of 3.19.2; generally available, and to be set up, from 3.21.0.
        init_since=(3, 19, 2),
        init_required_since=(3, 21, 0),
    ),
    EnterpriseSqlComponent(
        "storage-db",
        "storage_migrations",
        (("as", "packages", "storage", "postgres", "database-uri"), ("is", "database-uri")),
        (
            ((3, 20, 0), "storage_uplinks"),
            ((3, 20, 0), "storage_uplinks_received_at"),
            ((3, 26, 0), "storage_uplinks_partitions"),
        ),
    ),
)


class CommandError(Exception):
    """A failure that ends the command with exit code 255 (TTS: any error) and this message."""


class UsageError(Exception):
    """A command group given an unknown or no subcommand: its help, exit code 2 (cobra)."""


@dataclass
class Settings:
    binary: str
    version: Version
    config: dict

    @property
    def enterprise(self) -> bool:
        return self.binary == "tti-lw-stack"

    def get(self, *path: str, default: str | None = None) -> str | None:
        env_name = "TTN_LW_" + "_".join(part.replace("-", "_") for part in path).upper()
        if os.environ.get(env_name):
            return os.environ[env_name]
        node = self.config
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return str(node)

    def first(self, paths: tuple[tuple[str, ...], ...]) -> str | None:
        for path in paths:
            value = self.get(*path)
            if value:
                return value
        return None


def log(level: str, message: str, **fields: object) -> None:
    """One line on stderr in zap's console format, as TTS logs: no timestamp, fields as JSON."""
    extra = "\t" + json.dumps(fields, default=str) if fields else ""
    print(f"{level}\t{message}{extra}", file=sys.stderr, flush=True)


# --- connections --------------------------------------------------------------------------------


def postgres(uri: str):
    import psycopg2

    try:
        return psycopg2.connect(uri, connect_timeout=5)
    except psycopg2.OperationalError as error:
        # TTS does not retry: whoever runs migrations must wait for Postgres first.
        raise CommandError(f"failed to connect to database: {str(error).strip()}") from error


def split_address(address: str) -> tuple[str, str]:
    host, port = address.rsplit(":", 1)
    return host, port


def redis_client(settings: Settings):
    import redis

    address = settings.get("redis", "address", default="localhost:6379")
    host, port = split_address(address)
    client = redis.Redis(
        host=host or "localhost",
        port=int(port),
        password=settings.get("redis", "password") or None,
        db=int(settings.get("redis", "database", default="0")),
        socket_connect_timeout=5,
    )
    try:
        client.ping()
    except redis.RedisError as error:
        raise CommandError(f"failed to connect to Redis at {address}: {error}") from error
    return client


def identity_database_uri(settings: Settings) -> str:
    uri = settings.get("is", "database-uri")
    if not uri:
        raise CommandError("no Identity Server database URI configured (is.database-uri)")
    return uri


# --- is-db --------------------------------------------------------------------------------------


BUN_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS bun_migrations (id bigserial PRIMARY KEY, name varchar NOT NULL, "
    "group_id bigint NOT NULL, migrated_at timestamptz NOT NULL DEFAULT current_timestamp)"
)


def is_migrations_for(version: Version) -> list[SqlMigration]:
    return [migration for migration in IS_MIGRATIONS if migration.version <= version]


def applied_is_migrations(cursor) -> list[tuple[str, int]]:
    cursor.execute(BUN_MIGRATIONS)
    cursor.execute("SELECT name, group_id FROM bun_migrations ORDER BY id")
    return list(cursor.fetchall())


def check_is_gate(version: Version, applied: set[str]) -> None:
    gate_migration = next(m.name for m in IS_MIGRATIONS if m.version == IS_DB_GATE)
    if version >= (3, 20, 0) and applied and gate_migration not in applied:
        raise CommandError("database needs to be upgraded to v3.19 before upgrading to v3.20")


def migration_statements(settings: Settings, migration: SqlMigration) -> tuple[str, ...]:
    return BROKEN_MIGRATIONS.get(settings.version, {}).get(migration.name, migration.up)


def is_db_migrate(settings: Settings, args: list[str]) -> None:
    connection = postgres(identity_database_uri(settings))
    with connection, connection.cursor() as cursor:
        applied_rows = applied_is_migrations(cursor)
    applied = {row[0] for row in applied_rows}
    if "--rollback" in args:
        is_db_rollback(connection, applied_rows)
        return
    check_is_gate(settings.version, applied)
    known = is_migrations_for(settings.version)
    pending = [m for m in known if m.name not in applied]
    bun = settings.version >= BUN_SINCE
    if bun:
        log("INFO", "Applied: " + ", ".join(m.name for m in known if m.name in applied))
        log("INFO", "Unapplied: " + ", ".join(m.name for m in pending))
    if not pending:
        log("INFO", "Database is up to date" if bun else "Successfully migrated")
        return
    if settings.version == LEAVES_LAST_MIGRATION_OUT:
        pending = pending[:-1]
    group = max((row[1] for row in applied_rows), default=0) + 1
    marked_first = BUN_TRAP[0] <= settings.version <= BUN_TRAP[1]
    import psycopg2

    for migration in pending:
        try:
            if marked_first:
                with connection, connection.cursor() as cursor:
                    cursor.execute(
                        "INSERT INTO bun_migrations (name, group_id) VALUES (%s, %s)", (migration.name, group)
                    )
            with connection, connection.cursor() as cursor:
                for statement in migration_statements(settings, migration):
                    cursor.execute(statement)
                if not marked_first:
                    cursor.execute(
                        "INSERT INTO bun_migrations (name, group_id) VALUES (%s, %s)", (migration.name, group)
                    )
        except psycopg2.Error as error:
            raise CommandError(f"migration {migration.name} failed: {str(error).strip()}") from error
    log("INFO", "Database migration done" if bun else "Successfully migrated", group=group)


def is_db_rollback(connection, applied_rows: list[tuple[str, int]]) -> None:
    if not applied_rows:
        log("INFO", "There are no groups to roll back")
        return
    last_group = applied_rows[-1][1]
    by_name = {migration.name: migration for migration in IS_MIGRATIONS}
    for name in reversed([name for name, group in applied_rows if group == last_group]):
        with connection, connection.cursor() as cursor:
            for statement in by_name[name].down:
                cursor.execute(statement)
            cursor.execute("DELETE FROM bun_migrations WHERE name = %s", (name,))
        log("INFO", "Rolled back migration", name=name)


def is_db_status(settings: Settings) -> None:
    connection = postgres(identity_database_uri(settings))
    with connection, connection.cursor() as cursor:
        applied = {row[0] for row in applied_is_migrations(cursor)}
    known = is_migrations_for(settings.version)
    log(
        "INFO",
        "Status fetched",
        migrations=len(known),
        unapplied_migrations=sum(1 for m in known if m.name not in applied),
        applied_migrations=sum(1 for m in known if m.name in applied),
    )


# --- Redis components ---------------------------------------------------------------------------


def schema_version(stored: bytes | None) -> int:
    """A schema-version key's value; a missing key is version 0."""
    return int(stored or 0)


def redis_migrate(settings: Settings, component: RedisComponent, force: bool) -> None:
    client = redis_client(settings)
    if component.command == "ns-db" and settings.version >= NS_DB_FORCE_REQUIRED:
        ns_db_migrate(client, component, force)
        return
    current = schema_version(client.get(component.key))
    if current >= REDIS_SCHEMA_VERSION:
        log("INFO", "Database schema version is already current", version=current)
        return
    client.set(component.key, REDIS_SCHEMA_VERSION)
    log("INFO", "Migrated database schema", **{"from": current, "to": REDIS_SCHEMA_VERSION})


def ns_db_migrate(client, component: RedisComponent, force: bool) -> None:
    """ns-db migrate of 3.25 and later: the devices' and the application uplinks' schema versions."""
    keys = (component.key, NS_APPLICATION_UPLINKS_KEY)
    devices, uplinks = (schema_version(stored) for stored in client.mget(keys))
    if devices < REDIS_SCHEMA_VERSION and not force:
        raise CommandError(
            f"schema version {devices} in {component.key} is not supported; the database may be empty or too old, "
            "use --force to migrate anyway"
        )
    if devices >= REDIS_SCHEMA_VERSION and uplinks >= REDIS_SCHEMA_VERSION:
        log("INFO", "Database schema version is already current", version=devices)
        return
    client.mset(dict.fromkeys(keys, REDIS_SCHEMA_VERSION))
    log("INFO", "Migrated database schema", **{"from": devices, "to": REDIS_SCHEMA_VERSION})


# --- Enterprise Postgres components -------------------------------------------------------------


def applied_names(cursor, component: EnterpriseSqlComponent) -> set[str]:
    cursor.execute(f"CREATE TABLE IF NOT EXISTS {component.table} (name text PRIMARY KEY)")
    cursor.execute(f"SELECT name FROM {component.table}")  # noqa: S608 - a constant table name
    return {row[0] for row in cursor.fetchall()}


def is_set_up(cursor, component: EnterpriseSqlComponent) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (component.table,))
    return cursor.fetchone()[0]


def enterprise_sql_connection(settings: Settings, component: EnterpriseSqlComponent):
    uri = settings.first(component.uri_keys)
    if not uri:
        raise CommandError(f"no database URI configured for {component.command}")
    return postgres(uri)


def enterprise_sql_init(settings: Settings, component: EnterpriseSqlComponent) -> None:
    connection = enterprise_sql_connection(settings, component)
    with connection, connection.cursor() as cursor:
        if is_set_up(cursor, component):
            raise CommandError(f"the {component.command} database is already initialized, use migrate instead")
    apply_sql_migrations(settings, component, connection)
    log("INFO", "Database initialized")


def enterprise_sql_migrate(settings: Settings, component: EnterpriseSqlComponent) -> None:
    connection = enterprise_sql_connection(settings, component)
    if component.init_since is not None:
        with connection, connection.cursor() as cursor:
            set_up = is_set_up(cursor, component)
        if not set_up and component.needs_init(settings.version):
            raise CommandError(f"the {component.command} database is not initialized, run {component.command} init")
        if not set_up:  # the experimental NOC, never set up: nothing to migrate
            log("INFO", "Database is up to date")
            return
    apply_sql_migrations(settings, component, connection)


def apply_sql_migrations(settings: Settings, component: EnterpriseSqlComponent, connection) -> None:
    with connection, connection.cursor() as cursor:
        pending = component.pending(settings.version, applied_names(cursor, component))
    if not pending:
        log("INFO", "Database is up to date")
        return
    for name in pending:
        with connection, connection.cursor() as cursor:
            # Names come from the constant histories above, never from input.
            if name.endswith(TIME_SERIES_SUFFIXES):
                create_time_series(cursor, name)
            else:
                cursor.execute(f"CREATE TABLE IF NOT EXISTS {name} (id bigserial PRIMARY KEY, data jsonb)")
            cursor.execute(f"INSERT INTO {component.table} (name) VALUES (%s)", (name,))  # noqa: S608
        log("INFO", "Applied migration", name=name)


def create_time_series(cursor, name: str) -> None:
    """A NOC metrics table: a TimescaleDB hypertable (chunks of 7 days) where the server has the extension, as
    TTS's NOC keeps them; a plain table on a server without it (the sandbox's plain Postgres images)."""
    cursor.execute(f"CREATE TABLE IF NOT EXISTS {name} (time timestamptz NOT NULL, source text, data jsonb)")
    cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    if cursor.fetchone():
        cursor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        cursor.execute(
            "SELECT create_hypertable(%s, 'time', chunk_time_interval => interval '7 days', if_not_exists => true)",
            (name,),
        )


# --- start --------------------------------------------------------------------------------------


def pending_work(settings: Settings) -> list[str]:
    """What must be migrated before this version may serve, as TTS checks on start: Postgres only.

    TTS never checks the Redis schema versions on start.
    """
    pending: list[str] = []
    connection = postgres(identity_database_uri(settings))
    with connection, connection.cursor() as cursor:
        applied = {row[0] for row in applied_is_migrations(cursor)}
        needed = [m.name for m in is_migrations_for(settings.version) if m.name not in applied]
        if needed:
            pending.append(f"is-db ({len(needed)} migrations)")
        if settings.enterprise:
            for component in ENTERPRISE_SQL_COMPONENTS:
                if component.init_since is not None and not is_set_up(cursor, component):
                    if component.needs_init(settings.version):
                        pending.append(f"{component.command} (not initialized)")
                elif component.pending(settings.version, applied_names(cursor, component)):
                    pending.append(component.command)
    return pending


def health_paths(version: Version) -> tuple[str, ...]:
    return ("/healthz",) if version >= HEALTHZ_SINCE else ("/healthz/live", "/healthz/ready")


def serve(settings: Settings) -> None:
    if settings.version < STARTS_BEHIND_SINCE:
        pending = pending_work(settings)
        if pending:
            raise CommandError(
                "db_needs_migration: the database needs to be migrated (pending: " + ", ".join(pending) + ")"
            )
    healthy = settings.version != NEVER_HEALTHY
    version_text = format_version(settings.version)
    paths = health_paths(settings.version)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if urlparse(self.path).path not in paths:
                self.send_error(404)
                return
            status, body = (200, b"OK\n") if healthy else (503, b"unavailable\n")
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("X-TTS-Version", version_text)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of http.server
            return

    listen = settings.get("http", "listen", default=":1885")
    host, port = split_address(listen)
    # All interfaces of the container: compose publishes them on the host's loopback.
    server = ThreadingHTTPServer((host or "0.0.0.0", int(port)), Handler)  # noqa: S104
    log("INFO", "Started The Things Stack", version=version_text, listen=listen)
    server.serve_forever()


# --- command line -------------------------------------------------------------------------------


def version_text(settings: Settings) -> str:
    name = "The Things Stack Enterprise" if settings.enterprise else "The Things Stack for LoRaWAN"
    rows = (
        ("Version:", format_version(settings.version)),
        ("Build date:", "2026-01-01T00:00:00Z"),
        ("Git commit:", "0000000"),
        ("Go version:", "go1.22.5"),
        ("OS/Arch:", "linux/amd64"),
    )
    return f"{name}: {settings.binary}\n" + "".join(f"{label:<20} {value}\n" for label, value in rows)


def usage(settings: Settings) -> str:
    commands = ["start", "version", "is-db", "ns-db", "as-db", "js-db"]
    if settings.enterprise:
        commands += ["dcs-db", "noc-db", "storage-db"]
    return (
        f"Usage:\n  {settings.binary} [command]\n\nAvailable Commands:\n"
        + "".join(f"  {command}\n" for command in commands)
        + f'\nUse "{settings.binary} [command] --help" for more information about a command.\n'
    )


def split_global_flags(argv: list[str]) -> tuple[str | None, list[str]]:
    config_path = None
    rest: list[str] = []
    iterator = iter(argv)
    for arg in iterator:
        if arg in ("-c", "--config"):
            config_path = next(iterator, None)
        elif arg.startswith("--config="):
            config_path = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return config_path, rest


def load_config(path: str | None) -> dict:
    if path is None:
        return {}
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise CommandError(f"could not read config file {path}: {error.strerror}") from error


def group_usage(settings: Settings, group: str, subcommands: list[str]) -> str:
    return (
        f"Usage:\n  {settings.binary} {group} [command]\n\nAvailable Commands:\n"
        + "".join(f"  {name}\n" for name in subcommands)
        + f'\nUse "{settings.binary} {group} [command] --help" for more information about a command.\n'
    )


def dispatch(settings: Settings, args: list[str]) -> None:
    command = args[0] if args else ""
    sub = args[1] if len(args) > 1 else ""
    flags = args[2:]
    groups: dict[str, dict[str, Callable[[], None]]] = {
        "is-db": {"migrate": lambda: is_db_migrate(settings, flags), "init": lambda: is_db_init(settings, flags)},
    }
    if settings.version >= STATUS_SINCE:
        groups["is-db"]["status"] = lambda: is_db_status(settings)
    for component in REDIS_COMPONENTS:
        if component.available(settings.version, settings.enterprise):
            groups[component.command] = {"migrate": lambda c=component: redis_migrate(settings, c, "--force" in flags)}
        elif component.enterprise_only and settings.enterprise:
            # dcs-db stays a command group after its migrate is gone (3.26).
            groups[component.command] = {}
    if settings.enterprise:
        for component in ENTERPRISE_SQL_COMPONENTS:
            groups[component.command] = {"migrate": lambda c=component: enterprise_sql_migrate(settings, c)}
            if component.init_since is not None and settings.version >= component.init_since:
                groups[component.command]["init"] = lambda c=component: enterprise_sql_init(settings, c)
    elif command == "storage-db":
        raise CommandError("storage-db is not available in the open-source version")
    if command == "version":
        print(version_text(settings), end="", flush=True)
    elif command == "start":
        serve(settings)
    elif command in groups:
        handler = groups[command].get(sub)
        if handler is None:
            print(group_usage(settings, command, sorted(groups[command])), end="", flush=True)
            raise UsageError()
        handler()
    elif command in ("", "help"):
        print(usage(settings), end="", flush=True)
    else:
        raise CommandError(f'unknown command "{command}" for "{settings.binary}"')


def is_db_init(settings: Settings, flags: list[str]) -> None:
    if settings.version >= BUN_SINCE:
        raise CommandError("is-db init is no longer supported, use migrate instead")
    is_db_migrate(settings, flags)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    binary = os.environ.get("LORAWAN_STACK_BINARY", "ttn-lw-stack")
    try:
        config_path, args = split_global_flags(argv)
        settings = Settings(binary, parse_version(os.environ["LORAWAN_STACK_VERSION"]), {})
        if args[:1] != ["version"]:
            settings.config = load_config(config_path)
        dispatch(settings, args)
    except UsageError:
        return EXIT_USAGE
    except CommandError as error:
        log("ERROR", str(error))
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
