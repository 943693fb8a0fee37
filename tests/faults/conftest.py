"""Faults and bad input against real sandbox deployments: the integration tests' fixtures."""

from __future__ import annotations

from tests.integration.conftest import ansible_env, deploy, docker_sandbox, run_playbook

__all__ = ["ansible_env", "deploy", "docker_sandbox", "run_playbook"]
