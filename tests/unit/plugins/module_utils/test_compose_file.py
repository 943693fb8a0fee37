"""Unit tests for plugins/module_utils/compose_file.py: a corpus of compose files, then the edges."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from ansible_collections.lorawan.tts.plugins.module_utils import compose_file as cf
from ruamel.yaml import YAML

CORPUS = Path(__file__).resolve().parent / "compose_corpus"

ComposeFileError = cf.ComposeFileError
CASES = YAML(typ="safe").load((CORPUS / "cases.yaml").read_text())
DEFAULT_TAG = "3.32.0"


def case_file(name: str) -> str:
    return CASES[name].get("file", name)


SUCCESS_CASES = sorted(name for name, case in CASES.items() if "error" not in case)
ERROR_CASES = sorted(name for name, case in CASES.items() if "error" in case)


# ---------------------------------------------------------------------------
# Helpers


def to_crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def lay_out(tmp_path: Path, name: str, crlf: bool = False) -> Path:
    """The corpus case's compose file (and .env) in a fresh project directory."""
    case = CASES[name]
    data = (CORPUS / case_file(name)).read_bytes()
    if crlf or case.get("crlf"):
        data = to_crlf(data)
    compose_file = tmp_path / "docker-compose.yml"
    compose_file.write_bytes(data)
    env = case.get("env")
    if env == "directory":
        (tmp_path / ".env" / "data").mkdir(parents=True)
    elif env is not None:
        (tmp_path / ".env").write_bytes(env.encode())
    return compose_file


def plan(compose_file: Path, name: str):
    case = CASES[name]
    return cf.plan_tag_change(
        [str(compose_file)],
        case.get("services", ["stack"]),
        case.get("tag", DEFAULT_TAG),
        project_dir=str(compose_file.parent),
        **case.get("options", {}),
    )


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(path): path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file()}


def load(text: str):
    return YAML(typ="safe", pure=True).load(text)


# ---------------------------------------------------------------------------
# The corpus


def test_corpus_is_complete():
    files = sorted(path.name for path in CORPUS.glob("*.compose"))
    covered = {case_file(name) for name in CASES}
    assert len(files) >= 25
    assert covered == set(files), "every corpus file has a case in cases.yaml, and every case a file"


def test_corpus_has_the_tts_docs_files_and_no_placeholders():
    for name in ("01-tts-docs-open-source.compose", "02-tts-docs-enterprise.compose"):
        text = (CORPUS / name).read_text()
        assert "{{" not in text
        assert "# In production, replace 'latest' with tag from" in text
        assert '"80:1885"' in text


@pytest.mark.parametrize("name", SUCCESS_CASES)
def test_corpus_case_sets_the_tag(tmp_path: Path, name: str):
    case = CASES[name]
    compose_file = lay_out(tmp_path, name)
    before = compose_file.read_bytes()
    env_before = (tmp_path / ".env").read_bytes() if (tmp_path / ".env").is_file() else None

    change = plan(compose_file, name)
    assert change.changed is case.get("changed", True)
    assert {service: info["tag"] for service, info in change.previous.items()} == case["previous"]
    assert change.image == case["expect"]
    assert compose_file.read_bytes() == before, "planning writes nothing"

    cf.commit(change)
    after = compose_file.read_bytes()
    assert_only_image_lines_changed(before, after, change, case)
    assert_same_yaml_but_images(before, after, case, name)
    if "env_after" in case:
        assert (tmp_path / ".env").read_bytes() == case["env_after"].encode()
        assert env_before != (tmp_path / ".env").read_bytes()

    again = plan(compose_file, name)
    assert again.changed is False, "a second run changes nothing"
    assert again.image == case["expect"]
    assert {service: info["tag"] for service, info in again.previous.items()} == {
        service: image.rpartition(":")[2] for service, image in case["expect"].items()
    }


def assert_only_image_lines_changed(before: bytes, after: bytes, change, case: dict) -> None:
    before_lines = before.decode().splitlines(keepends=True)
    after_lines = after.decode().splitlines(keepends=True)
    assert len(before_lines) == len(after_lines)
    changed_lines = [
        number for number, pair in enumerate(zip(before_lines, after_lines, strict=True), 1) if pair[0] != pair[1]
    ]
    assert changed_lines == case["lines"]
    for number in changed_lines:
        services = [service for service, info in change.previous.items() if info["line"] == number]
        assert services, f"line {number} changed, but no service's image is there"
        old, new = change.previous[services[0]]["image"], case["expect"][services[0]]
        assert before_lines[number - 1].replace(old, new, 1) == after_lines[number - 1]
    assert before.endswith(b"\n") == after.endswith(b"\n")
    assert before.count(b"\r\n") == after.count(b"\r\n")


def assert_same_yaml_but_images(before: bytes, after: bytes, case: dict, name: str) -> None:
    """The data are the same but for the images; extension fields (x-...) hold anchored images."""
    expected, actual = load(before.decode()), load(after.decode())
    if case["lines"]:
        for service, image in case["expect"].items():
            expected["services"][service]["image"] = image
    for data in (expected, actual):
        for key in [key for key in data if key.startswith("x-")]:
            del data[key]
    assert actual == expected, name


@pytest.mark.parametrize("name", [name for name in SUCCESS_CASES if not CASES[name].get("crlf")])
def test_corpus_case_with_crlf_line_endings(tmp_path: Path, name: str):
    lf_dir, crlf_dir = tmp_path / "lf", tmp_path / "crlf"
    lf_dir.mkdir()
    crlf_dir.mkdir()
    lf_file, crlf_file = lay_out(lf_dir, name), lay_out(crlf_dir, name, crlf=True)
    assert b"\r\n" in crlf_file.read_bytes()
    cf.commit(plan(lf_file, name))
    cf.commit(plan(crlf_file, name))
    assert crlf_file.read_bytes() == to_crlf(lf_file.read_bytes())


def test_crlf_corpus_case_really_has_crlf(tmp_path: Path):
    compose_file = lay_out(tmp_path, "10-crlf.compose")
    data = compose_file.read_bytes()
    assert data.count(b"\r\n") == data.count(b"\n") > 0


@pytest.mark.parametrize("name", ERROR_CASES)
def test_corpus_case_is_refused_and_nothing_changes(tmp_path: Path, name: str):
    compose_file = lay_out(tmp_path, name)
    before = snapshot(tmp_path)
    with pytest.raises(ComposeFileError) as error:
        plan(compose_file, name)
    assert CASES[name]["error"] in str(error.value)
    assert snapshot(tmp_path) == before


def test_error_messages_say_where(tmp_path: Path):
    compose_file = lay_out(tmp_path, "18-digest-only.compose")
    with pytest.raises(ComposeFileError, match=r"docker-compose.yml, line 3: .*replace_digest: true"):
        plan(compose_file, "18-digest-only.compose")
    compose_file = lay_out(tmp_path, "29-malformed.compose")
    with pytest.raises(ComposeFileError, match=r"docker-compose.yml is not valid YAML, line 4, column 4"):
        plan(compose_file, "29-malformed.compose")


# ---------------------------------------------------------------------------
# Tags and image references


@pytest.mark.parametrize("tag", ["3.32.0", "3.32", "latest", "v3.32.0-rc.1", "_build", "3", "a" * 128])
def test_valid_tags(tag: str):
    cf.validate_tag(tag)


@pytest.mark.parametrize(
    "tag",
    ["", ".3", "-3", "3.32.0;rm -rf /", "$(id)", "`id`", "3.32 0", "a" * 129, "3.32.0\n", "x/y", "x:y", "3.32.0@", "é"],
)
def test_invalid_tags_are_refused_with_an_example(tag: str):
    with pytest.raises(ComposeFileError, match=r"for example 3\.32\.0"):
        cf.validate_tag(tag)


def test_tag_is_checked_before_any_file_is_read(tmp_path: Path):
    with pytest.raises(ComposeFileError, match="not a valid Docker image tag"):
        cf.plan_tag_change([str(tmp_path / "missing.yml")], ["stack"], "3.32.0 && reboot")


@pytest.mark.parametrize(
    ("image", "name", "tag", "digest"),
    [
        ("thethingsnetwork/lorawan-stack:3.31.1", "thethingsnetwork/lorawan-stack", "3.31.1", None),
        ("thethingsnetwork/lorawan-stack", "thethingsnetwork/lorawan-stack", None, None),
        ("redis", "redis", None, None),
        ("redis:7", "redis", "7", None),
        ("localhost:5000/thethingsnetwork/lorawan-stack", "localhost:5000/thethingsnetwork/lorawan-stack", None, None),
        (
            "localhost:5000/thethingsnetwork/lorawan-stack:3.31.1",
            "localhost:5000/thethingsnetwork/lorawan-stack",
            "3.31.1",
            None,
        ),
        ("registry.example.com:443/x/y:3.31.1", "registry.example.com:443/x/y", "3.31.1", None),
        ("[::1]:5000/x/y:1", "[::1]:5000/x/y", "1", None),
        ("x/y@sha256:abc", "x/y", None, "sha256:abc"),
        ("localhost:5000/x/y:1@sha256:abc", "localhost:5000/x/y", "1", "sha256:abc"),
        ("x/y:${TTS_VERSION}", "x/y", "${TTS_VERSION}", None),
        ("x/y:${TTS_VERSION:-3.31.1}", "x/y", "${TTS_VERSION:-3.31.1}", None),
        ("${REGISTRY:-localhost:5000}/x/y", "${REGISTRY:-localhost:5000}/x/y", None, None),
        ("${REGISTRY:-a/b:1}/x/y:2", "${REGISTRY:-a/b:1}/x/y", "2", None),
        ("x/y:${A:-${B:-1}}", "x/y", "${A:-${B:-1}}", None),
    ],
)
def test_parse_image(image: str, name: str, tag: str | None, digest: str | None):
    reference = cf.parse_image(image)
    assert image[: reference.name_end] == name
    assert reference.tag == tag
    assert reference.digest == digest


@pytest.mark.parametrize(
    ("image", "variable"),
    [
        ("x:${TTS_VERSION}", "TTS_VERSION"),
        ("x:$TTS_VERSION", "TTS_VERSION"),
        ("x:${TTS_VERSION:-3.31.1}", "TTS_VERSION"),
        ("x:${TTS_VERSION-3.31.1}", "TTS_VERSION"),
        ("x:${TTS_VERSION:?set TTS_VERSION}", "TTS_VERSION"),
        ("x:${TTS_VERSION:+3.31.1}", None),
        ("x:3.${MINOR}", None),
        ("x:3.31.1", None),
    ],
)
def test_tag_variable(image: str, variable: str | None):
    found = cf.parse_image(image).tag_variable()
    match = found.match if found else None
    name = (match.group("bare") or match.group("name")) if match else None
    assert name == variable


def test_unterminated_variable_is_refused():
    with pytest.raises(ComposeFileError, match="no closing"):
        cf.parse_image("x:${TTS_VERSION")


# ---------------------------------------------------------------------------
# Refusals beyond the corpus


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode())
    return path


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        ("services:\n  stack:\n    image: [a, b]\n", {}, "image of service 'stack' is not a string"),
        ("services:\n  stack:\n    image:\n", {}, "image of service 'stack' is not a string"),
        ("services:\n  stack:\n    image: ~\n", {}, "image of service 'stack' is not a string"),
        ("services:\n  stack:\n    image: ${STACK_IMAGE}\n", {}, "comes from a compose variable, which may hold a tag"),
        ("services:\n  stack:\n    image: x/y:3.${MINOR}\n", {}, "mixes text and compose variables"),
        ("services:\n  stack:\n    image: x/y:${V:+3.31.1}\n", {"update_env_file": True}, "can't be predicted"),
        ('services:\n  stack:\n    image: "x/y:3.31\\x2e1"\n', {}, "not written literally"),
        ("services:\n  stack:\n    image: x/y:${V}@sha256:abc\n", {"update_env_file": True}, "pinned by digest"),
        ("services: [stack]\n", {}, "'services' is not a mapping"),
        ("- stack\n", {}, "top level is not a mapping"),
        ("", {}, "the services there are: (none)"),
        ("services:\n  stack:\n    image: x:1\n---\nservices: {}\n", {}, "not valid YAML"),
        ("services:\n\tstack:\n", {}, "not valid YAML, line 2"),
        ("services:\n  stack:\n    image: x:1\n  stack:\n    image: x:2\n", {}, "key 'stack' appears 2 times"),
    ],
)
def test_refusals(tmp_path: Path, text: str, options: dict, message: str):
    compose_file = write(tmp_path / "docker-compose.yml", text)
    with pytest.raises(ComposeFileError) as error:
        cf.plan_tag_change([str(compose_file)], ["stack"], DEFAULT_TAG, project_dir=str(tmp_path), **options)
    assert message in str(error.value)
    assert compose_file.read_bytes() == text.encode()


def test_pins_set_each_database_service_s_own_tag_in_the_same_change(tmp_path: Path):
    text = (
        "services:\n  postgres:\n    image: postgres:latest  # the docs' file\n  redis:\n    image: redis\n"
        "  stack:\n    image: thethingsnetwork/lorawan-stack:latest\n"
    )
    compose_file = write(tmp_path / "docker-compose.yml", text)
    change = cf.plan_tag_change([str(compose_file)], ["stack"], "3.32.0", pins={"postgres": "15", "redis": "7.0"})
    assert change.after(str(compose_file)) == (
        "services:\n  postgres:\n    image: postgres:15  # the docs' file\n  redis:\n    image: redis:7.0\n"
        "  stack:\n    image: thethingsnetwork/lorawan-stack:3.32.0\n"
    )
    assert change.image == {
        "stack": "thethingsnetwork/lorawan-stack:3.32.0",
        "postgres": "postgres:15",
        "redis": "redis:7.0",
    }
    with pytest.raises(ComposeFileError, match="not a valid Docker image tag"):
        cf.plan_tag_change([str(compose_file)], ["stack"], "3.32.0", pins={"postgres": "15; rm -rf /"})
    assert compose_file.read_text() == text


def test_non_utf8_file_is_refused(tmp_path: Path):
    compose_file = tmp_path / "docker-compose.yml"
    compose_file.write_bytes(b"# caf\xe9\nservices:\n  stack:\n    image: x:1\n")
    with pytest.raises(ComposeFileError, match="is not UTF-8"):
        cf.plan_tag_change([str(compose_file)], ["stack"], DEFAULT_TAG)


def test_empty_services_list_is_refused(tmp_path: Path):
    compose_file = write(tmp_path / "docker-compose.yml", "services:\n  stack:\n    image: x:1\n")
    with pytest.raises(ComposeFileError, match="services is empty"):
        cf.plan_tag_change([str(compose_file)], [], DEFAULT_TAG)


def test_byte_order_mark_is_kept(tmp_path: Path):
    compose_file = write(tmp_path / "docker-compose.yml", "\ufeffservices:\n  stack:\n    image: x/y:1\n")
    cf.commit(cf.plan_tag_change([str(compose_file)], ["stack"], "2"))
    assert compose_file.read_bytes() == "\ufeffservices:\n  stack:\n    image: x/y:2\n".encode()


# ---------------------------------------------------------------------------
# The .env file


@pytest.mark.parametrize(
    ("env", "after"),
    [
        ("TTS_VERSION=3.31.1\n", "TTS_VERSION=3.32.0\n"),
        ("TTS_VERSION = 3.31.1   # pinned\n", "TTS_VERSION = 3.32.0   # pinned\n"),
        ("TTS_VERSION='3.31.1'\n", "TTS_VERSION='3.32.0'\n"),
        ('  export TTS_VERSION="3.31.1"\n', '  export TTS_VERSION="3.32.0"\n'),
        ("# TTS_VERSION=3.30.0\nTTS_VERSION=3.31.1", "# TTS_VERSION=3.30.0\nTTS_VERSION=3.32.0"),
        ("TTS_VERSION_OLD=3.30.0\nTTS_VERSION=\n", "TTS_VERSION_OLD=3.30.0\nTTS_VERSION=3.32.0\n"),
    ],
)
def test_env_file_value_is_edited_in_place(tmp_path: Path, env: str, after: str):
    compose_file = write(
        tmp_path / "docker-compose.yml", "services:\n  stack:\n    image: x/y:${TTS_VERSION:-3.31.1}\n"
    )
    write(tmp_path / ".env", env)
    change = cf.plan_tag_change([str(compose_file)], ["stack"], DEFAULT_TAG, update_env_file=True)
    assert change.changed_files == [str(tmp_path / ".env")]
    cf.commit(change)
    assert (tmp_path / ".env").read_bytes() == after.encode()
    assert compose_file.read_text() == "services:\n  stack:\n    image: x/y:${TTS_VERSION:-3.31.1}\n"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ("TTS_VERSION=${BASE_VERSION}\n", "refers to another variable"),
        ('TTS_VERSION="3.31.1\n', "no closing quote"),
    ],
)
def test_env_file_refusals(tmp_path: Path, env: str, message: str):
    compose_file = write(tmp_path / "docker-compose.yml", "services:\n  stack:\n    image: x/y:${TTS_VERSION}\n")
    write(tmp_path / ".env", env)
    with pytest.raises(ComposeFileError, match=message):
        cf.plan_tag_change([str(compose_file)], ["stack"], DEFAULT_TAG, update_env_file=True)
    assert (tmp_path / ".env").read_text() == env


def test_env_file_is_found_in_the_project_directory(tmp_path: Path):
    compose_dir = tmp_path / "compose"
    compose_dir.mkdir()
    compose_file = write(compose_dir / "stack.yml", "services:\n  stack:\n    image: x/y:${TTS_VERSION}\n")
    write(tmp_path / ".env", "TTS_VERSION=3.31.1\n")
    change = cf.plan_tag_change(
        [str(compose_file)], ["stack"], DEFAULT_TAG, update_env_file=True, project_dir=str(tmp_path)
    )
    assert change.changed_files == [str(tmp_path / ".env")]


# ---------------------------------------------------------------------------
# Which files: defaults, override files, the files option


STACK = "services:\n  stack:\n    image: thethingsnetwork/lorawan-stack:3.31.1\n"


def test_default_file_names_in_compose_order(tmp_path: Path):
    write(tmp_path / "docker-compose.yml", STACK)
    assert cf.compose_files(str(tmp_path), None, None) == [str(tmp_path / "docker-compose.yml")]
    write(tmp_path / "compose.yaml", STACK)
    write(tmp_path / "docker-compose.override.yml", "services:\n  stack:\n    restart: always\n")
    assert cf.compose_files(str(tmp_path), None, None) == [
        str(tmp_path / "compose.yaml"),
        str(tmp_path / "docker-compose.override.yml"),
    ]


def test_no_compose_file_is_refused(tmp_path: Path):
    with pytest.raises(ComposeFileError, match=r"no compose file in .*looked for compose\.yaml"):
        cf.compose_files(str(tmp_path), None, None)
    with pytest.raises(ComposeFileError, match="not found: fix the files option"):
        cf.compose_files(str(tmp_path), ["prod.yml"], None)
    with pytest.raises(ComposeFileError, match="is not a directory"):
        cf.compose_files(str(tmp_path / "missing"), None, None)
    with pytest.raises(ComposeFileError, match="is not a file"):
        cf.compose_files(None, None, str(tmp_path / "missing.yml"))


def test_override_file_that_sets_the_image_is_edited(tmp_path: Path):
    main = write(tmp_path / "docker-compose.yml", STACK)
    override = write(
        tmp_path / "docker-compose.override.yml",
        "services:\n  stack:\n    image: localhost:5000/thethingsnetwork/lorawan-stack:3.31.1 # mirror\n",
    )
    change = cf.plan_tag_change(cf.compose_files(str(tmp_path), None, None), ["stack"], DEFAULT_TAG)
    assert change.changed_files == [str(override)]
    assert change.previous["stack"]["file"] == str(override)
    cf.commit(change)
    assert main.read_text() == STACK
    assert "lorawan-stack:3.32.0 # mirror" in override.read_text()


def test_override_file_without_image_leaves_it_to_the_main_file(tmp_path: Path):
    main = write(tmp_path / "docker-compose.yml", STACK)
    write(
        tmp_path / "docker-compose.override.yml", "services:\n  stack:\n    restart: always\n  extra:\n    image: a\n"
    )
    change = cf.plan_tag_change(cf.compose_files(str(tmp_path), None, None), ["stack"], DEFAULT_TAG)
    assert change.changed_files == [str(main)]


def test_files_option_order_decides_and_services_are_listed_across_files(tmp_path: Path):
    write(tmp_path / "base.yml", STACK + "  redis:\n    image: redis:7\n")
    prod = write(tmp_path / "prod.yml", "services:\n  stack:\n    image: 'thethingsnetwork/lorawan-stack:3.30.2'\n")
    files = cf.compose_files(str(tmp_path), ["base.yml", "prod.yml"], None)
    change = cf.plan_tag_change(files, ["stack"], DEFAULT_TAG)
    assert change.changed_files == [str(prod)]
    assert change.previous["stack"]["tag"] == "3.30.2"
    with pytest.raises(ComposeFileError, match="the services there are: redis, stack"):
        cf.plan_tag_change(files, ["grafana"], DEFAULT_TAG)


def test_services_in_two_files_are_both_edited(tmp_path: Path):
    main = write(tmp_path / "docker-compose.yml", STACK)
    override = write(tmp_path / "docker-compose.override.yml", "services:\n  grafana:\n    image: g/noc:3.31.1\n")
    change = cf.plan_tag_change(cf.compose_files(str(tmp_path), None, None), ["stack", "grafana"], DEFAULT_TAG)
    assert change.changed_files == [str(main), str(override)]
    assert [diff["before_header"] for diff in change.diff()] == [str(main), str(override)]


# ---------------------------------------------------------------------------
# Diff and writing


def test_diff_has_before_after_and_headers(tmp_path: Path):
    compose_file = write(tmp_path / "docker-compose.yml", STACK)
    change = cf.plan_tag_change([str(compose_file)], ["stack"], DEFAULT_TAG)
    assert change.diff() == [
        {
            "before": STACK,
            "after": STACK.replace("3.31.1", "3.32.0"),
            "before_header": str(compose_file),
            "after_header": str(compose_file),
        }
    ]


def test_write_keeps_mode_and_owner(tmp_path: Path):
    compose_file = write(tmp_path / "docker-compose.yml", STACK)
    compose_file.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(compose_file, 1234, 2345)
    cf.commit(cf.plan_tag_change([str(compose_file)], ["stack"], DEFAULT_TAG))
    status = compose_file.stat()
    assert stat.S_IMODE(status.st_mode) == 0o640
    if os.geteuid() == 0:
        assert (status.st_uid, status.st_gid) == (1234, 2345)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["docker-compose.yml"], "no temporary file left"


def test_write_through_a_symlink_keeps_the_symlink(tmp_path: Path):
    real = write(tmp_path / "real.yml", STACK)
    link = tmp_path / "docker-compose.yml"
    link.symlink_to(real.name)
    cf.commit(cf.plan_tag_change([str(link)], ["stack"], DEFAULT_TAG))
    assert link.is_symlink()
    assert "lorawan-stack:3.32.0" in real.read_text()


def test_backup_is_called_for_each_changed_file(tmp_path: Path):
    compose_file = write(tmp_path / "docker-compose.yml", STACK)

    def backup(path: str) -> str:
        copy = path + ".bak"
        shutil.copy2(path, copy)
        return copy

    backups = cf.commit(cf.plan_tag_change([str(compose_file)], ["stack"], DEFAULT_TAG), backup)
    assert backups == {str(compose_file): str(compose_file) + ".bak"}
    assert Path(backups[str(compose_file)]).read_text() == STACK


def test_failed_write_restores_the_files_already_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    main = write(tmp_path / "docker-compose.yml", STACK)
    override = write(tmp_path / "docker-compose.override.yml", "services:\n  grafana:\n    image: g/noc:3.31.1\n")
    change = cf.plan_tag_change([str(main), str(override)], ["stack", "grafana"], DEFAULT_TAG)
    real_write = cf.write_atomically

    def failing_write(path: str, text: str) -> None:
        if path == str(override):
            raise PermissionError(13, "Permission denied", path)
        real_write(path, text)

    monkeypatch.setattr(cf, "write_atomically", failing_write)
    with pytest.raises(ComposeFileError, match="Permission denied; nothing was changed"):
        cf.commit(change)
    assert main.read_text() == STACK
    assert override.read_text() == "services:\n  grafana:\n    image: g/noc:3.31.1\n"


def test_an_anchor_shared_by_services_is_edited_once(tmp_path: Path):
    compose_file = lay_out(tmp_path, "08-anchor-mapping-merge.compose")
    change = plan(compose_file, "08-anchor-mapping-merge.compose")
    assert len(change.edits) == 1


def test_duplicate_services_in_the_option_are_one(tmp_path: Path):
    compose_file = write(tmp_path / "docker-compose.yml", STACK)
    change = cf.plan_tag_change([str(compose_file)], ["stack", "stack"], DEFAULT_TAG)
    assert len(change.edits) == 1
    assert list(change.image) == ["stack"]


def test_backups_are_made_before_any_file_is_written(tmp_path: Path):
    main = write(tmp_path / "docker-compose.yml", STACK)
    override = write(tmp_path / "docker-compose.override.yml", "services:\n  grafana:\n    image: g/noc:3.31.1\n")
    change = cf.plan_tag_change([str(main), str(override)], ["stack", "grafana"], DEFAULT_TAG)
    seen = []

    def backup(path: str) -> str:
        seen.append((path, main.read_text(), override.read_text()))
        return path + ".bak"

    cf.commit(change, backup)
    untouched = (STACK, "services:\n  grafana:\n    image: g/noc:3.31.1\n")
    assert seen == [(str(main), *untouched), (str(override), *untouched)]


# ---------------------------------------------------------------------------
# The module's glue (plugins/modules/compose_image.py), run in-process


def run_module(capsys: pytest.CaptureFixture, args: dict, **flags: bool) -> dict:
    from ansible.module_utils.testing import patch_module_args
    from ansible_collections.lorawan.tts.plugins.modules import compose_image

    arguments = {**args, "_ansible_check_mode": flags.get("check", False), "_ansible_diff": flags.get("diff", False)}
    with patch_module_args(arguments), pytest.raises(SystemExit):
        compose_image.main()
    return json.loads(capsys.readouterr().out)


def test_module_check_mode_predicts_and_shows_the_diff(tmp_path: Path, capsys):
    compose_file = write(tmp_path / "docker-compose.yml", STACK)
    result = run_module(capsys, {"project_src": str(tmp_path), "tag": "3.32.0"}, check=True, diff=True)
    assert result["changed"] is True
    assert result["msg"] == "stack: 3.31.1 -> 3.32.0"
    assert result["diff"] == {
        "before": STACK,
        "after": STACK.replace("3.31.1", "3.32.0"),
        "before_header": str(compose_file),
        "after_header": str(compose_file),
    }
    assert compose_file.read_text() == STACK


def test_module_reports_no_change_and_lists_diffs_of_several_files(tmp_path: Path, capsys):
    write(tmp_path / "docker-compose.yml", STACK.replace("3.31.1", "3.32.0"))
    result = run_module(capsys, {"project_src": str(tmp_path), "tag": "3.32.0"}, diff=True)
    assert (result["changed"], result["files"], result["msg"]) == (False, [], "stack: 3.32.0 (unchanged)")
    write(tmp_path / "docker-compose.override.yml", "services:\n  grafana:\n    image: g/noc:3.31.1\n")
    write(tmp_path / "docker-compose.yml", STACK)
    args = {"project_src": str(tmp_path), "tag": "3.32.0", "services": ["stack", "grafana"], "backup": True}
    result = run_module(capsys, args, diff=True)
    assert result["changed"] is True
    assert [diff["before_header"] for diff in result["diff"]] == result["files"]
    assert sorted(result["backup_files"]) == sorted(result["files"])
    assert result["backup_file"] == result["backup_files"][str(tmp_path / "docker-compose.yml")]


def test_module_fails_with_the_message(tmp_path: Path, monkeypatch, capsys):
    write(tmp_path / "docker-compose.yml", STACK)
    result = run_module(capsys, {"project_src": str(tmp_path), "tag": "3.32.0", "services": ["nope"]})
    assert result["failed"] is True
    assert "the services there are: stack" in result["msg"]


# A Python without ruamel.yaml is tested for real (tests/faults/test_host_requirements.py); one with a ruamel.yaml
# older than 0.17 (Debian 11, Ubuntu 20.04) can't be made here without a package index.
def test_module_refuses_a_ruamel_yaml_older_than_0_17(tmp_path: Path, monkeypatch, capsys):
    from ansible_collections.lorawan.tts.plugins.module_utils import compose_file

    write(tmp_path / "docker-compose.yml", STACK)
    monkeypatch.setattr(compose_file, "RUAMEL_YAML_VERSION", (0, 16, 12))
    result = run_module(capsys, {"project_src": str(tmp_path), "tag": "3.32.0"})
    assert result["failed"] is True
    assert "ruamel.yaml 0.16.12 on " in result["msg"] and "is too old: lorawan.tts needs 0.17 or later" in result["msg"]
    assert "python3-ruamel.yaml" in result["msg"] and "pip install 'ruamel.yaml>=0.17'" in result["msg"]
    assert (tmp_path / "docker-compose.yml").read_text() == STACK
