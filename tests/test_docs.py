"""The documentation says what the code does (as sqlite-utils checks its docs): every command
and option where a user looks for it, the generated pages current, every module described.
A flag nobody can find does not exist for the user at 2 a.m.

Generic on purpose: a new command or option needs only its --help (and a line in
docs/architecture.md for a new module), then `python docs/generate_cli.py --write`.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dora_doctor"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_cli", ROOT / "docs" / "generate_cli.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = load_generator()
README = (ROOT / "README.md").read_text()
CLI_MD = (ROOT / "docs" / "cli.md").read_text()
COMMANDS = [name for name, _ in gen.commands()]


def options_of(command: object) -> List[Tuple[str, str]]:
    """(long option, help text) of every option of a click command, --help excepted."""
    found = []
    for param in command.params:  # type: ignore[attr-defined]
        for opt in list(param.opts) + list(getattr(param, "secondary_opts", [])):
            if opt.startswith("--") and opt != "--help":
                found.append((opt, str(getattr(param, "help", None) or "")))
    return found


def defined_options(help_body: str) -> List[str]:
    """The options a --help text defines: the first column of its option list (``  -d,
    --duration <str>   help…``), not options its help sentences mention."""
    found = []
    for line in help_body.splitlines():
        term = re.match(r"^  (-\S.*?)(?:  |$)", line)
        if term:
            found += [t for t in re.split(r"[ ,/]+", term.group(1)) if t.startswith("-")]
    return found


def section(markdown: str, heading: str) -> str:
    """The body of the section whose heading is exactly ``heading`` (it must be there once)."""
    bodies = [body for title, body in gen.sections(markdown) if title == heading]
    assert len(bodies) == 1, f"{len(bodies)} sections titled {heading!r}"
    return str(bodies[0])


CASES = [(name, opt, text) for name, command in gen.commands() for opt, text in options_of(command)]


def test_the_cases_cover_every_command() -> None:
    assert {"inspect", "report", "postmortem", "merge", "tune-grace", "check"} <= set(COMMANDS)
    assert {name for name, _, _ in CASES} == set(COMMANDS)


@pytest.mark.parametrize(("command", "option", "text"), CASES)
def test_every_option_is_explained_in_its_own_commands_section(
    command: str, option: str, text: str
) -> None:
    """In docs/cli.md, under `dora-doctor COMMAND`, not merely somewhere on the page: an
    option of `report` documented only under `inspect` is not documented."""
    assert text.strip(), f"{command} {option} has no help text"
    body = section(CLI_MD, f"`dora-doctor {command}`")
    assert option in defined_options(body), f"{option} is not in `dora-doctor {command}`'s section"
    first_words = " ".join(text.split()[:4])
    assert first_words in " ".join(body.split()), f"{command} {option}: its help is not shown"


def test_the_checker_sees_an_option_in_the_wrong_section() -> None:
    assert "--show-locals" in CLI_MD
    inspect = section(CLI_MD, "`dora-doctor inspect`")
    assert "--show-locals" in inspect  # mentioned in --locals' help …
    assert "--show-locals" not in defined_options(inspect)  # … but report's option
    assert "--show-locals" in defined_options(section(CLI_MD, "`dora-doctor report`"))
    assert {"--duration", "--nonblocking", "--blocking"} <= set(defined_options(inspect))


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_readme_section_with_examples_from_its_help(command: str) -> None:
    examples = gen.examples(command)
    assert examples, f"`dora-doctor {command} --help` has no Examples: block"
    body = section(README, f"`dora-doctor {command}`")
    assert "```sh" in body
    for example in examples:
        assert example in body, example


def test_cli_md_is_current() -> None:
    assert CLI_MD == gen.cli_md(), "docs/cli.md is stale: run `python docs/generate_cli.py --write`"


def test_readme_command_list_is_current() -> None:
    assert gen.block_of(README) == gen.readme_block(), (
        "README's command list is stale: run `python docs/generate_cli.py --write`"
    )


@pytest.mark.parametrize("page", ["README.md", "docs/cli.md"])
def test_global_switches_and_the_debug_variable_are_documented(page: str) -> None:
    text = (ROOT / page).read_text()
    for needle in ("--no-color", "NO_COLOR", "DORA_DOCTOR_DEBUG"):
        assert needle in text, f"{page} does not mention {needle}"


def test_readme_keeps_what_a_user_needs_first() -> None:
    headings = [title for title, _ in gen.sections(README)]
    for needed in ("Set-up: two commands", "Permissions", "Supported versions", "Commands"):
        assert needed in headings, needed
    for needed in ("Diagnosis", "Security"):
        assert needed in headings, needed
    assert "make demo" in README and "make test" in README
    assert "dora doctor" in README  # not dora's own `dora doctor`: said once, early
    assert README.index("dora's own `dora doctor`") < README.index("## Set-up")
    for page in ("commands", "cli", "formats", "architecture", "performance"):
        assert f"(docs/{page}.md)" in README, f"README does not link docs/{page}.md"


def test_every_relative_link_of_the_docs_resolves() -> None:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links {target}, which is missing"


def described_modules() -> Dict[str, str]:
    """`path` → its line, from the module table of docs/architecture.md."""
    body = section((ROOT / "docs" / "architecture.md").read_text(), "Every module")
    rows = re.findall(r"^\| `([^`]+)` \| (.+) \|$", body, re.M)
    return dict(rows)


def test_architecture_describes_every_module_and_only_those() -> None:
    actual = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")}
    actual = {m for m in actual if not (m.endswith("/__init__.py"))}
    actual |= {f"{p.name}/" for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    described = described_modules()
    assert sorted(actual - set(described)) == [], "modules missing from docs/architecture.md"
    assert sorted(set(described) - actual) == [], "docs/architecture.md names modules that are gone"
    for module, line in described.items():
        assert len(line.split()) >= 3, f"{module}: say what it is for"


def test_the_generated_pages_do_not_depend_on_the_terminal(
    monkeypatch: "pytest.MonkeyPatch",
) -> None:
    """CI and a developer's wide terminal must produce the same bytes."""
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setenv("NO_COLOR", "1")
    assert gen.cli_md() == CLI_MD
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.delenv("NO_COLOR")
    assert gen.cli_md() == CLI_MD and gen.block_of(README) == gen.readme_block()
