"""Turn a recording into findings: per node, how it ended, why, and what to change.

The decision is :func:`verdict.decide` (typed, no sentences); the sentences and advice are
:mod:`wording`'s. This module puts the two together per node and adds what is not about the
shutdown: the sampling figures, the local variables, and the dataflow's grace suggestion.
Pure functions over :class:`~dora_doctor.recording.model.Recording`: every result can be
reproduced from the file alone.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, TypeVar

from dora_doctor.analysis import grace as grace_mod
from dora_doctor.analysis import redaction, wording
from dora_doctor.analysis.findings import (
    DataflowFinding,
    Diagnosis,
    DumpedThread,
    LastDumpFinding,
    NodeFinding,
    Outcome,
    Suggestion,
)
from dora_doctor.analysis.timeline import FINISH_DRAIN_SOURCE, Shutdown, build_shutdown
from dora_doctor.analysis.verdict import (
    F_OPERATOR,
    F_SAMPLING,
    Fact,
    NodeVerdict,
    Samples,
    Window,
    blame_peers,
    cpu_share,
    decide,
    dora_gone,
    gil_finding,
    peers_never_connected,
    top_frame,
    window_ticks,
)
from dora_doctor.model import CpuSegment, GilSegment, ProcessEvent, StackSegment
from dora_doctor.recording.model import Recording

__all__ = ["cpu_share", "fill_sampling", "report_from_recording", "suggestion_from_findings"]

_Item = TypeVar("_Item", StackSegment, GilSegment, CpuSegment, ProcessEvent)


def _of(items: Sequence[_Item], dataflow: str, node: str) -> List[_Item]:
    """The records of one node of one dataflow."""
    return [x for x in items if x.dataflow == dataflow and x.node == node]


# frames shown per thread of a last dump, and threads per node
DUMP_FRAMES = 8
DUMP_THREADS = 8


def last_dump_of(
    recording: Recording, shutdown: Shutdown, uuid: str, node: NodeFinding
) -> Optional[LastDumpFinding]:
    """The node's last dump before its end, for a node dora ended (terminated or killed):
    what it was doing when the signal came. A dump after the node's end cannot exist; one
    taken before the stop says nothing about the kill and is not used."""
    if node.outcome not in ("terminated", "killed"):
        return None
    request = shutdown.request.time if shutdown.request is not None else None
    end = shutdown.end_of(node.id)
    ended = end.time if end is not None else None
    dumps = [
        d
        for d in recording.last_dumps
        if d.dataflow == uuid
        and d.node == node.id
        and (request is None or d.time >= request)
        and (ended is None or d.time <= ended)
    ]
    if not dumps:
        return None
    last = max(dumps, key=lambda d: d.time)
    threads = sorted(last.threads, key=lambda t: (not t.owns_gil, not t.active))
    return LastDumpFinding(
        before=last.before,
        seconds_after_stop=round(last.time - request, 3) if request is not None else None,
        seconds_before_end=round(ended - last.time, 3) if ended is not None else None,
        threads=[
            DumpedThread(
                thread=t.name or str(t.thread_id),
                owns_gil=t.owns_gil,
                active=t.active,
                frames=[
                    f"{f.function} ({f.file}:{f.line})" + (" [native]" if f.native else "")
                    for f in t.frames[:DUMP_FRAMES]
                ],
            )
            for t in threads[:DUMP_THREADS]
        ],
        error=last.error,
    )


def report_from_recording(
    recording: Recording, margin: float = 1.5, show_locals: bool = False
) -> Diagnosis:
    report = Diagnosis(dora_version=recording.dora_version)
    report.recording = str(recording.path) if recording.path else None
    for dataflow in recording.dataflows:
        shutdown = build_shutdown(recording, dataflow)
        finding = DataflowFinding(uuid=dataflow.uuid, name=dataflow.name)
        verdicts: Dict[str, NodeVerdict] = {}
        for node in dataflow.nodes:
            stacks = _of(recording.stacks, dataflow.uuid, node.id)
            gil = _of(recording.gil, dataflow.uuid, node.id)
            node_finding = NodeFinding(
                id=node.id,
                pid=node.pid,
                python=node.python,
                python_version=node.python_version,
                machine=node.machine,
                skipped=node.skip_reason,
            )
            notes: List[Fact] = []
            for event in _of(recording.events, dataflow.uuid, node.id):
                if event.kind == "sampler-error":
                    node_finding.skipped = event.detail
                elif event.kind == "sampler-degraded" and event.detail:
                    notes.append(Fact(F_SAMPLING, {"detail": event.detail}))
            fill_sampling(
                node_finding, stacks, gil, prefix=node.python_prefix, operators=node.operators
            )
            cpu = _of(recording.cpu, dataflow.uuid, node.id)
            rate = node_finding.sample_rate_hz
            if gil and _has_baseline(recording):
                rate = _full_rate(node_finding.id, stacks, gil, node.python_prefix) or rate
            samples = Samples(stacks, gil, cpu, node.python_prefix, rate, node.operators)
            verdict = decide(node, samples, shutdown, notes, bool(node_finding.skipped))
            dora_gone(verdict, recording, shutdown, node)
            verdicts[node.id] = verdict
            node_finding.locals = redaction.node_values(
                recording, dataflow.uuid, node.id, show_locals
            )
            finding.nodes.append(node_finding)
        texts = [e.text for e in recording.logs if e.dataflow in (None, dataflow.uuid) and e.text]
        blame_peers(verdicts, peers_never_connected(texts))
        for node_finding in finding.nodes:
            _say(node_finding, verdicts[node_finding.id])
            node_finding.last_dump = last_dump_of(recording, shutdown, dataflow.uuid, node_finding)
        if shutdown.request is not None and shutdown.request.source == FINISH_DRAIN_SOURCE:
            ended = (Outcome.TERMINATED, Outcome.KILLED)
            finding.suggestion = grace_mod.finish_drain(
                [n.id for n in finding.nodes if n.outcome in ended]
            )
        elif shutdown.request is not None:
            finding.suggestion = suggestion_from_findings(
                finding,
                dataflow.label,
                margin,
                shutdown.grace.seconds if shutdown.grace else None,
                shutdown.dora_version,
            )
        report.dataflows.append(finding)
    return report


def _has_baseline(recording: Recording) -> bool:
    sampler = recording.header.get("sampler")
    return isinstance(sampler, dict) and bool(sampler.get("baseline_rate"))


def _full_rate(
    node: str, stacks: List[StackSegment], gil: List[GilSegment], prefix: Optional[str]
) -> Optional[float]:
    """The stacks' rate while the GIL recorder ran: ``watch`` samples at a low baseline rate
    until a stop and at full rate after, and GIL counts turn into seconds at the rate they
    were taken at, not at the average over a long baseline (which would make a short hold
    look long)."""
    probe = NodeFinding(id=node, pid=None, python=True)
    window = (min(g.start for g in gil), max(g.end for g in gil))
    fill_sampling(probe, stacks, gil, window, prefix)
    return probe.sample_rate_hz


def _say(finding: NodeFinding, verdict: NodeVerdict) -> None:
    """Copy a verdict into its finding, in words."""
    finding.outcome, finding.cause = verdict.outcome, verdict.cause
    finding.stop_duration_s = verdict.stop_duration_s
    if verdict.gil is not None:  # over the shutdown window
        finding.gil = verdict.gil
    finding.evidence = wording.evidence(verdict)
    finding.advice = wording.advice(verdict)
    finding.rests_on = list(verdict.rests_on)
    finding.operator = operator_named(verdict)


def operator_named(verdict: NodeVerdict) -> Optional[str]:
    """The operator a verdict is about: the one whose on_event the event thread ran, else the
    blamed holder's; None for a plain node or a recording that does not list operators."""
    for fact in verdict.facts:
        if fact.kind == F_OPERATOR and fact.data.get("operator"):
            return str(fact.data["operator"])
    return verdict.holder.operator if verdict.holder is not None else None


def fill_sampling(
    finding: NodeFinding,
    stacks: List[StackSegment],
    gil: List[GilSegment],
    window: Optional[Window] = None,
    prefix: Optional[str] = None,
    operators: Optional[Dict[str, str]] = None,
) -> None:
    """Sample count, rate, GIL share and holders of one node over ``window`` (or all)."""
    ticks = window_ticks(stacks, window)
    # the whole time sampled, gaps between py-spy segments included: an honest rate
    starts = [s.start for s in stacks]
    ends = [s.end for s in stacks]
    covered = 0.0
    if stacks:
        low, high = min(starts), max(ends)
        covered = max(0.0, (min(high, window[1]) - max(low, window[0])) if window else high - low)
    finding.samples = int(round(ticks))
    finding.sample_rate_hz = round(ticks / covered, 1) if covered > 0 else None
    finding.gil = gil_finding(stacks, gil, window, ticks, prefix, finding.sample_rate_hz, operators)
    finding.top_frame = top_frame(stacks, gil)


def suggestion_from_findings(
    finding: DataflowFinding,
    name: str,
    margin: float,
    current_grace_s: Optional[float],
    dora_version: Optional[str] = None,
) -> Suggestion:
    """inspect's single observation: a clean stop measures the need, an ended one bounds it."""
    times: Dict[str, List[grace_mod.StopTime]] = {}
    for node in finding.nodes:
        if node.stop_duration_s is None:
            continue
        if node.outcome in (Outcome.UNKNOWN, None):
            continue  # an end nobody saw how: no grace value is derived from it
        censored = node.outcome in (Outcome.TERMINATED, Outcome.KILLED, Outcome.RUNNING)
        times[node.id] = [grace_mod.StopTime(node.stop_duration_s, censored, node.cause)]
    return grace_mod.suggest(
        grace_mod.stats_by_node(times), name, margin, current_grace_s, dora_version
    )
