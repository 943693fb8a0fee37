#!/usr/bin/python
# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: stack_info
short_description: Read-only facts about a The Things Stack compose deployment
version_added: 0.1.0
description:
  - Gathers what an upgrade, a backup or a restore must know about a TTS docker-compose deployment, without
    changing anything. The edition; each service's image, tag and digest; whether each service runs and is
    healthy; the version the stack runs; the Redis persistence format; the Postgres majors of the image and
    of the data directory; the database and blob sizes; the free space where backups go; the compose command;
    the Python that runs the modules and what it lacks.
  - Commands run only in containers that already run (C(exec -T), no TTY). A stopped service gives partial
    facts (V(null) values) and a warning, never a failure.
  - Also lists warnings about what makes an upgrade unsafe, such as a Postgres or Redis image on C(latest).
author:
  - lorawan.tts contributors (!UNKNOWN)
extends_documentation_fragment:
  - lorawan.tts.compose
  - lorawan.tts.attributes
options:
  backup_dir:
    description:
      - A directory where backups will go. The free space is measured there, or at its nearest existing
        parent when it does not exist yet.
    type: path
  stack_service:
    description:
      - The service that runs The Things Stack.
    type: str
    default: stack
  postgres_service:
    description:
      - The service that runs PostgreSQL.
    type: str
    default: postgres
  redis_service:
    description:
      - The service that runs Redis.
    type: str
    default: redis
  gather:
    description:
      - V(all) gathers every fact. V(version) gathers what deciding whether a deployment is already upgraded
        needs (edition, images, services, the running and configured versions, health, compose files, the upgrade
        journal) and leaves out RV(tts.redis), RV(tts.postgres) and RV(tts.blob) and the warnings that need them,
        which saves seven commands in containers.
    type: str
    choices: [all, version]
    default: all
attributes:
  check_mode:
    support: full
    details:
      - The module only reads, so it does the same in check mode.
  diff_mode:
    support: N/A
    details:
      - The module changes nothing.
  idempotent:
    support: full
notes:
  - The edition is V(enterprise) when the stack's image repository ends in C(thethingsindustries/lorawan-stack),
    V(open-source) for C(thethingsnetwork/lorawan-stack); for other repositories (a mirror) the entrypoint's binary
    decides (C(tti-lw-stack) or C(ttn-lw-stack)).
  - The Postgres database size is measured with C(psql) in the container, as C(POSTGRES_USER) on C(POSTGRES_DB)
    from the compose file; C(POSTGRES_PASSWORD) is passed to it through the environment, never on a command line.
  - Redis is queried with C(redis-cli) in the container; a Redis that requires a password is not supported.
seealso:
  - module: lorawan.tts.compose_service
"""

EXAMPLES = r"""
- name: Gather facts about the deployment
  lorawan.tts.stack_info:
    project_src: /srv/tts
    backup_dir: /var/backups/tts
  register: info

- name: Refuse to upgrade a deployment with unsafe images
  ansible.builtin.assert:
    that:
      - info.tts.warnings | select('search', 'major') | list | length == 0
    fail_msg: "{{ info.tts.warnings | join('; ') }}"

- name: Show the running version
  ansible.builtin.debug:
    msg: "{{ info.tts.edition }} {{ info.tts.stack_version or info.tts.configured_version }}"
"""

RETURN = r"""
tts:
  description: The facts.
  returned: always
  type: dict
  contains:
    edition:
      description: V(open-source), V(enterprise), or V(null) when neither the image nor the entrypoint tells.
      type: str
      sample: open-source
    images:
      description:
        - Each service's configured image, by service name. V(null) values for a service built without an image.
      type: dict
      sample:
        stack:
          image: thethingsnetwork/lorawan-stack:3.31.1
          repository: thethingsnetwork/lorawan-stack
          tag: 3.31.1
          digest: null
      contains:
        image:
          description: The image reference as configured.
          type: str
        repository:
          description: The repository, with its registry host when there is one.
          type: str
        tag:
          description: The tag; V(null) when the reference has none.
          type: str
        digest:
          description: The digest (C(sha256:...)) when the reference pins one, else V(null).
          type: str
        moving_major:
          description: Whether a pull can move the image to another major version (no tag and no digest, or a tag
            without a digit, such as C(latest)).
          type: bool
    compose_files:
      description:
        - The files the configuration is read from, in order (the compose files, then C(.env) or the O(env_files)),
          each with its sha256. M(lorawan.tts.stack_cutover) refuses to start when one changed since.
      type: list
      elements: dict
      sample: [{"path": "/srv/lorawan-stack/docker-compose.yml", "sha256": "9f2c..."}]
    journal:
      description:
        - The upgrade journal of the last or current run (see M(lorawan.tts.upgrade_journal)), or V(null) when no
          run has written one. An C(outcome) of V(null) means a run holds the deployment, or was interrupted.
      type: dict
      sample: {"run": "tts-1-20260314T021500Z-4711", "phase": "serving", "outcome": "upgraded", "updated": 1773454500.5}
    services:
      description: Each service's container, by service name.
      type: dict
      sample:
        stack:
          state: running
          health: healthy
          running: true
          container: tts-stack-1
      contains:
        state:
          description: Docker's state of the container, or V(absent) when the service has no container.
          type: str
        health:
          description: V(starting), V(healthy) or V(unhealthy); V(null) without a healthcheck or a container.
          type: str
        running:
          description: Whether the container runs.
          type: bool
        container:
          description: The container's name (the first, for a scaled service); V(null) without one.
          type: str
    stack_version:
      description: The version the running stack reports (C(<binary> version)); V(null) when it does not run.
      type: str
      sample: 3.31.1
    configured_version:
      description: The tag of the stack's image in the compose file (what runs after the next C(up)).
      type: str
      sample: 3.31.1
    health:
      description: The stack's health endpoint, asked once (see M(lorawan.tts.stack_health)).
      type: dict
      contains:
        url:
          description: C(/healthz) (C(/healthz/ready) before 3.24.0) on the published HTTP port; V(null) without a
            stack service.
          type: str
          sample: http://127.0.0.1:80/healthz
        status:
          description: The HTTP status it answered; V(null) when the stack does not run or nothing answered.
          type: int
          sample: 200
    redis:
      description: The Redis server's facts; V(null) values when it does not run. Absent with O(gather=version).
      type: dict
      contains:
        format:
          description:
            - How the server persists its data, from C(CONFIG GET). V(aof-multipart) (Redis 7+ C(appendonlydir/)),
              V(aof) (a single C(appendonly.aof)), V(rdb) (C(dump.rdb) snapshots) or V(none).
          type: str
          sample: aof-multipart
        version:
          description: The server's version.
          type: str
          sample: 7.0.15
        key_count:
          description: The number of keys in all databases.
          type: int
          sample: 100
        data_dir:
          description: The host directory mounted at the container's C(/data) (bind mount or named volume); V(null)
            when there is none or it is not on this host.
          type: str
          sample: /srv/tts/.env/data/redis
        data_size:
          description: The size of the files in RV(tts.redis.data_dir) in bytes (read even when Redis does not run).
          type: int
          sample: 1048576
    postgres:
      description: The PostgreSQL facts. Absent with O(gather=version).
      type: dict
      contains:
        major_data_dir:
          description:
            - The major version that wrote the data directory (its C(PG_VERSION)). Read in the container, or
              through the host bind mount when the service does not run; V(null) when neither is possible.
          type: str
          sample: "15"
        major_image:
          description:
            - The major version of the server the compose file's image runs, which the next start of the service
              runs (C(PG_MAJOR) or the binary path in the local image's environment, else the image's tag such as
              C(16) or C(16.4-alpine)). V(null) when unknown.
          type: str
          sample: "15"
        major_running:
          description:
            - The major version of the server that runs now (C(postgres --version) in the container); V(null) when
              the service does not run.
          type: str
          sample: "15"
        database_size:
          description: The size of C(POSTGRES_DB) in bytes; V(null) when the service does not run.
          type: int
          sample: 8437095
        data_dir_free:
          description: Bytes free in the file system of the data directory (C(df) in the container), where a
            snapshot of the database (M(lorawan.tts.postgres_snapshot)) is written; V(null) when it does not run.
          type: int
          sample: 52613349376
    blob:
      description: The blob storage (uploaded pictures) on the host. Absent with O(gather=version).
      type: dict
      contains:
        path:
          description:
            - The host directory mounted at the stack's blob directory (C(TTN_LW_BLOB_LOCAL_DIRECTORY), by default
              C(/srv/ttn-lorawan/public/blob)), resolved against O(project_src); V(null) when there is none.
          type: str
          sample: /srv/tts/blob
        size:
          description: The total size of its files in bytes.
          type: int
          sample: 204800
        files:
          description: The number of its files.
          type: int
          sample: 20
    backup_dir_free:
      description: Bytes free at O(backup_dir) (or its nearest existing parent); V(null) without O(backup_dir).
      type: int
      sample: 52613349376
    compose_command:
      description: The compose command found on the host.
      type: dict
      contains:
        name:
          description: V(docker compose) or V(docker-compose).
          type: str
          sample: docker compose
        version:
          description: Its version; V(null) when it does not tell.
          type: str
          sample: 2.29.7
    python:
      description: The Python that runs the modules on the host, and what it lacks.
      type: dict
      contains:
        executable:
          description: Its path (C(ansible_python_interpreter)).
          type: str
          sample: /usr/bin/python3
        version:
          description: Its version.
          type: str
          sample: 3.11.2
        ruamel_yaml:
          description: The version of its ruamel.yaml, which M(lorawan.tts.stack_cutover) and
            M(lorawan.tts.compose_image) need to set image tags in the compose file; V(null) when it has none.
          type: str
          sample: 0.17.21
        problems:
          description:
            - What keeps those modules from running with this Python (ruamel.yaml missing or older than 0.17), each
              naming the package to install; empty when nothing does. The upgrade role's preflight refuses to start
              while there is one.
          type: list
          elements: str
          sample: []
    warnings:
      description:
        - What makes an upgrade, a backup or these facts unsafe or partial. A Postgres or Redis image with no tag or
          a tag without a version number (C(latest)), which a pull can move to another major version (a moving
          tag with a major such as C(latest-pg16) is fine); a Postgres image whose major differs from the data
          directory's; on Enterprise, a grafana tag that differs from the stack's; a stack, Redis or Postgres
          service that does not run.
      type: list
      elements: str
      sample:
        - "the Postgres image postgres:latest of service postgres is on tag 'latest': a pull can move it to
          another major version; pin a version tag (the major the data was written with)"
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lorawan.tts.plugins.module_utils.compose import (
    COMPOSE_ARGUMENT_SPEC,
    ComposeError,
    ComposeProject,
    fail_on_compose_error,
)
from ansible_collections.lorawan.tts.plugins.module_utils.stack_facts import stack_info


def main():
    argument_spec = dict(COMPOSE_ARGUMENT_SPEC)
    argument_spec.update(
        backup_dir=dict(type="path"),
        stack_service=dict(type="str", default="stack"),
        postgres_service=dict(type="str", default="postgres"),
        redis_service=dict(type="str", default="redis"),
        gather=dict(type="str", choices=["all", "version"], default="all"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        project = ComposeProject.from_params(module)
        facts = stack_info(
            project,
            stack_service=params["stack_service"],
            postgres_service=params["postgres_service"],
            redis_service=params["redis_service"],
            backup_dir=params["backup_dir"],
            gather=params["gather"],
        )
    except ComposeError as error:
        fail_on_compose_error(module, error, changed=False)
    module.exit_json(changed=False, tts=facts)


if __name__ == "__main__":
    main()
