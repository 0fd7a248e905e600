"""The verdict's rules on recordings of real nodes (tests/fixtures/nodes/, dora 1.1.0).

Each fixture was recorded with ``inspect NAME --stop --grace-duration 2s --record`` on a
private dora (see fixtures/recordings/README.md); the rules are checked on what the real
nodes did, and the invariants (shares, one wording per decision) on every fixture.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from dora_doctor.analysis.diagnose import report_from_recording
from dora_doctor.analysis.findings import Cause, NodeFinding, Outcome
from dora_doctor.analysis.verdict import (
    R_PEER_STARTING,
    Samples,
    back_in_wait,
    python_only_threads,
    reaction_time,
    without_dora_names,
)
from dora_doctor.dora.discover import catches_sigterm, parse_sigcgt
from dora_doctor.model import Frame
from dora_doctor.recording.reader import read_recording

REC = Path(__file__).parent / "fixtures" / "recordings"
SCHEMA = Path(__file__).resolve().parent.parent / "docs" / "report.schema.json"
ALL = sorted(p.stem for p in REC.glob("*.ddrec"))


def node(name: str, node_id: str) -> NodeFinding:
    report = report_from_recording(read_recording(REC / f"{name}.ddrec"))
    return {n.id: n for df in report.dataflows for n in df.nodes}[node_id]


def all_nodes() -> List[NodeFinding]:
    found = []
    for name in ALL:
        report = report_from_recording(read_recording(REC / f"{name}.ddrec"))
        found.extend(n for df in report.dataflows for n in df.nodes)
    return found


def test_outcome_and_cause_enums_match_the_report_schema() -> None:
    node_schema = json.loads(SCHEMA.read_text())["$defs"]["node"]["properties"]
    assert set(node_schema["outcome"]["enum"]) - {None} == {o.value for o in Outcome}
    assert set(node_schema["cause"]["enum"]) - {None} == {c.value for c in Cause}


def test_the_holder_is_the_user_s_line_and_the_stdlib_call_is_inside() -> None:
    scanner = node("rx", "scanner")
    assert (scanner.outcome, scanner.cause) == ("terminated", "gil-contention")
    holder = scanner.gil.holders[0]
    assert (holder.thread, holder.function, holder.native) == ("scanner", "scan_logs", True)
    assert holder.file.endswith("regex_holder.py")
    assert holder.inside is not None and holder.inside.function == "match"
    assert holder.inside.file.endswith("re/__init__.py")
    code = [a for a in scanner.advice if a.kind == "code"]
    assert code and code[0].location == f"{holder.file}:{holder.line}"
    assert "re/__init__.py" in code[0].text  # the library frame stays visible
    assert any("calling match" in e and "one C call" in e for e in scanner.evidence)


def test_native_and_its_wording_agree_on_every_fixture() -> None:
    for found in all_nodes():
        for sentence in found.evidence:
            if sentence.startswith("Thread ") and "held the GIL in" in sentence:
                top = next(
                    h for h in found.gil.holders if sentence.startswith(f"Thread {h.thread} ")
                )
                assert ("one C call" in sentence) == (top.native is True), (found.id, sentence)
                assert ("running Python code" in sentence) == (top.native is False), sentence


def test_gil_shares_are_fractions_of_samples_on_every_fixture() -> None:
    for found in all_nodes():
        held = found.gil.held_share
        assert held is None or 0.0 <= held <= 1.0
        assert all(0.0 <= h.share <= 1.0 for h in found.gil.holders)
        assert sum(h.share for h in found.gil.holders) <= (held or 0.0) + 0.01, found.id
        for sentence in found.evidence:
            for word in sentence.split():
                if word.rstrip(",.").endswith("%"):
                    assert float(word.rstrip(",.%")) <= 100.0, sentence


def test_gil_shares_stay_fractions_when_the_stack_recorder_took_fewer_samples() -> None:
    """The GIL recorder and the stack recorder are separate py-spy runs; under load (or
    reading without pausing) the stack recorder can take fewer samples than the GIL one saw
    holders in. Dividing by its ticks alone gave two workers 65 % + 59 % + 25 % = 149 %
    on this recording with the ticks halved; a share is a fraction of the samples taken."""
    recording = read_recording(REC / "tw.ddrec")
    for seg in recording.stacks:
        seg.ticks //= 2
    pair = report_from_recording(recording).dataflows[0].nodes[0]
    assert pair.gil.held_share is not None and pair.gil.held_share <= 1.0
    assert {h.thread for h in pair.gil.holders} >= {"left", "right"}
    assert sum(h.share for h in pair.gil.holders) <= pair.gil.held_share + 0.01


def test_non_daemon_threads_that_keep_the_process_alive_are_named() -> None:
    lingerer = node("nd", "lingerer")
    assert (lingerer.outcome, lingerer.cause) == ("terminated", "stuck")
    assert any(
        "joins the non-daemon thread" in e and "sensor in poll_sensor" in e
        for e in lingerer.evidence
    )
    code = [a for a in lingerer.advice if a.kind == "code"]
    assert code and (code[0].location or "").endswith("non_daemon.py:17")
    assert "threading.py" not in (code[0].location or "")


def test_a_node_still_importing_is_starting_with_no_code_advice() -> None:
    loader = node("si", "loader")
    assert (loader.outcome, loader.cause) == ("terminated", "starting")
    assert "process start time" in loader.rests_on
    (sentence,) = [e for e in loader.evidence if "still starting" in e]
    assert "heavy_model.py" in sentence and "s after its process was spawned" in sentence
    assert "STOP cannot reach a node before it connects" in sentence
    assert not [a for a in loader.advice if a.kind == "code"]
    assert any("startup_timeout" in a.text for a in loader.advice)  # dora 1.1.0 has it


def test_an_import_starved_of_the_gil_is_contention_not_start_up() -> None:
    """MainThread sat in an import (dora's first event imports pyarrow) from before the stop
    to the end, but only because `solver` held the GIL: the node was past Node()."""
    solver = node("np-starved-import", "solver")
    assert (solver.outcome, solver.cause) == ("terminated", "gil-contention")
    assert solver.gil is not None and solver.gil.holders[0].thread == "solver"
    assert solver.gil.holders[0].function == "propagate"
    assert not any("still starting" in e for e in solver.evidence)


def test_a_busy_event_thread_is_not_said_to_react() -> None:
    """asyncio: MainThread is busy in crunch before and after the stop; moving from line to
    line is not a reaction to STOP."""
    looper = node("ab", "looper")
    assert (looper.outcome, looper.cause) == ("terminated", "stuck")
    assert not any("reacted" in e for e in looper.evidence)
    assert any("busy in crunch" in e and "never read STOP" in e for e in looper.evidence)
    code = [a for a in looper.advice if a.kind == "code"]
    assert code and "async_blocked.py" in (code[0].location or "")


@pytest.mark.parametrize("name", ALL)
def test_the_verdict_is_deterministic(name: str) -> None:
    first = report_from_recording(read_recording(REC / f"{name}.ddrec")).to_dict()
    again = report_from_recording(read_recording(REC / f"{name}.ddrec")).to_dict()
    assert first == again


def test_every_finding_says_what_it_rests_on() -> None:
    for found in all_nodes():
        if found.outcome not in (None, "running") and found.outcome != "unknown":
            assert found.rests_on, found.id


def test_sigcgt_bit_of_a_real_process() -> None:
    code = (
        "import signal, sys, time\n"
        "if sys.argv[1] == 'catch': signal.signal(signal.SIGTERM, lambda *a: None)\n"
        "print('ready', flush=True); time.sleep(30)\n"
    )
    seen: Dict[str, object] = {}
    for mode in ("catch", "default"):
        proc = subprocess.Popen(
            [sys.executable, "-c", code, mode], stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            seen[mode] = catches_sigterm(proc.pid)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert seen == {"catch": True, "default": False}
    assert parse_sigcgt("Name:\tx\nSigCgt:\t0000000000004000\n") is True
    assert parse_sigcgt("SigCgt:\t0000000180000002\n") is False
    assert parse_sigcgt("SigCgt:\tzz\n") is None and parse_sigcgt("") is None


def test_a_victim_of_a_peer_still_starting_names_the_peer_and_gets_no_code_advice() -> None:
    """waiter sits in Node() (holding the GIL there, dora 1.1.0) while loader imports."""
    report = report_from_recording(read_recording(REC / "vi.ddrec"))
    found = {n.id: n for n in report.dataflows[0].nodes}
    assert (found["loader"].outcome, found["loader"].cause) == ("terminated", "starting")
    waiter = found["waiter"]
    assert (waiter.outcome, waiter.cause) == ("terminated", "waiting-for-peer")
    assert "dora's failure message naming the peer" in waiter.rests_on
    assert any("waited inside Node() for `loader`" in e for e in waiter.evidence)
    assert not any("held the GIL" in e for e in waiter.evidence)
    assert waiter.advice == []


def test_a_victim_is_named_from_the_starting_peer_without_dora_s_message() -> None:
    """The same run as if the user had stopped it themselves: no `dora stop` output."""
    recording = read_recording(REC / "vi.ddrec")
    recording.logs = [e for e in recording.logs if e.kind != "stop-returned"]
    found = {n.id: n for n in report_from_recording(recording).dataflows[0].nodes}
    waiter = found["waiter"]
    assert waiter.cause == "waiting-for-peer"
    assert R_PEER_STARTING in (waiter.rests_on)
    assert any("`loader`" in e and "still starting" in e for e in waiter.evidence)


def test_unnamed_main_thread_is_not_taken_for_another_thread() -> None:
    """py-spy read no thread names in vi.ddrec: the main thread (id = PID) holding the GIL
    inside Node() is MainThread, never 'other threads held the GIL'."""
    recording = read_recording(REC / "vi.ddrec")
    waiter = {n.id: n for n in report_from_recording(recording).dataflows[0].nodes}["waiter"]
    assert waiter.gil.holders and waiter.gil.holders[0].thread == "MainThread"


def test_operator_code_is_named_not_the_runtime() -> None:
    runtime = node("op", "runtime")
    assert (runtime.outcome, runtime.cause) == ("terminated", "stuck")
    assert runtime.gil.holders[0].file.endswith("busy_operator.py")
    assert all(h.file != "<string>" for h in runtime.gil.holders)
    assert any(
        "runtime for Python operators" in e and "busy_operator.py" in e for e in runtime.evidence
    )
    code = [a for a in runtime.advice if a.kind == "code"]
    assert code and "on_event" in code[0].text and "busy_operator.py" in (code[0].location or "")


def test_dora_s_never_connected_message_is_read_from_a_real_line() -> None:
    from dora_doctor.analysis.verdict import peers_never_connected

    line = (  # dora 1.1.0 `dora stop` output, vi.ddrec
        "Node `waiter` failed: exited because of signal SIGTERM. This error occurred because "
        "node `loader` exited before connecting to dora."
    )
    assert peers_never_connected([line]) == {"waiter": ["loader"]}
    assert peers_never_connected(["Node `a` failed: exit code 1"]) == {}


def test_the_same_c_call_holder_is_worded_the_same_on_dora_1_0_1_and_1_1_0() -> None:
    """One decision, one wording: the version changes dora's lines, not the verdict."""
    import re as regex

    def shape(name: str) -> object:
        scanner = node(name, "scanner")
        holder = scanner.gil.holders[0]
        sentences = [
            regex.sub(r"[\d.]+( s|%)|/tmp/\S+/|\d\d:\d\d:\d\d\.\d+", "#", e)
            for e in scanner.evidence
        ]
        return (scanner.outcome, scanner.cause, holder.function, holder.native, sentences)

    assert read_recording(REC / "rx-dora-1.0.1.ddrec").dora_version == "1.0.1"
    assert shape("rx") == shape("rx-dora-1.0.1")


def test_user_frame_skips_stdlib_site_packages_dora_and_frozen_frames() -> None:
    from dora_doctor.analysis.verdict import is_library, user_frame
    from dora_doctor.model import Frame

    prefix = "/opt/py"
    stack = (
        Frame("main", "/home/me/node.py", 10),
        Frame("decode", "/opt/py/lib/python3.12/json/decoder.py", 337),
        Frame("_load", "<frozen importlib._bootstrap>", 1),
        Frame("send", "/venv/lib/python3.12/site-packages/dora/__init__.py", 5),
    )
    assert user_frame(stack, prefix) == stack[0]
    assert is_library("/opt/py/lib/python3.12/re/__init__.py", prefix)
    assert is_library("/usr/lib/python3/dist-packages/numpy/core.py")
    assert not is_library("/home/me/lib/node.py", prefix)
    only_library = (Frame("match", "/opt/py/lib/python3.12/re/__init__.py", 166),)
    assert user_frame(only_library, prefix) == only_library[0]  # nothing of the user's


def test_process_facts_survive_the_recording_and_bad_types_are_dropped(tmp_path: Path) -> None:
    from typing import Any

    from dora_doctor.model import Dataflow, NodeProcess
    from dora_doctor.recording.codec import decode_dataflow, encode_dataflow

    def dataflow_from_dict(value: Dict[str, Any]) -> Dataflow:
        problems: List[str] = []
        return decode_dataflow(value, problems)

    dataflow_to_dict = encode_dataflow

    node_ = NodeProcess("n", "d", 1, 1, True, "3.11", catches_sigterm=True)
    node_.python_prefix, node_.started = "/opt/py", 1796163368.5
    back = dataflow_from_dict(dataflow_to_dict(Dataflow("d", "x", nodes=[node_]))).nodes[0]
    assert (back.catches_sigterm, back.python_prefix, back.started) == (
        True,
        "/opt/py",
        1796163368.5,
    )
    # a node whose facts have the wrong types is left out whole and named, as every record
    # the codec cannot trust: its values never reach the analysis
    hostile = {"uuid": "d", "nodes": [{"id": "n", "catches_sigterm": "yes", "started": [1]}]}
    problems: List[str] = []
    assert decode_dataflow(hostile, problems).nodes == []
    assert "catches_sigterm" in " ".join(problems)
    old = dataflow_from_dict({"uuid": "d", "nodes": [{"id": "n"}]}).nodes[0]
    assert old.catches_sigterm is None  # recordings made before SigCgt was read


def test_an_executor_s_worker_joined_at_exit_keeps_the_node_alive_not_contention() -> None:
    """threadpool (corpus, a real run): MainThread read STOP and left its loop; the exit's
    concurrent.futures._python_exit then joined ThreadPoolExecutor-0_0, which held the GIL
    ~70 % running score_batch. The worker kept the node alive: stuck, the worker named with
    the user's function it runs, and the advice at that function, not at threading.py."""
    scorer = node("corpus/threadpool", "scorer")
    assert (scorer.outcome, scorer.cause) == ("terminated", "stuck")
    (sentence,) = [e for e in scorer.evidence if "left the event loop" in e]
    assert "_python_exit" in sentence and "ThreadPoolExecutor worker" in sentence
    assert "ThreadPoolExecutor-0_0 in score_batch" in sentence
    assert not any("could hardly run" in e for e in scorer.evidence)
    code = [a for a in scorer.advice if a.kind == "code"]
    assert len(code) == 1 and (code[0].location or "").endswith("threadpool_worker.py:23")
    assert "cancel_futures=True" in code[0].text and "daemon=True" not in code[0].text
    assert any(a.text.startswith("No grace period helps") for a in scorer.advice)


def test_a_non_daemon_thread_still_gets_the_daemon_advice() -> None:
    """The executor's advice is for executor workers only: nd's `sensor` is a plain thread."""
    lingerer = node("nd", "lingerer")
    (code,) = [a for a in lingerer.advice if a.kind == "code"]
    assert "daemon=True" in code.text and "cancel_futures" not in code.text


def test_operator_of_matches_the_innermost_operator_file() -> None:
    from dora_doctor.analysis.verdict import operator_of
    from dora_doctor.model import Frame

    stack = (
        Frame("<module>", "<string>", 1),
        Frame("Operator.on_event", "/flow/nodes/hog.py", 23),
        Frame("helper", "/flow/nodes/tally.py", 5),
        Frame("sum", "/usr/lib/python3.11/x.py", 1),
    )
    assert operator_of(stack, {"hog": "/flow/nodes/hog.py"}) == "hog"
    # relative, as dora's descriptor has it when the cwd could not be read
    assert operator_of(stack, {"hog": "nodes/hog.py", "t": "./nodes/tally.py"}) == "t"
    assert operator_of(stack, {"hog": "odes/hog.py"}) is None  # a whole path component only
    assert operator_of(stack, {"s": "<string>"}) is None  # the runtime's frame is nobody's
    assert operator_of(stack, {}) is None


def test_an_operator_is_named_by_its_yaml_id_where_the_recording_lists_it() -> None:
    """op-ids.ddrec: a real run of samples/operator_hog.yml whose header lists the runtime
    node's operator (`hog` → its file). The holder and the finding name operator `hog` of
    node `indexer`, and the advice speaks of its on_event."""
    recording = read_recording(REC / "op-ids.ddrec")
    (listed,) = recording.dataflows[0].nodes
    assert set(listed.operators) == {"hog"}
    assert listed.operators["hog"].endswith("/samples/nodes/operator_hog.py")
    indexer = node("op-ids", "indexer")
    assert indexer.outcome == "terminated" and indexer.cause in ("stuck", "gil-contention")
    assert indexer.operator == "hog"
    top = indexer.gil.holders[0]
    assert (top.thread, top.function, top.operator) == ("MainThread", "build_index", "hog")
    assert any("operator `hog` of node `indexer`" in e for e in indexer.evidence)
    code = [a for a in indexer.advice if a.kind == "code"]
    assert code and "operator `hog`'s on_event" in code[0].text
    assert "operator_hog.py" in (code[0].location or "")


def test_without_a_list_of_operators_no_operator_id_is_claimed() -> None:
    """Older recordings (op.ddrec, corpus/operator_hog.ddrec) list no operators: the
    operator is named by its file only, and no id is made up."""
    for name, node_id in (("op", "runtime"), ("corpus/operator_hog", "indexer")):
        runtime = node(name, node_id)
        assert runtime.operator is None
        assert all(h.operator is None for h in runtime.gil.holders)
        assert any("runtime for Python operators" in e for e in runtime.evidence)
        assert not any("operator `" in e for e in runtime.evidence)


def test_a_slow_load_before_node_is_starting_on_its_threads() -> None:
    """corpus/slow_startup.ddrec: `load_model` sleeps before Node(), no import frame at all;
    the process had only its Python thread, none of dora's, so it had not called Node()."""
    model = node("corpus/slow_startup", "model")
    assert (model.outcome, model.cause) == ("terminated", "starting")
    assert "the process's threads from /proc: only Python's, none of dora's" in model.rests_on
    sentence = next(e for e in model.evidence if "still starting" in e)
    assert "in load_model (" in sentence and "slow_startup.py:21" in sentence
    assert "had not called Node() yet" in sentence and "importing" not in sentence
    assert all(a.kind == "config" for a in model.advice)
    assert any("startup_timeout" in a.text for a in model.advice)
    texts = " ".join([*model.evidence, *(a.text for a in model.advice)]).lower()
    assert "read events in the main loop" not in texts and "no grace period helps" not in texts


def test_a_victim_of_a_peer_before_node_names_it_on_the_peer_s_threads_alone() -> None:
    """corpus/victim.ddrec: never_ready waits in `wait_for_device` before Node(); waiter sits
    in Node(). Without dora's failure message the waiter is named a victim from the peer seen
    starting."""
    recording = read_recording(REC / "corpus" / "victim.ddrec")
    recording.logs = [e for e in recording.logs if e.kind != "stop-returned"]
    found = {n.id: n for n in report_from_recording(recording).dataflows[0].nodes}
    never_ready, waiter = found["never_ready"], found["waiter"]
    assert (never_ready.cause, waiter.cause) == ("starting", "waiting-for-peer")
    assert any("in wait_for_device (" in e for e in never_ready.evidence)
    assert any("`never_ready`" in e and "still starting" in e for e in waiter.evidence)
    assert waiter.advice == []


def _threads_samples(cpu_tids: List[List[int]], python: List[int], pid: int = 100) -> Samples:
    from dora_doctor.model import CpuSegment, Frame, Span, StackSegment, ThreadTrack

    main = (Frame("<module>", "/home/me/node.py", 30), Frame("load", "/home/me/node.py", 9))
    threads = [ThreadTrack(tid, f"t{tid}", [Span(0.0, 4.0, main)]) for tid in python]
    stacks = [StackSegment("d", "n", pid, 0.0, 4.0, 400, 0, threads)]
    cpu = [
        CpuSegment("d", "n", pid, i * 0.25, (i + 1) * 0.25, {tid: 0.0 for tid in tids})
        for i, tids in enumerate(cpu_tids)
    ]
    return Samples(stacks, [], cpu)


def test_python_only_threads_needs_every_thread_to_be_python_s() -> None:
    """The rule that calls a node starting outside an import: one thread that py-spy never
    saw as Python's (dora's runtime, tokio, zenoh start them in Node()) and it is not."""
    before_node = _threads_samples([[100]] * 8, [100])
    assert python_only_threads(before_node, stop=1.5) == 1
    with_worker = _threads_samples([[100, 101]] * 8, [100, 101])
    assert python_only_threads(with_worker, stop=1.5) == 2
    # after Node(): dora's threads appear, even in one window only
    after_node = _threads_samples([[100]] * 4 + [[100, 150, 151]] + [[100]] * 3, [100])
    assert python_only_threads(after_node, stop=1.5) is None
    # too little /proc before the stop to tell: unknown, not starting
    late = _threads_samples([[100]] * 8, [100])
    assert python_only_threads(late, stop=-1.0) is None
    no_cpu = _threads_samples([], [100])
    assert python_only_threads(no_cpu, stop=1.5) is None
    # Python 3.10: py-spy gives pthread ids, never equal to /proc's: counts are compared
    pthread = 139963746659200
    old_before = _threads_samples([[100]] * 8, [pthread])
    assert python_only_threads(old_before, stop=1.5) == 1
    old_after = _threads_samples([[100, 101, 102]] * 8, [pthread])
    assert python_only_threads(old_after, stop=1.5) is None


def test_a_node_busy_in_its_own_code_after_node_is_never_called_starting() -> None:
    """Every node of the corpus recordings that is not still starting keeps its cause: they
    all run dora's threads (busy loops, blocked asyncio, pools, operators, Python 3.10)."""
    starting = set()
    for path in sorted((REC / "corpus").glob("*.ddrec")):
        report = report_from_recording(read_recording(path))
        for found in (n for df in report.dataflows for n in df.nodes):
            if found.cause == "starting":
                starting.add((path.stem, found.id))
    assert starting == {
        ("slow_startup", "model"),
        ("slow_startup_numpy", "loader"),
        ("victim", "never_ready"),
    }


def _named(windows: List[Dict[int, str]]) -> Samples:
    """/proc windows whose threads carry names (each window names them all, for brevity)."""
    samples = _threads_samples([list(names) for names in windows], [100])
    for seg, names in zip(samples.cpu, windows):
        seg.names = dict(names)
    return samples


def test_without_dora_names_holds_when_libraries_started_threads_of_their_own() -> None:
    """numpy and pyarrow start threads before Node() ("python", "jemalloc_bg_thd"), which the
    Python-only rule cannot tell from dora's; the names dora gives its own threads can."""
    dora = ("dora-node-runti", "dora-startup-")
    libraries = {100: "python", 101: "python", 102: "jemalloc_bg_thd"}
    assert without_dora_names(_named([libraries] * 8), 1.5, dora) == 3
    assert python_only_threads(_named([libraries] * 8), stop=1.5) is None
    # one of dora's threads in any window: Node() was called
    later = [libraries] * 6 + [{**libraries, 150: "dora-node-runti"}] * 2
    assert without_dora_names(_named(later), 1.5, dora) is None
    # a line whose Node() threads have no telling name (0.4/0.5): names decide nothing
    assert without_dora_names(_named([libraries] * 8), 1.5, ()) is None
    # a recording without names (older) or with a thread never named: nothing said
    assert without_dora_names(_threads_samples([[100, 101]] * 8, [100]), 1.5, dora) is None
    unnamed = _named([libraries] * 8)
    unnamed.cpu[3].cpu[777] = 0.0
    assert without_dora_names(unnamed, 1.5, dora) is None
    # too little /proc before the stop
    assert without_dora_names(_named([libraries] * 8), -1.0, dora) is None


def test_a_load_after_numpy_and_pyarrow_is_starting_by_thread_names() -> None:
    """corpus/slow_startup_numpy.ddrec (real run, dora 1.1.0): three threads before Node(),
    two of them the libraries'; named, none is dora's."""
    loader = node("corpus/slow_startup_numpy", "loader")
    assert (loader.outcome, loader.cause) == ("terminated", "starting")
    assert "the process's thread names from /proc: none of those Node() starts" in loader.rests_on
    sentence = next(e for e in loader.evidence if "still starting" in e)
    assert "in build_weights (" in sentence and "dora-node-runti" in sentence
    assert all(a.kind == "config" for a in loader.advice)


def test_a_kill_line_of_an_earlier_stop_is_not_this_stop_s() -> None:
    """wb-0.5.0.ddrec (real, 0.5.0): 0.5.x writes "talker was killed due to not stopping …"
    without a dataflow id, up to 1.5 × grace after a stop; the same daemon runs the next
    dataflow, whose node is also `talker`. A line before this stop was asked for is the other
    stop's (seen in the matrix: `killed` and a grace inferred from it for a clean node)."""
    from dora_doctor.logs import events as logevents

    recording = read_recording(REC / "wb-0.5.0.ddrec")
    asked = min(e.time for e in recording.logs if e.kind == "stop-request" and e.time)
    text = "talker was killed due to not stopping within the 3s grace period"
    recording.logs.insert(
        0,
        logevents.LogEvent(
            logevents.GRACE_KILL, asked - 4.0, node="talker", source="daemon", text=text
        ),
    )
    found = {n.id: n for n in report_from_recording(recording).dataflows[0].nodes}
    assert (found["talker"].outcome, found["talker"].cause) == ("clean", "none")
    assert not any(text in e for e in found["talker"].evidence)
    assert "kill line" not in found["talker"].evidence[0]


def test_moving_on_and_back_to_the_wait_line_is_not_a_reaction() -> None:
    """A loop of short sleeps (a node still loading before Node(), dora 0.4.1) leaves its
    sleep line every step: a move right after the stop is no reaction when the thread spends
    most of the time after it back at that line. Leaving for good (reading STOP and cleaning
    up elsewhere) still is one."""
    outer = Frame("<module>", "/flow/nodes/load.py", 40)
    sleep = (outer, Frame("build_weights", "/flow/nodes/load.py", 24))
    work = (outer, Frame("build_weights", "/flow/nodes/load.py", 23))
    stop = 10.0
    steps = []
    t = 8.0
    while t < 12.0:  # 0.1 s asleep, 0.02 s making arrays, over and over
        steps += [(t, t + 0.1, sleep), (t + 0.1, t + 0.12, work)]
        t += 0.12
    moved = reaction_time(steps, sleep[-1], stop, 12.0)
    assert moved is not None and moved - stop < 0.15
    assert back_in_wait(steps, sleep[-1], moved, 12.0)
    cleanup = (outer, Frame("save", "/flow/nodes/load.py", 60))
    reacted = [(8.0, 10.02, sleep), (10.02, 12.0, cleanup)]
    assert not back_in_wait(reacted, sleep[-1], 10.02, 12.0)
    assert not back_in_wait(steps, None, moved, 12.0)


def test_a_load_before_node_on_0_4_is_starting_by_its_missing_daemon_connection() -> None:
    """ssn-0.4.1.ddrec (real run, dora 0.4.1): slow_startup_numpy's loader imported numpy and
    pyarrow, then loads before Node(). On 0.4.x neither thread rule can tell (Node() there
    starts no thread until the dataflow runs); /proc showed no connection to its daemon."""
    loader = node("ssn-0.4.1", "loader")
    assert (loader.outcome, loader.cause) == ("terminated", "starting")
    assert "the process's TCP connections from /proc: none to its daemon's address" in (
        loader.rests_on
    )
    sentence = next(e for e in loader.evidence if "still starting" in e)
    assert "in build_weights (" in sentence and "127.0.0.1:" in sentence
    assert all(a.kind == "config" for a in loader.advice)


def test_a_victim_on_0_4_connected_to_its_daemon_is_never_starting() -> None:
    """vi-0.4.1.ddrec (real run, dora 0.4.1): waiter waits in Node() for never_ready, which
    never gets there. On 0.4.1 a node waiting in Node() has no thread but Python's (measured
    on a node that imports only dora), which the Python-only rule alone took for start-up;
    its connection to the daemon, in the recording, says it called Node()."""
    recording = read_recording(REC / "vi-0.4.1.ddrec")
    kinds = {(e.node, e.kind) for e in recording.events if e.kind.startswith("daemon-")}
    assert kinds == {("waiter", "daemon-connected"), ("never_ready", "daemon-not-connected")}
    # the waiter as a node importing only dora would be: its non-Python threads dropped
    waiter_pid = next(
        n.sample_pid for df in recording.dataflows for n in df.nodes if n.id == "waiter"
    )
    python = {t.thread_id for s in recording.stacks if s.pid == waiter_pid for t in s.threads}
    for seg in recording.cpu:
        if seg.pid == waiter_pid:
            seg.cpu = {tid: cpu for tid, cpu in seg.cpu.items() if tid in python}
            seg.names = {tid: name for tid, name in seg.names.items() if tid in python}
    found = {n.id: n for df in report_from_recording(recording).dataflows for n in df.nodes}
    assert (found["waiter"].outcome, found["waiter"].cause) == ("terminated", "waiting-for-peer")
    assert (found["never_ready"].cause, found["never_ready"].advice[0].kind) == (
        "starting",
        "config",
    )
    # without the connection records, the threads alone no longer call it starting on 0.4.x
    recording.events = [e for e in recording.events if not e.kind.startswith("daemon-")]
    found = {n.id: n for df in report_from_recording(recording).dataflows for n in df.nodes}
    assert found["waiter"].cause != "starting"


def test_no_connection_is_no_start_up_claim_where_a_runtime_thread_was_seen() -> None:
    """A process first read after it dropped its Node (or with a tokio runtime of its own)
    holds no connection but has a runtime's threads: the missing link then claims nothing."""
    recording = read_recording(REC / "ssn-0.4.1.ddrec")
    loader = next(seg for seg in recording.cpu if seg.node == "loader" and seg.names)
    loader.names[max(loader.cpu) + 1] = "tokio-runtime-w"
    loader.cpu[max(loader.cpu) + 1] = 0.0
    found = report_from_recording(recording).dataflows[0].nodes[0]
    assert found.cause != "starting"


def test_the_daemon_link_claims_no_start_up_from_a_read_seconds_before_the_stop() -> None:
    """watch's baseline reads /proc every 2 s: a node that connected between its last read
    and the stop is first seen connected after the stop. Only a read after the stop that
    still found no connection makes "not connected at the stop" a claim."""
    from dora_doctor.analysis.timeline import NodeEnd
    from dora_doctor.analysis.verdict import daemon_link_before
    from dora_doctor.model import NodeProcess

    samples = _threads_samples([[100]] * 8, [100])  # /proc windows ending every 0.25 s to 2.0

    def link(*reads: Tuple[float, bool]) -> NodeEnd:
        return NodeEnd(NodeProcess("n", "d"), daemon_link=list(reads))

    assert daemon_link_before(link((0.1, False)), samples, 1.55) is False
    assert daemon_link_before(link((0.1, False), (1.0, True)), samples, 1.55) is True
    # first seen connected at the first read after the stop: it may have connected before
    assert daemon_link_before(link((0.1, False), (1.6, True)), samples, 1.55) is None
    # a read at 1.75 (a window's end) still found none: it connected after the stop
    assert daemon_link_before(link((0.1, False), (1.9, True)), samples, 1.55) is False
    assert daemon_link_before(link((1.6, False)), samples, 1.55) is None  # no read before
    assert daemon_link_before(link(), samples, 1.55) is None
    assert daemon_link_before(None, samples, 1.55) is None
