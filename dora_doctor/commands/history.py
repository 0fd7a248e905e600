"""`dora-doctor history`: what real stops said per node, read from the history DB; and the
options and one-call helpers with which the other commands write to it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from dora_doctor.commands import common
from dora_doctor.errors import DoctorError
from dora_doctor.report import consoles

if TYPE_CHECKING:
    from dora_doctor.analysis.findings import Diagnosis
    from dora_doctor.analysis.postmortem import Postmortem
    from dora_doctor.analysis.rehearsal import Rehearsal
    from dora_doctor.recording.model import Recording

DB = typer.Option(
    None,
    "--db",
    help="The history database (default: $XDG_DATA_HOME/dora-doctor/history.sqlite3, "
    "~/.local/share/… when unset).",
)
NO_HISTORY = typer.Option(
    False, "--no-history", help="Do not add this run's stops to the history database."
)


def record_diagnosis(
    recording: "Recording",
    diagnosis: "Diagnosis",
    writer: str,
    db: Optional[Path],
    no_history: bool,
    recording_path: Optional[Path] = None,
) -> None:
    """After `inspect`: its shutdown into the history (one line on stderr if it cannot be)."""
    if no_history:
        return
    from dora_doctor.history import write

    write.record(recording, diagnosis, writer, db, recording_path)


def record_rehearsal(
    rehearsal: "Rehearsal", writer: str, db: Optional[Path], no_history: bool
) -> None:
    """After `tune-grace` or `check`: every rehearsed stop, named by the dataflow file."""
    if no_history:
        return
    from dora_doctor.history import write

    for run in rehearsal.runs:
        if run.recorded is not None:
            write.record(
                run.recorded,
                run.report,
                writer,
                db,
                run.recording,
                rehearsal.dataflow_file,
                rehearsal.dataflow_file.stem,
            )


def record_postmortem(
    result: "Postmortem", db: Optional[Path], no_history: bool, recording: Optional[Path]
) -> None:
    if no_history:
        return
    from dora_doctor.history import write

    write.record_postmortem(result, "postmortem", db, recording)


def command(
    args: Optional[List[str]] = typer.Argument(
        None,
        metavar="[DATAFLOW] | import DIR… | prune",
        help="A dataflow (name, UUID or prefix, descriptor hash) to show; or `import` and "
        "log files or out/ directories to add every stop they show; or `prune`.",
    ),
    db: Optional[List[Path]] = typer.Option(
        None,
        "--db",
        help="The history database; give it several times to read several machines' DBs "
        "as one (default: $XDG_DATA_HOME/dora-doctor/history.sqlite3).",
    ),
    node: Optional[str] = typer.Option(None, "--node", help="Only this node."),
    since: Optional[str] = typer.Option(
        None, "--since", help="Only stops of this recent past (7d, 12h, 2w)."
    ),
    keep: Optional[str] = typer.Option(
        None, "--keep", help="With prune: delete stops older than this (90d)."
    ),
    max_recordings: Optional[str] = typer.Option(
        None,
        "--max-recordings",
        help="With prune: delete the oldest recordings dora-doctor made itself (watch) "
        "until they take at most this much (500M, 2G).",
    ),
    html_file: Optional[Path] = typer.Option(
        None,
        "--html",
        help="Also write a chart of stop→exit over time per node, terminated and killed "
        "stops marked, the grace in force as a line.",
    ),
    as_json: bool = common.JSON,
) -> None:
    """What real stops said, per node: how many, how they ended, how long stop→exit took.

    Regressions come first: a node dora began to terminate or kill, or whose p95 stop→exit
    of the last 20 stops is over 1.5 × the earlier p95. Stops that dora ended count as
    "≥ value". `inspect`, `tune-grace`, `check`, `postmortem` and `watch` add to the
    history unless given --no-history.

    \b
    Examples:
      dora-doctor history
      dora-doctor history robot --node camera --since 7d --html robot-stops.html
      dora-doctor history --db a.sqlite3 --db b.sqlite3 --json
      dora-doctor history import /var/log/dora/out/ old-run.log
      dora-doctor history prune --keep 90d --max-recordings 2G
    """
    words = list(args or [])
    action = words[0] if words and words[0] in ("import", "prune") else "show"
    if action == "import":
        _import(words[1:], db)
    elif action == "prune":
        if len(words) > 1:
            raise DoctorError("prune takes no arguments: --keep 90d, --max-recordings 2G")
        _prune(db, keep, max_recordings)
    else:
        if len(words) > 1:
            raise DoctorError(f"one dataflow at a time, got {len(words)}: {' '.join(words)}")
        _show(words[0] if words else None, db, node, since, as_json, html_file)


def _one_db(db: Optional[List[Path]]) -> Path:
    from dora_doctor.history import store

    if db and len(db) > 1:
        raise DoctorError("import and prune write to one --db")
    return db[0] if db else store.default_path()


def _import(inputs: List[str], db: Optional[List[Path]]) -> None:
    from dora_doctor.analysis import postmortem
    from dora_doctor.history import write

    if not inputs:
        raise DoctorError("history import needs log files or out/ directories")
    path = _one_db(db)
    result = postmortem.postmortem(inputs)
    for problem in result.scan.stats.problems:
        print(f"dora-doctor: warning: {problem}", file=sys.stderr)
    if result.scan.stats.files == 0:
        raise DoctorError("nothing to read: " + "; ".join(result.scan.stats.problems))
    added = write.record_postmortem(result, "import", path)
    if added is None:
        raise DoctorError(f"nothing imported: {path} could not be written", 1)
    found = len(result.report.dataflows)
    print(f"imported {added} new stop(s) into {path} ({found} dataflow(s) in the logs)")


def _prune(db: Optional[List[Path]], keep: Optional[str], max_recordings: Optional[str]) -> None:
    import sqlite3

    from dora_doctor.history import store, summary

    if keep is None and max_recordings is None:
        raise DoctorError("prune needs --keep (90d) or --max-recordings (2G)")
    keep_s = summary.parse_age(keep, "--keep") if keep else None
    cap = parse_size(max_recordings, "--max-recordings") if max_recordings else None
    path = _one_db(db)
    if not path.is_file():
        raise DoctorError(f"no history at {path} yet: nothing to prune")
    try:
        conn = store.connect(path)
        try:
            if keep_s is not None:
                gone = store.prune(conn, summary.since_cutoff(keep_s) or 0.0)
                print(f"deleted {gone} stop(s) older than {keep} from {path}")
            if cap is not None:
                files, freed = store.cap_recordings(conn, path, cap)
                print(f"deleted {files} recording(s), {freed / 1e6:.1f} MB")
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise DoctorError(f"--db {path}: {err}", 1) from err


_SIZE_SCALE = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def parse_size(text: str, option: str) -> int:
    import re

    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*$", text, re.IGNORECASE)
    if not match:
        raise DoctorError(f"{option} {text!r} is not a size: write 500M, 2G")
    return int(float(match[1]) * _SIZE_SCALE[match[2].upper()])


def _show(
    dataflow: Optional[str],
    db: Optional[List[Path]],
    node: Optional[str],
    since: Optional[str],
    as_json: bool,
    html_file: Optional[Path] = None,
) -> None:
    import json

    from dora_doctor.commands.common import refuse_existing, write_output
    from dora_doctor.history import query, store, summary
    from dora_doctor.report import history as render

    refuse_existing(html_file)
    since_s = summary.parse_age(since, "--since") if since else None
    paths = db or [store.default_path()]
    cutoff = summary.since_cutoff(since_s)
    found = query.summarise(paths, dataflow, node, cutoff)
    data = found.to_dict()
    if html_file is not None:
        series = query.series(paths, dataflow, node, cutoff)
        write_output(html_file, render.render_html(data, series))
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        render.render_terminal(data, consoles.out())


def suggest_from_history(
    dataflow_file: Path,
    db: Optional[Path],
    since: Optional[str],
    margin: float,
    as_json: bool,
) -> None:
    """`tune-grace --from-history`: the grace real stops call for, with no rehearsal."""
    import json
    from dataclasses import asdict

    from dora_doctor.history import entries, store, summary
    from dora_doctor.report import history as render

    since_s = summary.parse_age(since, "--since") if since else None
    path = db or store.default_path()
    descriptor = entries.descriptor_hash(dataflow_file) if dataflow_file.is_file() else None
    name = dataflow_file.stem if dataflow_file.suffix in (".yml", ".yaml") else str(dataflow_file)
    conn = store.connect_read(path)
    try:
        views = store.read_node_stops([conn], summary.since_cutoff(since_s))
        found = summary.suggest_grace(views, name, margin, descriptor)
    finally:
        conn.close()
    if found.node_stops == 0:
        raise DoctorError(
            f"no stops of {name} in {path}"
            + (f" in the last {since}" if since else "")
            + ": run inspect, tune-grace or `history import` first",
            1,
        )
    data = {
        "schema": "dora-doctor.history-grace/1",
        "dataflow": name,
        "stops": found.stops,
        "node_stops": found.node_stops,
        "suggestion": asdict(found.suggestion),
        "nodes": [asdict(s) for s in found.nodes],
    }
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        render.render_grace(data, consoles.out())
