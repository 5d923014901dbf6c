"""The files users copy: every CLI call in the CI recipes and hooks names a real command and option."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from pgtopo.cli import cli

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "examples/ci").glob("*.yml")) + [ROOT / ".pre-commit-hooks.yaml"]


def pgtopo_calls(text: str) -> list[list[str]]:
    calls = []
    for match in re.finditer(r"pgtopo ((?:validate|diff|apply|status|destroy|switchover|schema)[^|;&>\n]*)", text):
        calls.append(match.group(1).replace('"', "").split())
    return calls


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_is_yaml_and_uses_real_options(recipe: Path) -> None:
    YAML(typ="safe").load(recipe.read_text())
    calls = pgtopo_calls(recipe.read_text())
    assert calls, "no pgtopo call found"
    for call in calls:
        command = cli.commands[call[0]]
        known = {opt for p in command.params for opt in getattr(p, "opts", [])}
        for word in call[1:]:
            if word.startswith("-"):
                assert word in known, f"{recipe.name}: {call[0]} has no option {word}"


def test_every_command_has_an_example_in_its_help() -> None:
    runner = CliRunner()
    for name in cli.commands:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output, name
