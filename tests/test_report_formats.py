"""Markdown and Perfetto renderings of recordings captured from real sample runs."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

from helpers import run_doctor

from dora_doctor.analysis.result import analyse
from dora_doctor.recording.reader import read_recording
from dora_doctor.report import RenderOptions, registry, timeline_text

REC = Path(__file__).parent / "fixtures" / "recordings"


def test_markdown_tells_the_gil_story_without_absolute_paths() -> None:
    recording = read_recording(REC / "gil.ddrec")
    text = registry.MARKDOWN.render(analyse(recording), RenderOptions())
    assert "| crunch | terminated | 2.07 s | gil-contention | cruncher in `crunch_numbers`" in text
    assert "<summary>Stack of cruncher while it held the GIL</summary>" in text
    assert "crunch_numbers (…/nodes/c_call_holder.py:24)" in text
    assert "dora 1.1.0 · Python 3.11 · Linux x86_64" in text
    assert "/tmp/" not in text and "/root/" not in text and str(Path.home()) not in text
    assert "DORA_" not in text  # no environment variables
    assert text.count("```") % 2 == 0  # every code block closed


def test_markdown_keeps_paths_when_asked() -> None:
    recording = read_recording(REC / "gil.ddrec")
    text = registry.MARKDOWN.render(analyse(recording), RenderOptions(show_paths=True))
    assert "/tmp/exp4/samples/nodes/c_call_holder.py:24" in text


def test_perfetto_is_well_formed_trace_event_json_with_markers() -> None:
    recording = read_recording(REC / "sl.ddrec")
    data = json.loads(registry.PERFETTO.render(analyse(recording), RenderOptions()))
    events = data["traceEvents"]
    assert events and all({"ph", "pid", "tid", "ts", "name"} <= set(e) for e in events)
    per_track: Dict[Tuple[int, int], List[int]] = defaultdict(list)
    for event in events:
        assert event["ph"] in ("X", "i", "M")
        if event["ph"] == "X":
            assert event["dur"] > 0 and event["ts"] >= 0
        if event["ph"] != "M":
            per_track[(event["pid"], event["tid"])].append(event["ts"])
    for times in per_track.values():
        assert times == sorted(times)  # monotonic per track
    names = {e["name"] for e in events if e["ph"] == "i"}
    assert {"STOP requested", "grace deadline (SIGTERM)", "SIGKILL point"} <= names
    assert any(n.startswith("process exit (signal 9)") for n in names)
    threads = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"MainThread", "GIL holder"} <= threads
    assert any(e["ph"] == "X" and e["name"] == "on_sigterm" for e in events)


def test_report_command_writes_files_and_never_overwrites(tmp_path: Path) -> None:
    md = tmp_path / "report.md"
    result = run_doctor("report", str(REC / "gil.ddrec"), "-o", str(md), timeout=60)
    assert result.returncode == 0, result.stderr
    assert md.read_text().startswith("## dora-doctor: gil")
    trace = tmp_path / "trace.json"
    assert (
        run_doctor("report", str(REC / "gil.ddrec"), "-o", str(trace), timeout=60).returncode == 0
    )
    assert "traceEvents" in json.loads(trace.read_text())
    again = run_doctor("report", str(REC / "gil.ddrec"), "-o", str(md), timeout=60)
    assert again.returncode == 2 and "already exists" in again.stderr
    bad = run_doctor("report", str(REC / "gil.ddrec"), "--format", "pdf", timeout=60)
    assert (
        bad.returncode == 2
        and "choose terminal, json, markdown, html, perfetto or timeline" in bad.stderr
    )
    assert os.path.getsize(md) > 0


def test_text_timeline_fits_100_columns_and_shows_the_story() -> None:
    recording = read_recording(REC / "slow.ddrec")
    analysis = analyse(recording)
    lines = timeline_text.lines(analysis, analysis.dataflows[0], width=100)
    assert all(len(line) <= 100 for line in lines)
    axis, node, main = lines[0], lines[1], lines[2]
    stop, deadline, end = axis.index("S"), axis.index("T"), node.index("X")
    assert stop < deadline <= end
    assert main.strip().startswith("MainThread")
    row = main[23:]
    assert set(row[: stop - 24]) <= {".", " "}  # waited without the GIL before the stop
    assert row[end - 24] == "#"  # computing in flush_state, holding the GIL, when ended


def test_no_color_option_and_env_leave_no_escape_codes() -> None:
    for args, env in ((["--no-color"], None), ([], {"NO_COLOR": "1"})):
        full_env = dict(os.environ, **(env or {}), FORCE_COLOR="1", TERM="xterm-256color")
        result = run_doctor(*args, "report", str(REC / "gil.ddrec"), env=full_env, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "\x1b[" not in result.stdout


def test_markdown_renders_through_a_commonmark_parser() -> None:
    from markdown_it import MarkdownIt

    recording = read_recording(REC / "slow.ddrec")
    text = registry.MARKDOWN.render(analyse(recording), RenderOptions())
    parser = MarkdownIt("commonmark", {"html": True}).enable("table")
    rendered = parser.render(text)
    assert "<table>" in rendered and "<th>outcome</th>" in rendered
    assert "<td>stubborn</td>" in rendered and "<td>slow-shutdown</td>" in rendered
    assert rendered.count("<h3>") == 1 and "<details>" in rendered
    assert "<pre><code>" in rendered


def test_text_timeline_tells_running_from_waiting_with_cpu_windows() -> None:
    gil = read_recording(REC / "gilcpu.ddrec")
    lines = timeline_text.lines(analyse(gil), analyse(gil).dataflows[0])
    rows = {ln.split()[0]: ln[23:] for ln in lines[2:4]}
    assert set(rows["cruncher"].strip()) == {"#"}  # held the GIL throughout
    assert set(rows["MainThread"].strip()) == {"."}  # waited for it throughout

    hasher = read_recording(REC / "hasher.ddrec")
    analysis = analyse(hasher)
    axis, _, main = timeline_text.lines(analysis, analysis.dataflows[0])[:3]
    row = main[23:]
    stop = axis.index("S") - 23
    assert set(row[: stop - 1].strip()) == {"."}  # waiting for events before the stop
    assert row[stop + 3 :].count("~") >= 0.8 * len(row[stop + 3 :].rstrip())  # hashing after


def test_markdown_shows_hostile_names_as_text_and_keeps_the_table() -> None:
    """A node id with a pipe, a newline, raw HTML and a javascript: link renders as the
    text it is: one table row of five cells, no link, no HTML element."""
    from markdown_it import MarkdownIt

    from dora_doctor.analysis.findings import GilFinding, Holder

    analysis = analyse(read_recording(REC / "gil.ddrec"))
    node = analysis.diagnosis.dataflows[0].nodes[0]
    node.id = "a|b\n| x | <script>alert(1)</script> [x](javascript:alert(1))"
    node.gil = GilFinding(0.5, [Holder("t`|", "f``n|`", "/x/y.py", 3, 0.5)])
    node.evidence.append("`<img src=x onerror=alert(1)>` and *emphasis* ~~gone~~")
    text = registry.MARKDOWN.render(analysis, RenderOptions())
    parser = MarkdownIt("commonmark", {"html": True}).enable("table")
    rendered = parser.render(text)
    assert "<script" not in rendered and "<img" not in rendered and "<a " not in rendered
    assert "<em>" not in rendered and "<s>" not in rendered
    rows = [t for t in parser.parse(text) if t.type == "tr_open"]
    cells = [t for t in parser.parse(text) if t.type in ("td_open", "th_open")]
    assert len(rows) == 2 and len(cells) == 10
    assert "a|b\\x0a| x | &lt;script&gt;" in rendered  # shown, escaped like on a terminal
