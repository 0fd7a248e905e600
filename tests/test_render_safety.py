"""Hostile names through every renderer (issue 14, sections 1 and 2).

Node ids, dataflow names, thread names, function and file names and log lines come from the
target. Whatever they hold, every renderer must finish; terminal text must carry no control
character but the SGR colour codes rich itself emits; Markdown must keep its table's shape and
carry no HTML or link of the target's; HTML must carry no unescaped tag of the target's.

The hostile inputs are real fixture recordings and logs (captured on dora 1.1.0, see
tests/fixtures/recordings/README.md) with their names replaced, so every code path a real
report takes is taken.
"""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
from helpers import invoke_doctor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from typer.testing import CliRunner

from dora_doctor.analysis.postmortem import postmortem
from dora_doctor.analysis.rehearsal import Rehearsal, RehearsalOptions, RunResult
from dora_doctor.analysis.result import Analysis, analyse
from dora_doctor.cli import app
from dora_doctor.errors import DoctorError
from dora_doctor.recording.model import Recording
from dora_doctor.recording.reader import read_recording
from dora_doctor.report import RenderOptions, registry
from dora_doctor.report.rehearsal import Check
from dora_doctor.textsafe import for_terminal

FIX = Path(__file__).parent / "fixtures"
REC = FIX / "recordings"
HOSTILE = FIX / "hostile" / "names"

# What a terminal may receive: printable text, newlines, and rich's own SGR colour codes.
SGR = re.compile(r"\x1b\[[0-9;]*m")
CONTROL = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)

FRAGMENTS = [
    "\x1b[2J",  # clear screen
    "\x1b]0;owned\x07",  # OSC 0: window title
    "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\",  # OSC 8 link
    "\x9b2J",  # C1 CSI
    "\x85",
    "\x00",
    "\x7f",
    "\t",
    "\r",
    "\n",
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "[link=https://evil.example/]x[/link]",
    "[/oops]",
    "[bold red]",
    ":smile:",
    "|",
    "`",
    "```",
    "\\",
    "*",
    "_",
    "~~",
    "#",
    "&lt;",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "![i](https://evil.example/t.png)",
    "<https://evil.example/>",
]

hostile = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), min_size=1, max_size=6
).map("".join)


# --- building hostile inputs from real fixtures --------------------------------------------


NAME_KEYS = ("name", "id", "node", "thread", "text", "detail", "skip_reason", "machine")


def rename_all(record: Dict[str, Any], fresh: Callable[[str], str]) -> Dict[str, Any]:
    """``record`` with every name-like string (ids, node, thread, function and file names,
    log text) replaced by ``fresh(old)``; numbers, uuids and record types stay."""

    def walk(value: Any, key: str) -> Any:
        if key == "operators" and isinstance(value, dict):  # a runtime's: id -> file
            return {fresh(k): fresh(v) for k, v in value.items()}
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if isinstance(value, str) and key in NAME_KEYS and value != "MainThread":
            return fresh(value)  # MainThread stays: the analysis finds the event thread by it
        return value

    if record.get("type") == "frames":
        frames = [[fresh(f), fresh(file), n] for f, file, n in record["frames"]]
        return {**record, "frames": frames}
    if record.get("type") == "header":
        return {**record, "dataflows": walk(record["dataflows"], "")}
    if record.get("type") == "lastdump":  # frames are [function, file, line, native]
        threads = [
            {
                **walk(t, ""),
                "frames": [
                    [fresh(f), fresh(file), n, native] for f, file, n, native in t["frames"]
                ],
            }
            for t in record["threads"]
        ]
        return {**walk(record, ""), "threads": threads}
    if record.get("type") == "cpu" and "names" in record:  # [thread id, the kernel's name]
        return {**record, "names": [[tid, fresh(name)] for tid, name in record["names"]]}
    return {k: walk(v, k) for k, v in record.items()}


def hostile_text(path: Path, strings: List[str]) -> str:
    """The recording at ``path`` with each distinct name replaced by one of ``strings``
    (numbered, so distinct names stay distinct)."""
    renamed: Dict[str, str] = {}

    def fresh(old: str) -> str:
        return renamed.setdefault(old, f"{strings[len(renamed) % len(strings)]}{len(renamed)}")

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return "".join(json.dumps(rename_all(r, fresh)) + "\n" for r in lines)


def hostile_recording(path: Path, strings: List[str], tmp: Path) -> Recording:
    out = tmp / "hostile.ddrec"
    out.write_text(hostile_text(path, strings))
    return read_recording(out)


def options() -> Iterator[Tuple[str, RenderOptions]]:
    yield "plain", RenderOptions(width=100)
    yield (
        "colour",
        RenderOptions(width=100, color_system="truecolor", terminal=True, highlight=True),
    )
    yield "narrow", RenderOptions(width=40, color_system="256", terminal=True)


def assert_terminal_safe(text: str, coloured: bool) -> None:
    if not coloured:
        assert "\x1b" not in text, repr(text)
    bare = SGR.sub("", text)
    found = CONTROL.findall(bare)
    assert not found, (found, repr(text)[:2000])
    assert "\x1b]8" not in text  # no OSC 8 hyperlink, from markup or otherwise


def assert_markdown_safe(text: str) -> None:
    parser = MarkdownIt("commonmark", {"html": True}).enable("table")
    tokens = parser.parse(text)
    width = None
    row: List[str] = []
    for token in tokens:
        if token.type == "tr_open":
            row = []
        elif token.type in ("th_open", "td_open"):
            row.append(token.type)
        elif token.type == "tr_close":
            width = len(row) if width is None else width
            assert len(row) == width, text
        elif token.type == "html_block":
            assert token.content.strip() in (
                "<details><summary>Local variables</summary>",
                "</details>",
            ) or re.fullmatch(
                r"<details><summary>Stack of [^<>]* while it held the GIL</summary>",
                token.content.strip(),
            ), token.content
    for inline in (t for t in tokens if t.type == "inline"):
        for child in inline.children or []:
            assert child.type not in ("link_open", "image"), text
            if child.type == "html_inline":
                assert child.content in ("<sub>", "</sub>"), child.content
    rendered = parser.render(text).lower()
    assert "<script" not in rendered and "<img" not in rendered and "<a " not in rendered


# The elements and attributes the HTML report is made of; anything else came from a name.
HTML_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h3", "span", "p", "b", "br",
    "code", "div", "ul", "li", "details", "summary", "svg", "g", "text", "rect", "line",
}  # fmt: skip
HTML_ATTRIBUTES = {
    "lang", "charset", "http-equiv", "content", "name", "class", "style", "width", "height",
    "role", "aria-label", "x", "y", "x1", "y1", "x2", "y2", "text-anchor", "open",
}  # fmt: skip


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: List[Tuple[str, List[str]]] = []

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        self.found.append((tag, [name for name, _ in attrs]))


def assert_html_safe(text: str) -> None:
    parser = _Elements()
    parser.feed(text)
    for tag, attributes in parser.found:
        assert tag in HTML_TAGS, tag
        unknown = [a for a in attributes if a not in HTML_ATTRIBUTES and not a.startswith("data-")]
        assert not unknown, (tag, unknown)
    assert "<script" not in text.lower()


def render_everything(analysis: Analysis) -> None:
    for renderer in registry.REPORT:
        for label, opts in options():
            text = renderer.render(analysis, opts)
            if renderer.name in ("terminal", "timeline"):
                assert_terminal_safe(text, coloured=label != "plain")
            elif renderer.name == "markdown":
                assert_markdown_safe(text)
            elif renderer.name == "html":
                assert_html_safe(text)
            else:
                json.loads(text)
    md = registry.MARKDOWN.render(analysis, RenderOptions(show_paths=True))
    assert_markdown_safe(md)


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    fixture=st.sampled_from(["gil", "sl", "mx", "op-ids", "ld"]),
    strings=st.lists(hostile, min_size=1, max_size=5),
    show_locals=st.booleans(),
)
def test_every_report_renderer_keeps_hostile_names_inert(
    fixture: str, strings: List[str], show_locals: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    recording = hostile_recording(REC / f"{fixture}.ddrec", strings, tmp_path_factory.mktemp("h"))
    render_everything(analyse(recording, show_locals=show_locals))


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(strings=st.lists(hostile, min_size=2, max_size=4))
def test_postmortem_renderers_keep_hostile_log_names_inert(
    strings: List[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("logs")
    for log in (FIX / "dora-1.1.0" / "stop-grace-2s").glob("*.txt"):
        text = log.read_text()
        for old, new in zip(("saver", "sleeper"), strings):
            text = text.replace(old, json.dumps(new)[1:-1])
        (folder / log.name).write_text(text)
    result = postmortem([str(folder)])
    for label, opts in options():
        out = registry.POSTMORTEM["terminal"].render(result, opts)
        assert_terminal_safe(out, coloured=label != "plain")
    json.loads(registry.POSTMORTEM["json"].render(result, RenderOptions()))


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(strings=st.lists(hostile, min_size=2, max_size=4))
def test_rehearsal_renderers_keep_hostile_names_inert(
    strings: List[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    recording = hostile_recording(REC / "sl.ddrec", strings, tmp_path_factory.mktemp("r"))
    analysis = analyse(recording)
    run = RunResult(1, strings[0], "uuid", analysis.diagnosis, 0.0, 1.0, recorded=recording)
    rehearsal = Rehearsal(
        dataflow_file=Path(strings[1] + ".yml"),
        dora_version="1.1.0",
        options=RehearsalOptions(stop_grace_s=2.0),
        runs=[run, run],
        cleaned_up=strings,
        ended_early=strings[-1],
    )
    for label, opts in options():
        for renderer in (registry.REHEARSAL["terminal"], registry.CHECK_RUNS):
            assert_terminal_safe(renderer.render(rehearsal, opts), coloured=label != "plain")
    json.loads(registry.REHEARSAL["json"].render(rehearsal, RenderOptions()))
    json.loads(registry.CHECK_JSON.render(Check(rehearsal, "2s", strings), RenderOptions()))


@given(st.text())
def test_for_terminal_leaves_no_control_character_and_only_adds_escapes(text: str) -> None:
    safe = for_terminal(text)
    assert not CONTROL.search(safe) and "\n" not in safe
    assert not CONTROL.search(for_terminal(text, keep_lines=True).replace("\t", ""))
    if not CONTROL.search(text) and "\n" not in text:
        assert safe == text  # nothing harmless is touched


# --- the documented hostile files, through every format --------------------------------------


def hostile_files() -> List[Path]:
    return sorted(HOSTILE.glob("*.ddrec"))


def test_every_hostile_file_is_documented() -> None:
    readme = (HOSTILE / "README.md").read_text()
    assert hostile_files()
    for path in hostile_files():
        assert f"`{path.name}`" in readme, path.name


@pytest.mark.parametrize("path", hostile_files(), ids=lambda p: p.name)
def test_hostile_files_through_every_format(path: Path) -> None:
    render_everything(analyse(read_recording(path)))


# --- the command line, in process ---------------------------------------------------------------

ENV = {"COLUMNS": "100", "NO_COLOR": "1", "FORCE_COLOR": None, "DORA_DOCTOR_DEBUG": None}


def invoke(*args: str, env: Any = None) -> Tuple[int, str, str]:
    """Run the CLI in process; a DoctorError is what main() turns into one line and a code."""
    result = CliRunner().invoke(app, list(args), env=env or ENV)
    if isinstance(result.exception, DoctorError):
        return result.exception.exit_code, result.stdout, str(result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    "args, words",
    [
        (["--json", "--format", "html"], "--json and --format html disagree"),
        (["--json", "-o", "x.html"], "--json and --output x.html disagree"),
        (["--format", "markdown", "-o", "x.html"], "--format markdown and --output x.html"),
        (["--format", "pdf"], "choose terminal, json, markdown, html, perfetto or timeline"),
    ],
)
def test_report_refuses_formats_that_disagree(
    args: List[str], words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, message = invoke("report", str(REC / "gil.ddrec"), *args)
    assert code == 2 and words in message and "\n" not in message
    assert out == "" and not list(tmp_path.iterdir())  # nothing written


def test_report_json_into_a_json_file_is_no_conflict(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    code, _, _ = invoke("report", str(REC / "gil.ddrec"), "--json", "-o", str(target))
    assert code == 0 and json.loads(target.read_text())["schema"] == "dora-doctor.report/1"


@pytest.mark.parametrize("path", hostile_files(), ids=lambda p: p.name)
@pytest.mark.parametrize("colour", ["NO_COLOR", "--no-color", "FORCE_COLOR"])
def test_hostile_files_on_the_command_line(path: Path, colour: str) -> None:
    env: Dict[str, Any] = dict(ENV)
    args = ["report", str(path)]
    if colour == "--no-color":
        env["NO_COLOR"] = None
        args.insert(0, "--no-color")
    elif colour == "FORCE_COLOR":
        env.update(NO_COLOR=None, FORCE_COLOR="1", TERM="xterm-256color")
    for fmt in ("timeline", "terminal"):
        code, out, err = invoke(*args, "--format", fmt, env=env)
        assert code == 0, err
        assert_terminal_safe(out, coloured=colour == "FORCE_COLOR")
    assert ("\x1b[" in out) == (colour == "FORCE_COLOR")  # colour on exactly when forced


def test_an_error_naming_a_hostile_file_is_one_safe_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dora_doctor.cli import main

    bad = tmp_path / "x\x1b]0;owned\x07\x1b[2J[bold].ddrec"
    bad.write_text("not a recording\n")
    assert main(["report", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dora-doctor: error: ") and err.count("\n") == 1
    assert "\x1b" not in err and "\\x1b]0;owned\\x07" in err


@settings(max_examples=25, deadline=None)
@given(strings=st.lists(hostile, min_size=4, max_size=4), coloured=st.booleans())
def test_the_live_table_keeps_hostile_names_inert(strings: List[str], coloured: bool) -> None:
    """inspect's live table: dataflow name, node id, Python version and the current frame
    (function and file) come from the target."""
    from rich.console import Console

    from dora_doctor.capture.session import LiveState, NodeLive
    from dora_doctor.commands import live
    from dora_doctor.model import Dataflow, NodeProcess

    node = NodeProcess(strings[1], "uuid", pid=7, python=True, python_version=strings[2])
    state = LiveState(Dataflow("uuid", strings[0], nodes=[node]), strings[3])
    state.nodes[node.id] = NodeLive(node, samples=3, top_frame=f"{strings[2]} ({strings[3]}:1)")
    console = Console(
        file=io.StringIO(),
        width=80,
        force_terminal=coloured,
        color_system="truecolor" if coloured else None,
    )
    console.print(live.table(state))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert_terminal_safe(text, coloured=coloured)


def test_postmortem_warnings_show_a_hostile_path_as_text(tmp_path: Path) -> None:
    missing = tmp_path / "gone\x1b]0;owned\x07[bold]\u202e.log"
    real = FIX / "dora-1.1.0" / "stop-grace-2s"
    # through cli.main, which prints the error: a missing input is one line before anything
    # is read (issue 14 §5)
    seen = invoke_doctor("postmortem", str(missing), str(real))
    code, out, err = seen.exit_code, seen.stdout, seen.stderr
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "\\x1b]0;owned\\x07[bold]\\u202e.log" in err  # the name, escaped and literal
    assert_terminal_safe(err, coloured=False)
    assert_terminal_safe(out, coloured=False)


@pytest.mark.dora
def test_inspect_prints_the_terminal_report_it_rendered(
    local_dora: Any, samples: Path, tmp_path: Path
) -> None:
    """inspect without --json prints what the terminal renderer returned: the table, the
    timeline and the card, with NO_COLOR no escape code at all."""
    from helpers import run_doctor

    local_dora.start_dataflow(samples / "slow_python_stop.yml", "slow-python-stop")
    local_dora.wait_running("slow-python-stop", nodes=1)
    env = dict(local_dora.env, NO_COLOR="1", COLUMNS="100")
    page = tmp_path / "page.html"
    args = ["--stop", "--grace-duration", "2s", "--stop-after", "2s", "--html", str(page)]
    result = run_doctor("inspect", "slow-python-stop", *args, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "┃ node" in out and "stubborn" in out and "slow-shutdown" in out, out
    assert "S stop  T grace" in out and "Suggestion:" in out
    assert "\x1b" not in out
    assert "data-marker='grace'" in page.read_text()


@pytest.mark.parametrize("version", ["0.3.13", "1.1.0"])
def test_the_suggested_stop_command_quotes_a_hostile_dataflow_name(version: str) -> None:
    """The suggestion is a line to paste into a shell; the dataflow name is the target's."""
    import shlex

    from dora_doctor.dora.versions import stop_command

    line = stop_command(version, "x; touch /tmp/owned $(id) `id`", "3s")
    words = shlex.split(line)
    assert "x; touch /tmp/owned $(id) `id`" in words and words[-2:] == ["--grace-duration", "3s"]
    assert stop_command(version, "robot", "3s").split()[-3] == "robot"  # plain names stay bare


def test_a_last_dump_of_hostile_frames_stays_inert(tmp_path: Path) -> None:
    """ld.ddrec (real, 1.1.0): the last dump's thread names and native frames come from the
    target's process; every renderer shows them (terminal "When dora ended it") inertly."""
    recording = hostile_recording(REC / "ld.ddrec", FRAGMENTS, tmp_path)
    assert recording.last_dumps and recording.last_dumps[0].threads
    analysis = analyse(recording)
    render_everything(analysis)
    text = registry.TERMINAL.render(analysis, RenderOptions(width=100))
    assert "When dora ended it" in text
