# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Read-only facts about a TTS docker-compose deployment, for lorawan.tts.stack_info.

Everything is read from the compose configuration, from `docker inspect`, from commands run
with `exec -T` in containers that already run, and from the host's file system. Nothing is
started, stopped, created or written. A stopped service gives partial facts (nulls) and a
warning, never a failure.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys

from ansible_collections.lorawan.tts.plugins.module_utils.compose import (
    ComposeError,
    container_state,
    environment_dict,
    postgres_login,
    stderr_tail,
)
from ansible_collections.lorawan.tts.plugins.module_utils.compose_file import (
    RUAMEL_YAML_VERSION,
    ComposeFileError,
    compose_files,
    parse_image,
    ruamel_yaml_problem,
)
from ansible_collections.lorawan.tts.plugins.module_utils.editions import stack_binary, stack_edition
from ansible_collections.lorawan.tts.plugins.module_utils.files import file_sha256
from ansible_collections.lorawan.tts.plugins.module_utils.journal import Journal, JournalError
from ansible_collections.lorawan.tts.plugins.module_utils.redis_persistence import (
    keyspace_totals,
    parse_info,
    persistence_format,
)
from ansible_collections.lorawan.tts.plugins.module_utils.stack_health import STACK_VERSION_LINE, StackHealth

BLOB_TARGET = "/srv/ttn-lorawan/public/blob"
DEFAULT_PGDATA = "/var/lib/postgresql/data"
POSTGRES_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
POSTGRES_TAG_MAJOR = re.compile(r"^(\d+)(?:[.-]|$)")
POSTGRES_BIN_PATH = re.compile(r"/usr/lib/postgresql/(\d+(?:\.\d+)?)/bin")


def image_facts(image):
    """An image reference as the facts show it: the reference, its repository (with any registry host), tag, digest."""
    reference = parse_image(image.strip())
    facts = {
        "image": reference.image,
        "repository": reference.repository,
        "tag": reference.tag,
        "digest": reference.digest,
    }
    facts["moving_major"] = is_moving_major(facts)
    return facts


def is_moving_major(parsed):
    """True when a tag can move to another major version on a pull: no tag and no digest, or a tag with no digit."""
    if parsed["digest"]:
        return False
    tag = parsed["tag"]
    return tag is None or not re.search(r"\d", tag)


def postgres_major(version_text):
    """'postgres (PostgreSQL) 15.18 (Debian ...)' -> '15'; before 10 the major has two parts ('9.6')."""
    match = POSTGRES_VERSION.search(version_text or "")
    if not match:
        return None
    major = int(match.group(1))
    if major >= 10 or match.group(2) is None:
        return str(major)
    return "%d.%s" % (major, match.group(2))


def tree_size(path):
    """Total size in bytes and number of regular files under path, symlinks not followed."""
    size = files = 0
    for root, dummy_dirs, names in os.walk(path):
        for name in names:
            try:
                info = os.lstat(os.path.join(root, name))
            except OSError:
                continue  # removed while walking
            if not os.path.islink(os.path.join(root, name)):
                size += info.st_size
                files += 1
    return size, files


def python_facts():
    """The Python that runs the modules on the host, and what it lacks for the modules that edit compose files."""
    problem = ruamel_yaml_problem()
    return {
        "executable": sys.executable,
        "version": platform.python_version(),
        "ruamel_yaml": ".".join(str(part) for part in RUAMEL_YAML_VERSION) if RUAMEL_YAML_VERSION else None,
        "problems": [problem] if problem else [],
    }


def free_bytes(path):
    """(bytes free to an unprivileged user, the existing directory measured) at path or its nearest existing parent."""
    current = os.path.abspath(path)
    while not os.path.exists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    stat = os.statvfs(current)
    return stat.f_bavail * stat.f_frsize, current


class StackFacts:
    """Collects the `tts` facts of one compose project."""

    def __init__(self, project, stack_service="stack", postgres_service="postgres", redis_service="redis"):
        self.project = project
        self.module = project.module
        self.stack_service = stack_service
        self.postgres_service = postgres_service
        self.redis_service = redis_service
        self.warnings = []
        self.config = {}
        self.service_configs = {}
        self.containers = {}

    # -- helpers ---------------------------------------------------------------------------------

    def _first_container(self, service):
        found = self.containers.get(service) or []
        found = sorted(found, key=lambda c: c.get("Name", ""))
        return found[0] if found else None

    def _running(self, service):
        container = self._first_container(service)
        return container is not None and container_state(container)["state"] == "running"

    def _exec(self, service, argv, what, hint, env=None):
        """Run argv in the service's running container; a failure raises ComposeError saying what to do."""
        container = self._first_container(service)
        kwargs = {}
        env_names = ()
        if env:
            kwargs["environ_update"] = env
            env_names = tuple(sorted(env))
        rc, out, err = self.project.exec_container(container["Id"], argv, env_names=env_names, check=False, **kwargs)
        if rc != 0:
            raise ComposeError(
                "%s in service %s (container %s) failed in %s (exit %d): %s; %s"
                % (
                    what,
                    service,
                    container_state(container)["name"],
                    self.project.project_src,
                    rc,
                    stderr_tail(err) or "no error output",
                    hint,
                ),
                argv=argv,
                rc=rc,
                stderr=err,
            )
        return out

    def _docker(self, argv):
        """Run a docker command (not compose); (rc, out, err)."""
        return self.module.run_command([self.project.docker, *argv])

    # -- the facts -------------------------------------------------------------------------------

    def collect(self, gather="all"):
        """The facts; gather="version" leaves out the Redis, Postgres and blob facts and the image warnings."""
        self.config = self.project.config()
        self.service_configs = dict(self.config.get("services") or {})
        self.containers = self.project.containers()
        images = self.images()
        edition = stack_edition(self.service_configs.get(self.stack_service) or {})
        facts = {
            "edition": edition,
            "images": images,
            "services": self.services(),
            "compose_command": self.compose_command(),
            "python": python_facts(),
        }
        facts.update(self.stack(edition, images))
        facts["health"] = self.health(facts["stack_version"])
        if gather == "all":
            facts["redis"] = self.redis()
            facts["postgres"] = self.postgres()
            facts["blob"] = self.blob()
        facts["compose_files"] = self.compose_files()
        facts["journal"] = self.journal()
        if gather == "all":
            self.image_warnings(edition, images, facts["postgres"])
        facts["warnings"] = self.warnings
        return facts

    def images(self):
        images = {}
        for name, service in sorted(self.service_configs.items()):
            if service.get("image"):
                images[name] = image_facts(service["image"])
            else:
                images[name] = {"image": None, "repository": None, "tag": None, "digest": None, "moving_major": False}
        return images

    def services(self):
        result = {}
        for name in sorted(self.service_configs):
            container = self._first_container(name)
            if container is None:
                result[name] = {"state": "absent", "health": None, "running": False, "container": None}
                continue
            state = container_state(container)
            result[name] = {
                "state": state["state"],
                "health": state["health"],
                "running": state["state"] == "running",
                "container": state["name"],
            }
        return result

    def journal(self):
        """The upgrade journal's run, phase and outcome (an outcome of null: a run holds it, or was interrupted)."""
        try:
            record = Journal(self.project.project_src).read()
        except (JournalError, OSError) as error:
            return {"run": None, "phase": None, "outcome": None, "error": str(error)}
        if record is None:
            return None
        return {name: record.get(name) for name in ("run", "phase", "outcome", "updated")}

    def compose_files(self):
        """The files the configuration is read from (compose files, .env), with their sha256."""
        try:
            paths = compose_files(self.project.project_src, self.project.files, None)
        except ComposeFileError as error:
            self.warnings.append("the compose files cannot be listed: %s" % error)
            return []
        paths += [os.path.join(self.project.project_src, name) for name in self.project.env_files]
        default_env = os.path.join(self.project.project_src, ".env")
        if not self.project.env_files and os.path.isfile(default_env):
            paths.append(default_env)
        return [{"path": path, "sha256": file_sha256(path)} for path in paths]

    def compose_command(self):
        return {"name": self.project.command_name, "version": self.project.version()}

    def stack(self, edition, images):
        stack_image = images.get(self.stack_service) or {}
        result = {"stack_version": None, "configured_version": stack_image.get("tag")}
        if self.stack_service not in self.service_configs:
            self.warnings.append(
                "the compose project has no service %r: set stack_service to the service that runs The Things Stack"
                % self.stack_service
            )
            return result
        if not self._running(self.stack_service):
            self.warnings.append(
                "the stack service %r is not running: stack_version is unknown (configured_version is the image tag)"
                % self.stack_service
            )
            return result
        binary = stack_binary(self.service_configs[self.stack_service], edition) or "ttn-lw-stack"
        out = self._exec(
            self.stack_service,
            [binary, "version"],
            "reading the version with '%s version'" % binary,
            "check that the service runs a The Things Stack image (or set stack_service)",
        )
        match = STACK_VERSION_LINE.search(out)
        if match:
            result["stack_version"] = match.group(1)
        else:
            self.warnings.append(
                "'%s version' in service %s printed no 'Version:' line: stack_version is unknown"
                % (binary, self.stack_service)
            )
        return result

    def health(self, stack_version):
        """The health endpoint the stack's version answers on, and its status now (None when it does not answer)."""
        if self.stack_service not in self.service_configs:
            return {"url": None, "status": None}
        return StackHealth(
            self.project, self.stack_service, service_config=self.service_configs[self.stack_service]
        ).check(stack_version, self._first_container(self.stack_service))

    def redis_data_dir(self):
        """The host directory mounted at the Redis container's /data (a bind mount or a named volume), or None."""
        for volume in (self.service_configs.get(self.redis_service) or {}).get("volumes") or []:
            source, target, kind = self._volume(volume)
            if (target or "").rstrip("/") != "/data" or not source:
                continue
            return self._volume_mountpoint(source) if kind == "volume" else source
        return None

    def redis(self):
        result = {"format": None, "version": None, "key_count": None, "data_dir": None, "data_size": None}
        data_dir = self.redis_data_dir()
        if data_dir and os.path.isdir(data_dir):
            result["data_dir"] = data_dir
            result["data_size"], dummy_files = tree_size(data_dir)
        if self.redis_service not in self.service_configs:
            self.warnings.append("the compose project has no service %r: no Redis facts" % self.redis_service)
            return result
        if not self._running(self.redis_service):
            self.warnings.append("the Redis service %r is not running: no Redis facts" % self.redis_service)
            return result
        hint = "check that redis-cli works in the container without a password"
        info = parse_info(self._exec(self.redis_service, ["redis-cli", "--raw", "INFO"], "'redis-cli INFO'", hint))
        result["version"] = info.get("redis_version")
        result["key_count"], dummy_expires = keyspace_totals(info)
        out = self._exec(
            self.redis_service, ["redis-cli", "--raw", "CONFIG", "GET", "*"], "'redis-cli CONFIG GET'", hint
        )
        lines = out.replace("\r\n", "\n").split("\n")
        settings = {lines[index]: lines[index + 1] for index in range(0, len(lines) - 1, 2)}
        if "appendonly" not in settings:
            raise ComposeError(
                "'redis-cli CONFIG GET *' in service %s of %s did not list 'appendonly' (CONFIG may be renamed "
                "or disabled): the persistence format is unknown; allow CONFIG for the local client"
                % (self.redis_service, self.project.project_src)
            )
        result["format"] = persistence_format(settings)
        return result

    def postgres(self):
        result = {
            "major_data_dir": None,
            "major_image": None,
            "major_running": None,
            "database_size": None,
            "data_dir_free": None,
        }
        service = self.service_configs.get(self.postgres_service)
        if service is None:
            self.warnings.append("the compose project has no service %r: no Postgres facts" % self.postgres_service)
            return result
        environment = environment_dict(service.get("environment"))
        container = self._first_container(self.postgres_service)
        container_env = environment_dict((container or {}).get("Config", {}).get("Env"))
        pgdata = container_env.get("PGDATA") or environment.get("PGDATA") or DEFAULT_PGDATA
        if not self._running(self.postgres_service):
            self.warnings.append(
                "the Postgres service %r is not running: database_size is unknown" % self.postgres_service
            )
            result["major_image"] = self._configured_postgres_major(service.get("image"))
            result["major_data_dir"] = self._host_pg_version(service, pgdata)
            return result
        hint = "check that the service runs a postgres image"
        out = self._exec(
            self.postgres_service,
            ["cat", pgdata.rstrip("/") + "/PG_VERSION"],
            "reading PG_VERSION in the data directory %s" % pgdata,
            hint + " and that PGDATA points at its data directory",
        )
        result["major_data_dir"] = out.strip() or None
        out = self._exec(self.postgres_service, ["postgres", "--version"], "'postgres --version'", hint)
        result["major_running"] = postgres_major(out)
        # What the next start runs is the compose file's image, not necessarily the running container's.
        result["major_image"] = self._configured_postgres_major(service.get("image")) or result["major_running"]
        user, database = postgres_login(environment)
        env = {"PGPASSWORD": environment["POSTGRES_PASSWORD"]} if environment.get("POSTGRES_PASSWORD") else None
        out = self._exec(
            self.postgres_service,
            [
                "psql",
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                user,
                "-d",
                database,
                "-c",
                "SELECT pg_database_size(current_database())",
            ],
            "measuring database %s with psql as %s" % (database, user),
            "check POSTGRES_USER and POSTGRES_DB in the compose file",
            env=env,
        )
        try:
            result["database_size"] = int(out.strip())
        except ValueError:
            self.warnings.append("psql printed %r, not a database size: database_size is unknown" % out.strip()[:80])
        out = self._exec(
            self.postgres_service,
            ["df", "-P", "-k", pgdata],
            "measuring the free space of %s with df" % pgdata,
            hint,
        )
        fields = out.strip().splitlines()[-1].split() if out.strip() else []
        if len(fields) >= 4 and fields[3].isdigit():
            result["data_dir_free"] = int(fields[3]) * 1024
        else:
            self.warnings.append("df printed %r, not the free space: data_dir_free is unknown" % out.strip()[:80])
        return result

    def _configured_postgres_major(self, image):
        """The Postgres major of the compose file's image: from the local image, else from its tag (16, 16.4,
        16-alpine)."""
        major = self._image_postgres_major(image)
        if major or not image:
            return major
        match = POSTGRES_TAG_MAJOR.match(parse_image(image).tag or "")
        return match.group(1) if match else None

    def _image_postgres_major(self, image):
        """The Postgres major of a local image without running it: PG_MAJOR, or the bin directory in PATH."""
        if not image:
            return None
        rc, out, dummy_err = self._docker(["image", "inspect", "--format", "{{json .Config.Env}}", image])
        if rc != 0:
            return None
        try:
            env = environment_dict(json.loads(out.strip() or "[]"))
        except ValueError:
            return None
        if env.get("PG_MAJOR"):
            return env["PG_MAJOR"]
        match = POSTGRES_BIN_PATH.search(env.get("PATH") or "")
        return match.group(1) if match else None

    def _host_pg_version(self, service, pgdata):
        """PG_VERSION read on the host through the bind mount of the data directory, when there is one."""
        for volume in service.get("volumes") or []:
            source, target, kind = self._volume(volume)
            if kind != "bind" or not source or target is None:
                continue
            target = target.rstrip("/") or "/"
            if pgdata == target or pgdata.startswith(target + "/"):
                path = os.path.join(source, os.path.relpath(pgdata, target), "PG_VERSION")
                try:
                    with open(path) as handle:
                        return handle.read().strip() or None
                except OSError:
                    return None
        return None

    def _volume(self, volume):
        """(host source, container target, 'bind' or 'volume') of a service volume in long or short syntax."""
        if isinstance(volume, dict):
            source, target, kind = volume.get("source"), volume.get("target"), volume.get("type", "volume")
        else:
            parts = str(volume).split(":")
            if len(parts) == 1:
                return None, parts[0], "volume"
            source, target = parts[0], parts[1]
            kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        if kind == "bind" and source:
            source = os.path.normpath(os.path.join(self.project.project_src, os.path.expanduser(source)))
        return source, target, kind

    def blob(self):
        result = {"path": None, "size": None, "files": None}
        service = self.service_configs.get(self.stack_service)
        if service is None:
            return result
        environment = environment_dict(service.get("environment"))
        target = (environment.get("TTN_LW_BLOB_LOCAL_DIRECTORY") or BLOB_TARGET).rstrip("/")
        for volume in service.get("volumes") or []:
            source, volume_target, kind = self._volume(volume)
            if (volume_target or "").rstrip("/") != target:
                continue
            if kind == "volume" and source:
                source = self._volume_mountpoint(source)
            if source and os.path.isdir(source):
                result["path"] = source
                result["size"], result["files"] = tree_size(source)
            else:
                self.warnings.append(
                    "the blob directory %s (mounted at %s in service %s) was not found on the host: blob size unknown"
                    % (source, target, self.stack_service)
                )
            return result
        self.warnings.append(
            "service %s mounts no volume at %s: uploaded pictures are not on the host (blob size unknown)"
            % (self.stack_service, target)
        )
        return result

    def _volume_mountpoint(self, key):
        """The host directory of a named volume (its compose name, from the top-level volumes section)."""
        declared = (self.config.get("volumes") or {}).get(key) or {}
        name = declared.get("name") or key
        rc, out, dummy_err = self._docker(["volume", "inspect", "--format", "{{.Mountpoint}}", name])
        return out.strip() if rc == 0 and out.strip() else None

    def image_warnings(self, edition, images, postgres):
        for service, kind in ((self.postgres_service, "Postgres"), (self.redis_service, "Redis")):
            parsed = images.get(service)
            if parsed and parsed["image"] and parsed["moving_major"]:
                self.warnings.append(
                    "the %s image %s of service %s is on %s: a pull can move it to another major version; pin a "
                    "version tag (the major the data was written with)"
                    % (kind, parsed["image"], service, "tag %r" % parsed["tag"] if parsed["tag"] else "no tag")
                )
        if (
            postgres["major_image"]
            and postgres["major_data_dir"]
            and postgres["major_image"] != postgres["major_data_dir"]
        ):
            self.warnings.append(
                "the Postgres image of service %s is major %s but its data directory was written by major %s: "
                "Postgres cannot open it; put the image back on %s (or dump, then restore into the new major)"
                % (
                    self.postgres_service,
                    postgres["major_image"],
                    postgres["major_data_dir"],
                    postgres["major_data_dir"],
                )
            )
        grafana = images.get("grafana")
        stack = images.get(self.stack_service)
        if edition == "enterprise" and grafana and grafana["image"] and stack and grafana["tag"] != stack["tag"]:
            self.warnings.append(
                "the grafana image tag %s differs from the stack's %s: on Enterprise they must match"
                % (grafana["tag"], stack["tag"])
            )


def stack_info(
    project, stack_service="stack", postgres_service="postgres", redis_service="redis", backup_dir=None, gather="all"
):
    facts = StackFacts(project, stack_service, postgres_service, redis_service).collect(gather)
    facts["backup_dir_free"] = None
    if backup_dir:
        facts["backup_dir_free"], dummy_measured = free_bytes(backup_dir)
    return facts
