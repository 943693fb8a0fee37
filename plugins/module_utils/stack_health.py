# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Ask The Things Stack itself whether it serves: its HTTP health endpoint, then its `version`.

Docker's health status is not used: the TTS image checks once a minute, so waiting for "healthy" would add up
to a minute of downtime. TTS 3.24.0 and later answer ``/healthz``; earlier versions ``/healthz/live`` and
``/healthz/ready``. An optional password (user ``health``, ``http.health.password``) protects them.
"""

from __future__ import annotations

import base64
import http.client
import re
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Dict, Optional, Tuple

from ansible.module_utils.common.text.converters import to_text
from ansible_collections.lorawan.tts.plugins.module_utils.compose import (
    ComposeError,
    container_state,
    environment_dict,
    stderr_tail,
)
from ansible_collections.lorawan.tts.plugins.module_utils.editions import stack_binary, stack_edition

HTTP_PORT = 1885
HEALTHZ_SINCE = (3, 24, 0)
POLL_SECONDS = 0.1
PROBE_TIMEOUT = 5
PASSWORD_VARIABLE = "TTN_LW_HTTP_HEALTH_PASSWORD"  # noqa: S105 the name of a variable
STACK_VERSION_LINE = re.compile(r"^Version:\s+(\S+)\s*$", re.MULTILINE)
VERSION_NUMBERS = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")
# Plain urllib, not ansible.module_utils.urls: that import costs every module run that reads the health more CPU
# than the run's own work, and open_url builds an SSL context per request, even for http:// (a fleet of hosts
# pays both on the controller's machine). No proxy: the endpoint is this host's own published port.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def health_path(version: Optional[str]) -> str:
    """/healthz from 3.24.0; /healthz/ready before (an unknown version is taken as current)."""
    match = VERSION_NUMBERS.match(version or "")
    if match and tuple(int(part or 0) for part in match.groups()) < HEALTHZ_SINCE:
        return "/healthz/ready"
    return "/healthz"


def version_matches(expected: str, actual: Optional[str]) -> bool:
    """'3.32.0' matches only 3.32.0; a documented 'X.Y' target matches any X.Y.Z."""
    if not actual:
        return False
    if expected.count(".") == 1:
        return actual == expected or actual.startswith(expected + ".")
    return actual == expected


def published_address(service_config: Dict[str, Any]) -> Optional[Tuple[str, str]]:
    """(host address, port) that reaches the container's HTTP port, from `docker compose config` (long syntax)."""
    for port in service_config.get("ports") or []:
        if not isinstance(port, dict) or str(port.get("target")) != str(HTTP_PORT):
            continue
        published = str(port.get("published") or "")
        if not published.isdigit():
            continue
        address = port.get("host_ip") or "127.0.0.1"
        if address in ("0.0.0.0", "::", "[::]"):  # noqa: S104 published on every address: loopback reaches it
            address = "127.0.0.1"
        return (f"[{address}]" if ":" in address else address), published
    return None


class StackHealth:
    """The health endpoint and version of the stack service of one compose project."""

    def __init__(
        self,
        project,
        service: str = "stack",
        url: Optional[str] = None,
        password: Optional[str] = None,
        service_config: Optional[Dict[str, Any]] = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.project = project
        self.service = service
        self.sleep = sleep
        self.clock = clock
        config = service_config if service_config is not None else project.require_services([service])[service] or {}
        self.config = config
        environment = environment_dict(config.get("environment"))
        self.password = password if password is not None else environment.get(PASSWORD_VARIABLE)
        self.edition = stack_edition(config)
        self.url = url
        self.address = None if url else published_address(config)

    def endpoint(self, version: Optional[str]) -> str:
        if self.url:
            return self.url
        path = health_path(version)
        if self.address:
            return "http://%s:%s%s" % (self.address[0], self.address[1], path)
        return "http://localhost:%d%s (inside the %s container)" % (HTTP_PORT, path, self.service)

    def container(self) -> Optional[Dict[str, Any]]:
        containers = self.project.containers([self.service]).get(self.service) or []
        return containers[0] if containers else None

    def probe(self, version: Optional[str], container: Optional[Dict[str, Any]]) -> Tuple[Optional[int], str]:
        """One request: (HTTP status or None, what went wrong)."""
        if self.url or self.address:
            url = self.endpoint(version)
            if not url.lower().startswith(("http://", "https://")):
                return None, "%s is not an http:// or https:// URL (tts_healthcheck_url)" % url
            request = urllib.request.Request(url)  # noqa: S310 http(s) only, checked above
            if self.password:
                token = base64.b64encode(("health:%s" % self.password).encode("utf-8")).decode("ascii")
                request.add_header("Authorization", "Basic " + token)
            try:
                with DIRECT.open(request, timeout=PROBE_TIMEOUT) as response:
                    return response.status, ""
            except urllib.error.HTTPError as error:
                return error.code, "HTTP %d" % error.code
            except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
                return None, str(getattr(error, "reason", error))
        if container is None:
            return None, "no container"
        argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", str(PROBE_TIMEOUT)]
        secret = None
        if self.password:
            # On stdin as a curl config line, never on a command line that ps shows.
            argv += ["-K", "-"]
            escaped = self.password.replace("\\", "\\\\").replace('"', '\\"')
            secret = 'user = "health:%s"\n' % escaped
        argv.append("http://localhost:%d%s" % (HTTP_PORT, health_path(version)))
        rc, out, err = self.project.exec_container(container["Id"], argv, data=secret, check=False)
        code = to_text(out).strip()
        if code.isdigit() and code != "000":
            return int(code), "" if code == "200" else "HTTP %s" % code
        return None, stderr_tail(err) or "no answer (exit %d)" % rc

    def running_version(self, container: Dict[str, Any]) -> Optional[str]:
        binary = stack_binary(self.config, self.edition) or "ttn-lw-stack"
        rc, out, err = self.project.exec_container(container["Id"], [binary, "version"], check=False)
        if rc != 0:
            raise ComposeError(
                "'%s version' in the %s container of %s failed (exit %d): %s"
                % (binary, self.service, self.project.project_src, rc, stderr_tail(err) or "no error output")
            )
        match = STACK_VERSION_LINE.search(to_text(out))
        return match.group(1) if match else None

    def check(self, version: Optional[str] = None, container: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """One probe, for facts: never fails. `container`: its inspect data, when the caller has just read it."""
        container = container or self.container()
        running = container is not None and container_state(container)["state"] == "running"
        status, dummy_problem = self.probe(version, container) if running else (None, "not running")
        return {"url": self.endpoint(version), "status": status}

    def wait(self, timeout: float, version: Optional[str] = None, expected: Optional[str] = None) -> Dict[str, Any]:
        """Poll until the endpoint answers 200, then read `version`; fail on a timeout, a crash or another version."""
        started = self.clock()
        deadline = started + timeout
        probes = 0
        container = None
        next_look = started
        problem = "no answer yet"
        from_host = bool(self.url or self.address)
        while True:
            if from_host:
                # The first probe goes out before any look at the container: a stack that already answers is
                # verified without a compose call in between.
                status, problem = self.probe(expected or version, None)
                probes += 1
                if status == 200:
                    break
            # Looking at the container costs a compose call: once a second, or for every probe run inside it.
            if container is None or self.clock() >= next_look or not from_host:
                container = self.container()
                next_look = self.clock() + 1
                state = container_state(container)["state"] if container else "missing"
                if state in ("exited", "dead"):
                    raise ComposeError(
                        "the %s service of %s stopped (%s) instead of serving; its log ends: %s"
                        % (self.service, self.project.project_src, state, self.logs_tail())
                    )
            if container is None or container_state(container)["state"] != "running":
                problem = "container %s" % (container_state(container)["state"] if container else "missing")
            elif not from_host:
                status, problem = self.probe(expected or version, container)
                probes += 1
                if status == 200:
                    break
            if self.clock() >= deadline:
                raise ComposeError(
                    "%s did not answer 200 within %d s (last: %s); its log ends: %s. Raise tts_healthcheck_timeout "
                    "if the stack needs longer to start, or set tts_healthcheck_url / tts_health_password"
                    % (self.endpoint(expected or version), timeout, problem, self.logs_tail())
                )
            self.sleep(POLL_SECONDS)
        healthy_after = self.clock() - started
        container = container or self.container()
        if container is None:
            raise ComposeError(
                "%s answers, but the %s service of %s has no container: something else listens there; set "
                "tts_healthcheck_url" % (self.endpoint(expected or version), self.service, self.project.project_src)
            )
        actual = self.running_version(container)
        if expected and not version_matches(expected, actual):
            raise ComposeError(
                "the %s service of %s answers, but runs version %s, not %s: check the image tag in the compose file "
                "(tts_target_version)" % (self.service, self.project.project_src, actual or "unknown", expected)
            )
        return {
            "url": self.endpoint(expected or version),
            "status": 200,
            "stack_version": actual,
            "seconds": round(healthy_after, 3),
            "probes": probes,
        }

    def logs_tail(self) -> str:
        dummy_rc, out, err = self.project.run("logs", "--no-color", "--tail", "5", self.service, check=False)
        return stderr_tail(to_text(out) + to_text(err)) or "(no output)"
