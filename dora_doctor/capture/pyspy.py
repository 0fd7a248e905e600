"""Everything dora-doctor knows about the py-spy executable: where it is, how to call it,
how to read what it writes and what its errors mean.

Output parsers are small and separate (``parse_summary``, ``parse_raw``,
``parse_chrometrace``) so each can be tested on real py-spy output without running it.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from dora_doctor.errors import DoctorError
from dora_doctor.executables import beside_python_or_on_path, quiet_rust_env
from dora_doctor.model import Frame, GilStack, Span, Stack, ThreadTrack

# py-spy marks each stack's root with the thread when called with --threads, e.g.
# "thread (2056): cruncher" (Linux: native thread id in decimal) or "thread (0x7F3A...)".
_THREAD_ROOT = re.compile(r"^thread \((?P<id>0x[0-9a-fA-F]+|\d+)\)(?:: (?P<name>.*))?$")
# raw format frame: "crunch (/tmp/x/hold.py:7)"
_RAW_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")
# closing line of `py-spy record`, e.g. "Wrote raw flamegraph data to 'x'. Samples: 199 Errors: 0"
_SUMMARY = re.compile(r"Samples: (?P<samples>\d+) Errors: (?P<errors>\d+)")


@dataclass(frozen=True)
class ThreadId:
    id: int
    name: str


def find_pyspy() -> str:
    """py-spy is a pip dependency, so look next to this interpreter before PATH.

    A ``sudo dora-doctor`` often runs with a PATH that lacks the virtualenv's ``bin``.
    """
    found = beside_python_or_on_path("py-spy")
    if found:
        return found
    raise DoctorError(
        "py-spy was not found next to this Python or on PATH: install it with "
        "`pip install py-spy` in the environment that runs dora-doctor"
    )


def pyspy_env() -> Dict[str, str]:
    return quiet_rust_env()


def record_argv(
    pyspy: str,
    pid: int,
    output: Path,
    *,
    gil: bool,
    rate: int,
    duration_s: int,
    nonblocking: bool = False,
) -> List[str]:
    """Arguments of one recording segment.

    ``gil=True`` keeps only the samples where a thread holds the GIL, in the aggregated
    ``raw`` format (exact counts per thread and stack); ``gil=False`` keeps every thread at
    every sample, idle ones included, as a timestamped ``chrometrace``.
    """
    argv = [
        pyspy,
        "record",
        "--pid",
        str(pid),
        "--rate",
        str(rate),
        "--duration",
        str(duration_s),
        "--threads",
        "--full-filenames",
        "--output",
        str(output),
    ]
    if gil:
        argv += ["--format", "raw", "--gil"]
    else:
        argv += ["--format", "chrometrace", "--idle"]
    if nonblocking or gil:
        # Two blocking recorders on one process collide: only one tracer can pause it at a
        # time, and the other's sample fails (measured: a quarter of the samples lost). The
        # GIL holder is one pointer read, which needs no pause, so that recorder never pauses.
        argv.append("--nonblocking")
    return argv


def parse_summary(stdout: str) -> Optional[Tuple[int, int]]:
    """(samples, errors) from py-spy record's last line, or None if it never wrote one."""
    match = _SUMMARY.search(stdout)
    if not match:
        return None
    return int(match["samples"]), int(match["errors"])


def parse_thread_root(text: str) -> Optional[ThreadId]:
    match = _THREAD_ROOT.match(text)
    if not match:
        return None
    raw_id = match["id"]
    thread_id = int(raw_id, 16) if raw_id.startswith("0x") else int(raw_id)
    return ThreadId(thread_id, match["name"] or "")


def parse_raw_frame(text: str) -> Frame:
    match = _RAW_FRAME.match(text)
    if not match:
        return Frame(text, "", 0)
    return Frame(match["function"], match["file"], int(match["line"] or 0))


def parse_raw(text: str) -> List[GilStack]:
    """Parse ``--format raw --threads`` output: one ``root;frame;...;leaf COUNT`` per line.

    Lines without a thread root (py-spy called without ``--threads``) are attributed to
    thread 0 rather than dropped, so counts always add up.
    """
    stacks: List[GilStack] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        body, _, count_text = line.rpartition(" ")
        if not body or not count_text.isdigit():
            continue
        parts = body.split(";")
        thread = parse_thread_root(parts[0])
        if thread is not None:
            parts = parts[1:]
        else:
            thread = ThreadId(0, "")
        stack: Stack = tuple(parse_raw_frame(p) for p in parts)
        stacks.append(GilStack(thread.id, thread.name, stack, int(count_text)))
    return stacks


def parse_chrometrace(events: Sequence[Dict[str, object]], origin: float) -> List[ThreadTrack]:
    """Rebuild every thread's stack over time from py-spy's chrometrace begin/end events.

    py-spy emits ``B`` for frames a sample added and ``E`` for frames it dropped, all at the
    sample's timestamp (µs since py-spy started, which ``origin`` maps to wall-clock time),
    so replaying them per thread gives the exact stack between consecutive changes.
    """
    by_tid: Dict[int, List[Dict[str, object]]] = {}
    for event in events:
        tid = event.get("tid")
        if isinstance(tid, int) and event.get("ph") in ("B", "E"):
            by_tid.setdefault(tid, []).append(event)

    tracks: List[ThreadTrack] = []
    for tid, thread_events in by_tid.items():
        thread_events.sort(key=lambda e: _int(e.get("ts")))
        track = ThreadTrack(thread_id=tid, name="")
        current: List[Frame] = []
        since: Optional[float] = None
        for ts, group in _group_by_ts(thread_events):
            when = origin + ts / 1e6
            if since is not None and current and when > since:
                track.spans.append(Span(since, when, tuple(current)))
            for event in group:
                name = str(event.get("name", ""))
                args = event.get("args")
                args = args if isinstance(args, dict) else {}
                if event.get("ph") == "B":
                    root = parse_thread_root(name) if not current else None
                    if root is not None:
                        track.thread_id, track.name = root.id, root.name
                        continue
                    current.append(
                        Frame(name, str(args.get("filename", "")), _int(args.get("line")))
                    )
                elif current and event.get("ph") == "E":
                    if parse_thread_root(name) is None:
                        current.pop()
            since = when
        tracks.append(track)
    return tracks


def ticks_from_samples(samples: int, tracks: Sequence[ThreadTrack]) -> int:
    """How many times py-spy sampled the process, from its count of thread stacks.

    py-spy's "Samples: N" counts one per thread per sample. With ``--idle`` every live
    thread is in every sample, so dividing by the average number of live threads (each
    thread's time span over the longest one) recovers the number of samples.
    """
    lifetimes = [t.spans[-1].end - t.spans[0].start for t in tracks if t.spans]
    longest = max(lifetimes, default=0.0)
    # each span of a thread begins at a sample of its own: a floor when py-spy's count is
    # missing (a recorder ended before its summary line) or smaller than what it wrote
    seen = max((len(t.spans) for t in tracks), default=0)
    if samples <= 0 or longest <= 0:
        counted = samples if len(lifetimes) <= 1 else samples // max(1, len(lifetimes))
        return max(counted, seen)
    threads = sum(lifetimes) / longest
    return max(int(round(samples / max(1.0, threads))), seen)


def load_chrometrace(path: Path, origin: float) -> List[ThreadTrack]:
    return load_chrometrace_ids(path, origin)[0]


def load_chrometrace_ids(path: Path, origin: float) -> Tuple[List[ThreadTrack], Dict[int, int]]:
    """The tracks of :func:`parse_chrometrace` and the :func:`os_thread_ids` of the same file."""
    try:
        events = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError):
        return [], {}
    if not isinstance(events, list):
        return [], {}
    return parse_chrometrace(events, origin), os_thread_ids(events)


# Linux thread ids never exceed PID_MAX_LIMIT (2**22 on 64-bit); a pthread id is an address.
PID_MAX_LIMIT = 1 << 22


def os_thread_ids(events: Sequence[Dict[str, object]]) -> Dict[int, int]:
    """pthread id → OS thread id, from chrometrace events' ``tid`` and their thread roots.

    Why: on Python < 3.11 the thread state holds no OS thread id, so a ``--nonblocking``
    recorder (the GIL one) names threads by pthread id, ``thread (0x7F1B8E7C16C0)``, while the
    pausing ``--idle`` recorder names them by OS id, ``thread (26943)``, and puts the pthread id
    in ``tid``. With this map both recorders speak of the same thread (3.11+ need none).
    """
    ids: Dict[int, int] = {}
    for event in events:
        tid, name = event.get("tid"), event.get("name")
        if not isinstance(tid, int) or not isinstance(name, str) or tid in ids:
            continue
        root = parse_thread_root(name)
        if root is not None and root.id <= PID_MAX_LIMIT:
            ids[tid] = root.id
    return ids


def with_os_thread_ids(stacks: Sequence[GilStack], ids: Dict[int, int]) -> List[GilStack]:
    """``stacks`` with every pthread id that ``ids`` knows replaced by its OS thread id."""
    return [
        replace(stack, thread_id=ids[stack.thread_id]) if stack.thread_id in ids else stack
        for stack in stacks
    ]


def needs_os_thread_ids(stacks: Sequence[GilStack]) -> bool:
    return any(stack.thread_id > PID_MAX_LIMIT for stack in stacks)


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _group_by_ts(
    events: Iterable[Dict[str, object]],
) -> Iterable[Tuple[int, List[Dict[str, object]]]]:
    group: List[Dict[str, object]] = []
    ts: Optional[int] = None
    for event in events:
        event_ts = _int(event.get("ts"))
        if ts is not None and event_ts != ts:
            yield ts, group
            group = []
        ts = event_ts
        group.append(event)
    if ts is not None:
        yield ts, group


# What py-spy says, and what the user should be told. Checked in order.
_ERRORS: List[Tuple[str, re.Pattern[str], str]] = [
    (
        "permission",
        re.compile(r"Permission Denied|Operation not permitted|EPERM", re.I),
        "py-spy may not read process {pid}: run dora-doctor as root (sudo), give py-spy "
        "CAP_SYS_PTRACE, or allow tracing with `sysctl kernel.yama.ptrace_scope=0`",
    ),
    (
        "not-python",
        re.compile(r"Failed to find python version|Failed to get process executable name", re.I),
        "process {pid} is not a Python interpreter py-spy can read (or it has just exited)",
    ),
    (
        "gone",
        re.compile(r"No such process|process \d+ ended|Stopped sampling because the process", re.I),
        "process {pid} has exited",
    ),
]


def tracer_of(pid: int) -> Optional[Tuple[int, str]]:
    """(PID, name) of the process ptrace-attached to ``pid``, or None.

    Only one tracer can attach to a process at a time: while a debugger, strace or another
    profiler holds it, py-spy cannot pause it and fails with EPERM, which looks exactly like
    missing rights. ``TracerPid`` in ``/proc/PID/status`` (readable by any user) tells the
    two apart.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = re.search(r"^TracerPid:\s*(\d+)", status, re.M)
    if not match or match[1] == "0":
        return None
    tracer = int(match[1])
    try:
        name = Path(f"/proc/{tracer}/comm").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        name = "an unknown process"
    return tracer, name


def classify_error(output: str, pid: int) -> Tuple[str, str]:
    """Map py-spy's stderr to (kind, one-line message for the user)."""
    for kind, pattern, message in _ERRORS:
        if pattern.search(output):
            return kind, message.format(pid=pid)
    last = next((ln.strip() for ln in reversed(output.splitlines()) if ln.strip()), "")
    return "other", f"py-spy failed on process {pid}: {last or 'no output'}"


def run_dump(argv: Sequence[str], pid: int, timeout_s: float) -> Tuple[str, Optional[str]]:
    """Run one ``py-spy dump``: its output, or why there is none (one line, for a record's
    ``error``); a dump that fails never raises."""
    try:
        result = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=pyspy_env(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "", f"py-spy dump did not answer within {timeout_s:g} s"
    except OSError as err:
        return "", f"py-spy could not run: {err.strerror}"
    if result.returncode != 0:
        return "", classify_error(result.stderr + result.stdout, pid)[1]
    return result.stdout, None
