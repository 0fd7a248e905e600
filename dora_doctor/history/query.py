"""``history``'s answer computed by SQLite's indexes: 100,000 node stops in a fraction of a
second, with no row of them turned into a Python object.

Every node stop carries its dataflow's label and its stop's time (schema 3), indexed by
(dataflow, node, stop→exit), (dataflow, node, time) and (dataflow, node, outcome). Per node:
counts are one GROUP BY over an index; a nearest-rank percentile is the value at offset
⌈q·n/100⌉ − 1 of the index walked in order; the last 20 stops are the time index read
backwards. Several DBs (``--db A --db B``) are attached to one connection and read as one
``UNION ALL``. The percentile rules are those of
:func:`dora_doctor.history.summary.bounded_percentile`: "at least" when a censored value is
at or below the percentile.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from dora_doctor.errors import DoctorError
from dora_doctor.history import store
from dora_doctor.history.summary import (
    ENDED_BY_DORA,
    MIN_EARLIER,
    RECENT,
    TREND_POINTS,
    Bound,
    History,
    NodeHistory,
    rank,
    regression_text,
)

MAX_DBS = 10  # SQLite attaches at most 10 databases by default
Key = Tuple[str, str]

_HOLDER = """CASE WHEN n.holder_function IS NULL THEN NULL ELSE
    coalesce(n.holder_thread, '?') || ': ' || n.holder_function || ' ('
    || coalesce(n.holder_file, '?') || ':' || coalesce(n.holder_line, 0) || ')' END"""


def open_all(paths: Sequence[Path]) -> sqlite3.Connection:
    """The first DB read-only, the others attached to it as ``db1``, ``db2``…"""
    if len(paths) > MAX_DBS:
        raise DoctorError(f"at most {MAX_DBS} --db at once, got {len(paths)}")
    conn = store.connect_read(paths[0])
    for other in paths[1:]:
        store.connect_read(other).close()  # the same checks, one line each
    for index, path in enumerate(paths[1:], start=1):
        try:
            conn.execute(f"ATTACH DATABASE ? AS db{index}", (f"file:{path}?mode=ro",))
        except sqlite3.Error as err:
            raise DoctorError(f"--db {path}: cannot read it: {err}") from err
    return conn


class Selection:
    """The node stops asked for, as SQL over every attached DB."""

    def __init__(
        self, dbs: int, dataflow: Optional[str], node: Optional[str], since: Optional[float]
    ) -> None:
        self.dbs = dbs
        self.where: List[str] = []
        self.params: List[object] = []
        if since is not None:
            self.where.append("n.started_at >= ?")
            self.params.append(since)
        if node is not None:
            self.where.append("n.node = ?")
            self.params.append(node)
        if dataflow is not None:
            escaped = dataflow.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            self.where.append(
                "n.stop_id IN (SELECT id FROM {schema}.stops WHERE dataflow_name = ? "
                "OR dataflow_uuid LIKE ? || '%' ESCAPE '\\' "
                "OR descriptor_hash LIKE ? || '%' ESCAPE '\\')"
            )
            self.params += [dataflow, escaped, escaped]

    def rows(
        self,
        columns: str,
        extra: str = "",
        extra_params: Sequence[object] = (),
        join: bool = False,
    ) -> Tuple[str, List[object]]:
        """``SELECT columns`` from every DB's node stops (``n``; with ``join``, its stop
        ``s`` too), filtered. Without the join, SQLite answers from node_stops' indexes."""
        parts, params = [], []
        for index in range(self.dbs):
            schema = "main" if index == 0 else f"db{index}"
            where = [w.format(schema=schema) for w in self.where]
            if extra:
                where.append(extra)
            sql = f"SELECT {columns.format(db=index)} FROM {schema}.node_stops n"
            if join:
                sql += f" JOIN {schema}.stops s ON s.id = n.stop_id"
            parts.append(sql + (" WHERE " + " AND ".join(where) if where else ""))
            params += self.params + list(extra_params)
        return " UNION ALL ".join(parts), params


def summarise(
    paths: Sequence[Path],
    dataflow: Optional[str] = None,
    node: Optional[str] = None,
    since: Optional[float] = None,
) -> History:
    conn = open_all(paths)
    try:
        return _summarise(conn, Selection(len(paths), dataflow, node, since), since)
    except sqlite3.OperationalError as err:
        raise DoctorError(f"the history could not be read: {err}", 1) from err
    finally:
        conn.close()


def _summarise(conn: sqlite3.Connection, sel: Selection, since: Optional[float]) -> History:
    result = History(since=since)
    nodes: Dict[Key, NodeHistory] = {}
    sql, params = sel.rows(
        "n.dataflow AS df, n.node AS node, n.outcome AS outcome, n.machine AS machine"
    )
    for df, name, outcome, machine, count in conn.execute(
        f"SELECT df, node, outcome, machine, count(*) FROM ({sql}) GROUP BY 1, 2, 3, 4",
        params,
    ):
        found = nodes.setdefault((df, name), NodeHistory(dataflow=df, node=name))
        outcome = outcome or "unknown"
        found.outcomes[outcome] = found.outcomes.get(outcome, 0) + count
        found.stops += count
        result.node_stops += count
        if machine is not None and machine not in found.machines:
            found.machines.append(machine)
    sql, params = sel.rows("{db} AS dbi, n.stop_id AS sid")
    result.stops = conn.execute(
        f"SELECT count(*) FROM (SELECT DISTINCT dbi, sid FROM ({sql}))", params
    ).fetchone()[0]
    for (df, name), found in nodes.items():
        found.machines.sort()
        bounds = percentiles(conn, sel, df, name)
        found.p50, found.p95, found.max = bounds.get(50), bounds.get(95), bounds.get(100)
        _recent(conn, sel, found)
    result.nodes = sorted(nodes.values(), key=lambda n: (n.regression is None, n.dataflow, n.node))
    return result


def percentiles(
    conn: sqlite3.Connection,
    sel: Selection,
    df: str,
    node: str,
    before: Optional[float] = None,
    qs: Sequence[int] = (50, 95, 100),
) -> Dict[int, Bound]:
    """The q-th percentiles (q = 100: the max) of one node's timed stops (those before
    ``before``)."""
    extra = "n.dataflow = ? AND n.node = ? AND n.stop_to_exit_s IS NOT NULL"
    extra_params: List[object] = [df, node]
    if before is not None:
        extra += " AND n.started_at < ?"
        extra_params.append(before)
    sql, params = sel.rows("n.stop_to_exit_s AS secs, n.censored AS censored", extra, extra_params)
    timed, lowest_censored = conn.execute(
        f"SELECT count(*), min(CASE WHEN censored THEN secs END) FROM ({sql})", params
    ).fetchone()
    found: Dict[int, Bound] = {}
    for q in qs:
        if not timed:
            break
        (value,) = conn.execute(
            f"SELECT secs FROM ({sql}) ORDER BY secs LIMIT 1 OFFSET ?",
            params + [rank(q, timed) - 1],
        ).fetchone()
        found[q] = Bound(round(value, 3), lowest_censored is not None and lowest_censored <= value)
    return found


def _recent(conn: sqlite3.Connection, sel: Selection, found: NodeHistory) -> None:
    """The latest stop's cause, the trend, and whether the last stops are a regression."""
    limit = max(RECENT, TREND_POINTS)
    sql, params = sel.rows(
        f"n.started_at AS at, n.outcome, n.stop_to_exit_s, n.censored, n.cause, "
        f"{_HOLDER}, s.grace_s",
        "n.dataflow = ? AND n.node = ?",
        [found.dataflow, found.node],
        join=True,
    )
    latest = conn.execute(f"SELECT * FROM ({sql}) ORDER BY at DESC LIMIT ?", params + [limit])
    rows = list(reversed(latest.fetchall()))  # oldest first
    if not rows:
        return
    _, _, _, _, found.latest_cause, found.latest_holder, found.grace_s = rows[-1]
    found.latest_at = rows[-1][0]
    found.trend = [r[2] for r in rows[-TREND_POINTS:]]
    recent_n = min(RECENT, found.stops - MIN_EARLIER)
    if recent_n < 1:
        return
    recent = rows[-recent_n:]
    oldest_recent = recent[0][0]
    earlier_p95 = percentiles(conn, sel, found.dataflow, found.node, oldest_recent, qs=(95,)).get(
        95
    )
    earlier, earlier_ended = earlier_counts(conn, sel, found.dataflow, found.node, oldest_recent)
    found.regression = regression_text(
        [(r[1], r[2], bool(r[3])) for r in recent], earlier, earlier_ended, earlier_p95
    )


def earlier_counts(
    conn: sqlite3.Connection, sel: Selection, df: str, node: str, before: float
) -> Tuple[int, int]:
    """How many stops of the node came before ``before``, and how many of them dora ended."""
    sql, params = sel.rows(
        "n.outcome", "n.dataflow = ? AND n.node = ? AND n.started_at < ?", [df, node, before]
    )
    ended = ", ".join(f"'{o}'" for o in ENDED_BY_DORA)
    count, ended_count = conn.execute(
        f"SELECT count(*), coalesce(sum(outcome IN ({ended})), 0) FROM ({sql})", params
    ).fetchone()
    return int(count), int(ended_count)


SERIES_POINTS = 500  # per node in a chart: the latest ones


def series(
    paths: Sequence[Path],
    dataflow: Optional[str] = None,
    node: Optional[str] = None,
    since: Optional[float] = None,
    points: int = SERIES_POINTS,
) -> Dict[str, Dict[str, List[Dict[str, object]]]]:
    """Per dataflow and node, its latest stops in time order: time, stop→exit, outcome,
    censored, grace. What ``history --html`` draws."""
    conn = open_all(paths)
    try:
        sel = Selection(len(paths), dataflow, node, since)
        sql, params = sel.rows("DISTINCT n.dataflow, n.node")
        keys = conn.execute(sql, params).fetchall()
        found: Dict[str, Dict[str, List[Dict[str, object]]]] = {}
        for df, name in sorted(keys):
            sql, params = sel.rows(
                "n.started_at AS at, n.stop_to_exit_s, n.outcome, n.censored, s.grace_s",
                "n.dataflow = ? AND n.node = ?",
                [df, name],
                join=True,
            )
            rows = conn.execute(
                f"SELECT * FROM ({sql}) ORDER BY at DESC LIMIT ?", params + [points]
            ).fetchall()
            found.setdefault(df, {})[name] = [
                {"at": at, "seconds": secs, "outcome": outcome, "censored": bool(c), "grace": g}
                for at, secs, outcome, c, g in reversed(rows)
            ]
        return found
    except sqlite3.OperationalError as err:
        raise DoctorError(f"the history could not be read: {err}", 1) from err
    finally:
        conn.close()
