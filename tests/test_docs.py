"""The docs stay true: every setting and every command is documented, and README's links resolve."""

from __future__ import annotations

import re

import click
import pytest

from feeds import settings as feeds_settings
from newsletter import settings as newsletter_settings
from tests.conftest import ROOT

CONFIG_DOC = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
CLI_DOC = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


def all_setting_keys() -> list[str]:
    keys = [f"[{section}]|{key}" for section, spec in newsletter_settings.ALL_SECTIONS.items() for key in spec]
    keys += [f"[[{name}]]|{key}" for name, spec in feeds_settings.ARRAYS.items() for key in spec]
    keys += [f"[digests.<edition>]|{key}" for key in newsletter_settings.EDITION]
    return keys


@pytest.mark.parametrize("entry", all_setting_keys())
def test_every_setting_is_documented(entry: str) -> None:
    heading, key = entry.split("|")
    section = CONFIG_DOC.split(f"## `{heading}`", 1)
    assert len(section) == 2, f"docs/configuration.md has no section {heading}"
    body = section[1].split("\n## ", 1)[0]
    assert f"| `{key}` |" in body, f"{heading} {key} is not in docs/configuration.md"


def leaf_commands(group: click.Group, prefix: str = "gazette") -> list[str]:
    out = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out += leaf_commands(command, f"{prefix} {name}")
        else:
            out.append(f"{prefix} {name}")
    return out


def test_every_command_is_documented() -> None:
    import service

    for command in leaf_commands(service.main):
        assert f"`{command}" in CLI_DOC, f"{command} is not in docs/cli.md"


def test_readme_links_resolve_and_quickstart_is_there() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run" in readme and "make test" in readme
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), f"README links to missing {target}"
    for script in re.findall(r"bench/\w+\.py", readme):
        assert (ROOT / script).exists()
