"""Every command and every option of the CLI is documented in README.md (as sqlite-utils
checks its docs): a flag nobody can find does not exist for the user at 2 a.m."""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Tuple

import pytest
import typer.main

from dora_doctor.cli import app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def commands_and_options() -> List[Tuple[str, str]]:
    group = typer.main.get_command(app)
    found = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        found.append((name, ""))
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--") and opt != "--help":
                    found.append((name, opt))
    return found


@pytest.mark.parametrize(("command", "option"), commands_and_options())
def test_documented(command: str, option: str) -> None:
    assert f"dora-doctor {command}" in README
    if option:
        assert re.search(rf"`[^`]*{re.escape(option)}\b[^`]*`", README), f"{command} {option}"
