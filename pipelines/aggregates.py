"""Incidents aggregated inside DuckDB (issue #13.2): the stages never hold one row per incident.

The per-case rules of :func:`geo.timeliness.case_outcomes` and :func:`geo.caserates.case_flags`
(deadline class, hours to respond and to close, due, on time, repeat; resolved, satisfied,
returned) are written here as SQL over the ``incidents`` table. Whatever depends on a *value*
rather than a row — the deadline class of a (category, service type) pair, the meaning of a
``resolved`` / ``satisfaction`` / ``returned`` text — is decided in Python by the very functions
of ``geo/`` on the few **distinct** values, and joined back as a small lookup table; so the
rules stay in one place and a province of 100M incidents costs a few hundred Python values.

The stages then aggregate the per-case SQL to scope (grid, worker, street …) × period inside
DuckDB and read only those aggregates.

Exactness against the pandas reference
--------------------------------------
* hours: ``(later − earlier)`` in microseconds, split into whole seconds and the remainder as
  pandas' ``Timedelta.total_seconds`` does, then ``/ 3600`` — bit for bit the pandas value;
* rates are means of 0/1 flags (exact sums), medians are DuckDB's ``median`` (the mean of the two
  middle values for an even count, like pandas; equal on the demo, see bench/RESULTS.md);
* text timestamps (a hand-built table; ``gridgov ingest`` stores TIMESTAMP) are parsed with
  ``TRY_CAST`` and a fixed list of formats (:data:`TEXT_TIME_FORMATS`), not pandas' guesser.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import pandas as pd

from geo import timeliness as tl
from pipelines.results import quote_ident

_q = quote_ident

#: Formats tried, in order, for a timestamp stored as text (after DuckDB's ISO cast).
TEXT_TIME_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y-%m-%d %H:%M",
                     "%Y%m%d %H:%M:%S", "%Y%m%d", "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M",
                     "%Y年%m月%d日", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M")

#: Temp lookup tables of this module (dropped by :func:`drop_lookups`).
_DEADLINES = "__agg_deadlines"
_PARSED = "__agg_parsed_{}"


def column_types(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """``{column: DuckDB type}`` of a table (empty when it does not exist)."""
    try:
        return {r[0]: str(r[1]).upper() for r in con.execute(f"DESCRIBE {_q(table)}").fetchall()}
    except duckdb.Error:
        return {}


def ts_expr(types: Mapping[str, str], col: str, alias: str = "i") -> str:
    """SQL of column ``col`` as TIMESTAMP (NULL when absent or unparseable)."""
    t = types.get(col)
    if t is None:
        return "NULL::TIMESTAMP"
    ref = f"{alias}.{_q(col)}"
    if t.startswith("TIMESTAMP") or t == "DATE":
        return f"CAST({ref} AS TIMESTAMP)"
    fmts = ", ".join("'" + f + "'" for f in TEXT_TIME_FORMATS)
    text = f"trim(CAST({ref} AS VARCHAR))"
    return f"coalesce(TRY_CAST({text} AS TIMESTAMP), try_strptime({text}, [{fmts}]))"


def hours_expr(later: str, earlier: str) -> str:
    """Hours from ``earlier`` to ``later`` exactly as pandas' ``(later − earlier).dt.total_seconds()
    / 3600`` computes them (whole seconds + remainder / 10⁶, then / 3600); NULL if either is NULL."""
    d = f"(epoch_us({later}) - epoch_us({earlier}))"
    return f"((CAST({d} // 1000000 AS DOUBLE) + CAST({d} % 1000000 AS DOUBLE) / 1000000.0) / 3600.0)"


def _text_key(types: Mapping[str, str], col: str, alias: str = "i") -> str:
    return f"CAST({alias}.{_q(col)} AS VARCHAR)" if col in types else "NULL::VARCHAR"


def _register(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame, ddl: str) -> None:
    """Temp table ``name`` (``ddl``: its columns) holding the rows of a small frame."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_q(name)} ({ddl})")
    if len(frame):
        con.register("__agg_src", frame)
        try:
            con.execute(f"INSERT INTO {_q(name)} SELECT * FROM __agg_src")
        finally:
            con.unregister("__agg_src")


def deadline_lookup(con: duckdb.DuckDBPyConnection, types: Mapping[str, str], kw: Mapping[str, Any],
                    table: str = "incidents") -> dict[str, float]:
    """Temp table of the deadline class and deadlines of every distinct (category, service type).

    Classes come from :func:`geo.timeliness.deadline_classes` on the distinct pairs (severity,
    which makes a case an emergency, is applied per row in SQL). Returns the emergency deadlines.
    """
    dl = {k: dict(v) for k, v in tl.DEFAULT_DEADLINES.items()}
    for k, v in (kw.get("deadlines") or {}).items():
        dl.setdefault(k, {}).update(v)
    pairs = con.execute(
        f"SELECT DISTINCT {_text_key(types, 'category')} AS c, {_text_key(types, 'service_type')} AS s "
        f"FROM {_q(table)} i").df()
    frame = pd.DataFrame({k: pairs[k].astype(object) for k in ("c", "s")})
    probe = pd.DataFrame(index=frame.index)
    if "category" in types:
        probe["category"] = frame["c"]
    if "service_type" in types:
        probe["service_type"] = frame["s"]
    ckw = {k: kw[k] for k in ("utility_keywords", "complex_keywords") if k in kw}
    cls = tl.deadline_classes(probe, **ckw).to_numpy(dtype=object) if len(frame) else []
    frame["cls"] = cls
    frame["r_dl"] = [float(dl[k]["respond_hours"]) for k in cls]
    frame["c_dl"] = [float(dl[k]["close_hours"]) for k in cls]
    frame["cat_r"] = None
    frame["cat_c"] = None
    labels = frame["c"].map(lambda v: None if v is None or pd.isna(v) else str(v).strip())
    for name, (r_h, c_h) in (kw.get("category_deadlines") or {}).items():
        hit = (labels == str(name).strip()).to_numpy(dtype=bool)
        frame.loc[hit, "cat_r"] = float(r_h)
        frame.loc[hit, "cat_c"] = float(c_h)
    for c in ("cat_r", "cat_c"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    _register(con, _DEADLINES, frame[["c", "s", "cls", "r_dl", "c_dl", "cat_r", "cat_c"]],
              "c VARCHAR, s VARCHAR, cls VARCHAR, r_dl DOUBLE, c_dl DOUBLE, cat_r DOUBLE, "
              "cat_c DOUBLE")
    return {"r": float(dl["emergency"]["respond_hours"]), "c": float(dl["emergency"]["close_hours"])}


def parsed_lookup(con: duckdb.DuckDBPyConnection, types: Mapping[str, str], col: str, parse,
                  table: str = "incidents") -> str | None:
    """Temp table ``(k, flag)`` of a text column's distinct values parsed by ``parse`` (a
    ``geo.caserates.parse_*``); returns its name, None when the column is absent."""
    if col not in types:
        return None
    d = con.execute(f"SELECT DISTINCT {_q(col)} AS v, CAST({_q(col)} AS VARCHAR) AS k "
                    f"FROM {_q(table)} WHERE {_q(col)} IS NOT NULL").fetchall()
    vals = pd.Series([r[0] for r in d], dtype=object)
    flags = parse(vals).to_numpy(dtype=float) if len(vals) else []
    name = _PARSED.format(col)
    _register(con, name, pd.DataFrame({"k": [r[1] for r in d], "flag": flags}),
              "k VARCHAR, flag DOUBLE")
    return name


def drop_lookups(con: duckdb.DuckDBPyConnection) -> None:
    for name in [_DEADLINES] + [_PARSED.format(c) for c in ("resolved", "satisfaction", "returned")]:
        con.execute(f"DROP TABLE IF EXISTS {_q(name)}")


def outcomes_sql(
    con: duckdb.DuckDBPyConnection,
    kw: Mapping[str, Any],
    *,
    select: Sequence[str] = (),
    joins: str = "",
    where: str = "",
    as_of=None,
    table: str = "incidents",
) -> str:
    """SELECT of one row per case with the outcome columns of :func:`geo.timeliness.case_outcomes`.

    ``select``: extra SQL expressions over ``i`` (the incidents) and any ``joins``; ``where``: the
    cases judged, a condition on ``i`` alone (``as_of`` and whether the data has response /
    closure times are taken over these rows — without the joins, one cheap scan — as the pandas
    function takes them over the frame it is given). Columns:
    ``__rid`` (the incident's rowid), the extras, ``o`` (occurred), ``deadline_class``,
    ``respond_deadline_h``, ``close_deadline_h``, ``hours_to_respond``, ``hours_to_close``,
    ``due``, ``on_time``, ``respond_on_time``, ``close_on_time``, ``repeat``, ``invalid_times``.
    The ``deadline_lookup`` temp table is (re)built here.
    """
    types = column_types(con, table)
    emerg = deadline_lookup(con, types, kw, table)
    o, r, c = (ts_expr(types, x) for x in ("occurred_at", "responded_at", "closed_at"))
    w = f"WHERE {where}" if where else ""
    st = con.execute(
        f"SELECT bool_or({r} IS NOT NULL OR {c} IS NOT NULL), bool_or({c} IS NOT NULL), "
        f"max({o}), max({r}), max({c}) FROM {_q(table)} i {w}").fetchone()
    has_resp, has_close = bool(st[0]), bool(st[1])
    if as_of is None:
        stamps = [t for t in st[2:] if t is not None]
        as_of = max(stamps) if stamps else None
    as_of_sql = ("NULL::TIMESTAMP" if as_of is None
                 else f"TIMESTAMP '{pd.Timestamp(as_of).strftime('%Y-%m-%d %H:%M:%S.%f')}'")
    es = float(kw.get("emergency_severity", 5))
    sev = f"coalesce(TRY_CAST(i.{_q('severity')} AS DOUBLE) >= {es!r}, false)" if "severity" in types \
        else "false"
    rep = (f"CASE WHEN nullif(trim(CAST(i.{_q('repeat_of')} AS VARCHAR)), '') IS NOT NULL "
           "THEN 1.0 ELSE 0.0 END" if "repeat_of" in types else "NULL::DOUBLE")
    extra = "".join(f", {e}" for e in select)

    def judged(h: str, dl: str) -> str:
        return (f"CASE WHEN {h} IS NULL THEN (CASE WHEN age > {dl} THEN 0.0 END) "
                f"ELSE CAST({h} <= {dl} AS DOUBLE) END")

    parts = (["r_ok"] if has_resp else []) + (["c_ok"] if has_close else [])
    if parts:
        nulls = " OR ".join(f"{p} IS NULL" for p in parts)
        on_time = f"CASE WHEN due AND NOT ({nulls}) THEN least({', '.join(parts)}) END"
    else:
        on_time = "NULL::DOUBLE"
    return f"""
        WITH __b AS (
            SELECT i.rowid AS __rid{extra}, {o} AS o, {r} AS r, {c} AS c,
                   {sev} AS __emerg, k.cls AS __cls, k.r_dl AS __r_dl, k.c_dl AS __c_dl,
                   k.cat_r AS __cat_r, k.cat_c AS __cat_c, {rep} AS repeat
            FROM {_q(table)} i {joins}
            LEFT JOIN {_DEADLINES} k ON k.c IS NOT DISTINCT FROM {_text_key(types, 'category')}
                 AND k.s IS NOT DISTINCT FROM {_text_key(types, 'service_type')}
            {w}
        ), __h AS (
            SELECT * EXCLUDE (__emerg, __cls, __r_dl, __c_dl, __cat_r, __cat_c),
                CASE WHEN __emerg THEN 'emergency' ELSE __cls END AS deadline_class,
                coalesce(__cat_r, CASE WHEN __emerg THEN {emerg['r']!r} ELSE __r_dl END)
                    AS respond_deadline_h,
                coalesce(__cat_c, CASE WHEN __emerg THEN {emerg['c']!r} ELSE __c_dl END)
                    AS close_deadline_h,
                {hours_expr('coalesce(r, c)', 'o')} AS __hr,
                {hours_expr('c', 'o')} AS __hc,
                {hours_expr(as_of_sql, 'o')} AS age
            FROM __b
        ), __j AS (
            SELECT *,
                CASE WHEN __hr >= 0 THEN __hr END AS hours_to_respond,
                CASE WHEN __hc >= 0 THEN __hc END AS hours_to_close,
                coalesce(__hr < 0, false) OR coalesce(__hc < 0, false) AS invalid_times,
                (c IS NOT NULL OR coalesce(age > close_deadline_h, false)) AND o IS NOT NULL AS due
            FROM __h
        ), __k AS (
            SELECT *,
                {judged('hours_to_respond', 'respond_deadline_h')} AS r_ok,
                {judged('hours_to_close', 'close_deadline_h')} AS c_ok
            FROM __j
        )
        SELECT * EXCLUDE (__hr, __hc, r_ok, c_ok, r, c, age),
            {on_time} AS on_time,
            {'r_ok' if has_resp else 'NULL::DOUBLE'} AS respond_on_time,
            {'c_ok' if has_close else 'NULL::DOUBLE'} AS close_on_time
        FROM __k"""


def scope_key(types: Mapping[str, str], col: str, alias: str = "i") -> str:
    """A scope column as the stripped text id the pandas functions group by (NULL when blank)."""
    if col not in types:
        return "NULL::VARCHAR"
    return f"nullif(trim(CAST({alias}.{_q(col)} AS VARCHAR)), '')"


__all__ = ["TEXT_TIME_FORMATS", "column_types", "deadline_lookup", "drop_lookups", "hours_expr",
           "outcomes_sql", "parsed_lookup", "scope_key", "ts_expr"]
