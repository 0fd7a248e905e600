"""The HTML report at 10 nodes × 30 s × 100 Hz: file size, render time, browser load time.

A synthetic recording of that size, built from the model's own dataclasses: per node a
MainThread whose line changes at every sample (the worst case: a pure-Python loop), a
worker holding the GIL in one C call, and an idle thread; one GIL segment per second. The
HTML is rendered in-process (timed), then opened in headless Chromium for a screenshot
(timed, against the same Chromium opening an empty page in the same run).
Results: bench/results/html_report.json.

    python bench/html_report.py
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import load as loadavg
from results_file import write_results  # noqa: E402

from dora_doctor.analysis.result import analyse
from dora_doctor.logs.events import STOP_REQUEST, LogEvent
from dora_doctor.model import (
    Dataflow,
    Frame,
    GilSegment,
    GilStack,
    NodeProcess,
    ProcessEvent,
    Span,
    StackSegment,
    ThreadTrack,
)
from dora_doctor.recording.model import SCHEMA, Recording
from dora_doctor.report import RenderOptions, registry

NODES, SECONDS, RATE = 10, 30, 100
T0 = 1_800_000_000.0


def synthetic() -> Recording:
    nodes = [NodeProcess(f"node{i}", "df", 1000 + i, 1000 + i, True, "3.11") for i in range(NODES)]
    dataflow = Dataflow("df", "bench", "Running", nodes)
    recording = Recording(None, {"type": "header", "schema": SCHEMA, "dora_version": "1.1.0",
                                 "sampler": {"rate": RATE}}, [dataflow])  # fmt: skip
    root = (Frame("<module>", "/app/node.py", 40), Frame("main", "/app/node.py", 30))
    worker = (
        Frame("Thread.run", "/usr/lib/threading.py", 982),
        Frame("crunch", "/app/node.py", 12),
    )
    idle = (Frame("Thread.run", "/usr/lib/threading.py", 982), Frame("wait", "/app/node.py", 50))
    for node in nodes:
        for second in range(SECONDS):
            start = T0 + second
            main_spans: List[Span] = [
                Span(start + k / RATE, start + (k + 1) / RATE,
                     root + (Frame("step", "/app/node.py", 60 + k % 20),))
                for k in range(RATE)
            ]  # fmt: skip
            threads = [
                ThreadTrack(1, "MainThread", main_spans),
                ThreadTrack(2, "worker", [Span(start, start + 1, worker)]),
                ThreadTrack(3, "idle", [Span(start, start + 1, idle)]),
            ]
            recording.stacks.append(
                StackSegment("df", node.id, node.pid or 0, start, start + 1, RATE, 0, threads)
            )
            holders = [
                GilStack(2, "worker", worker, 70),
                GilStack(1, "MainThread", main_spans[0].stack, 30),
            ]
            pid = node.pid or 0
            recording.gil.append(GilSegment("df", node.id, pid, start, start + 1, RATE, 0, holders))
        recording.events.append(
            ProcessEvent("df", node.id, node.pid or 0, T0 + SECONDS - 0.5, "exited")
        )
    recording.logs.append(
        LogEvent(STOP_REQUEST, T0 + SECONDS - 3, "df", source="dora-doctor", seconds=2.0)
    )
    return recording


def chromium_seconds(page: Path, tmp: Path) -> float:
    began = time.perf_counter()
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-proxy-server", "--host-resolver-rules=MAP * ~NOTFOUND",
         f"--user-data-dir={tmp / page.stem}", f"--screenshot={tmp / (page.stem + '.png')}",
         "--window-size=1200,3000", page.as_uri()],
        capture_output=True, check=True, timeout=300,
    )  # fmt: skip
    return time.perf_counter() - began


def main() -> int:
    load_before = loadavg()
    recording = synthetic()
    began = time.perf_counter()
    text = registry.HTML.render(analyse(recording), RenderOptions())
    render_s = time.perf_counter() - began
    row = {"nodes": NODES, "seconds": SECONDS, "rate_hz": RATE, "html_bytes": len(text.encode()),
           "analyse_and_render_s": round(render_s, 3)}  # fmt: skip
    if shutil.which("chromium"):
        with tempfile.TemporaryDirectory() as tmp:
            page, empty = Path(tmp) / "report.html", Path(tmp) / "empty.html"
            page.write_text(text)
            empty.write_text("<!doctype html><title>empty</title>")
            chromium_seconds(empty, Path(tmp))  # the first start pays for the disk cache
            bases, loads = [], []
            for _ in range(3):  # alternating, so a slow moment of the machine hits both
                bases.append(chromium_seconds(empty, Path(tmp)))
                loads.append(chromium_seconds(page, Path(tmp)))
            base, load = statistics.median(bases), statistics.median(loads)
            row["chromium_empty_page_s"] = round(base, 3)
            row["chromium_report_s"] = round(load, 3)
            row["chromium_extra_s"] = round(load - base, 3)
    row["loadavg_before"] = load_before
    row["loadavg_after"] = loadavg()
    print(row)
    print("wrote", write_results("html_report", [row]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
