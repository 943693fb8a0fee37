"""What `ansible-doc -t role` shows is what the roles do: every default in meta/argument_specs.yml is the one in
defaults/main.yml, and every variable with a default is documented."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


@pytest.mark.parametrize("role", sorted(path.name for path in ROLES.iterdir() if (path / "meta").is_dir()))
def test_documented_defaults_are_the_real_ones(role: str) -> None:
    options = load(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    defaults = load(ROLES / role / "defaults" / "main.yml")
    assert sorted(set(defaults) - set(options)) == [], f"{role}: variables with a default but no argument spec"
    documented = {name: option["default"] for name, option in options.items() if "default" in option}
    assert sorted(set(documented) - set(defaults)) == [], f"{role}: documented defaults that defaults/main.yml lacks"
    assert documented == {name: defaults[name] for name in documented}
