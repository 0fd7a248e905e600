"""The shutdown diagnosis on recordings captured from real runs (fixtures/recordings/)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import pytest

from dora_doctor.analysis.diagnose import report_from_recording
from dora_doctor.analysis.findings import Diagnosis, NodeFinding
from dora_doctor.recording.reader import read_recording

REC = Path(__file__).parent / "fixtures" / "recordings"


def analyse(name: str) -> Diagnosis:
    return report_from_recording(read_recording(REC / f"{name}.ddrec"))


def nodes(report: Diagnosis) -> Dict[str, NodeFinding]:
    return {n.id: n for df in report.dataflows for n in df.nodes}


def test_c_call_holder_is_gil_contention_naming_the_holder() -> None:
    report = analyse("gil")
    crunch = nodes(report)["crunch"]
    assert crunch.outcome == "terminated"
    assert crunch.stop_duration_s == pytest.approx(2.07, abs=0.05)
    assert crunch.cause == "gil-contention"
    holder = crunch.gil.holders[0]
    assert (holder.thread, holder.function, holder.native) == ("cruncher", "crunch_numbers", True)
    assert holder.file.endswith("c_call_holder.py") and holder.share > 0.9
    assert any("cruncher" in e and "C call" in e for e in crunch.evidence)
    code = [a for a in crunch.advice if a.kind == "code"]
    assert code and code[0].location == f"{holder.file}:{holder.line}"
    suggestion = report.dataflows[0].suggestion
    assert suggestion is not None and suggestion.would_help is False and suggestion.grace_s is None
    assert "crunch (gil-contention)" in suggestion.reason


def test_pure_python_stop_handler_is_slow_shutdown_in_its_function() -> None:
    stubborn = nodes(analyse("slow"))["stubborn"]
    assert (stubborn.outcome, stubborn.cause) == ("terminated", "slow-shutdown")
    assert any("flush_state" in e and "computing in Python" in e for e in stubborn.evidence)
    locations = [a.location or "" for a in stubborn.advice if a.kind == "code"]
    assert any("python_stop_handler.py:" in loc for loc in locations)
    assert any(a.kind == "grace" for a in stubborn.advice)


def test_gil_free_cleanup_is_slow_shutdown_waiting_without_the_gil() -> None:
    saver = nodes(analyse("saver"))["saver"]
    assert (saver.outcome, saver.cause) == ("terminated", "slow-shutdown")
    assert any("save_to_disk" in e and "without the GIL" in e for e in saver.evidence)


def test_node_that_never_reads_stop_is_stuck_where_it_waits() -> None:
    report = analyse("deaf")
    deaf = nodes(report)["deaf"]
    assert (deaf.outcome, deaf.cause) == ("terminated", "stuck")
    assert any("wait_for_job" in e and "never read STOP" in e for e in deaf.evidence)
    assert any(a.kind == "grace" and "No grace period helps" in a.text for a in deaf.advice)
    suggestion = report.dataflows[0].suggestion
    assert suggestion is not None and not suggestion.would_help


def test_sigterm_handler_that_sleeps_is_killed_and_the_handler_is_read_from_sigcgt() -> None:
    sleeper = nodes(analyse("sl-sigcgt"))["sleeper"]
    assert sleeper.outcome == "killed"
    assert sleeper.stop_duration_s is not None and sleeper.stop_duration_s >= 3.0
    assert sleeper.cause == "stuck"
    assert "SigCgt of /proc/PID/status" in sleeper.rests_on
    assert any("on_sigterm" in e and "a SIGTERM handler" in e for e in sleeper.evidence)
    assert any("it catches SIGTERM (SigCgt" in e for e in sleeper.evidence)
    assert any("SIGTERM handler" in a.text for a in sleeper.advice)


def test_no_sigterm_handler_is_claimed_when_sigcgt_was_not_read() -> None:
    """sl.ddrec predates the SigCgt field: the move to on_sigterm is reported, the handler is
    not claimed, and no advice is given about a handler nobody saw."""
    sleeper = nodes(analyse("sl"))["sleeper"]
    assert (sleeper.outcome, sleeper.cause) == ("killed", "stuck")
    assert any(
        "outlived dora's SIGTERM at the grace deadline by 1.05 s" in e for e in sleeper.evidence
    )
    assert not any("a SIGTERM handler that delays" in e for e in sleeper.evidence)
    assert not any("SIGTERM handler" in a.text for a in sleeper.advice)
    assert "SigCgt of /proc/PID/status" not in sleeper.rests_on


def test_a_node_that_does_not_catch_sigterm_has_no_handler_claimed() -> None:
    """deaf-like nodes on a fresh recording: SigCgt read, bit 15 clear."""
    recording = read_recording(REC / "nd.ddrec")
    (node,) = recording.dataflows[0].nodes
    assert node.catches_sigterm is False
    found = nodes(report_from_recording(recording))["lingerer"]
    assert not any("SIGTERM handler" in e for e in found.evidence)


def test_well_behaved_nodes_get_none_and_a_grace_suggestion() -> None:
    report = analyse("wb-end")
    for node in nodes(report).values():
        assert (node.outcome, node.cause) == ("clean", "none")
        assert "dora's dataflow end line, no failure line for the node" in node.rests_on
        assert node.stop_duration_s is not None and node.stop_duration_s < 2.0
        assert node.advice == []
    suggestion = report.dataflows[0].suggestion
    assert suggestion is not None and suggestion.would_help and suggestion.grace_s is not None
    assert suggestion.command == f"dora stop wb --grace-duration {suggestion.grace_s:g}s"


def test_no_clean_without_dora_s_line_and_no_grace_from_an_unknown_end() -> None:
    """wb.ddrec's watch ended before dora's end line was read: the processes vanished 0.1 s
    after STOP, which a SIGTERM can look like too, so the outcome is unknown with the reason,
    the cause still says they left their event wait, and no grace value is suggested."""
    report = analyse("wb")
    for node in nodes(report).values():
        assert node.outcome == "unknown"
        assert node.cause == "none"
        assert any("How it ended is unknown: no line from dora" in e for e in node.evidence)
        assert node.rests_on[0] == "process exit seen"
    suggestion = report.dataflows[0].suggestion
    assert suggestion is not None and suggestion.grace_s is None


def test_mixed_dataflow_early_exit_and_non_python_node() -> None:
    found = nodes(analyse("mx"))
    assert (found["steady"].outcome, found["steady"].cause) == ("unknown", "none")
    assert found["early"].outcome == "unknown" and found["early"].stop_duration_s is None
    assert any("before the stop request" in e for e in found["early"].evidence)
    native = found["native"]
    assert native.python is False and native.cause is None
    assert native.outcome == "terminated" and native.samples == 0


def test_report_of_a_recording_without_a_stop_has_no_cause() -> None:
    recording = read_recording(REC / "gil.ddrec")
    recording.logs = [e for e in recording.logs if e.kind != "stop-request"]
    crunch = nodes(report_from_recording(recording))["crunch"]
    assert crunch.cause is None
    assert crunch.gil.holders[0].thread == "cruncher"


def test_a_clean_stop_faster_than_the_samples_is_none_not_unknown() -> None:
    recording = read_recording(REC / "wb-end.ddrec")
    # keep only the samples before the stop: the nodes then ended "between two samples",
    # as a node that exits 30 ms after STOP does on a loaded machine
    stop = min(e.time for e in recording.logs if e.kind == "stop-request" and e.time)
    recording.stacks = [s for s in recording.stacks if s.end <= stop]
    recording.gil = [g for g in recording.gil if g.end <= stop]
    for node in nodes(report_from_recording(recording)).values():
        assert (node.outcome, node.cause) == ("clean", "none"), node


def test_a_daemon_death_is_about_its_own_machine_in_a_merged_recording() -> None:
    from dora_doctor.logs import events as logevents

    def evidence_of_daemon_death(machine: "str | None") -> Dict[str, bool]:
        recording = read_recording(REC / "wb.ddrec")
        for node in recording.dataflows[0].nodes:
            node.machine = {"talker": "A", "listener": "B"}[node.id]
        first_exit = min(e.time for e in recording.events if e.kind == "exited")
        recording.logs.append(
            logevents.LogEvent(
                logevents.DAEMON_GONE, first_exit - 0.05, source="dora-doctor", machine=machine
            )
        )
        return {
            n.id: any("daemon exited" in e for e in n.evidence)
            for n in nodes(report_from_recording(recording)).values()
        }

    assert evidence_of_daemon_death("A") == {"talker": True, "listener": False}
    assert evidence_of_daemon_death(None) == {"talker": True, "listener": True}  # one machine
