"""A full upgrade driven only by the collection's modules, then a restore to the state before it."""

from __future__ import annotations

import pytest
from ttssandbox.fingerprint import data_differences

UPGRADE = """
- hosts: localhost
  gather_facts: false
  vars:
    project: {project}
    backup_dir: {backup_dir}
    target: "3.32.0"
  tasks:
    - name: facts before
      lorawan.tts.stack_info:
        project_src: "{{{{ project }}}}"
        backup_dir: "{{{{ backup_dir }}}}"
      register: before

    - name: services that carry the stack's version
      ansible.builtin.set_fact:
        versioned: "{{{{ ['stack', 'grafana'] if before.tts.edition == 'enterprise' else ['stack'] }}}}"
        from_version: "{{{{ before.tts.stack_version }}}}"

    - name: set the tag
      lorawan.tts.compose_image:
        project_src: "{{{{ project }}}}"
        services: "{{{{ versioned }}}}"
        tag: "{{{{ target }}}}"
        backup: true

    - name: pull
      lorawan.tts.compose_service:
        project_src: "{{{{ project }}}}"
        services: "{{{{ versioned }}}}"
        state: pulled

    - name: stop
      lorawan.tts.compose_service:
        project_src: "{{{{ project }}}}"
        services: "{{{{ versioned }}}}"
        state: stopped

    - name: dump postgres
      lorawan.tts.postgres_dump:
        project_src: "{{{{ project }}}}"
        dest: "{{{{ backup_dir }}}}/ttn_lorawan.dump"
      register: dump

    - name: back up redis
      lorawan.tts.redis_backup:
        project_src: "{{{{ project }}}}"
        dest: "{{{{ backup_dir }}}}/redis"
      register: redis

    - name: migrate
      lorawan.tts.stack_migrate:
        project_src: "{{{{ project }}}}"
        from_version: "{{{{ from_version }}}}"
        to_version: "{{{{ target }}}}"
      register: migration

    - name: start
      lorawan.tts.compose_service:
        project_src: "{{{{ project }}}}"
        services: "{{{{ versioned }}}}"
        state: present
        wait: true

    - name: facts after
      lorawan.tts.stack_info:
        project_src: "{{{{ project }}}}"
      register: after

    - name: verify
      ansible.builtin.assert:
        that:
          - after.tts.stack_version == target
          - migration.changed
"""

RESTORE = """
- hosts: localhost
  gather_facts: false
  vars:
    project: {project}
  tasks:
    - name: stop
      lorawan.tts.compose_service:
        project_src: "{{{{ project }}}}"
        services: {versioned}
        state: stopped

    - name: old tag back
      lorawan.tts.compose_image:
        project_src: "{{{{ project }}}}"
        services: {versioned}
        tag: "3.31.1"

    - name: restore postgres
      lorawan.tts.postgres_restore:
        project_src: "{{{{ project }}}}"
        src: {dump}

    - name: restore redis
      lorawan.tts.redis_restore:
        project_src: "{{{{ project }}}}"
        src: {redis}

    - name: start
      lorawan.tts.compose_service:
        project_src: "{{{{ project }}}}"
        services: {versioned}
        state: present
        wait: true
"""


@pytest.mark.parametrize(
    ("edition", "redis"),
    [("open-source", "7"), ("open-source", "6"), ("enterprise", "7"), ("enterprise", "6")],
)
def test_upgrade_with_the_modules_then_restore(deploy, run_playbook, tmp_path, edition: str, redis: str) -> None:
    deployment = deploy("3.31.1", "--edition", edition, "--redis", redis)
    before = deployment.fingerprint()
    backup_dir = tmp_path / "backup"

    upgrade = run_playbook(UPGRADE.format(project=deployment.dir, backup_dir=backup_dir))
    assert upgrade.rc == 0, upgrade.stderr
    assert upgrade.result("facts before")["tts"]["edition"] == edition
    migrated = [" ".join(command["argv"]) for command in upgrade.result("migrate")["commands"]]
    assert migrated[0] == "is-db migrate"
    assert ("noc-db migrate" in migrated) == (edition == "enterprise")

    upgraded = deployment.fingerprint()
    assert upgraded["stack_version"] == "3.32.0"
    assert data_differences(before, upgraded) == []
    assert deployment.healthz() == 200
    expected_format = "aof-multipart" if redis == "7" else "aof"
    assert upgrade.result("back up redis")["format"] == expected_format

    versioned = ["stack", "grafana"] if edition == "enterprise" else ["stack"]
    restore = run_playbook(
        RESTORE.format(
            project=deployment.dir,
            versioned=versioned,
            dump=upgrade.result("dump postgres")["path"],
            redis=upgrade.result("back up redis")["path"],
        )
    )
    assert restore.rc == 0, restore.stderr
    restored = deployment.fingerprint()
    assert restored["stack_version"] == "3.31.1"
    assert restored["postgres"] == before["postgres"]
    assert restored["redis"] == before["redis"]
    assert restored["blob"] == before["blob"]
    assert restored["acme"] == before["acme"]
