# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pull, stop, start or bring up compose services, reporting exactly what changed (lorawan.tts.compose_service)."""

from __future__ import annotations

import time

from ansible_collections.lorawan.tts.plugins.module_utils.compose import (
    ComposeError,
    container_state,
    stderr_tail,
)
from ansible_collections.lorawan.tts.plugins.module_utils.compose_file import (
    image_registry,
    image_with_tag,
    parse_image,
)

STATES = ("pulled", "stopped", "started", "present")
UP_STATES = ("running", "restarting", "paused")  # what `stop` has to act on
DOWN_STATES = ("created", "exited", "dead")  # what `start` can act on
POLL_SECONDS = 1.0

TAG_MISSING = ("manifest unknown", "manifest for", "not found")
ACCESS_DENIED = ("unauthorized", "denied", "authentication required", "requested access to the resource")
UNREACHABLE = (
    "connection refused",
    "no such host",
    "timeout",
    "network is unreachable",
    "tls",
    "dial tcp",
    "connection reset",
    "no route to host",
)


def _ordered(containers):
    return sorted(containers or [], key=lambda container: container.get("Name", ""))


def snapshot(by_service):
    """What a change means for containers: which exist and whether each runs (restarting counts as running)."""
    result = {}
    for service, containers in by_service.items():
        states = []
        for container in _ordered(containers):
            state = container_state(container)
            status = "running" if state["state"] == "restarting" else state["state"]
            states.append((state["id"], status))
        result[service] = states
    return result


def dependencies(service_configs, names):
    """The services named and everything they depend on (depends_on, transitively), in a stable order."""
    seen = []
    pending = list(names)
    while pending:
        name = pending.pop(0)
        if name in seen or name not in service_configs:
            continue
        seen.append(name)
        depends_on = service_configs[name].get("depends_on") or []
        pending.extend(sorted(depends_on) if isinstance(depends_on, dict) else list(depends_on))
    return seen


def pull_failure_message(project_src, images, stderr):
    """Why `compose pull` failed (missing tag, access, unreachable registry), and what to do."""
    failed = {service: image for service, image in images.items() if image in stderr} or images
    listing = ", ".join("%s of service %s" % (image, service) for service, image in sorted(failed.items()))
    registries = ", ".join(sorted({image_registry(parse_image(image).repository) for image in failed.values()}))
    text = stderr.lower()
    if any(marker in text for marker in TAG_MISSING):
        reason = "the tag does not exist in the registry %s" % registries
        todo = "set an image tag that exists (for The Things Stack, a released X.Y.Z) in the compose file and retry"
    elif any(marker in text for marker in ACCESS_DENIED):
        reason = "the registry %s refused access (or the repository does not exist)" % registries
        todo = "check the repository name, run 'docker login %s' on the host if it needs credentials, and retry" % (
            registries
        )
    elif any(marker in text for marker in UNREACHABLE):
        reason = "the registry %s could not be reached" % registries
        todo = "check the host's network, DNS and proxy settings for that registry and retry"
    else:
        reason = "the registry %s did not deliver it" % registries
        todo = "check the image reference in the compose file and the registry, and retry"
    return (
        "pulling %s failed in %s: %s. Nothing was stopped: the containers keep running their current images. "
        "To fix: %s. (%s)" % (listing, project_src, reason, todo, stderr_tail(stderr) or "no error output")
    )


class ServiceControl:
    """Brings the named services of a compose project to a state; `result` always holds what is known so far."""

    def __init__(self, project, services=None, check_mode=False, tag=None):
        self.project = project
        self.tag = tag
        self.module = project.module
        self.check_mode = check_mode
        configs = project.services()
        if services:
            project.require_services(services)
            self.services = list(dict.fromkeys(services))
        else:
            self.services = sorted(configs)
        self.configs = configs
        self.result = {"changed": False, "containers": {}, "image_ids": {"before": {}, "after": {}}}

    # -- observation -----------------------------------------------------------------------------

    def images(self):
        """The image of each named service (services built without an image are left out): the configured one,
        or its repository with `tag` when a tag is given."""
        configured = {name: self.configs[name]["image"] for name in self.services if self.configs[name].get("image")}
        if self.tag is None:
            return configured
        return {name: image_with_tag(parse_image(image), self.tag) for name, image in configured.items()}

    def local_image_id(self, image):
        rc, out, dummy_err = self.module.run_command(
            [self.project.docker, "image", "inspect", "--format", "{{.Id}}", image]
        )
        return out.strip() if rc == 0 and out.strip() else None

    def image_ids(self):
        return {service: self.local_image_id(image) for service, image in self.images().items()}

    def containers(self):
        return self.project.containers()

    def report(self, by_service):
        """containers: per named service, the state of its (first) container, or None without one."""
        report = {}
        for service in self.services:
            found = _ordered(by_service.get(service))
            report[service] = container_state(found[0]) if found else None
        self.result["containers"] = report

    # -- states ----------------------------------------------------------------------------------

    def run(self, state, wait=False, wait_timeout=120):
        before = self.containers()
        self.report(before)
        # Stopping or starting containers changes no image: look images up only when they can move.
        ids_before = self.image_ids() if state in ("pulled", "present") else {}
        self.result["image_ids"] = {"before": ids_before, "after": dict(ids_before)}
        if state == "pulled":
            self.pull(ids_before)
            return self.result
        if state == "stopped":
            acting = self.stop(before)
        elif state == "started":
            acting = self.start(before)
        else:
            acting = self.up(before, ids_before)
        if self.check_mode:
            self.result["changed"] = acting
            return self.result
        after = self.containers()
        self.result["changed"] = snapshot(before) != snapshot(after)
        if state == "present":
            self.result["image_ids"]["after"] = self.image_ids()
        if wait and state in ("started", "present"):
            after = self.wait(wait_timeout)
        self.report(after)
        return self.result

    def pull(self, ids_before):
        images = self.images()
        if not images:
            return
        if self.check_mode:
            # A missing local image will certainly arrive; whether a tag moved in the registry is only known by pulling.
            self.result["changed"] = any(ids_before.get(service) is None for service in images)
            return
        try:
            if self.tag is None:
                self.project.run("pull", "--quiet", *list(images), what="pulling the images of %s" % ", ".join(images))
            else:
                for image in sorted(set(images.values())):
                    self.project.docker_command(["pull", "--quiet", image], what="pulling %s" % image)
        except ComposeError as error:
            raise ComposeError(
                pull_failure_message(self.project.project_src, images, error.stderr or str(error)),
                argv=error.argv,
                rc=error.rc,
                stderr=error.stderr,
            ) from None
        ids_after = self.image_ids()
        self.result["image_ids"]["after"] = ids_after
        self.result["changed"] = ids_after != ids_before

    def stop(self, before):
        """Stop the named services that run; never their dependencies, never a recreation."""
        running = [
            service
            for service in self.services
            if any(container_state(c)["state"] in UP_STATES for c in before.get(service) or [])
        ]
        if running and not self.check_mode:
            self.project.run("stop", *running, what="stopping %s" % ", ".join(running))
        return bool(running)

    def start(self, before):
        """Start the named services' existing containers that are stopped (compose also starts their dependencies)."""
        missing = [service for service in self.services if not before.get(service)]
        if missing:
            raise ComposeError(
                "service(s) %s have no container to start in %s: create them with state=present (docker compose up)"
                % (", ".join(missing), self.project.project_src)
            )
        paused = [
            container_state(c)["name"]
            for service in self.services
            for c in before[service]
            if container_state(c)["state"] == "paused"
        ]
        if paused:
            raise ComposeError(
                "container(s) %s in %s are paused, which start does not change: resume them with 'docker compose "
                "unpause' and retry" % (", ".join(paused), self.project.project_src)
            )
        to_start = [
            service
            for service in self.services
            if any(container_state(c)["state"] in DOWN_STATES for c in before[service])
        ]
        if to_start and not self.check_mode:
            self.project.run("start", *to_start, what="starting %s" % ", ".join(to_start))
        return bool(to_start)

    def up(self, before, ids_before):
        """Make the containers match the compose file: create, start or recreate (docker compose up --detach)."""
        if self.check_mode:
            return self.predict_up(before, ids_before)
        self.project.run("up", "--detach", *self.services, what="bringing up %s" % ", ".join(self.services))
        return True

    def config_hashes(self):
        """Compose v2's hash of each service's configuration (the container label it compares), or None."""
        rc, out, dummy_err = self.project.run("config", "--hash=*", check=False)
        if rc != 0:
            return None
        hashes = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2:
                hashes[parts[0]] = parts[1]
        return hashes

    def predict_up(self, before, ids_before):
        """Would `up` create, start or recreate a container of these services or their dependencies?"""
        hashes = self.config_hashes()
        for service in dependencies(self.configs, self.services):
            containers = before.get(service) or []
            if not containers:
                return True
            image = self.configs[service].get("image")
            local_id = ids_before[service] if service in ids_before else (image and self.local_image_id(image))
            for container in containers:
                state = container_state(container)
                if state["state"] != "running":
                    return True
                if image and (local_id is None or local_id != state["image_id"]):
                    return True
                labels = (container.get("Config") or {}).get("Labels") or {}
                if hashes and hashes.get(service) and labels.get("com.docker.compose.config-hash") != hashes[service]:
                    return True
        return False

    # -- waiting ---------------------------------------------------------------------------------

    def wait(self, timeout):
        """Until every named service's containers run, and are healthy where they have a healthcheck."""
        deadline = time.monotonic() + timeout
        while True:
            by_service = self.containers()
            pending = []
            for service in self.services:
                containers = _ordered(by_service.get(service))
                if not containers:
                    pending.append("%s: no container" % service)
                for container in containers:
                    state = container_state(container)
                    if state["state"] in ("exited", "dead"):
                        self.report(by_service)
                        raise ComposeError(
                            "container %s of service %s %s (exit code %s) while waiting for it to run in %s: %s; "
                            "see 'docker compose logs %s', fix the cause and retry"
                            % (
                                state["name"],
                                service,
                                state["state"],
                                (container.get("State") or {}).get("ExitCode"),
                                self.project.project_src,
                                self.logs_tail(service) or "no log output",
                                service,
                            )
                        )
                    if state["state"] != "running" or state["health"] not in (None, "healthy"):
                        pending.append(self.describe(service, container))
            if not pending:
                return by_service
            if time.monotonic() >= deadline:
                self.report(by_service)
                raise ComposeError(
                    "services in %s were not running and healthy after %d s: %s. See 'docker compose logs' for "
                    "those services; if they are only slow to start, raise wait_timeout"
                    % (self.project.project_src, timeout, "; ".join(pending))
                )
            time.sleep(POLL_SECONDS)

    @staticmethod
    def describe(service, container):
        state = container_state(container)
        text = "%s: %s" % (service, state["state"])
        if state["health"]:
            text += ", health %s" % state["health"]
            log = ((container.get("State") or {}).get("Health") or {}).get("Log") or []
            if log and state["health"] != "healthy":
                output = stderr_tail(log[-1].get("Output") or "")
                text += " (last check exit %s%s)" % (log[-1].get("ExitCode"), ": " + output if output else "")
        return text

    def logs_tail(self, service):
        rc, out, err = self.project.run("logs", "--no-color", "--tail", "5", service, check=False)
        return stderr_tail(out if rc == 0 else err)
