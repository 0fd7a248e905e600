"""The history database: where it lives, its versioned schema, and safe writes.

SQLite in WAL mode, so a reader never blocks the writer; a busy timeout, so two writers (a
``watch`` and an ``inspect`` on the same machine) wait for each other instead of failing; and
one transaction per stop, so a process killed mid-write loses at most the stop it was writing.
The schema only grows by numbered migrations, one function each, recorded in
``schema_version``: a DB written by an older dora-doctor is upgraded in place, one written by a
newer one is refused rather than misread.

Never stored: the values of local variables (``inspect --locals``). A row holds names of
threads, functions and files, numbers and outcomes, nothing a node computed.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

from dora_doctor.errors import DoctorError

DB_NAME = "history.sqlite3"
UNNAMED = "(unnamed)"  # the label of a dataflow whose name is not known (logs name only UUIDs)
# How long a writer waits for another one before giving up: a stop is written in a few
# milliseconds, so 30 s means the other writer is stuck, not busy.
BUSY_TIMEOUT_S = 30.0


def default_dir() -> Path:
    """``$XDG_DATA_HOME/dora-doctor`` (``~/.local/share/dora-doctor`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "dora-doctor"


def default_path() -> Path:
    return default_dir() / DB_NAME


def recordings_dir(db_path: Path) -> Path:
    """Where dora-doctor keeps recordings it made itself (``watch``): next to the DB. Only
    files in here are ever deleted by the recordings size cap."""
    return db_path.parent / "recordings"


def _migration_1(db: sqlite3.Connection) -> None:
    """The stops and each node's part in them."""
    db.execute(
        """CREATE TABLE stops (
            id INTEGER PRIMARY KEY,
            stop_key TEXT NOT NULL UNIQUE,
            dataflow_uuid TEXT NOT NULL,
            dataflow_name TEXT,
            descriptor_hash TEXT,
            machine TEXT,
            host TEXT,
            dora_version TEXT,
            kind TEXT NOT NULL,
            requested_by TEXT,
            grace_s REAL,
            grace_source TEXT,
            started_at REAL,
            recorded_at REAL NOT NULL,
            writer TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE node_stops (
            id INTEGER PRIMARY KEY,
            stop_id INTEGER NOT NULL REFERENCES stops(id) ON DELETE CASCADE,
            node TEXT NOT NULL,
            machine TEXT,
            outcome TEXT,
            stop_to_exit_s REAL,
            censored INTEGER NOT NULL DEFAULT 0,
            cause TEXT,
            holder_thread TEXT,
            holder_function TEXT,
            holder_file TEXT,
            holder_line INTEGER,
            samples INTEGER,
            recording TEXT,
            UNIQUE (stop_id, node)
        )"""
    )


def _migration_2(db: sqlite3.Connection) -> None:
    """Indexes for the reads ``history`` makes: by time, by dataflow, by node."""
    db.execute("CREATE INDEX stops_started ON stops(started_at)")
    db.execute("CREATE INDEX stops_dataflow ON stops(dataflow_uuid, machine, started_at)")
    db.execute("CREATE INDEX node_stops_stop ON node_stops(stop_id)")
    db.execute("CREATE INDEX node_stops_node ON node_stops(node)")


def _migration_3(db: sqlite3.Connection) -> None:
    """Each node stop carries its dataflow's label and its stop's time, and three indexes
    ordered by them: ``history`` then reads percentiles, counts and the latest stops of a node
    by walking an index in SQLite, without a join or a sort (100,000 node stops well under
    0.3 s). The labels of the rows already there are filled from their stops."""
    db.execute("ALTER TABLE node_stops ADD COLUMN dataflow TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE node_stops ADD COLUMN started_at REAL")
    db.execute(
        f"""UPDATE node_stops SET
            dataflow = (SELECT coalesce(s.dataflow_name, '{UNNAMED}') FROM stops s
                        WHERE s.id = node_stops.stop_id),
            started_at = (SELECT coalesce(s.started_at, s.recorded_at) FROM stops s
                          WHERE s.id = node_stops.stop_id),
            machine = coalesce(machine, (SELECT s.machine FROM stops s
                                         WHERE s.id = node_stops.stop_id))"""
    )
    # covering indexes: each answers its query without reading the table
    db.execute(
        "CREATE INDEX node_stops_secs "
        "ON node_stops(dataflow, node, stop_to_exit_s, censored, started_at)"
    )
    db.execute(
        "CREATE INDEX node_stops_time "
        "ON node_stops(dataflow, node, started_at, stop_to_exit_s, censored, outcome)"
    )
    db.execute("CREATE INDEX node_stops_outcome ON node_stops(dataflow, node, outcome, machine)")


MIGRATIONS: List[Callable[[sqlite3.Connection], None]] = [_migration_1, _migration_2, _migration_3]
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path, max_page_count: Optional[int] = None) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the DB at ``path`` for writing.

    ``max_page_count`` caps the file's size in pages (tests use it to simulate a full disk).
    Raises sqlite3.Error or OSError; callers that must go on decide what to do with it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if max_page_count is not None:
            db.execute(f"PRAGMA max_page_count = {int(max_page_count)}")
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode survives a killed process (only a power cut may lose the last
        # commit): what "loses at most the stop in progress" needs, at a fraction of FULL's cost
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def connect_read(path: Path) -> sqlite3.Connection:
    """Open an existing DB for reading; a read-only file or directory is fine too."""
    if not path.is_file():
        raise DoctorError(
            f"no history at {path} yet: inspect, tune-grace, check, postmortem, watch and "
            "`history import` add to it"
        )
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        version = schema_version(db)
    except sqlite3.OperationalError:
        # WAL needs its -shm file; in a read-only directory open the file as immutable
        try:
            db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
            version = schema_version(db)
        except sqlite3.Error as err:
            raise DoctorError(f"--db {path}: cannot read it: {err}") from err
    except sqlite3.DatabaseError as err:
        raise DoctorError(f"--db {path}: not a dora-doctor history ({err})") from err
    if version > SCHEMA_VERSION:
        raise DoctorError(
            f"--db {path}: written by a newer dora-doctor (schema {version}, this one reads "
            f"up to {SCHEMA_VERSION})"
        )
    if version < SCHEMA_VERSION:
        raise DoctorError(
            f"--db {path}: schema {version} is older; any writing command upgrades it"
        )
    return db


def schema_version(db: sqlite3.Connection) -> int:
    found = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not found:
        has_tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if has_tables:
            raise sqlite3.DatabaseError("a SQLite file with other tables")
        return 0
    row = db.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(db: sqlite3.Connection) -> int:
    """Bring the schema to SCHEMA_VERSION, each migration in its own transaction.

    BEGIN IMMEDIATE takes the write lock before the version is read, so two processes
    opening a new DB at once do not both run migration 1.
    """
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = schema_version(db)
            if current > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"written by a newer dora-doctor (schema {current}, this one knows "
                    f"{SCHEMA_VERSION})"
                )
            if current == SCHEMA_VERSION:
                db.execute("COMMIT")
                return current
            MIGRATIONS[current](db)
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (current + 1,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


@dataclass
class NodeStopRow:
    node: str
    outcome: Optional[str]
    stop_to_exit_s: Optional[float]
    censored: bool
    cause: Optional[str] = None
    machine: Optional[str] = None
    holder_thread: Optional[str] = None
    holder_function: Optional[str] = None
    holder_file: Optional[str] = None
    holder_line: Optional[int] = None
    samples: Optional[int] = None
    recording: Optional[str] = None


@dataclass
class StopRow:
    dataflow_uuid: str
    kind: str
    writer: str  # the command that wrote it: inspect, tune-grace, check, postmortem, import…
    started_at: Optional[float]
    dataflow_name: Optional[str] = None
    descriptor_hash: Optional[str] = None
    machine: Optional[str] = None
    host: Optional[str] = None
    dora_version: Optional[str] = None
    requested_by: Optional[str] = None
    grace_s: Optional[float] = None
    grace_source: Optional[str] = None
    nodes: List[NodeStopRow] = field(default_factory=list)
    # the one node stopped while its dataflow ran on (node stop, restart), else None: two
    # nodes stopped within SAME_STOP_S of each other are two stops, not one seen twice
    single_node: Optional[str] = None

    @property
    def key(self) -> str:
        """The natural key: the same stop read twice (the same logs imported again) is one."""
        when = f"{self.started_at:.3f}" if self.started_at is not None else "-"
        node = f"|{self.kind}|{self.single_node}" if self.single_node else ""
        return f"{self.dataflow_uuid}|{self.machine or ''}|{when}{node}"


# The same stop seen by two writers (an `inspect` that issued it, and later the logs' import,
# whose stop time is the coordinator's line) lands within this long of each other.
SAME_STOP_S = 2.0


def add_stop(db: sqlite3.Connection, stop: StopRow, own_transaction: bool = True) -> bool:
    """Add one stop and its nodes in one transaction; False when it is already there.

    ``own_transaction=False`` adds it to the caller's transaction (a bulk load)."""
    if not own_transaction:
        return _insert(db, stop)
    db.execute("BEGIN IMMEDIATE")
    try:
        added = _insert(db, stop)
        db.execute("COMMIT" if added else "ROLLBACK")
        return added
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _insert(db: sqlite3.Connection, stop: StopRow) -> bool:
    if _known(db, stop):
        return False
    recorded_at = time.time()
    cursor = db.execute(
        """INSERT INTO stops (stop_key, dataflow_uuid, dataflow_name, descriptor_hash,
               machine, host, dora_version, kind, requested_by, grace_s, grace_source,
               started_at, recorded_at, writer)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            stop.key,
            stop.dataflow_uuid,
            stop.dataflow_name,
            stop.descriptor_hash,
            stop.machine,
            stop.host,
            stop.dora_version,
            stop.kind,
            stop.requested_by,
            stop.grace_s,
            stop.grace_source,
            stop.started_at,
            recorded_at,
            stop.writer,
        ),
    )
    stop_id = cursor.lastrowid
    db.executemany(
        """INSERT INTO node_stops (stop_id, dataflow, started_at, node, machine, outcome,
               stop_to_exit_s, censored, cause, holder_thread, holder_function,
               holder_file, holder_line, samples, recording)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            (
                stop_id,
                stop.dataflow_name or UNNAMED,
                stop.started_at if stop.started_at is not None else recorded_at,
                n.node,
                n.machine or stop.machine,
                n.outcome,
                n.stop_to_exit_s,
                int(n.censored),
                n.cause,
                n.holder_thread,
                n.holder_function,
                n.holder_file,
                n.holder_line,
                n.samples,
                n.recording,
            )
            for n in stop.nodes
        ],
    )
    return True


def _known(db: sqlite3.Connection, stop: StopRow) -> bool:
    if db.execute("SELECT 1 FROM stops WHERE stop_key = ?", (stop.key,)).fetchone():
        return True
    if stop.started_at is None or stop.single_node:
        return False  # a single node's stop is known by its key alone
    return (
        db.execute(
            # a single node's stop (its key has a kind and node after uuid|machine|time) is
            # not the dataflow's stop that happens to come within SAME_STOP_S of it
            """SELECT 1 FROM stops WHERE dataflow_uuid = ? AND machine IS ?
               AND started_at BETWEEN ? AND ?
               AND length(stop_key) - length(replace(stop_key, '|', '')) = 2""",
            (
                stop.dataflow_uuid,
                stop.machine,
                stop.started_at - SAME_STOP_S,
                stop.started_at + SAME_STOP_S,
            ),
        ).fetchone()
        is not None
    )


def prune(db: sqlite3.Connection, older_than: float) -> int:
    """Delete stops that started before ``older_than`` (Unix seconds); how many went."""
    db.execute("BEGIN IMMEDIATE")
    try:
        gone = db.execute(
            "DELETE FROM stops WHERE coalesce(started_at, recorded_at) < ?", (older_than,)
        ).rowcount
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return int(gone)


def cap_recordings(db: sqlite3.Connection, db_path: Path, max_bytes: int) -> Tuple[int, int]:
    """Delete the oldest recordings dora-doctor made itself (only files in
    :func:`recordings_dir`, never a user's own) until they take at most ``max_bytes``.
    Rows keep their numbers; their recording path is cleared. Returns (files, bytes) freed."""
    folder = recordings_dir(db_path)
    if not folder.is_dir():
        return 0, 0
    files = sorted((p for p in folder.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime)
    sizes = {p: p.stat().st_size for p in files}
    total = sum(sizes.values())
    freed_files = freed_bytes = 0
    for path in files:
        if total <= max_bytes:
            break
        path.unlink()
        db.execute("UPDATE node_stops SET recording = NULL WHERE recording = ?", (str(path),))
        total -= sizes[path]
        freed_files += 1
        freed_bytes += sizes[path]
    return freed_files, freed_bytes


@dataclass
class NodeStopView:
    """One node's part in one stop, as ``history`` reads it back."""

    dataflow_uuid: str
    dataflow_name: Optional[str]
    descriptor_hash: Optional[str]
    machine: Optional[str]
    kind: str
    grace_s: Optional[float]
    started_at: Optional[float]
    node: str
    outcome: Optional[str]
    stop_to_exit_s: Optional[float]
    censored: bool
    cause: Optional[str]
    holder: Optional[str]
    recording: Optional[str]
    stop: Tuple[int, int] = (0, 0)  # (which DB, the stop's row id): one stop, several nodes


_SELECT = """SELECT s.id, s.dataflow_uuid, s.dataflow_name, s.descriptor_hash,
        coalesce(n.machine, s.machine), s.kind, s.grace_s, s.started_at, n.node, n.outcome,
        n.stop_to_exit_s, n.censored, n.cause,
        CASE WHEN n.holder_function IS NULL THEN NULL ELSE
            coalesce(n.holder_thread, '?') || ': ' || n.holder_function || ' ('
            || coalesce(n.holder_file, '?') || ':' || coalesce(n.holder_line, 0) || ')' END,
        n.recording
    FROM node_stops n JOIN stops s ON s.id = n.stop_id"""


def read_node_stops(
    dbs: Sequence[sqlite3.Connection],
    since: Optional[float] = None,
    node: Optional[str] = None,
) -> Iterator[NodeStopView]:
    """Every node stop of every DB given, oldest first within each DB."""
    where: List[str] = []
    params: List[object] = []
    if since is not None:
        where.append("coalesce(s.started_at, s.recorded_at) >= ?")
        params.append(since)
    if node is not None:
        where.append("n.node = ?")
        params.append(node)
    sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY coalesce(s.started_at, s.recorded_at), n.node"
    for index, db in enumerate(dbs):
        for stop_id, *row in db.execute(sql, params):
            yield NodeStopView(
                dataflow_uuid=row[0],
                dataflow_name=row[1],
                descriptor_hash=row[2],
                machine=row[3],
                kind=row[4],
                grace_s=row[5],
                started_at=row[6],
                node=row[7],
                outcome=row[8],
                stop_to_exit_s=row[9],
                censored=bool(row[10]),
                cause=row[11],
                holder=row[12],
                recording=row[13],
                stop=(index, stop_id),
            )
