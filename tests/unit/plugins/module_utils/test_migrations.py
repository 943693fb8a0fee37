"""Pure helpers of stack_migrate: image references, edition detection, output summaries."""

from __future__ import annotations

import pytest
from ansible_collections.lorawan.tts.plugins.module_utils.compose_file import parse_image
from ansible_collections.lorawan.tts.plugins.module_utils.migrations import detect_edition, output_summary
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


def test_output_summary_drops_compose_progress_lines() -> None:
    output = (
        "INFO Applying migration name=a\nERROR migration a failed: boom\n"
        " Container x-redis-1 Running \n Container x-stack-run-26f7 Created \n"
        'time="2026-11-25T09:16:30Z" level=warning msg="the attribute `version` is obsolete"\n'
    )
    assert output_summary(output) == "INFO Applying migration name=a | ERROR migration a failed: boom"
