"""stack_migrate's helpers (image references, edition detection, output summaries) and its plan and run against a
fake compose project."""

from __future__ import annotations

import pytest
from ansible_collections.lorawan.tts.plugins.module_utils.compose import ComposeError
from ansible_collections.lorawan.tts.plugins.module_utils.compose_file import parse_image
from ansible_collections.lorawan.tts.plugins.module_utils.migrations import (
    StackMigration,
    config_flags,
    detect_edition,
    output_summary,
    words,
)
from ansible_collections.lorawan.tts.plugins.module_utils.versions import VersionError


@pytest.mark.parametrize(
    ("image", "parts"),
    [
        ("thethingsnetwork/lorawan-stack:3.32.0", ("thethingsnetwork/lorawan-stack", "3.32.0")),
        (
            "localhost:5000/thethingsnetwork/lorawan-stack:3.32",
            ("localhost:5000/thethingsnetwork/lorawan-stack", "3.32"),
        ),
        ("localhost:5000/thethingsnetwork/lorawan-stack", ("localhost:5000/thethingsnetwork/lorawan-stack", None)),
        ("redis@sha256:" + "a" * 64, ("redis", None)),
    ],
)
def test_image_repository_and_tag(image: str, parts: tuple) -> None:
    reference = parse_image(image)
    assert (reference.repository, reference.tag) == parts


def test_edition_from_entrypoint_then_image() -> None:
    assert detect_edition({"entrypoint": ["tti-lw-stack", "-c", "/config/x.yml"], "image": "x/y:1"}) == "enterprise"
    assert detect_edition({"entrypoint": "ttn-lw-stack -c /c.yml", "image": "x/y:1"}) == "open-source"
    assert detect_edition({"image": "registry:5000/thethingsindustries/lorawan-stack:3.32.0"}) == "enterprise"
    with pytest.raises(VersionError, match="set edition"):
        detect_edition({"image": "example/lorawan-stack:3.32.0"})


@pytest.mark.parametrize(
    ("command", "flags"),
    [
        ("start", []),
        ("start all -c /config/ttn-lw-stack.yml", ["-c", "/config/ttn-lw-stack.yml"]),
        (["start", "--config", "/a.yml", "-c", "/b.yml"], ["--config", "/a.yml", "-c", "/b.yml"]),
        ("start --config=/config/x.yml", ["--config=/config/x.yml"]),
        ("start -c", []),
        (None, []),
    ],
)
def test_config_flags_of_a_compose_command(command: object, flags: list[str]) -> None:
    assert config_flags(words(command)) == flags


def test_output_summary_drops_compose_progress_lines() -> None:
    output = (
        "INFO Applying migration name=a\nERROR migration a failed: boom\n"
        " Container x-redis-1 Running \n Container x-stack-run-26f7 Created \n"
        'time="2026-11-25T09:16:30Z" level=warning msg="the attribute `version` is obsolete"\n'
    )
    assert output_summary(output) == "INFO Applying migration name=a | ERROR migration a failed: boom"


NS_DEVICES = "ttn:v3:ns:devices:schema-version"
NS_UPLINKS = "ttn:v3:ns:application-uplinks:schema-version"
MIGRATED = {
    NS_DEVICES: "1",
    NS_UPLINKS: "1",
    "ttn:v3:as:schema-version": "1",
    "ttn:v3:js:keys:schema-version": "1",
    "ttn:v3:dcs:schema-version": None,
}


class FakeProject:
    """The calls StackMigration makes on a ComposeProject; stack commands act on a dict standing for Redis."""

    docker = "docker"

    def __init__(self, redis: dict[str, str | None], tag: str = "3.32.0") -> None:
        self.redis = dict(redis)
        self.tag = tag
        self.module = self
        self.mgets = 0
        self.runners_started = 0
        self.commands: list[list[str]] = []

    def require_services(self, names: list[str]) -> dict[str, dict]:
        stack = {"image": f"thethingsnetwork/lorawan-stack:{self.tag}", "entrypoint": ["ttn-lw-stack", "-c", "/c.yml"]}
        return {"stack": stack, "redis": {}, "postgres": {}}

    def exec_in(self, service: str, argv: list[str], **kwargs: object) -> tuple[int, str, str]:
        assert (service, argv[:3]) == ("redis", ["redis-cli", "--no-raw", "MGET"])
        self.mgets += 1
        values = [self.redis.get(key) for key in argv[3:]]
        lines = [f'{n}) "{value}"' if value is not None else f"{n}) (nil)" for n, value in enumerate(values, start=1)]
        return 0, "\n".join(lines) + "\n", ""

    def stack_command(self, argv: list[str]) -> tuple[int, str, str]:
        self.commands.append(argv)
        if argv[:2] == ["ns-db", "migrate"]:
            self.redis.update({NS_DEVICES: "1", NS_UPLINKS: "1"})
            return 0, "", "INFO\tMigrated database schema"
        return 0, "", "INFO\tDatabase is up to date" if argv[0] == "is-db" else "INFO\tMigrated database"

    def run(self, *args: str, **kwargs: object) -> tuple[int, str, str]:
        if args[:2] == ("run", "-d"):
            self.runners_started += 1
            return 0, "runner-1\n", ""
        assert args[:4] == ("run", "--rm", "-T", "stack")
        return self.stack_command(list(args[4:]))

    def run_command(self, argv: list[str], **kwargs: object) -> tuple[int, str, str]:
        if argv[:3] == ["docker", "exec", "runner-1"]:
            assert argv[3:6] == ["ttn-lw-stack", "-c", "/c.yml"]
            return self.stack_command(argv[6:])
        assert argv == ["docker", "rm", "--force", "runner-1"]
        return 0, "", ""


def migration(project: FakeProject, edition: str = "open-source", start: str = "3.31.1") -> StackMigration:
    return StackMigration(project, "stack", "redis", "postgres", edition, start, project.tag)


def test_a_migrated_hop_runs_is_db_alone_without_a_runner_or_reading_redis_again() -> None:
    project = FakeProject(MIGRATED)
    hop = migration(project)
    plan = hop.plan()
    assert plan == [["is-db", "migrate"]]
    results, failed = hop.run(plan)
    assert failed is None
    assert [(result["argv"], result["applied"]) for result in results] == [(["is-db", "migrate"], False)]
    assert (project.mgets, project.runners_started) == (1, 0)


def test_a_missing_ns_key_is_forced_and_applied_means_the_key_changed() -> None:
    project = FakeProject({**MIGRATED, NS_DEVICES: None, NS_UPLINKS: None})
    hop = migration(project)
    plan = hop.plan()
    assert plan == [["is-db", "migrate"], ["ns-db", "migrate", "--force"]]
    results, failed = hop.run(plan)
    assert failed is None
    assert [result["applied"] for result in results] == [False, True]
    assert project.commands == plan
    assert (project.mgets, project.runners_started) == (3, 1)


def test_a_redis_command_that_changes_no_key_applied_nothing() -> None:
    project = FakeProject(MIGRATED)
    hop = migration(project)
    results, dummy_failed = hop.run(hop.plan(components=["as-db"]))
    assert [(result["argv"], result["applied"]) for result in results] == [(["as-db", "migrate"], False)]
    assert project.runners_started == 0


def test_an_ns_db_migrate_that_only_sets_the_uplinks_key_applied_it() -> None:
    project = FakeProject({**MIGRATED, NS_UPLINKS: None})
    hop = migration(project)
    assert hop.plan() == [["is-db", "migrate"]]
    results, dummy_failed = hop.run(hop.plan(components=["ns-db"]))
    assert [(result["argv"], result["applied"]) for result in results] == [(["ns-db", "migrate"], True)]


def test_enterprise_hop_reads_the_dcs_key_below_3_26() -> None:
    project = FakeProject(MIGRATED, tag="3.25.0")
    plan = migration(project, "enterprise", "3.24.2").plan()
    assert plan == [["is-db", "migrate"], ["noc-db", "migrate"], ["dcs-db", "migrate"]]


class StatusProject(FakeProject):
    """A started stack whose `is-db status` reports `unapplied` migrations (a start with the schema behind)."""

    def __init__(self, redis: dict[str, str | None], tag: str, unapplied: int) -> None:
        super().__init__(redis, tag)
        self.unapplied = unapplied

    def stack_command(self, argv: list[str]) -> tuple[int, str, str]:
        self.commands.append(argv)
        assert argv == ["is-db", "status"]
        fields = f'{{"migrations": 16, "unapplied_migrations": {self.unapplied}, "applied_migrations": 14}}'
        return 0, "", f"INFO\tStatus fetched\t{fields}\n"


def test_after_the_start_every_redis_schema_version_must_be_current() -> None:
    project = FakeProject({**MIGRATED, "ttn:v3:as:schema-version": None})
    with pytest.raises(ComposeError, match=r"Redis schema version of as-db is missing or below 1"):
        migration(project).check_applied()


def test_before_3_32_2_there_is_no_is_db_status_to_ask() -> None:
    project = FakeProject(MIGRATED)
    assert migration(project).check_applied() == {"redis_schema_versions": project_versions(MIGRATED)}
    assert project.commands == []


def test_from_3_32_2_is_db_status_must_report_nothing_unapplied() -> None:
    good = StatusProject(MIGRATED, "3.32.2", unapplied=0)
    assert migration(good, start="3.32.0").check_applied()["is_db_status"]["unapplied_migrations"] == 0
    behind = StatusProject(MIGRATED, "3.32.2", unapplied=2)
    with pytest.raises(ComposeError, match="is-db status reports 2 of its 16 Identity Server migrations unapplied"):
        migration(behind, start="3.32.0").check_applied()


def project_versions(redis: dict[str, str | None]) -> dict[str, str | None]:
    return {
        "ns-db": redis[NS_DEVICES],
        "as-db": redis["ttn:v3:as:schema-version"],
        "js-db": redis["ttn:v3:js:keys:schema-version"],
        "dcs-db": redis["ttn:v3:dcs:schema-version"],
    }
