# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one place that finds and runs the compose command line for a project.

Prefers ``docker compose`` (the Compose v2 plugin) and falls back to a standalone ``docker-compose`` of version 2 or
later; Compose v1 is refused.
Every command is an argv list; nothing goes through a shell and no TTY is allocated.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import time

from ansible.module_utils.common.text.converters import to_text
from ansible_collections.lorawan.tts.plugins.module_utils.compose_file import image_with_tag, parse_image

COMPOSE_ARGUMENT_SPEC = dict(
    project_src=dict(type="path", required=True),
    files=dict(type="list", elements="path"),
    project_name=dict(type="str"),
    env_files=dict(type="list", elements="path"),
)

STDERR_TAIL_LINES = 5
STREAM_CHUNK_BYTES = 65536


# Compose subcommands after which the named services' running containers may be others, or none; the first ones
# may also touch services they do not name (dependencies, recreations).
PROJECT_COMMANDS = ("up", "down", "rm", "create")
SERVICE_COMMANDS = ("start", "stop", "restart", "kill", "pause", "unpause")


class ComposeError(Exception):
    """A compose command failed; the message says what, where and what to do."""

    def __init__(self, message, argv=None, rc=None, stderr=""):
        super().__init__(message)
        self.argv = argv
        self.rc = rc
        self.stderr = stderr


def short_version(text):
    """`compose version --short` output: "2.40.3" (no leading v), or None when empty."""
    lines = to_text(text).strip().splitlines()
    version = lines[0].strip() if lines else ""
    return (version[1:] if version.startswith("v") else version) or None


def stderr_tail(text):
    lines = [line for line in to_text(text, errors="surrogate_or_replace").strip().splitlines() if line.strip()]
    return " | ".join(lines[-STDERR_TAIL_LINES:])


def postgres_login(environment):
    """(superuser, database) that the postgres image sets up from a service's environment (environment_dict):
    POSTGRES_USER, default postgres; POSTGRES_DB, default the user."""
    user = environment.get("POSTGRES_USER") or "postgres"
    return user, environment.get("POSTGRES_DB") or user


def environment_dict(environment):
    """A compose service's `environment` (a mapping or a list of NAME=value), or a container's `Env` list, as a dict.

    A mapping's null stays None; a NAME without `=` in a list takes this process' value, as compose does.
    """
    if isinstance(environment, dict):
        return {str(key): (None if value is None else str(value)) for key, value in environment.items()}
    result = {}
    for item in environment or []:
        name, sep, value = str(item).partition("=")
        result[name] = value if sep else os.environ.get(name)
    return result


@contextlib.contextmanager
def standard_input_from(source):
    """Point this process' standard input (file descriptor 0, which run_command's commands inherit) at the open file
    source, and back when the block ends."""
    try:
        saved = os.dup(0)
    except OSError:  # no standard input at all
        saved = None
    try:
        os.dup2(source.fileno(), 0)
        yield
    finally:
        if saved is None:
            os.close(0)
        else:
            os.dup2(saved, 0)
            os.close(saved)


def stream_stdout(process, path, on_wait=None, clock=time.monotonic):
    """Read a started command's stdout into the file path and its stderr into memory, until both end; {"stderr":
    text}, with "error" (the OSError) when path could not be written, after which the command is killed."""
    stderr = []
    result = {}
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    selector.register(process.stderr, selectors.EVENT_READ)
    waited_since = clock()
    try:
        with open(path, "wb") as out:
            while selector.get_map():
                for key, dummy_events in selector.select(1):
                    chunk = os.read(key.fd, STREAM_CHUNK_BYTES)
                    if not chunk:
                        selector.unregister(key.fileobj)
                    elif key.fileobj is process.stdout:
                        out.write(chunk)
                    else:
                        stderr.append(chunk)
                if on_wait and clock() - waited_since >= 1:
                    waited_since = clock()
                    on_wait()
    except OSError as error:
        process.kill()
        result["error"] = error
    finally:
        selector.close()
    result["stderr"] = to_text(b"".join(stderr), errors="surrogate_or_replace")
    return result


class ComposeProject:
    """A compose project on the managed host, and the CLI that drives it."""

    def __init__(self, module, project_src, files=None, project_name=None, env_files=None):
        self.module = module
        self.project_src = project_src
        self.files = list(files or [])
        self.project_name = project_name
        self.env_files = list(env_files or [])
        if not os.path.isdir(project_src):
            raise ComposeError(
                "project_src %s is not a directory: point it at the directory that holds docker-compose.yml"
                % project_src
            )
        self.docker = module.get_bin_path("docker")
        self._version = None
        self.command = self._find_command()
        self._config = None
        self._running = {}

    @classmethod
    def from_params(cls, module):
        params = module.params
        return cls(
            module, params["project_src"], params.get("files"), params.get("project_name"), params.get("env_files")
        )

    def _find_command(self):
        if self.docker:
            rc, out, dummy_err = self.module.run_command([self.docker, "compose", "version", "--short"])
            if rc == 0:
                self._version = short_version(out)
                return [self.docker, "compose"]
        standalone = self.module.get_bin_path("docker-compose")
        if standalone:
            rc, out, dummy_err = self.module.run_command([standalone, "version", "--short"])
            self._version = short_version(out) if rc == 0 else None
            if self._version and self._version.startswith("1."):
                raise ComposeError(
                    "%s is Compose %s (v1), which has neither `config --format json` nor `cp`: install Compose v2 "
                    "(the docker-compose-plugin package, or a docker-compose of version 2 or later) and retry"
                    % (standalone, self._version)
                )
            return [standalone]
        raise ComposeError(
            "neither 'docker compose' (the Compose v2 plugin) nor 'docker-compose' was found on the host: "
            "install the docker-compose-plugin package (or a docker-compose of version 2 or later) and retry"
        )

    def version(self):
        """The Compose version (without a leading v), or None when it does not say."""
        return self._version

    @property
    def command_name(self):
        return "docker compose" if len(self.command) == 2 else "docker-compose"

    def argv(self, *args):
        argv = [*list(self.command), "--project-directory", self.project_src]
        for compose_file in self.files:
            argv += ["--file", os.path.join(self.project_src, compose_file)]
        if self.project_name:
            argv += ["--project-name", self.project_name]
        for env_file in self.env_files:
            argv += ["--env-file", os.path.join(self.project_src, env_file)]
        return argv + list(args)

    def run(self, *args, **kwargs):
        """Run a compose subcommand; raise ComposeError (with the stderr tail) unless check=False."""
        check = kwargs.pop("check", True)
        what = kwargs.pop("what", None)
        if args and args[0] in PROJECT_COMMANDS + SERVICE_COMMANDS:
            self.forget_containers(args)
        argv = self.argv(*args)
        rc, out, err = self.module.run_command(argv, cwd=self.project_src, **kwargs)
        if check and rc != 0:
            raise ComposeError(
                "%s failed in %s (exit %d): %s"
                % (what or "%s %s" % (self.command_name, args[0]), self.project_src, rc, stderr_tail(err)),
                argv=argv,
                rc=rc,
                stderr=err,
            )
        return rc, out, err

    def run_with_files(self, args, stdin_path=None, stdout_path=None, env=None, what=None, on_wait=None):
        """Run a compose subcommand with stdin or stdout connected to files, for binary streams of any size.

        Through the module's run_command, which would keep stdout in memory and only takes stdin as a string: the
        command inherits this process' standard input, pointed at stdin_path (or /dev/null) for its duration, and
        stdout goes to stdout_path chunk by chunk before run_command reads the (then ended) pipes. on_wait, if
        given, is called about once a second while the command writes stdout_path (for progress).
        """
        argv = self.argv(*args)
        streamed = {}
        with open(stdin_path or os.devnull, "rb") as stdin, standard_input_from(stdin):
            rc, out, err = self.module.run_command(
                argv,
                cwd=self.project_src,
                environ_update=env,
                errors="surrogate_or_replace",
                before_communicate_callback=(
                    (lambda process: streamed.update(stream_stdout(process, stdout_path, on_wait)))
                    if stdout_path
                    else None
                ),
                handle_exceptions=False,
            )
        if "error" in streamed:
            raise ComposeError(
                "%s failed in %s: writing %s: %s"
                % (what or "%s %s" % (self.command_name, args[0]), self.project_src, stdout_path, streamed["error"]),
                argv=argv,
                rc=rc,
                stderr=str(streamed["error"]),
            )
        err = streamed.get("stderr", err)
        if rc != 0:
            raise ComposeError(
                "%s failed in %s (exit %d): %s"
                % (what or "%s %s" % (self.command_name, args[0]), self.project_src, rc, stderr_tail(err)),
                argv=argv,
                rc=rc,
                stderr=err,
            )
        return out

    def docker_while(self, args, action):
        """Run a plain docker command (argv after `docker`) while action() runs here; ((rc, out, err), what action
        returned). An error of action is raised once the command has ended."""
        outcome = {}

        def run_action(dummy_process):
            try:
                outcome["value"] = action()
            except Exception as error:  # re-raised once the command has ended
                outcome["error"] = error

        result = self.module.run_command([self.docker, *args], before_communicate_callback=run_action)
        if "error" in outcome:
            raise outcome["error"]
        return result, outcome.get("value")

    def docker_concurrently(self, commands):
        """Run several plain docker commands (argv lists after `docker`) at once; [(rc, out, err), ...] in order.

        For independent reads of the same container, where each process' start-up would otherwise add up. Each
        command after the first starts while the one before it runs (see docker_while); keep the first one's output
        small, it is read once the others have ended.
        """
        if len(commands) == 1:
            return [self.module.run_command([self.docker, *commands[0]])]
        first, rest = self.docker_while(commands[0], lambda: self.docker_concurrently(commands[1:]))
        return [first, *rest]

    def config(self):
        """The effective configuration (files merged, variables interpolated), as a dict; read once per module run."""
        if self._config is None:
            dummy_rc, out, dummy_err = self.run(
                "config", "--format", "json", what="validating the compose configuration"
            )
            self._config = json.loads(out) or {}
        return self._config

    def forget_config(self):
        """Read the configuration again on next use: a compose file or .env was just changed."""
        self._config = None

    def retag_config(self, services, tag):
        """The services' images now have `tag` in the compose files: the configuration read before says so too,
        without reading it again."""
        for name in services if self._config is not None else []:
            config = self._config["services"][name]
            config["image"] = image_with_tag(parse_image(config["image"]), tag)

    def services(self):
        return dict(self.config().get("services") or {})

    def require_services(self, names):
        known = self.services()
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ComposeError(
                "unknown service(s) %s in %s: the compose project has %s"
                % (", ".join(unknown), self.project_src, ", ".join(sorted(known)) or "no services")
            )
        return known

    def containers(self, services=None):
        """Inspect data of the project's containers (running or not), per service."""
        dummy_rc, out, dummy_err = self.run("ps", "--all", "--quiet", *(services or []))
        ids = out.split()
        if not ids:
            return {}
        rc, out, err = self.module.run_command([self.docker, "inspect", *ids])
        if rc != 0:
            raise ComposeError("docker inspect failed for %s: %s" % (self.project_src, stderr_tail(err)))
        by_service = {}
        for container in json.loads(out):
            labels = container.get("Config", {}).get("Labels") or {}
            if labels.get("com.docker.compose.oneoff") == "True":
                continue
            by_service.setdefault(labels.get("com.docker.compose.service"), []).append(container)
        for service, found in by_service.items():
            # What `ps --quiet <service>` would find now: running_inspect need not ask again.
            running = [container for container in found if container_state(container)["state"] == "running"]
            if len(running) == 1 and len(found) == 1:
                self._running[service] = running[0]
        return by_service

    def docker_command(self, args, what=None):
        """Run a plain docker command (not compose) on the host; raise ComposeError with the stderr tail."""
        argv = [self.docker, *args]
        rc, out, err = self.module.run_command(argv)
        if rc != 0:
            raise ComposeError(
                "%s failed for %s (exit %d): %s"
                % (what or "docker " + args[0], self.project_src, rc, stderr_tail(err)),
                argv=argv,
                rc=rc,
                stderr=err,
            )
        return out

    def forget_containers(self, args):
        named = [name for name in args[1:] if name in self.services()] if self._config is not None else []
        if args[0] in PROJECT_COMMANDS or not named:
            self._running.clear()
        for name in named:
            self._running.pop(name, None)

    def running_inspect(self, service):
        """`docker inspect` of the service's one running container, else None; looked up once until a lifecycle
        command (start, stop, up ...) touches the service."""
        if service not in self._running:
            found = None
            rc, out, dummy_err = self.run("ps", "--quiet", service, check=False)
            ids = out.split() if rc == 0 else []
            if len(ids) == 1:
                rc, out, dummy_err = self.module.run_command([self.docker, "inspect", ids[0]])
                found = json.loads(out)[0] if rc == 0 else None
            self._running[service] = found
        return self._running[service]

    def running_container(self, service):
        """The id of the service's one running container, else None (see running_inspect)."""
        found = self.running_inspect(service)
        return found["Id"] if found else None

    def exec_in(self, service, argv, data=None, env_names=(), **kwargs):
        """Run argv in the service's running container, without a TTY.

        By container id with `docker exec` once the container is known: a compose invocation per command would
        parse the project again each time.
        """
        container_id = self.running_container(service)
        if container_id:
            return self.exec_container(container_id, argv, data=data, env_names=env_names, **kwargs)
        args = ["exec", "-T"]
        for name in env_names:
            args += ["-e", name]  # the value comes from this process' environment, never from argv
        return self.run(*([*args, service, *list(argv)]), data=data, **kwargs)

    def exec_container(self, container_id, argv, data=None, env_names=(), check=True, what=None, **kwargs):
        """Run argv in a running container found by compose labels (see containers()), with `docker exec`, no TTY.

        The same as exec_in for a container already looked up, without the cost of another compose invocation.
        """
        docker_argv = [self.docker, "exec", "-i"] if data is not None else [self.docker, "exec"]
        for name in env_names:
            docker_argv += ["-e", name]  # the value comes from this process' environment, never from argv
        docker_argv += [container_id, *list(argv)]
        rc, out, err = self.module.run_command(docker_argv, data=data, **kwargs)
        if check and rc != 0:
            raise ComposeError(
                "%s failed in container %s of %s (exit %d): %s"
                % (what or " ".join(argv), container_id[:12], self.project_src, rc, stderr_tail(err)),
                argv=docker_argv,
                rc=rc,
                stderr=err,
            )
        return rc, out, err


def container_state(container):
    state = container.get("State") or {}
    health = (state.get("Health") or {}).get("Status")
    return {
        "name": container.get("Name", "").lstrip("/"),
        "id": container.get("Id"),
        "state": state.get("Status"),
        "health": health,
        "image": (container.get("Config") or {}).get("Image"),
        "image_id": container.get("Image"),
    }


def fail_on_compose_error(module, error, **result):
    module.fail_json(msg=str(error), cmd=error.argv, rc=error.rc, stderr=error.stderr, **result)
