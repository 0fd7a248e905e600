"""py-spy output parsers, on output captured from real py-spy 0.4.3 runs (fixtures/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

from dora_doctor.capture import pyspy

FIX = Path(__file__).parent / "fixtures" / "pyspy"


def test_summary_line_of_record() -> None:
    assert pyspy.parse_summary((FIX / "hog-gil.stdout.txt").read_text()) == (199, 0)
    assert pyspy.parse_summary((FIX / "ticker-gil.stdout.txt").read_text()) == (0, 0)
    assert pyspy.parse_summary("py-spy> Sampling process 200 times a second") is None


def test_raw_gil_output_names_holder_thread_and_frame() -> None:
    stacks = pyspy.parse_raw((FIX / "hog-gil.raw.txt").read_text())
    assert len(stacks) == 1
    holder = stacks[0]
    assert holder.thread == "cruncher"
    assert holder.count == 199
    assert holder.stack[-1].function == "crunch"
    assert holder.stack[-1].file == "/tmp/exp/hold.py"
    assert holder.stack[-1].line == 7
    assert holder.stack[0].function == "Thread._bootstrap"


def test_raw_output_of_a_node_nobody_held_the_gil_in_is_empty() -> None:
    assert pyspy.parse_raw((FIX / "ticker-gil.raw.txt").read_text()) == []


def test_thread_root_frames() -> None:
    assert pyspy.parse_thread_root("thread (2056): cruncher") == pyspy.ThreadId(2056, "cruncher")
    assert pyspy.parse_thread_root("thread (0x7F00): worker: a") == pyspy.ThreadId(
        0x7F00, "worker: a"
    )
    assert pyspy.parse_thread_root("thread (12)") == pyspy.ThreadId(12, "")
    assert pyspy.parse_thread_root("crunch (hold.py:7)") is None


def test_raw_frame_without_line_and_with_parentheses_in_path() -> None:
    frame = pyspy.parse_raw_frame("run (/opt/my (copy)/x.py:12)")
    assert (frame.function, frame.file, frame.line) == ("run", "/opt/my (copy)/x.py", 12)
    assert pyspy.parse_raw_frame("<module> (x.py)").line == 0


def test_chrometrace_rebuilds_every_thread_with_wall_clock_spans() -> None:
    events = json.loads((FIX / "hog-idle.chrometrace.json").read_text())
    tracks = pyspy.parse_chrometrace(events, origin=1000.0)
    by_name = {t.name: t for t in tracks}
    assert set(by_name) == {"cruncher", "MainThread"}
    cruncher = by_name["cruncher"]
    assert cruncher.spans, "the cruncher thread has at least one span"
    leaf = cruncher.spans[0].stack[-1]
    assert (leaf.function, leaf.file, leaf.line) == ("crunch", "/tmp/exp/hold.py", 7)
    for track in tracks:
        for span in track.spans:
            assert 1000.0 <= span.start <= span.end <= 1002.0
            assert not any(f.function.startswith("thread (") for f in span.stack)
    main_leaf = by_name["MainThread"].spans[-1].stack[-1]
    assert main_leaf.function == "main"


def test_ticks_recovered_from_per_thread_sample_count() -> None:
    events = json.loads((FIX / "hog-idle.chrometrace.json").read_text())
    tracks = pyspy.parse_chrometrace(events, origin=0.0)
    samples, _ = pyspy.parse_summary((FIX / "hog-idle.stdout.txt").read_text()) or (0, 0)
    assert samples == 398  # two threads, 199 samples each
    assert pyspy.ticks_from_samples(samples, tracks) == 199


def test_ticks_never_fewer_than_the_samples_the_trace_shows() -> None:
    """A recorder that ended before its summary line (count 0) still wrote its samples: each
    span of a thread begins at one, so the trace's spans are a floor."""
    events = json.loads((FIX / "hog-idle.chrometrace.json").read_text())
    tracks = pyspy.parse_chrometrace(events, origin=0.0)
    spans = max(len(t.spans) for t in tracks)
    assert spans >= 1
    assert pyspy.ticks_from_samples(0, tracks) == spans
    assert pyspy.ticks_from_samples(0, []) == 0


def test_errors_are_mapped_to_one_line_messages() -> None:
    kind, message = pyspy.classify_error((FIX / "dump-not-python.stderr.txt").read_text(), 42)
    assert kind == "not-python" and "42" in message
    kind, _ = pyspy.classify_error((FIX / "dump-no-such-pid.stderr.txt").read_text(), 42)
    assert kind == "not-python"
    kind, message = pyspy.classify_error(
        "Permission Denied: Try running again with elevated permissions by going 'sudo env ...'", 7
    )
    assert kind == "permission" and "CAP_SYS_PTRACE" in message and "ptrace_scope" in message


def test_record_arguments_never_pause_for_the_gil_recorder() -> None:
    gil = pyspy.record_argv("py-spy", 5, Path("o"), gil=True, rate=200, duration_s=1)
    stacks = pyspy.record_argv("py-spy", 5, Path("o"), gil=False, rate=200, duration_s=1)
    assert "--gil" in gil and "--nonblocking" in gil and "raw" in gil
    assert "--idle" in stacks and "--nonblocking" not in stacks and "chrometrace" in stacks
