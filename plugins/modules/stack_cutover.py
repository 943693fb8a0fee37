#!/usr/bin/python
# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: stack_cutover
short_description: Switch a The Things Stack deployment to a new version in one step, rolling back on failure
version_added: 0.3.0
description:
  - The part of an upgrade that needs the stack stopped, in one process so that no task boundary adds to the
    downtime. In order, stop O(services); capture Postgres (a snapshot inside the server, or a dump when
    O(snapshot) is empty), Redis and the files changed since M(lorawan.tts.backup_files) copied them, at once,
    into O(dest); for each of O(hops), set the image tag of O(services) and run that hop's migrations
    (M(lorawan.tts.stack_migrate)); start O(services); wait until TTS answers its health endpoint and runs the
    last hop (M(lorawan.tts.stack_health)); then check that the migrations left what they must (see
    RV(migrations_checked)).
  - On a failure after the stop and with O(rollback=true), the module rolls back before it fails. It stops the
    new version if it started, puts the files back (the old compose file with them), starts Postgres and Redis
    if the fault stopped them, puts Postgres (from the snapshot, or the dump) and Redis back at once, starts the
    old version and waits until it answers with O(from_version).
  - Every step leaves a mark (its name, the time it began) in RV(marks); the mark C(serving) ends the downtime.
  - O(dest) is not a complete backup yet. Seal it after the new version serves (dump the snapshot, checksum,
    write the manifest) with M(lorawan.tts.postgres_dump) and M(lorawan.tts.backup_manifest).
author:
  - lorawan.tts contributors (!UNKNOWN)
extends_documentation_fragment:
  - lorawan.tts.compose
  - lorawan.tts.attributes
requirements:
  - ruamel.yaml 0.17 or later on the managed host for O(state=upgraded), which sets the image tags in the compose
    file (Python package C(ruamel.yaml), Debian and Ubuntu package C(python3-ruamel.yaml)). Without it, or with
    an older one, the module fails before anything stops.
options:
  services:
    description:
      - The services to stop, re-tag and start (Postgres and Redis keep running).
    type: list
    elements: str
    default: [stack]
  service:
    description:
      - The service that runs The Things Stack; it runs the migrations and answers the health endpoint.
    type: str
    default: stack
  redis_service:
    description:
      - The Redis service.
    type: str
    default: redis
  postgres_service:
    description:
      - The PostgreSQL service.
    type: str
    default: postgres
  edition:
    description:
      - The edition, for the migrations; C(auto) reads it from the stack service's image or binary.
    type: str
    choices: [auto, open-source, enterprise]
    default: auto
  from_version:
    description:
      - The version the deployment runs now, and runs again after a rollback.
    type: str
    required: true
  hops:
    description:
      - The versions to pass through, in order; the last is the target (see the P(lorawan.tts.upgrade_path#filter)
        filter).
    type: list
    elements: str
    required: true
  dest:
    description:
      - This upgrade's backup directory, where M(lorawan.tts.backup_files) already copied the files.
    type: path
    required: true
  snapshot:
    description:
      - The name of the Postgres snapshot to take (see M(lorawan.tts.postgres_snapshot)). Empty makes a
        C(pg_dump) into O(dest) instead, in the downtime.
    type: str
    default: ""
  blob_dir:
    description:
      - The blob directory on the host, when it is not the project's C(blob).
    type: path
  backup_timeout:
    description:
      - Seconds the capture of Redis (and a restore) may wait for Redis.
    type: int
    default: 3600
  health_url:
    description:
      - The health endpoint's URL, when the published port does not reach it.
    type: str
  health_password:
    description:
      - The health endpoint's password (user C(health)).
    type: str
  health_timeout:
    description:
      - Seconds to wait for the started version to answer 200, after the upgrade and after a rollback.
    type: int
    default: 300
  unchanged_files:
    description:
      - Files (C(path), C(sha256)) that must still have these checksums, as M(lorawan.tts.stack_info) listed them
        in RV(lorawan.tts.stack_info#module:tts.compose_files) at the preflight. When one changed since (a
        pre-upgrade task edited the compose file, say), the module fails before it stops anything, so that the
        backup, made from the files as they were, fits what is upgraded.
    type: list
    elements: dict
    default: []
  pin_database_images:
    description:
      - Tags to give the Postgres and Redis images (keys C(postgres), C(redis)) in the same edit as the first hop's
        stack tag, for images on a moving tag such as C(latest) (see
        RV(lorawan.tts.stack_info#module:tts.images)). The module recreates those services on the pinned images
        right after the edit, while the stack is stopped, and waits until they answer; a rollback puts the old
        compose file back and its images with it.
      - The role C(lorawan.tts.upgrade) sets it with O(ignore:tts_pin_database_images=true) to the running Postgres
        major and Redis major.minor.
    type: dict
    default: {}
  journal:
    description:
      - The run's journal (see M(lorawan.tts.upgrade_journal)), opened by C(run) (its id). The module writes into it
        its settings, every step as it begins, the capture and its own process, so that a run that takes over
        after this one was interrupted knows what to undo. C(record) adds what else that run needs (never
        secrets).
      - With O(state=rolled_back), the journal tells how far the cutover got; a run interrupted before its capture
        was complete has nothing to restore.
    type: dict
  rollback:
    description:
      - Roll back by itself on a failure after the stop.
    type: bool
    default: true
  state:
    description:
      - C(upgraded) runs the cutover. C(rolled_back) undoes a cutover that succeeded, when a later step of the
        upgrade failed; O(dest) must hold that cutover's capture (and O(snapshot) its snapshot).
    type: str
    choices: [upgraded, rolled_back]
    default: upgraded
attributes:
  check_mode:
    support: full
    details: Changes nothing and reports a change (there is always one when O(hops) is not empty).
  diff_mode:
    support: full
    details: With O(state=upgraded), the compose files' change to the target (its tag and the pins).
  idempotent:
    support: none
    details: Every run stops, captures and starts. Run it only when the deployment is not at the target yet.
seealso:
  - module: lorawan.tts.backup_files
  - module: lorawan.tts.stack_migrate
  - module: lorawan.tts.stack_health
  - module: lorawan.tts.postgres_snapshot
notes:
  - The role C(lorawan.tts.upgrade) runs this module between its preflight (and the copy of the files) and the
    sealing of the backup.
  - Once the stop has begun, the module ignores SIGINT, SIGTERM and SIGHUP until the deployment is upgraded or
    rolled back, so that a cancelled or disconnected controller does not leave the stack stopped half-way.
"""

EXAMPLES = r"""
- name: Stop, capture, migrate 3.31.1 -> 3.32.0, start and verify, or roll back
  lorawan.tts.stack_cutover:
    project_src: /srv/lorawan-stack
    from_version: 3.31.1
    hops: [3.32.0]
    dest: /var/backups/lorawan-tts/20260314T021500Z
    snapshot: ttn_lorawan_snapshot_20260314t021500z
  register: cutover

- name: A later step failed - put 3.31.1 and its data back
  lorawan.tts.stack_cutover:
    project_src: /srv/lorawan-stack
    from_version: 3.31.1
    hops: [3.32.0]
    dest: /var/backups/lorawan-tts/20260314T021500Z
    snapshot: ttn_lorawan_snapshot_20260314t021500z
    state: rolled_back
"""

RETURN = r"""
stopped:
  description: Whether the stack was stopped.
  returned: always
  type: bool
captured:
  description: Whether Postgres, Redis and the files were captured into O(dest).
  returned: always
  type: bool
capture:
  description: What the capture did, per part (C(postgres), C(redis), C(files)), with the seconds each took.
  returned: always
  type: dict
pinned:
  description: The database services whose image O(pin_database_images) pinned, with their new images.
  returned: when O(pin_database_images) pinned an image
  type: dict
  sample: {"postgres": "postgres:15", "redis": "redis:7.0"}
images_before:
  description: The image ID each of the services and databases ran before the stop; a rollback starts these.
  returned: when the cutover upgraded
  type: dict
  sample: {"postgres": "sha256:4f3c...", "redis": "sha256:91ab...", "stack": "sha256:5f70..."}
images_brought_back:
  description:
    - The images of the old compose file that the rollback pointed back at the images that ran before (a moving
      tag such as C(latest) had been pulled to another image meanwhile).
  returned: when the rollback pointed a tag back
  type: list
  elements: str
  sample: ["thethingsnetwork/lorawan-stack:latest"]
migrations:
  description: Per hop, the commands run and those that applied something.
  returned: always
  type: list
  elements: dict
  sample: [{"from": "3.31.1", "to": "3.32.0", "commands": ["is-db migrate"], "applied": ["is-db migrate"]}]
marks:
  description: "[step, UNIX time it began] for each step: C(stop), C(backup), C(migrate <hop>), C(start),
    C(verify), C(rollback stop), C(rollback restore), C(rollback start), C(rollback verify), C(serving)."
  returned: always
  type: list
  elements: list
migrations_checked:
  description:
    - What the check after the start found (it runs once the new version serves, so it adds nothing to the
      downtime); every Redis schema version current (C(redis_schema_versions)) and, from 3.32.2, what
      C(is-db status) reports (C(is_db_status)). TTS starts from 3.23 with its schema behind and answers its
      health endpoint all the same, so a missing migration fails the cutover here and rolls it back.
  returned: when the upgraded version answered
  type: dict
health:
  description: The last health check (URL, status, running version, seconds).
  returned: when the upgraded or the rolled-back version answered
  type: dict
failed_phase:
  description: The step that failed.
  returned: on failure
  type: str
  sample: migrate 3.32.0
failure:
  description: The step that failed and why.
  returned: on failure
  type: str
rolled_back:
  description: Whether the old version runs and answers again after a failure.
  returned: always
  type: bool
rollback_failure:
  description: Why the rollback failed.
  returned: when the rollback failed
  type: str
rollback_restore_retried:
  description:
    - Why the rollback's first Postgres restore failed, when the server had gone away during it (its container
      stopped or started again); the rollback started it and restored Postgres once more.
  returned: when the rollback restored Postgres a second time
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lorawan.tts.plugins.module_utils.compose import (
    COMPOSE_ARGUMENT_SPEC,
    ComposeError,
    ComposeProject,
    fail_on_compose_error,
)
from ansible_collections.lorawan.tts.plugins.module_utils.compose_file import (
    RUAMEL_YAML_IMPORT_ERROR,
    ComposeFileError,
    ruamel_yaml_problem,
)
from ansible_collections.lorawan.tts.plugins.module_utils.cutover import Cutover, CutoverError
from ansible_collections.lorawan.tts.plugins.module_utils.journal import JournalError


def failure_message(result, params):
    upgrade = "upgrading %s from %s to %s failed at %s" % (
        params["project_src"],
        params["from_version"],
        params["hops"][-1] if params["hops"] else params["from_version"],
        result["failure"],
    )
    if result["rolled_back"]:
        return "%s. Rolled back: %s runs and answers again%s" % (
            upgrade,
            params["from_version"],
            " with the data captured before the upgrade" if result["captured"] else "",
        )
    if not params["rollback"]:
        return "%s. Not rolled back (rollback=false)" % upgrade
    return "%s. The rollback failed too, at %s" % (upgrade, result["rollback_failure"])


def main():
    argument_spec = dict(
        COMPOSE_ARGUMENT_SPEC,
        services=dict(type="list", elements="str", default=["stack"]),
        service=dict(type="str", default="stack"),
        redis_service=dict(type="str", default="redis"),
        postgres_service=dict(type="str", default="postgres"),
        edition=dict(type="str", choices=["auto", "open-source", "enterprise"], default="auto"),
        from_version=dict(type="str", required=True),
        hops=dict(type="list", elements="str", required=True),
        dest=dict(type="path", required=True),
        snapshot=dict(type="str", default=""),
        blob_dir=dict(type="path"),
        backup_timeout=dict(type="int", default=3600),
        health_url=dict(type="str"),
        health_password=dict(type="str", no_log=True),
        health_timeout=dict(type="int", default=300),
        unchanged_files=dict(type="list", elements="dict", default=[]),
        pin_database_images=dict(type="dict", default={}),
        journal=dict(type="dict"),
        rollback=dict(type="bool", default=True),
        state=dict(type="str", choices=["upgraded", "rolled_back"], default="upgraded"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if not params["hops"]:
        module.fail_json(msg="hops is empty: give the versions to pass through, the target last")
    problem = ruamel_yaml_problem() if params["state"] == "upgraded" else None
    if problem:
        module.fail_json(msg=problem, exception=RUAMEL_YAML_IMPORT_ERROR)
    unknown = sorted(set(params["pin_database_images"]) - {"postgres", "redis"})
    if unknown:
        module.fail_json(msg="pin_database_images takes postgres and redis, not %s" % ", ".join(unknown))
    try:
        cutover = Cutover(ComposeProject.from_params(module), params, module.check_mode)
        diff = cutover.planned_change().diff_result() if module._diff and params["state"] == "upgraded" else None
    except ComposeError as error:
        fail_on_compose_error(module, error)
    except ComposeFileError as error:
        module.fail_json(msg=str(error))
    try:
        result = cutover.upgrade() if params["state"] == "upgraded" else cutover.roll_back_upgraded()
    except JournalError as error:
        module.fail_json(msg="the upgrade journal: %s" % error, **cutover.result)
    except CutoverError as error:
        if params["state"] == "rolled_back":
            message = "rolling %s back to %s failed at %s" % (params["project_src"], params["from_version"], error)
        else:
            message = failure_message(cutover.result, params)
        module.fail_json(msg=message, **cutover.result)
    if diff is not None:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
