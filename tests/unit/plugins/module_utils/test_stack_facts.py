"""stack_facts' error paths that a real deployment does not produce on demand, with a fake compose runner."""

from __future__ import annotations

import pytest
from ansible_collections.lorawan.tts.plugins.module_utils.compose import ComposeError
from ansible_collections.lorawan.tts.plugins.module_utils.stack_facts import StackFacts, postgres_major

CONFIG = {
    "services": {
        "stack": {
            "image": "thethingsnetwork/lorawan-stack:3.32.0",
            "entrypoint": ["ttn-lw-stack", "-c", "/config/ttn-lw-stack-docker.yml"],
        },
        "redis": {"image": "redis:7"},
        "postgres": {"image": "postgres:15", "environment": {"POSTGRES_USER": "root", "POSTGRES_DB": "ttn_lorawan"}},
    }
}


def container(service: str) -> dict:
    return {
        "Id": f"{service}-id",
        "Name": f"/tts-{service}-1",
        "State": {"Status": "running"},
        "Config": {"Image": CONFIG["services"][service]["image"], "Env": []},
        "Image": "sha256:0",
    }


class FakeModule:
    def run_command(self, argv, **kwargs):
        return 0, "2.29.7\n", ""


class FakeProject:
    """Answers `exec_container` from a table: (first argv word, second) -> (rc, stdout, stderr)."""

    project_src = "/srv/tts"
    command = ("docker", "compose")
    command_name = "docker compose"
    docker = "docker"
    files: tuple = ()
    env_files: tuple = ()

    def __init__(self, answers: dict) -> None:
        self.module = FakeModule()
        self.answers = answers
        self.env_names = {}

    def config(self) -> dict:
        return CONFIG

    def containers(self, services=None) -> dict:
        return {name: [container(name)] for name in CONFIG["services"]}

    def version(self) -> str:
        return "2.40.3"

    def exec_container(self, container_id, argv, env_names=(), check=True, **kwargs):
        self.env_names[argv[0]] = (env_names, kwargs.get("environ_update"))
        return self.answers.get(tuple(argv[:2]), (0, "", ""))


HEALTHY = {
    ("ttn-lw-stack", "version"): (0, "Version:             3.32.0\n", ""),
    ("redis-cli", "--raw"): (0, "appendonly\nyes\nappenddirname\nappendonlydir\n", ""),
    ("postgres", "--version"): (0, "postgres (PostgreSQL) 15.18\n", ""),
    ("psql", "-X"): (0, "8437095\n", ""),
    ("cat", "/var/lib/postgresql/data/PG_VERSION"): (0, "15\n", ""),
}


def test_redis_that_asks_for_a_password_fails_with_what_to_do() -> None:
    project = FakeProject({**HEALTHY, ("redis-cli", "--raw"): (1, "", "NOAUTH Authentication required.\n")})
    with pytest.raises(ComposeError) as error:
        StackFacts(project).collect()
    message = str(error.value)
    assert "'redis-cli INFO' in service redis (container tts-redis-1) failed in /srv/tts (exit 1)" in message
    assert "NOAUTH Authentication required." in message
    assert "without a password" in message


def test_redis_with_config_disabled_fails_instead_of_guessing_the_format() -> None:
    project = FakeProject({**HEALTHY, ("redis-cli", "--raw"): (0, "", "")})
    with pytest.raises(ComposeError, match=r"did not list 'appendonly'.*allow CONFIG"):
        StackFacts(project).collect()


def test_redis_without_persistence_reports_none() -> None:
    project = FakeProject(
        {**HEALTHY, ("redis-cli", "--raw"): (0, "appendonly\nno\nsave\n\ndbfilename\ndump.rdb\n", "")}
    )
    assert StackFacts(project).collect()["redis"]["format"] == "none"


def test_stack_version_output_without_a_version_line_is_a_warning_not_a_guess() -> None:
    project = FakeProject({**HEALTHY, ("ttn-lw-stack", "version"): (0, "something else\n", "")})
    facts = StackFacts(project).collect()
    assert facts["stack_version"] is None
    assert facts["configured_version"] == "3.32.0"
    assert "printed no 'Version:' line" in facts["warnings"][0]


def test_psql_output_that_is_not_a_size_is_a_warning() -> None:
    project = FakeProject({**HEALTHY, ("psql", "-X"): (0, "ERROR-ish\n", "")})
    facts = StackFacts(project).collect()
    assert facts["postgres"]["database_size"] is None
    assert any("not a database size" in warning for warning in facts["warnings"])


def test_postgres_password_goes_through_the_environment_only() -> None:
    CONFIG["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] = "s3cret"  # noqa: S105
    try:
        project = FakeProject(HEALTHY)
        StackFacts(project).collect()
    finally:
        del CONFIG["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert project.env_names["psql"] == (("PGPASSWORD",), {"PGPASSWORD": "s3cret"})


@pytest.mark.parametrize(
    ("text", "major"),
    [("postgres (PostgreSQL) 9.6.24", "9.6"), ("postgres (PostgreSQL) 16beta1", "16"), ("garbage", None)],
)
def test_postgres_major_of_unusual_version_lines(text: str, major: str | None) -> None:
    assert postgres_major(text) == major


def test_gather_version_reads_only_what_deciding_whether_to_upgrade_needs() -> None:
    project = FakeProject(HEALTHY)
    facts = StackFacts(project).collect("version")
    assert facts["stack_version"] == "3.32.0"
    assert facts["configured_version"] == "3.32.0"
    assert {"edition", "images", "services", "health", "compose_files", "journal"} <= set(facts)
    assert not {"redis", "postgres", "blob"} & set(facts)
    assert not {"redis-cli", "psql", "postgres", "cat", "df"} & set(project.env_names), project.env_names
