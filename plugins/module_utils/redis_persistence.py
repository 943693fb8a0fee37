# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Back up and restore the persistence files of a compose project's Redis service, verified.

The persistence format is read from the running server (``CONFIG GET``), never guessed from file
names: ``aof-multipart`` (Redis 7 ``appendonlydir/`` with a manifest, a base ``.rdb`` and ``.incr.aof``
parts), ``aof`` (Redis 6's single ``appendonly.aof``) or ``rdb`` (``dump.rdb`` only). Files move between
the container and the host with ``docker compose cp`` (stopped containers and named volumes work too),
are checked with the image's own ``redis-check-aof`` / ``redis-check-rdb`` in a one-off container, and
carry a ``redis-backup.json`` with checksums that a restore verifies before it touches anything.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import posixpath
import re
import shutil
import stat
import time

from ansible.module_utils.common.text.converters import to_text
from ansible_collections.lorawan.tts.plugins.module_utils.backup_disk import (
    disk_full,
    os_error_message,
    out_of_space,
    writing_to,
)
from ansible_collections.lorawan.tts.plugins.module_utils.compose import ComposeError, container_state
from ansible_collections.lorawan.tts.plugins.module_utils.files import file_sha256

FORMATS = ("aof-multipart", "aof", "rdb")
CONSISTENCY_MODES = ("stop", "rewrite", "idle")
COPY_BLOCK = 1024 * 1024
BACKGROUND_CHILDREN = ("rdb_bgsave_in_progress", "aof_rewrite_in_progress", "aof_rewrite_scheduled")
METADATA = "redis-backup.json"
METADATA_VERSION = 1
CREATED_BY = "lorawan.tts.redis_backup"
CONFIG_NAMES = ("appendonly", "dir", "appendfilename", "appenddirname", "dbfilename")
PRE_RESTORE_INFIX = ".pre-restore-"
TAIL_LINES = 5
POLL_SECONDS = 0.5

REDIS_ARGUMENT_SPEC = dict(
    service=dict(type="str", default="redis"),
    timeout=dict(type="int", default=300),
)

# Replies redis-cli prints (with or without --no-raw) when the server answers with an error.
ERROR_REPLY = re.compile(
    r"^(?:\(error\) )?(ERR|NOAUTH|WRONGPASS|NOPERM|LOADING|MISCONF|BUSY|READONLY|MASTERDOWN|NOSCRIPT)\b.*$",
    re.MULTILINE,
)
MULTI_BULK_ITEM = re.compile(r'^\s*\d+\) "(.*)"$')
KEYSPACE_DB = re.compile(r"^db\d+$")
SIMPLE_NAME = re.compile(r"^[^/\x00]+$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
REPR_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", '"': '"', "\\": "\\"}


class RedisPersistenceError(ComposeError):
    """A backup or restore step failed or was refused; the message says what, where and what to do."""

    changed = False  # True when the failure came after Redis was stopped (it was started again)


def output_tail(*texts):
    """The last lines of command output, without the compose CLI's own chatter."""
    lines = []
    for text in texts:
        for line in to_text(text or "", errors="surrogate_or_replace").splitlines():
            line = line.strip()
            if not line or "level=warning" in line or re.match(r"^Container \S+ (Creating|Created)$", line):
                continue
            lines.append(line)
    return " | ".join(lines[-TAIL_LINES:])


def parse_info(text):
    """INFO's ``key:value`` lines as a dict of strings."""
    info = {}
    for line in to_text(text).splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        info[key] = value
    return info


def keyspace_totals(info):
    """The number of keys, and of keys with an expiry, summed over every database in INFO keyspace."""
    keys = expires = 0
    for name, value in info.items():
        if not KEYSPACE_DB.match(name):
            continue
        fields = dict(item.split("=", 1) for item in value.split(",") if "=" in item)
        keys += int(fields.get("keys", 0))
        expires += int(fields.get("expires", 0))
    return keys, expires


def unescape_reply(text):
    """Undo the quoting redis-cli --no-raw applies to bulk strings (sdscatrepr)."""
    out = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            code = text[index + 1]
            if code == "x" and re.match(r"^[0-9a-fA-F]{2}$", text[index + 2 : index + 4]):
                out.append(chr(int(text[index + 2 : index + 4], 16)))
                index += 4
                continue
            if code in REPR_ESCAPES:
                out.append(REPR_ESCAPES[code])
                index += 2
                continue
        out.append(char)
        index += 1
    return "".join(out)


def parse_config_replies(text):
    """Name/value pairs from ``CONFIG GET`` replies printed by redis-cli --no-raw (absent names print nothing)."""
    items = [
        unescape_reply(match.group(1)) for match in map(MULTI_BULK_ITEM.match, to_text(text).splitlines()) if match
    ]
    return dict((items[index], items[index + 1]) for index in range(0, len(items) - 1, 2))


def detect_format(config):
    """The persistence format and the name, inside ``dir``, of what holds the data."""
    if config.get("appendonly") == "yes":
        if config.get("appenddirname"):
            return "aof-multipart", config["appenddirname"]
        return "aof", config.get("appendfilename") or "appendonly.aof"
    return "rdb", config.get("dbfilename") or "dump.rdb"


def persistence_format(config):
    """The format detect_format names, or "none" when the server persists nothing (no AOF, no save points)."""
    fmt, dummy_target = detect_format(config)
    if fmt == "rdb" and not (config.get("save", "").strip() and config.get("dbfilename")):
        return "none"
    return fmt


def version_tuple(version):
    return tuple(int(part) for part in re.findall(r"\d+", version or "")[:3])


def format_description(fmt, target):
    return {
        "aof-multipart": "a multi-part AOF directory (%s/, Redis 7 and later)" % target,
        "aof": "a single-file AOF (%s, Redis 6 and earlier)" % target,
        "rdb": "an RDB snapshot (%s, append-only file off)" % target,
    }[fmt]


def keys_match(recorded, recorded_expires, actual):
    """Whether a restored server's key count fits the recorded one (keys with an expiry may have expired)."""
    return recorded - recorded_expires <= actual <= recorded


def listing_sha256(files):
    """sha256 of the lines ``<sha256>  <relative path>`` sorted by path, as ``sha256sum`` prints them."""
    text = "".join("%s  %s\n" % (item["sha256"], item["path"]) for item in sorted(files, key=lambda f: f["path"]))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def backup_sha256(fmt, files):
    """The backup's one checksum: the single file's for ``aof`` and ``rdb``, the listing's for ``aof-multipart``."""
    if fmt != "aof-multipart" and len(files) == 1:
        return files[0]["sha256"]
    return listing_sha256(files)


def tree_files(root):
    """Regular files under root as sorted relative paths (``/``-separated), without the metadata file.

    Anything else (a symlink, a device) is refused: a backup holds only what Redis wrote.
    """
    found = []
    for current, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            full = os.path.join(current, name)
            relative = os.path.relpath(full, root).replace(os.sep, "/")
            mode = os.lstat(full).st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                raise RedisPersistenceError(
                    "%s is neither a regular file nor a directory: a Redis backup holds only Redis' own files; "
                    "remove it or use another backup" % full
                )
            if relative != METADATA:
                found.append(relative)
    return sorted(found)


def copy_hashed(source, destination, root):
    """Copy a file or a directory tree, private (0600 files, 0700 directories), hashing each file as it is read;
    the files' list as seal() makes it, paths relative to root. A source file that changes while it is copied
    raises."""
    files = []
    sources = [(source, destination)]
    if os.path.isdir(source):
        os.mkdir(destination, 0o700)
        sources = [(os.path.join(source, name), os.path.join(destination, name)) for name in sorted(os.listdir(source))]
    for from_path, to_path in sources:
        if os.path.isdir(from_path):
            files += copy_hashed(from_path, to_path, root)
            continue
        before = os.stat(from_path)
        digest = hashlib.sha256()
        # Not a parenthesized with (Python 3.10): managed hosts may run 3.8.
        with open(from_path, "rb") as reader, writing_to(to_path):  # noqa: SIM117
            with open(os.open(to_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as writer:
                for block in iter(lambda: reader.read(COPY_BLOCK), b""):
                    digest.update(block)
                    writer.write(block)
        after = os.stat(from_path)
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            raise RedisPersistenceError(
                "%s changed while it was copied: something wrote to Redis during the copy; stop the stack first, or "
                "use consistency=rewrite" % from_path
            )
        files.append({"path": os.path.relpath(to_path, root), "size": before.st_size, "sha256": digest.hexdigest()})
    return files


def parse_sha256sum(out):
    """sha256sum's output -> {path: checksum}."""
    checksums = {}
    for line in to_text(out).splitlines():
        checksum, dummy_sep, name = line.partition("  ")
        checksums[name.strip()] = checksum.strip()
    return checksums


def utc_stamp():
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


class RedisPersistence:
    """Backup and restore of one Redis service of a compose project."""

    def __init__(self, project, service="redis", timeout=300, sleep=time.sleep, clock=time.monotonic):
        self.project = project
        self.service = service
        self.timeout = timeout
        self.sleep = sleep
        self.clock = clock
        self.where = "the %s service of %s" % (service, project.project_src)
        # Set once the server was seen running: docker exec by id skips a compose invocation per command.
        self.container_id = None

    # ----------------------------------------------------------------- the running server

    def cli(self, args, data=None, what=None):
        """redis-cli in the running container; error replies raise."""
        what = what or "redis-cli %s" % " ".join(args[:2])
        argv, described = ["redis-cli", *list(args)], "%s in %s" % (what, self.where)
        if self.container_id:
            dummy_rc, out, dummy_err = self.project.exec_container(self.container_id, argv, data=data, what=described)
        else:
            dummy_rc, out, dummy_err = self.project.exec_in(self.service, argv, data=data, what=described)
        error = ERROR_REPLY.search(to_text(out))
        if error:
            hint = "check the Redis server's logs (docker compose logs %s)" % self.service
            if error.group(1) in ("NOAUTH", "WRONGPASS", "NOPERM"):
                hint = (
                    "the server requires a password: set REDISCLI_AUTH in the %s service's environment "
                    "so that redis-cli inside the container authenticates" % self.service
                )
            raise RedisPersistenceError("%s in %s answered %r: %s" % (what, self.where, error.group(0), hint))
        return to_text(out)

    def container(self):
        containers = self.project.containers([self.service]).get(self.service) or []
        return container_state(containers[0]) if containers else None

    def require_running(self):
        self.container_id = self.project.running_container(self.service)
        if self.container_id:
            return
        state = self.container()
        if not state or state["state"] != "running":
            raise RedisPersistenceError(
                "%s is not running (state: %s): the persistence format is read from the running server's "
                "configuration; start it (docker compose up -d %s, or lorawan.tts.compose_service) and retry"
                % (self.where, state["state"] if state else "no container", self.service)
            )
        self.container_id = state["id"]

    def host_directory(self, container_dir):
        """The host directory bind-mounted at container_dir in the running container, when this process can read
        it; else None."""
        found = self.project.running_inspect(self.service) or {}
        for mount in found.get("Mounts") or []:
            if mount.get("Type") == "bind" and mount.get("Destination") == container_dir:
                source = mount.get("Source") or ""
                if os.path.isdir(source) and os.access(source, os.R_OK | os.X_OK):
                    return source
        return None

    def keyspace(self):
        return keyspace_totals(parse_info(self.cli(["INFO", "keyspace"])))

    def server(self):
        """What the running server is configured for, its version and its key count."""
        self.require_running()
        replies = self.cli(
            ["--no-raw"], data="\n".join("CONFIG GET %s" % name for name in CONFIG_NAMES), what="CONFIG GET"
        )
        config = parse_config_replies(replies)
        if "appendonly" not in config or "dir" not in config:
            raise RedisPersistenceError(
                "CONFIG GET in %s did not answer appendonly and dir (got %s): is the CONFIG command renamed or "
                "disabled (rename-command)? This module reads the persistence format from it"
                % (self.where, ", ".join(sorted(config)) or "nothing")
            )
        fmt, target = detect_format(config)
        if not SIMPLE_NAME.match(target) or not config["dir"].startswith("/"):
            raise RedisPersistenceError(
                "unexpected persistence paths in %s: dir=%r, data=%r" % (self.where, config["dir"], target)
            )
        info = parse_info(self.cli(["INFO"]))
        keys, expires = keyspace_totals(info)
        return {
            "format": fmt,
            "target": target,
            "dir": config["dir"],
            "config": dict((name, config.get(name, "")) for name in CONFIG_NAMES),
            "version": info.get("redis_version", ""),
            "keys": keys,
            "expires": expires,
            "busy": [name for name in BACKGROUND_CHILDREN if info.get(name, "0") not in ("0", "")],
        }

    def exists(self, path):
        rc, dummy_out, dummy_err = self.project.exec_in(self.service, ["test", "-e", path], check=False)
        return rc == 0

    def owner(self, path):
        dummy_rc, out, dummy_err = self.project.exec_in(
            self.service, ["stat", "-c", "%u:%g", path], what="reading the owner of %s in %s" % (path, self.where)
        )
        owner = to_text(out).strip()
        if not re.match(r"^\d+:\d+$", owner):
            raise RedisPersistenceError("unexpected owner %r of %s in %s" % (owner, path, self.where))
        return owner

    def wait_ready(self):
        """Wait until the server answers PING and has finished loading its data."""
        deadline = self.clock() + self.timeout
        last = "no answer yet"
        while True:
            rc, out, err = self.project.exec_in(self.service, ["redis-cli", "PING"], check=False)
            if rc == 0 and to_text(out).strip() == "PONG":
                rc, out, err = self.project.exec_in(self.service, ["redis-cli", "INFO", "persistence"], check=False)
                if rc == 0 and parse_info(out).get("loading") == "0":
                    return
                last = "still loading its data"
            else:
                last = output_tail(out, err) or "no answer"
                state = self.container()
                if not state or state["state"] in ("exited", "dead", "restarting"):
                    raise RedisPersistenceError(
                        "%s stopped while starting (state: %s); its log ends: %s"
                        % (self.where, state["state"] if state else "no container", self.logs_tail())
                    )
            if self.clock() >= deadline:
                raise RedisPersistenceError(
                    "%s did not become ready within %d s (%s): raise timeout for large data sets, or see "
                    "docker compose logs %s" % (self.where, self.timeout, last, self.service)
                )
            self.sleep(POLL_SECONDS)

    def logs_tail(self):
        dummy_rc, out, err = self.project.run("logs", "--no-color", "--tail", "20", self.service, check=False)
        return output_tail(out, err) or "(no output)"

    def stop(self):
        self.project.run(
            "stop", "--timeout", str(self.timeout), self.service, what="stopping the %s service" % self.service
        )

    def start(self):
        self.project.run("start", self.service, what="starting the %s service" % self.service)

    def one_off(self, argv, volumes=(), check=True, what=None):
        """argv in a one-off container of the service (its volumes mounted, no dependencies, no TTY), as root."""
        args = ["run", "--rm", "--no-deps", "-T", "--user", "0"]
        for volume in volumes:
            args += ["-v", volume]
        args += ["--entrypoint", argv[0], self.service, *list(argv[1:])]
        return self.project.run(
            *args, check=check, what=what or "%s in a one-off %s container" % (argv[0], self.service)
        )

    def wait_background(self, fields):
        """Wait until none of the INFO persistence fields (in-progress flags) is set."""
        deadline = self.clock() + self.timeout
        while True:
            info = parse_info(self.cli(["INFO", "persistence"]))
            busy = [name for name in fields if info.get(name, "0") not in ("0", "")]
            if not busy:
                return info
            if self.clock() >= deadline:
                raise RedisPersistenceError(
                    "%s still has %s after %d s: raise timeout, or use consistency=stop"
                    % (self.where, ", ".join(busy), self.timeout)
                )
            self.sleep(POLL_SECONDS)

    def background_persist(self, fmt):
        """BGREWRITEAOF (AOF formats) or BGSAVE (rdb), and wait until it finished successfully."""
        children = BACKGROUND_CHILDREN
        if fmt == "rdb":
            command, status_field = "BGSAVE", "rdb_last_bgsave_status"
        else:
            command, status_field = "BGREWRITEAOF", "aof_last_bgrewrite_status"
        for dummy_attempt in range(3):
            self.wait_background(children)
            dummy_rc, reply, dummy_err = self.project.exec_in(
                self.service, ["redis-cli", command], what="%s in %s" % (command, self.where)
            )
            if "already in progress" not in to_text(reply):
                break
        if not re.search(r"^Background .*(started|scheduled)", to_text(reply), re.MULTILINE):
            raise RedisPersistenceError(
                "%s in %s answered %r: see docker compose logs %s, or use consistency=stop"
                % (command, self.where, output_tail(reply), self.service)
            )
        info = self.wait_background(children)
        if info.get(status_field) != "ok":
            raise RedisPersistenceError(
                "%s in %s failed (%s: %s): see docker compose logs %s (often a full disk where the data directory "
                "is), or use consistency=stop"
                % (command, self.where, status_field, info.get(status_field), self.service)
            )

    # ----------------------------------------------------------------- backup

    def backup_path(self, dest):
        base = os.path.join(dest, "redis-%s" % utc_stamp())
        path, number = base, 1
        while os.path.lexists(path):
            number += 1
            path = "%s-%d" % (base, number)
        return path

    def backup(self, dest, consistency="stop", check_mode=False):
        self.project.require_services([self.service])
        dest = os.path.abspath(dest)
        if os.path.lexists(dest) and not os.path.isdir(dest):
            raise RedisPersistenceError("dest %s exists and is not a directory: give a directory for backups" % dest)
        if ":" in dest:
            raise RedisPersistenceError(
                "dest %s contains ':', which docker's volume syntax cannot mount: choose another directory" % dest
            )
        server = self.server()
        result = {
            "changed": True,
            "path": self.backup_path(dest),
            "format": server["format"],
            "consistency": consistency,
            "key_count": server["keys"],
            "redis_version": server["version"],
        }
        if check_mode:
            return result
        try:
            return self.write_backup(server, dest, consistency, result)
        except OSError as error:
            raise RedisPersistenceError(
                os_error_message("copying the Redis persistence files of %s into %s" % (self.where, dest), error, dest)
            ) from error

    def write_backup(self, server, dest, consistency, result):
        """backup() once the server is known: the copy in a new directory under dest, removed if anything fails."""
        if not os.path.isdir(dest):
            os.makedirs(dest, 0o700)
            os.chmod(dest, 0o700)
        while True:
            try:
                os.mkdir(result["path"], 0o700)
                break
            except OSError as error:
                if error.errno != errno.EEXIST:
                    raise
                result["path"] = self.backup_path(dest)
        path = result["path"]
        os.chmod(path, 0o700)
        try:
            if consistency == "idle":
                keys, expires, files = self.copy_idle(server, path)
            else:
                keys, expires = self.copy_out(server, path, consistency)
                files = self.seal(path)
                self.verify(server["format"], server["config"], server["target"], path, files)
            result.update(
                key_count=keys,
                files=files,
                size=sum(item["size"] for item in files),
                sha256=backup_sha256(server["format"], files),
            )
            self.write_metadata(path, server, result, expires)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return result

    def copy_out(self, server, path, consistency):
        """Copy the persistence files to path; return the key count (and expiring keys) they hold."""
        source = "%s:%s" % (self.service, posixpath.join(server["dir"], server["target"]))
        destination = os.path.join(path, server["target"])
        what = "copying %s out of %s" % (posixpath.join(server["dir"], server["target"]), self.where)
        if consistency == "rewrite":
            keys, expires = self.keyspace()
            self.background_persist(server["format"])
            self.docker_cp(source, destination, what)
            return keys, expires
        if server["format"] == "rdb":
            # Only a SAVE makes dump.rdb hold everything: without save points, a shutdown does not write it.
            self.cli(["SAVE"])
        keys, expires = self.keyspace()
        self.stop()
        try:
            self.docker_cp(source, destination, what)
        finally:
            self.start()
        self.wait_ready()
        after, dummy_expires = self.keyspace()
        if after != keys:
            self.project.module.warn(
                "%s had %d keys before it was stopped and %d after it started again: something writes to Redis "
                "during the backup; stop the stack first for an exact key count" % (self.where, keys, after)
            )
        return keys, expires

    def docker_cp(self, source, destination, what):
        """docker compose cp; a full disk is raised as the OSError it is."""
        try:
            self.project.run("cp", source, destination, what=what)
        except ComposeError as error:
            if out_of_space(error.stderr):
                raise disk_full(destination) from error
            raise

    def seal(self, path):
        """Make the copy private (directories 0700, files 0600) and list its files with sizes and checksums."""
        for current, dirnames, filenames in os.walk(path):
            for name in dirnames:
                if not os.path.islink(os.path.join(current, name)):
                    os.chmod(os.path.join(current, name), 0o700)
            for name in filenames:
                full = os.path.join(current, name)
                if not os.path.islink(full):
                    os.chmod(full, 0o600)
        files = []
        for relative in tree_files(path):
            full = os.path.join(path, relative)
            files.append({"path": relative, "size": os.path.getsize(full), "sha256": file_sha256(full)})
        if not files:
            raise RedisPersistenceError("copying the persistence files out of %s produced no files" % self.where)
        return files

    def check_argv(self, fmt, config, target):
        """The check tool, the file to check (relative to the backup) and whether it can read a read-only mount."""
        if fmt == "aof-multipart":
            # redis-check-aof follows the manifest to the base and incr files.
            return (
                "redis-check-aof",
                "%s/%s.manifest" % (target, config.get("appendfilename") or "appendonly.aof"),
                False,
            )
        if fmt == "aof":
            return "redis-check-aof", target, False
        return "redis-check-rdb", target, True

    def verify(self, fmt, config, target, path, files):
        """Check the copy with the project's own redis image; a failure raises (the caller removes the copy)."""
        tool, relative, read_only = self.check_argv(fmt, config, target)
        if not os.path.isfile(os.path.join(path, relative)):
            raise RedisPersistenceError(
                "the copy of %s in %s has no %s: the server's persistence files are incomplete; see docker compose "
                "logs %s" % (self.where, path, relative, self.service)
            )
        # redis-check-aof opens every file read-write (fopen "r+") even without --fix, so a read-only
        # mount fails with "Read-only file system"; it writes nothing unless --fix is given, which the
        # size and modification time comparison below confirms.
        before = dict((item["path"], self.file_stamp(path, item["path"])) for item in files)
        rc, out, err = self.one_off(
            [tool, "/backup/%s" % relative],
            volumes=["%s:/backup%s" % (path, ":ro" if read_only else "")],
            check=False,
            what="%s on the copy" % tool,
        )
        if rc != 0:
            raise RedisPersistenceError(
                "%s found the copy of %s invalid (exit %d): %s. The partial backup was removed; retry (with "
                "consistency=stop if something was writing), and see docker compose logs %s"
                % (tool, self.where, rc, output_tail(out, err), self.service),
                rc=rc,
                stderr=err,
            )
        after = dict((item["path"], self.file_stamp(path, item["path"])) for item in files)
        if after != before:
            raise RedisPersistenceError(
                "%s changed the copy in %s while checking it: the backup was removed" % (tool, path)
            )

    def copy_idle(self, server, path):
        """Copy the files of a server nothing writes to (the caller stopped the stack), verified; (keys, expires,
        files).

        The server's check tool reads the live files while they are copied. A copy byte for byte the same as files
        that passed the check is as good as checked, and no one-off container is needed. From a bind-mounted data
        directory the copy is made on the host, hashed as it is read; else `docker cp`, with the live files'
        sha256 read in the container at the same time.
        """
        keys, expires = server["keys"], server["expires"]
        if server["format"] == "rdb" or server["busy"]:
            if server["format"] == "rdb":
                self.cli(["SAVE"])
            self.wait_background(BACKGROUND_CHILDREN)
            keys, expires = self.keyspace()
        tool, relative, dummy_read_only = self.check_argv(server["format"], server["config"], server["target"])
        host_dir = self.host_directory(server["dir"])

        def copy():
            if not host_dir:
                return self.copy_through_docker(server, path)
            live = os.path.join(host_dir, server["target"])
            return copy_hashed(live, os.path.join(path, server["target"]), path), []

        checked, (files, differ) = self.project.docker_while(
            ["exec", self.container_id, tool, posixpath.join(server["dir"], relative)], copy
        )
        if checked[0] != 0:
            raise RedisPersistenceError(
                "%s found the persistence files of %s invalid (exit %d): %s. The partial backup was removed; see "
                "docker compose logs %s" % (tool, self.where, checked[0], output_tail(*checked[1:]), self.service),
                rc=checked[0],
                stderr=checked[2],
            )
        if differ:
            raise RedisPersistenceError(
                "the copy of %s differs from the server's files (%s): something wrote to Redis during the copy; stop "
                "the stack first, or use consistency=rewrite" % (self.where, ", ".join(differ))
            )
        return keys, expires, files

    def copy_through_docker(self, server, path):
        """docker cp of the live files and their sha256 in the container, at once; (files, those that differ)."""
        live_dir = posixpath.join(server["dir"], server["target"])
        copied, summed = self.project.docker_concurrently(
            [
                ["cp", "%s:%s" % (self.container_id, live_dir), os.path.join(path, server["target"])],
                ["exec", self.container_id, "sha256sum", *self.live_files(live_dir)],
            ]
        )
        if copied[0] != 0 and out_of_space(copied[2]):
            raise disk_full(os.path.join(path, server["target"]))
        if copied[0] != 0:
            raise RedisPersistenceError(
                "copying %s out of %s failed (exit %d): %s"
                % (live_dir, self.where, copied[0], output_tail(*copied[1:]))
            )
        files = self.seal(path)
        live = parse_sha256sum(summed[1])
        differ = [
            item["path"] for item in files if live.get(posixpath.join(server["dir"], item["path"])) != item["sha256"]
        ]
        return files, differ

    def live_files(self, live_dir):
        """The server's persistence files under live_dir (a file, or Redis 7's appendonlydir), as container paths."""
        dummy_rc, out, dummy_err = self.project.exec_container(
            self.container_id, ["find", live_dir, "-type", "f"], what="listing %s in %s" % (live_dir, self.where)
        )
        return sorted(line.strip() for line in to_text(out).splitlines() if line.strip())

    def live_checksums(self, server, files):
        """sha256 of the server's own copies of these backup files (by live path), read in its container."""
        container_id = self.container_id or self.container()["id"]
        sources = [posixpath.join(server["dir"], item["path"]) for item in files]
        dummy_rc, out, dummy_err = self.project.exec_container(container_id, ["sha256sum", *sources], check=False)
        return parse_sha256sum(out)

    def files_differ(self, server, files):
        """The backup files whose live counterpart is missing or differs (all of them when that cannot be read)."""
        checksums = self.live_checksums(server, files)
        return [
            item["path"]
            for item in files
            if checksums.get(posixpath.join(server["dir"], item["path"])) != item["sha256"]
        ]

    @staticmethod
    def file_stamp(path, relative):
        info = os.stat(os.path.join(path, relative))
        return info.st_size, info.st_mtime_ns

    def write_metadata(self, path, server, result, expires):
        metadata = {
            "created_by": CREATED_BY,
            "metadata_version": METADATA_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "format": server["format"],
            "target": server["target"],
            "config": server["config"],
            "redis_version": server["version"],
            "keys": result["key_count"],
            "expires": expires,
            "consistency": result["consistency"],
            "service": self.service,
            "project_src": self.project.project_src,
            "files": result["files"],
            "size": result["size"],
            "sha256": result["sha256"],
        }
        target = os.path.join(path, METADATA)
        with writing_to(target):
            descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                json.dump(metadata, handle, indent=2, sort_keys=True)
                handle.write("\n")

    # ----------------------------------------------------------------- restore

    def read_backup(self, src):
        """The backup's metadata, after checking that src is complete and every checksum matches."""
        src = os.path.abspath(src)
        if not os.path.lexists(src):
            raise RedisPersistenceError(
                "src %s does not exist: give the directory lorawan.tts.redis_backup returned as path" % src
            )
        if os.path.isfile(src) and os.path.basename(src) == METADATA:
            src = os.path.dirname(src)
        metadata_path = os.path.join(src, METADATA)
        if not os.path.isdir(src) or not os.path.isfile(metadata_path):
            raise RedisPersistenceError(
                "src %s is not a backup made by lorawan.tts.redis_backup, or an incomplete one: it has no %s. "
                "Give the directory the backup returned as path" % (src, METADATA)
            )
        try:
            with open(metadata_path) as handle:
                metadata = json.load(handle)
        except (OSError, ValueError) as error:
            raise RedisPersistenceError(
                "%s is unreadable (%s): the backup is damaged; use another one" % (metadata_path, error)
            ) from None
        problem = self.metadata_problem(metadata)
        if problem:
            raise RedisPersistenceError(
                "%s is not a valid backup record (%s): use another backup" % (metadata_path, problem)
            )
        listed = dict((item["path"], item) for item in metadata["files"])
        present = tree_files(src)
        missing = sorted(set(listed) - set(present))
        if missing:
            raise RedisPersistenceError(
                "backup %s is incomplete: %s recorded in %s %s missing; use another backup"
                % (src, ", ".join(missing), METADATA, "is" if len(missing) == 1 else "are")
            )
        extra = sorted(set(present) - set(listed))
        if extra:
            raise RedisPersistenceError(
                "backup %s holds files its %s does not list (%s): it was changed after the backup; remove them or "
                "use another backup" % (src, METADATA, ", ".join(extra))
            )
        for relative in present:
            full = os.path.join(src, relative)
            size, digest = os.path.getsize(full), file_sha256(full)
            if size != listed[relative]["size"] or digest != listed[relative]["sha256"]:
                raise RedisPersistenceError(
                    "checksum mismatch in backup %s: %s has %d bytes, sha256 %s, but %s recorded %d bytes, sha256 %s; "
                    "the backup was altered or damaged after it was made: use another backup"
                    % (src, relative, size, digest, METADATA, listed[relative]["size"], listed[relative]["sha256"])
                )
        metadata["path"] = src
        return metadata

    @staticmethod
    def metadata_problem(metadata):
        if not isinstance(metadata, dict) or metadata.get("created_by") != CREATED_BY:
            return "not written by %s" % CREATED_BY
        if metadata.get("metadata_version") != METADATA_VERSION:
            return "record version %r, this module reads %d" % (metadata.get("metadata_version"), METADATA_VERSION)
        if metadata.get("format") not in FORMATS:
            return "unknown format %r" % (metadata.get("format"),)
        target = metadata.get("target")
        if not isinstance(target, str) or not SIMPLE_NAME.match(target) or target in (".", ".."):
            return "bad target %r" % (target,)
        if not isinstance(metadata.get("keys"), int) or not isinstance(metadata.get("expires", 0), int):
            return "keys is not a number"
        files = metadata.get("files")
        if not isinstance(files, list) or not files:
            return "no files listed"
        for item in files:
            if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                return "a file entry without a path"
            parts = item["path"].split("/")
            if parts[0] != target or ".." in parts or "" in parts:
                return "file %r is outside %s" % (item["path"], target)
            if not isinstance(item.get("size"), int) or not SHA256_HEX.match(str(item.get("sha256"))):
                return "file %r has no size or sha256" % item["path"]
        return None

    def compatibility_problem(self, backup, server):
        """Why this backup cannot go into this server as it is configured, and what to do; None if it can."""
        taken = "src %s holds %s, taken from Redis %s" % (
            backup["path"],
            format_description(backup["format"], backup["target"]),
            backup.get("redis_version") or "(unknown version)",
        )
        configured = "%s (Redis %s) is configured for %s" % (
            self.where,
            server["version"],
            format_description(server["format"], server["target"]),
        )
        if backup["format"] != server["format"]:
            if backup["format"] == "aof" and server["format"] == "aof-multipart":
                advice = (
                    "restore it into a server like the one it came from (Redis 6, appendonly yes), then upgrade that "
                    "server to Redis 7, which converts %s into %s/ on its first start; or take a new backup of a "
                    "server with the same configuration" % (backup["target"], server["target"])
                )
            else:
                advice = (
                    "restore it into a server configured like the one it came from (appendonly %s%s), or take a "
                    "backup of a server configured like this one"
                    % (
                        (backup.get("config") or {}).get("appendonly", "?"),
                        ", Redis 7 or later" if backup["format"] == "aof-multipart" else "",
                    )
                )
            return "%s, but %s: a format mismatch. Nothing was changed; %s" % (taken, configured, advice)
        names = ["target"]
        if backup["format"] == "aof-multipart":
            names.append("appendfilename")  # the manifest names the parts after it
        backup_config = dict(backup.get("config") or {}, target=backup["target"])
        server_config = dict(server["config"], target=server["target"])
        differing = [name for name in names if backup_config.get(name) != server_config.get(name)]
        if differing:
            mismatches = ", ".join(
                "%s %r here, %r in the backup" % (name, server_config.get(name), backup_config.get(name))
                for name in differing
            )
            wanted = ", ".join(
                "%s=%s" % (name, value) for name, value in sorted((backup.get("config") or {}).items()) if name != "dir"
            )
            return (
                "%s, but %s, with other file names (%s). Nothing was changed; configure the server like the one the "
                "backup came from (%s)" % (taken, configured, mismatches, wanted)
            )
        if version_tuple(backup.get("redis_version"))[:2] > version_tuple(server["version"])[:2]:
            return (
                "%s, newer than %s's Redis %s: Redis cannot load data files written by a newer version. Nothing was "
                "changed; restore it into Redis %s or later"
                % (taken, self.where, server["version"], ".".join(map(str, version_tuple(backup["redis_version"])[:2])))
            )
        return None

    def require_data_volume(self, data_dir, services):
        """A one-off container sees the server's files only when the data directory is on a compose volume."""
        definition = services.get(self.service) or {}
        for volume in definition.get("volumes") or []:
            if isinstance(volume, dict):
                target = volume.get("target") or ""
            else:
                parts = str(volume).split(":")
                target = parts[1] if len(parts) > 1 else parts[0]
            target = target.rstrip("/") or "/"
            if data_dir == target or data_dir.startswith(target.rstrip("/") + "/"):
                return
        raise RedisPersistenceError(
            "Redis' data directory %s is not on a volume of the %s service in %s's compose file: its data would not "
            "survive a new container, and a restore cannot move it aside. Mount a volume there (the TTS docs use "
            "${DEV_DATA_DIR:-.env/data}/redis:/data) and retry" % (data_dir, self.service, self.project.project_src)
        )

    def restore(self, src, check_mode=False):
        services = self.project.require_services([self.service])
        backup = self.read_backup(src)
        server = self.server()
        problem = self.compatibility_problem(backup, server)
        if problem:
            raise RedisPersistenceError(problem)
        self.require_data_volume(server["dir"], services)
        result = {
            "changed": True,
            "restored_from": backup["path"],
            "format": backup["format"],
            "key_count": backup["keys"],
        }
        if server["keys"] == backup["keys"] and not self.files_differ(server, backup["files"]):
            # A rollback whose migrations never reached Redis: its files are the backup's, byte for byte.
            result["changed"] = False
            return result
        if check_mode:
            return result
        target = posixpath.join(server["dir"], server["target"])
        aside = "%s%s%s" % (target, PRE_RESTORE_INFIX, utc_stamp())
        had_target = self.exists(target)
        if had_target and self.exists(aside):
            raise RedisPersistenceError("%s already exists in %s: wait a second and retry" % (aside, self.where))
        owner = self.owner(server["dir"])
        previous_keys = server["keys"]
        state = {"stopped": False, "moved": False}
        keys = None
        try:
            self.stop()
            state["stopped"] = True
            if had_target:
                self.one_off(["mv", target, aside], what="moving %s aside to %s" % (target, aside))
                state["moved"] = True
            self.project.run(
                "cp",
                os.path.join(backup["path"], backup["target"]),
                "%s:%s" % (self.service, target),
                what="copying %s into %s" % (backup["path"], self.where),
            )
            self.one_off(["chown", "-R", owner, target], what="giving %s to %s" % (target, owner))
            self.start()
            self.wait_ready()
            keys, dummy_expires = self.keyspace()
            if not keys_match(backup["keys"], backup.get("expires", 0), keys):
                raise RedisPersistenceError(
                    "the restored server has %d keys, but %s recorded %d%s"
                    % (
                        keys,
                        METADATA,
                        backup["keys"],
                        " (%d with an expiry)" % backup["expires"] if backup.get("expires") else "",
                    )
                )
        except ComposeError as error:
            self.roll_back(error, backup, target, aside, had_target, state, previous_keys)
        result["key_count"] = keys
        if state["moved"]:
            rc, out, err = self.one_off(["rm", "-rf", aside], check=False)
            if rc != 0:
                self.project.module.warn(
                    "restored, but removing the previous data %s in %s failed: %s; remove it by hand"
                    % (aside, self.where, output_tail(out, err))
                )
        return result

    def roll_back(self, error, backup, target, aside, had_target, state, previous_keys):
        """Put the previous files back after a failed restore, start Redis, and raise what happened."""
        failed = "restoring %s into %s failed: %s" % (backup["path"], self.where, error)
        if not state["stopped"]:
            self.project.run("start", self.service, check=False)  # in case the failed stop stopped it after all
            raise RedisPersistenceError(
                failed + ". Nothing was changed", argv=error.argv, rc=error.rc, stderr=error.stderr
            )
        try:
            self.stop()
            if state["moved"] or not had_target:  # what is at target now is not the previous data
                self.one_off(["rm", "-rf", target], what="removing the restored %s" % target)
            if state["moved"]:
                self.one_off(["mv", aside, target], what="moving %s back to %s" % (aside, target))
            self.start()
            self.wait_ready()
            keys, dummy_expires = self.keyspace()
        except ComposeError as rollback_error:
            where_now = (
                "the previous files are %s inside the %s service's data volume: stop it, remove %s, move them back "
                "to %s and start it" % (aside, self.service, target, target)
                if state["moved"]
                else "the previous files were not moved; start the %s service (docker compose start %s)"
                % (self.service, self.service)
            )
            new_error = RedisPersistenceError(
                "%s. Putting the previous data back failed too: %s. %s" % (failed, rollback_error, where_now),
                argv=rollback_error.argv,
                rc=rollback_error.rc,
                stderr=rollback_error.stderr,
            )
            new_error.changed = True
            raise new_error from None
        if keys == previous_keys:
            outcome = "The server was returned to its previous data (%d keys)" % keys
        else:
            outcome = "The server was returned to its previous data files, but has %d keys where it had %d before" % (
                keys,
                previous_keys,
            )
        new_error = RedisPersistenceError(
            "%s. %s; nothing was restored. Check the backup, or restore another one" % (failed, outcome),
            argv=error.argv,
            rc=error.rc,
            stderr=error.stderr,
        )
        new_error.changed = True
        raise new_error
