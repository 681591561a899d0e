"""Incidents streamed through DuckDB: a folder of Parquet files (hive-partitioned by month, or
plain) or one large Parquet file is validated, stripped of personal data, located and written to
``incidents`` inside DuckDB, under ``[compute] memory_limit``; the rows never enter Python.

The checks, their order (the first failing check is the row's reason) and their bilingual reasons
are those of :mod:`pipelines.ingest` (the pandas path), written in SQL:

* ``incident_id`` present and unique (the first row in file order keeps it), ``category`` present;
* ``severity`` a finite whole number ≤ 1,000,000, not negative, within 1–5;
* times in the accepted formats (:mod:`pipelines.dates`: ``2025-03-05 14:20``, ``2025/3/5``,
  ``2025年3月5日 14时20分``, ``20250305``, Excel serials, ISO 8601 with a zone), not after the
  run date, not before 2000, no life-cycle time before ``occurred_at``;
* coordinates parseable (decimal comma and full-width digits accepted), within lon/lat range;
* a declared ``community_code`` known; the location inside a community or within
  ``[ingest] location_tolerance_m`` of one (in the metric CRS; lowest community on ties), not
  contradicting a declared community or ``street_code``.

Personal data: person and contact columns are dropped by name (:func:`pipelines.privacy.is_person_column`),
the first phone column becomes the salted ``reporter_key`` (SHA-256 of salt + digits, as
:func:`pipelines.privacy.reporter_key`), numeric columns mostly holding phone or ID numbers are
dropped and single such values removed, and phone / ID numbers inside free text are masked with
the patterns of :mod:`pipelines.privacy` (RE2 form). Differences from the pandas path, all on the
safe side or cosmetic: an 18-digit ID-shaped number in free text is masked even when its checksum
and birth date are wrong; "NFKC" is full-width ASCII and the ideographic space folded to ASCII
(other compatibility characters are kept); ``raw`` holds typed JSON values when the Parquet columns
are typed (numbers as numbers). Person names inside free text are not detected (as in the pandas
path). GCJ-02 / BD-09 coordinates are not streamed (one file below the threshold is), and the CRS
stored in a GeoParquet file is not read (the ``crs`` setting is used).

Hive partition keys (``month=2024-01`` in the path) are not stored. Rejects name the file (path
relative to the folder's parent, e.g. ``incidents/month=2024-01/part-0.parquet``) and the data row
within it; a duplicate id names the row (and file) it repeats.

No text from a file becomes SQL: the Parquet columns are renamed by position (``__c0``, ``__c1`` …),
file paths, column labels in messages, the salt and every user value are bound parameters, and the
few literals are this module's own constants.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from pipelines import dates, privacy
from pipelines.db import quote_literal, unordered
from pipelines.errors import InputFileError
from pipelines.layers import LayerSpec
from pipelines.readers import LAT_NAMES, LON_NAMES, WKT_NAMES, _pick, clean_columns, parquet_files

log = logging.getLogger(__name__)

STREAM_TABLES = ("__inc_dup", "__inc_comm", "__inc_stage", "__inc_loc", "__inc_rej")
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
            "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL")
# "NFKC" for what matters here: full-width ASCII and the ideographic / no-break space.
_FW_FROM = "".join(chr(0xFF01 + i) for i in range(94)) + "\u3000\u00a0"
_FW_TO = "".join(chr(0x21 + i) for i in range(94)) + "  "
# The privacy fold adds the dashes (pipelines.privacy._FOLD).
_DASHES = "\u2010\u2011\u2012\u2013\u2014"
_WS = r"[\s\x{0b}\x{1c}-\x{1f}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
_TIME_RE = re.sub(r"\(\?P<[a-zA-Z]+>", "(", dates._PATTERN)
_COMPACT_RE = re.sub(r"\(\?P<[a-zA-Z]+>", "(", dates._COMPACT)
# Personal numbers (pipelines.privacy) without look-behind: the boundary characters are captured
# and put back; applied twice so that two numbers sharing one separator are both masked. The patterns
# also match full-width digits, plus, brackets, dashes and spaces (privacy._FOLD), so that a masked
# cell keeps every other character as written.
def _wide(pattern: str) -> str:
    """``pattern`` with each digit, ``+ ( )`` and separator also matching its full-width form."""
    fw = {str(d): chr(0xFF10 + d) for d in range(10)}
    out, i, in_class, in_brace = [], 0, False, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if not in_class and nxt in "+()":
                out.append({"+": "[+\uff0b]", "(": "[(\uff08]", ")": "[)\uff09]"}[nxt])
            elif in_class and nxt == "-":
                out.append("\\-\u3000\u00a0\uff0d\u2010-\u2014")
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            elif ch.isdigit() and i + 2 < len(pattern) and pattern[i + 1] == "-" and pattern[i + 2].isdigit():
                out.append(f"{ch}-{pattern[i + 2]}{fw[ch]}-{fw[pattern[i + 2]]}")
                i += 3
                continue
            elif ch.isdigit():
                out.append(ch + fw[ch])
                i += 1
                continue
            elif ch in "Xx":
                out.append(ch + chr(ord(ch) + 0xFEE0))
                i += 1
                continue
            elif ch == " ":
                out.append(" \u3000\u00a0")
                i += 1
                continue
            out.append(ch)
        elif ch == "[":
            in_class = True
            out.append(ch)
        elif ch == "{":
            in_brace = True
            out.append(ch)
        elif ch == "}":
            in_brace = False
            out.append(ch)
        elif ch.isdigit() and not in_brace:
            out.append(f"[{ch}{fw[ch]}]")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


_ID_CORE = _wide(privacy._ID18.replace("(?<![0-9A-Za-z])", "").replace("(?![0-9A-Za-z])", "") + "|"
                 + privacy._ID15.replace("(?<![0-9A-Za-z])", "").replace("(?![0-9A-Za-z])", ""))
_PHONE_CORE = _wide(privacy._MOBILE.replace("(?<![0-9])", "").replace("(?![0-9])", "") + "|"
                    + privacy._LANDLINE.replace("(?<![0-9])", "").replace("(?![0-9])", ""))
_ID_RE = r"(^|[^0-9\x{ff10}-\x{ff19}A-Za-z\x{ff38}\x{ff58}])(?:" + _ID_CORE + r")([^0-9\x{ff10}-\x{ff19}A-Za-z\x{ff38}\x{ff58}]|$)"
_PHONE_RE = r"(^|[^0-9\x{ff10}-\x{ff19}])(?:" + _PHONE_CORE + r")([^0-9\x{ff10}-\x{ff19}]|$)"
_DETECT_RE = _ID_RE + "|" + _PHONE_RE
_PII_NUMBER_RE = r"(?:86)?1[3-9][0-9]{9}|[1-9][0-9]{17}|[1-9][0-9]{5}" + privacy._DATE6 + r"[0-9]{3}"


def _lit(text: str) -> str:
    return quote_literal(text)


_ZW_L = quote_literal("[\\x{200b}-\\x{200f}\\x{feff}]")
_DOT0_L = quote_literal(r"\.0$")
_CODE0_L = quote_literal(r"^(\d+)\.0$")
_DECCOMMA_L = quote_literal(r"^(-?\d+),(\d+)$")
_PREFIX86_L = quote_literal(r"^(?:0086|86)(1[3-9][0-9]{9})$")
_NEEDS = (r"[\x{ff01}-\x{ff5e}\x{3000}\x{a0}\x{200b}-\x{200f}\x{feff}]|^" + _WS + "|" + _WS
          + r"$|^(nan|NaN|None|<NA>)?$")
_NEEDS_L = quote_literal(_NEEDS)
_NEEDS_CODE_L = quote_literal(_NEEDS + r"|\.0$")


_FW_ANY = quote_literal(r"[\x{ff01}-\x{ff5e}\x{3000}\x{a0}\x{2010}-\x{2014}]")


def fold(x: str) -> str:
    # translate() builds its table per call: only for the rare cells that hold such a character.
    return f"(CASE WHEN regexp_matches({x}, {_FW_ANY}) THEN translate({x}, {_lit(_FW_FROM)}, {_lit(_FW_TO)}) ELSE {x} END)"


def strip(x: str) -> str:
    return f"regexp_replace({x}, {_lit('^' + _WS + '+|' + _WS + '+$')}, '', 'g')"


def mask(x: str) -> str:
    """``x`` (text) with phone and ID numbers replaced by ``***``; unchanged where there is none."""
    out = x
    for pat in (_ID_RE, _ID_RE, _PHONE_RE, _PHONE_RE):
        out = f"regexp_replace({out}, {_lit(pat)}, '\\1***\\2', 'g')"
    return f"(CASE WHEN regexp_matches({x}, {_lit(_DETECT_RE)}) THEN {out} ELSE {x} END)"


def has_pii(x: str) -> str:
    return f"coalesce(regexp_matches({x}, {_lit(_DETECT_RE)}), false)"


def pii_number(x: str) -> str:
    return (f"(isfinite(CAST({x} AS DOUBLE)) AND abs(CAST({x} AS DOUBLE)) >= 1e6 AND abs(CAST({x} AS DOUBLE)) < 1e19 "
            f"AND regexp_full_match(CAST(CAST(trunc(abs(CAST({x} AS DOUBLE))) AS HUGEINT) AS VARCHAR), "
            f"{_lit(_PII_NUMBER_RE)}))")


def text(x: str, ty: str, *, numeric_strip: bool = True) -> str:
    """pandas ``_text``: folded, zero-width characters removed, trimmed; empty/nan/None missing; a
    float column's ``12.0`` read as ``12``. One guard regex per cell; the full pipeline only for the
    cells that need it."""
    v = f"CAST({x} AS VARCHAR)" if ty != "VARCHAR" else x
    t = strip(f"regexp_replace({fold(v)}, {_ZW_L}, '', 'g')")
    if numeric_strip and ty in ("DOUBLE", "FLOAT", "REAL"):
        t = f"regexp_replace({t}, {_DOT0_L}, '')"
    full = f"nullif(regexp_replace({t}, '^(nan|NaN|None|<NA>)$', ''), '')"  # (nested nullif grows 2^n)
    guard = _NEEDS_CODE_L if numeric_strip and ty in ("DOUBLE", "FLOAT", "REAL") else _NEEDS_L
    return f"(CASE WHEN regexp_matches({v}, {guard}) THEN {full} ELSE {v} END)"


def code(x: str, ty: str) -> str:
    v = f"CAST({x} AS VARCHAR)" if ty != "VARCHAR" else x
    return f"(CASE WHEN regexp_matches({v}, {_NEEDS_CODE_L}) THEN regexp_replace({text(x, ty)}, {_CODE0_L}, '\\1') ELSE {v} END)"


def repr_sql(x: str) -> str:
    """Python's ``repr`` of a short text (quotes; backslashes doubled)."""
    return (f"(CASE WHEN contains({x}, '''') AND NOT contains({x}, '\"') THEN '\"' || {x} || '\"' "
            f"ELSE '''' || replace(replace({x}, '\\', '\\\\'), '''', '\\''') || '''' END)")


def short(x: str) -> str:
    return f"(CASE WHEN length({x}) <= 40 THEN {x} ELSE left({x}, 39) || '…' END)"


def parse_time(x: str, ty: str) -> str:
    """:func:`pipelines.dates.parse_datetimes` in SQL: a TIMESTAMP (naive Asia/Shanghai) or NULL."""
    if ty.startswith("TIMESTAMP WITH TIME ZONE") or ty == "TIMESTAMPTZ":
        return f"CAST(timezone('Asia/Shanghai', {x}) AS TIMESTAMP)"
    if ty.startswith("TIMESTAMP") or ty == "DATE":
        return f"CAST({x} AS TIMESTAMP)"
    if ty in _NUMERIC:
        return _excel(f"CAST({x} AS DOUBLE)")
    v = f"CAST({x} AS VARCHAR)"
    t = f"(CASE WHEN regexp_matches({v}, {_NEEDS_L}) THEN {strip(fold(v))} ELSE {v} END)"
    pe = f"regexp_extract({t}, {_lit(_TIME_RE)}, ['y', 'mo', 'd', 'hh', 'mi', 'ss', 'tz'])"
    ce = f"regexp_extract({t}, {_lit(_COMPACT_RE)}, ['y', 'mo', 'd'])"

    def num(e: str, part: str) -> str:
        return f"TRY_CAST(nullif(struct_extract({e}, '{part}'), '') AS DOUBLE)"

    def i(e: str, part: str, default: str | None = None) -> str:
        v = num(e, part) if default is None else f"coalesce({num(e, part)}, {default})"
        return f"CAST({v} AS BIGINT)"
    sec = f"coalesce({num(pe, 'ss')}, 0)"
    tz = f"struct_extract({pe}, 'tz')"
    zone_min = (f"(CASE WHEN {tz} = '' THEN 0 WHEN {tz} = 'Z' THEN 8 * 60 ELSE 8 * 60 - "
                f"(CASE WHEN left({tz}, 1) = '-' THEN -1 ELSE 1 END) * "
                f"(CAST(substr(replace({tz}, ':', ''), 2, 2) AS INTEGER) * 60 + "
                f"CAST(substr(replace({tz}, ':', ''), 4, 2) AS INTEGER)) END)")
    general = (f"(CASE WHEN coalesce({num(pe, 'hh')}, 0) > 23 OR coalesce({num(pe, 'mi')}, 0) > 59 "
               f"OR floor({sec}) > 59 THEN NULL ELSE TRY(CAST(make_timestamp({i(pe, 'y')}, {i(pe, 'mo')}, "
               f"{i(pe, 'd')}, {i(pe, 'hh', '0')}, {i(pe, 'mi', '0')}, {sec}) AS TIMESTAMP) "
               f"+ to_minutes(CAST({zone_min} AS BIGINT))) END)")
    compact = f"TRY(CAST(make_timestamp({i(ce, 'y')}, {i(ce, 'mo')}, {i(ce, 'd')}, 0, 0, 0) AS TIMESTAMP))"
    fast = f"try_strptime({t}, '%Y-%m-%d %H:%M:%S')"
    # The common export format first (one strptime), the patterns only for the rest.
    return (f"coalesce(CAST({fast} AS TIMESTAMP), CASE WHEN {t} IS NULL OR {t} = '' THEN NULL "
            f"WHEN regexp_full_match({t}, {_lit(_TIME_RE)}) THEN {general} "
            f"WHEN regexp_full_match({t}, {_lit(_COMPACT_RE)}) THEN {compact} "
            f"WHEN regexp_full_match({t}, {_lit(dates._SERIAL)}) THEN {_excel(f'TRY_CAST({t} AS DOUBLE)')} "
            f"ELSE NULL END)")


def _excel(v: str) -> str:
    return (f"(CASE WHEN isfinite({v}) AND {v} >= 1 AND {v} <= {dates._EXCEL_MAX} THEN TIMESTAMP '1899-12-30' + "
            f"to_microseconds(CAST(round({v} * 86400) AS BIGINT) * 1000000) END)")


def coord(x: str, ty: str) -> str:
    if ty in _NUMERIC:
        return f"CAST({x} AS DOUBLE)"
    t = strip(fold(f"CAST({x} AS VARCHAR)"))
    return f"coalesce(TRY_CAST({x} AS DOUBLE), TRY_CAST(regexp_replace({t}, {_DECCOMMA_L}, '\\1.\\2') AS DOUBLE))"


class _Params:
    """Bound values of one statement: ``p(value)`` returns its ``$n`` placeholder."""

    def __init__(self, *first) -> None:
        self.values: list = list(first)

    def __call__(self, value) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


@dataclass
class Source:
    """The incidents input: its Parquet files (read in this order) and how rejects name them."""

    path: Path
    files: list[Path]
    names: list[str]  # per file, as rejects' source_file

    @property
    def label(self) -> str:
        return self.path.name + ("/" if self.path.is_dir() else "")


def source_for(path: Path, project_dir: Path) -> Source:
    files = parquet_files(path)
    base = path.parent
    names = [f.relative_to(base).as_posix() if f.is_relative_to(base) else f.name for f in files]
    return Source(path, files, names)


def wants_stream(path: Path | None, layer: str, settings: dict) -> bool:
    """Whether ``layer`` at ``path`` goes through this module: incidents in a folder of Parquet files,
    or in one Parquet file larger than ``[ingest] stream_threshold_mb``."""
    if path is None or layer != "incidents":
        return False
    if path.is_dir():
        return bool(parquet_files(path))
    limit = float(((settings.get("ingest") or {}).get("stream_threshold_mb", 256)))
    return path.suffix.lower() in (".parquet", ".geoparquet") and path.stat().st_size > limit * 1e6


#: Placeholder of a batch's file range in the staging SQL (replaced by numbers we make).
_BATCH = "__gridgov_batch_files__"
#: Files of one batch: consecutive files up to about this many bytes (at least one file).
BATCH_BYTES = 512 * 2**20


def _file_batches(src: Source) -> list[tuple[int, int]]:
    """``(first, last)`` file index of each batch: consecutive files of about :data:`BATCH_BYTES`.
    Every batch reads the whole set of files (so columns and types are those of the whole set)
    filtered on ``file_index``, which DuckDB applies to the files, not the rows."""
    out: list[tuple[int, int]] = []
    start, acc = 0, 0
    for i, f in enumerate(src.files):
        acc += f.stat().st_size
        if acc >= BATCH_BYTES or i == len(src.files) - 1:
            out.append((start, i))
            start, acc = i + 1, 0
    return out or [(0, 0)]


def _read(n_cols: int) -> str:
    """The files (always parameter ``$1``), columns renamed by position: no user name is SQL."""
    cols = ", ".join(f"__c{i}" for i in range(n_cols))
    return f"read_parquet($1, hive_partitioning = true, union_by_name = true) AS s({cols})"


def ingest_incidents(con: duckdb.DuckDBPyConnection, src: Source, spec: LayerSpec, settings: dict, salt: bytes,
                     now: pd.Timestamp, comms: pd.DataFrame, metric: str, tol: float, crs: str,
                     say=lambda m: None) -> dict:
    """Validate, strip, locate and write the incidents of ``src`` into ``con``'s ``incidents`` table.

    ``comms``: the written communities in order (``code``, ``street``, ``wkb`` in ``metric``). Rejected
    rows go to the temporary table ``__inc_rej`` (columns of ``rejects``; see :func:`append_rejects`).
    Returns the layer's counts for the ingest report.
    """
    from pipelines.ingest import _RESERVED, MAX_COUNT, _rename_map

    files = [f.as_posix() for f in src.files]
    try:
        desc = con.execute("DESCRIBE SELECT * FROM read_parquet($1, hive_partitioning = true, union_by_name = true)",
                           [files]).fetchall()
    except duckdb.Error as exc:
        raise InputFileError(
            f"无法读取 {src.label}（图层 incidents）：{privacy.mask_text(str(exc))[:300]}。请确认每个 Parquet 文件完整。",
            f"Cannot read {src.label} (layer incidents): {privacy.mask_text(str(exc))[:300]}. Check every Parquet "
            "file is complete.",
        ) from exc
    if not con.execute("SELECT count(*) FROM read_parquet($1, union_by_name = true)", [files]).fetchone()[0]:
        return None
    hive = {part.split("=", 1)[0].casefold() for f in src.files for part in f.relative_to(
        src.path if src.path.is_dir() else src.path.parent).parts[:-1] if "=" in part}
    orig = [r[0] for r in desc]
    types = [str(r[1]).upper() for r in desc]
    n_cols = len(orig)
    names = clean_columns(orig)
    # Hive partition keys (month=2024-01) come from the path, not from the rows: not stored.
    cols = [i for i in range(n_cols) if not (orig[i].casefold() in hive and i >= n_cols - len(hive))]
    byname = {names[i]: i for i in cols}
    ulist = [names[i] for i in cols]
    lon_c, lat_c, wkt_c = _pick(ulist, LON_NAMES), _pick(ulist, LAT_NAMES), _pick(ulist, WKT_NAMES)
    if not (lon_c and lat_c) and not wkt_c:
        raise InputFileError(
            f"{src.label}（图层 incidents）没有几何：需要 lon/lat（经度/纬度）列或 WKT 的 geometry 列。",
            f"{src.label} (layer incidents) has no geometry: add lon/lat columns or a WKT 'geometry' column.",
        )
    geom_cols = [lon_c, lat_c] if lon_c and lat_c else [wkt_c]
    attrs = [u for u in ulist if u not in geom_cols]
    mapping = _rename_map(pd.DataFrame(columns=attrs), spec, settings)
    contract = set(spec.required) | set(spec.optional)
    keep = {c for c, t in mapping.items() if t in contract | set(spec.names) | {"street_code", "community_code"}}
    keep |= (contract | set(spec.names)) & set(attrs)
    protected_targets = (set(spec.key) | set(spec.times) | set(spec.ints) | {"street_code", "community_code"}
                         | {c for c in contract if c.endswith(("_id", "_code")) or c == "repeat_of"})
    protected = {c for c, t in mapping.items() if t in protected_targets} | (protected_targets & set(attrs))

    def c(u: str) -> str:
        return f"__c{byname[u]}"

    def ty(u: str) -> str:
        return types[byname[u]]

    # -- personal columns: by name, and numeric columns by content --------------------------------
    drop: list[str] = []
    null_pii: list[str] = []
    numeric_check = [u for u in attrs if u not in keep and not privacy.is_person_column(u)
                     and ty(u) in _NUMERIC]
    share = {}
    if numeric_check:
        sel = ", ".join(f"count(*) FILTER (WHERE {pii_number(c(u))}), count({c(u)})" for u in numeric_check)
        row = con.execute(f"SELECT {sel} FROM {_read(n_cols)}", [files]).fetchone()
        share = {u: (row[2 * k], row[2 * k + 1]) for k, u in enumerate(numeric_check)}
    for u in attrs:
        if u in keep:
            continue
        if privacy.is_person_column(u):
            drop.append(u)
        elif u in share and share[u][0]:
            (drop if share[u][0] >= 0.5 * share[u][1] else null_pii).append(u)
    hashed = None
    for u in drop:
        if "reporter_key" not in attrs and (privacy.is_phone_column(u) or ty(u) in _NUMERIC):
            hashed = u
            break
    dropped = [privacy.mask_text(u) for u in drop]
    if dropped:
        log.info("incidents: personal columns dropped / 已删除个人信息列: %s", ", ".join(dropped))
    kept = [u for u in attrs if u not in drop]
    frame_cols = [mapping.get(u, u) for u in kept]
    label = {mapping[u]: u for u in kept if u in mapping}

    def lab(col: str) -> tuple[str, str]:
        user = label.get(col, col)
        return (f"{user}（{col}）", f"{user} ({col})") if user != col else (col, col)

    missing = [col for col in spec.required if col not in frame_cols]
    if missing:
        found = privacy.mask_text(", ".join(ulist))
        raise InputFileError(
            f"{src.label}（图层 {spec.name}）缺少必需列 {missing}；现有列：{found}。"
            f"请重命名这些列，或在 gridgov.toml 的 [columns.{spec.name}] 中写明对应关系（如 \"楼栋编号\" = \"building_id\"）。",
            f"{src.label} (layer {spec.name}) lacks required columns {missing}; found: {found}. "
            f"Rename them, or map them in [columns.{spec.name}] of gridgov.toml (e.g. \"楼栋编号\" = \"building_id\").",
        )
    src_of = {mapping.get(u, u): u for u in kept}  # contract/output name -> user's column
    codes = [col for col in frame_cols if col in spec.key or col in ("street_code", "community_code", "district_code")
             or (col in contract and col.endswith("_id")) or col == "repeat_of"]

    # -- the value of each kept column, over the positional source columns ----------------------------
    # Level 0 masks free text once (__m<i>); level 1 computes the values (__v<k>) and helpers; level 2 the
    # first failing check (__reason); level 3 keeps what later steps need, and the raw text of rejects.
    m0: list[str] = []  # level-0 expressions
    value: dict[str, str] = {}
    vname: dict[str, str] = {}
    masked_cells: list[str] = []
    for col, u in src_of.items():
        x, t = c(u), ty(u)
        if col in codes:
            value[col] = code(x, t)
        elif col in spec.ints or col in spec.times:
            continue  # below
        elif u not in protected and t.startswith("VARCHAR"):
            i = byname[u]
            m0.append(f"{mask(x)} AS __m{i}")
            masked_cells.append(f"CAST(__m{i} IS DISTINCT FROM {x} AS INTEGER)")
            value[col] = text(f"__m{i}", "VARCHAR") if col in contract else f"__m{i}"
        elif col in contract and t.startswith("VARCHAR"):
            value[col] = text(x, t)
        elif u in null_pii:
            masked_cells.append(f"CAST(coalesce({pii_number(x)}, false) AS INTEGER)")
            value[col] = f"(CASE WHEN {pii_number(x)} THEN NULL ELSE {x} END)"
        else:
            value[col] = x
    p = _Params(files)
    reasons: list[tuple[str, str]] = []  # (condition, reason text expression), in the pandas order

    def fixed(zh: str, en: str) -> str:
        return p(f"{zh} / {en}")

    def v(col: str) -> str:
        return vname[col]

    key = spec.key[0]
    ints_num: dict[str, str] = {}
    given: dict[str, str] = {}
    for col in spec.ints:
        if col in src_of:
            x, t = c(src_of[col]), ty(src_of[col])
            if t in _NUMERIC:
                ints_num[col] = f"CAST({x} AS DOUBLE)"
                given[col] = f"({x} IS NOT NULL AND NOT isnan(CAST({x} AS DOUBLE)))"
            else:
                ints_num[col] = f"TRY_CAST({text(x, t)} AS DOUBLE)"
                given[col] = f"({x} IS NOT NULL AND {strip(f'CAST({x} AS VARCHAR)')} <> '')"
            value[col] = (f"(CASE WHEN isfinite(__n_{col}) AND abs(__n_{col}) <= {MAX_COUNT} "
                          f"THEN CAST(round(__n_{col}) AS BIGINT) END)")
    for col in spec.times:
        if col in src_of:
            x, t = c(src_of[col]), ty(src_of[col])
            value[col] = parse_time(x, t)
            given[col] = f"({x} IS NOT NULL AND {strip(f'CAST({x} AS VARCHAR)')} <> '')" if t == "VARCHAR" \
                else f"({x} IS NOT NULL)"
    for k, col in enumerate(value):
        vname[col] = f"__v{k}"

    zk, ek = lab(key)
    reasons.append((f"{v(key)} IS NULL", fixed(f"缺少 {zk}（编号为空）", f"missing {ek} (empty id)")))
    for col in [c_ for c_ in spec.required if c_ not in spec.key and c_ not in spec.times]:
        z, e = lab(col)
        reasons.append((f"{v(col)} IS NULL", fixed(f"缺少必填项 {z}", f"missing required value {e}")))
    required_present = " AND ".join(f"{v(col)} IS NOT NULL" for col in spec.required
                                    if col not in spec.key and col not in spec.times) or "true"

    def dup_reason(pp: _Params) -> str:
        """The duplicate-id reason of a stage row (``__inc_stage``) given ``d.first`` of its id."""
        fname = f"list_extract({pp(src.names)}, CAST(d.first // 4294967296 AS BIGINT) + 1)"
        drow = "CAST(d.first % 4294967296 AS BIGINT) + 1"
        return (f"(CASE WHEN d.first // 4294967296 = __inc_stage.__file THEN {pp(f'{zk} 重复（与第 ')} || {drow} || "
                f"{pp(f' 行相同） / duplicate {ek} (same as row ')} || {drow} || ')' ELSE {pp(f'{zk} 重复（与 ')} || "
                f"{fname} || ' 第 ' || {drow} || {pp(f' 行相同） / duplicate {ek} (same as row ')} || {drow} || ' of ' "
                f"|| {fname} || ')' END)")
    for col in ints_num:
        z, e = lab(col)
        num = f"__n_{col}"
        reasons += [
            (f"{given[col]} AND {num} IS NULL", fixed(f"{z} 不是数字", f"{e} is not a number")),
            (f"isinf({num})", fixed(f"{z} 不是有限数值", f"{e} is not a finite number")),
            (f"isfinite({num}) AND abs({num}) > {MAX_COUNT}",
             fixed(f"{z} 数值过大（上限 {MAX_COUNT}）", f"{e} is too large (limit {MAX_COUNT})")),
            (f"{num} < 0", fixed(f"{z} 为负数", f"{e} is negative")),
            (f"isfinite({num}) AND {num} <> round({num})", fixed(f"{z} 不是整数", f"{e} is not a whole number")),
        ]
    if "severity" in value:
        z, e = lab("severity")
        reasons.append((f"{v('severity')} IS NOT NULL AND NOT ({v('severity')} BETWEEN 1 AND 5)",
                        fixed(f"{z} 须在 1–5 之间", f"{e} must be 1–5")))
    end_of_day = (now.normalize() + pd.Timedelta(days=1)).to_pydatetime()
    day = str(now.date())
    for col in spec.times:
        if col not in src_of:
            continue
        x, t = c(src_of[col]), ty(src_of[col])
        z, e = lab(col)
        if t == "VARCHAR" or t in _NUMERIC:
            sv = short(f"CAST({x} AS VARCHAR)")
            reasons.append((f"{given[col]} AND {v(col)} IS NULL",
                            f"{p(f'时间 {z} 无法解析：')} || {repr_sql(sv)} || "
                            f"{p(f'；可用格式：{dates.FORMATS_ZH} / time {e} cannot be parsed: ')} "
                            f"|| {repr_sql(sv)} || {p(f'; accepted: {dates.FORMATS_EN}')}"))
        if col in spec.required:
            reasons.append((f"NOT {given[col]}", fixed(f"缺少时间 {z}", f"missing time {e}")))
        stamp = f"left(CAST({v(col)} AS VARCHAR), 19)"
        reasons.append((f"{v(col)} >= {p(end_of_day)}",
                        f"{p(f'{z} 在运行日期 {day} 之后（')} || {stamp} || "
                        f"{p(f'） / {e} is after the run date {day} (')} || {stamp} || ')'"))
        reasons.append((f"{v(col)} < TIMESTAMP '2000-01-01'", fixed(f"{z} 早于 2000 年", f"{e} is before 2000")))
    if "occurred_at" in value:
        zo, eo = lab("occurred_at")
        for col in spec.times:
            if col == "occurred_at" or col not in src_of:
                continue
            z, e = lab(col)
            reasons.append((f"{v(col)} < {v('occurred_at')}", fixed(f"{z} 早于发生时间 {zo}", f"{e} is before {eo}")))
    # Geometry: coordinates (or WKT / WKB) to lon/lat in EPSG:4326.
    if lon_c and lat_c:
        xl, yl = c(lon_c), c(lat_c)
        lon_v, lat_v = coord(xl, ty(lon_c)), coord(yl, ty(lat_c))
        bad = f"NOT (coalesce(isfinite({lon_v}), false) AND coalesce(isfinite({lat_v}), false))"
        a = f"left(coalesce(CAST({xl} AS VARCHAR), ''), 40)"
        b = f"left(coalesce(CAST({yl} AS VARCHAR), ''), 40)"
        reasons.append((bad, f"{p(f'经纬度无法解析（{lon_c}=')} || {repr_sql(a)} || {p(f', {lat_c}=')} || {repr_sql(b)} || "
                             f"{p(f'） / coordinates cannot be parsed ({lon_c}=')} || {repr_sql(a)} || {p(f', {lat_c}=')} "
                             f"|| {repr_sql(b)} || ')'"))
        point = f"ST_Point({lon_v}, {lat_v})"
    else:
        xw, tw = c(wkt_c), ty(wkt_c)
        geom = (f"CAST({xw} AS GEOMETRY)" if tw.startswith("GEOMETRY") else f"TRY(ST_GeomFromWKB({xw}))" if tw == "BLOB"
                else f"TRY(ST_GeomFromText(CAST({xw} AS VARCHAR)))")
        reasons.append((f"{xw} IS NULL", fixed("缺少几何", "missing geometry")))
        reasons.append(("__geom IS NULL", fixed("几何无法解析", "geometry cannot be parsed")))
        reasons.append(("ST_GeometryType(__geom) <> 'POINT'",
                        f"{p('几何类型错误：应为点，实为 ')} || ST_GeometryType(__geom) || "
                        f"{p(' / wrong geometry type: expected point, got ')} || ST_GeometryType(__geom)"))
        point = geom
    if crs in ("GCJ-02", "BD-09"):
        raise InputFileError(
            f"{src.label}：{crs} 坐标的事件不能以 Parquet 文件夹流式导入；请先转换为 WGS84/CGCS2000，或放入单个较小的文件。",
            f"{src.label}: {crs} incidents cannot be streamed from a Parquet folder; convert them to WGS84/CGCS2000 "
            "first, or provide one smaller file.",
        )
    if crs not in ("EPSG:4326", "EPSG:4490"):
        point = f"ST_Transform({point}, {p(crs)}, 'EPSG:4326', always_xy := true)"
    reasons.append(("NOT coalesce(abs(__lon) <= 180 AND abs(__lat) <= 90, false)",
                    fixed("坐标超出经纬度范围", "coordinates outside lon/lat range")))
    # -- the output columns, in the pandas path's order --------------------------------------------
    out_contract = [col for col in spec.required + spec.optional if col in value and col != "community_code"]
    extra = [col for col in frame_cols if col not in out_contract and col not in ("community_code", "street_code")
             and col not in _RESERVED and not col.startswith("__")]
    rk = None
    if hashed is not None:
        digits = f"regexp_replace({fold(f'CAST({c(hashed)} AS VARCHAR)')}, {_DOT0_L}, '')"
        digits = f"regexp_replace({digits}, '[^0-9]', '', 'g')"
        digits = f"regexp_replace({digits}, {_PREFIX86_L}, '\\1')"
        rk = f"(CASE WHEN {digits} <> '' THEN left(sha256({p(salt.decode())} || {digits}), 16) END)"
    elif "reporter_key" in frame_cols:
        rk = mask(c(src_of["reporter_key"]))
    # rejects.raw: the user's columns as read (personal columns dropped), numbers masked, then lon/lat.
    def build_raw(pp: _Params) -> str:
        parts = []
        for u in kept + geom_cols:
            x, t = c(u), ty(u)
            if t in _NUMERIC:
                rv = f"(CASE WHEN coalesce({pii_number(x)}, false) THEN to_json('***') ELSE to_json({x}) END)"
            elif t.startswith("VARCHAR"):
                rv = f"__m{byname[u]}" if f"{mask(x)} AS __m{byname[u]}" in m0 else mask(x)
            elif t == "BLOB" or t.startswith("GEOMETRY"):
                rv = "NULL"
            else:
                rv = x
            parts += [pp(u), rv]
        return f"CAST(json_object({', '.join(parts)}) AS VARCHAR)"
    raw_json = build_raw(p)
    key_sql = code(c(src_of[key]), ty(src_of[key]))
    l0 = (f"SELECT s.*, s.file_index, s.file_row_number{''.join(', ' + e for e in m0)} FROM {_read(n_cols)} "
          f"WHERE {_BATCH}")
    l1 = ["s0.*", "CAST(s0.file_index AS BIGINT) * 4294967296 + s0.file_row_number AS __pid",
          "CAST(s0.file_index AS BIGINT) AS __file", "s0.file_row_number + 1 AS __row"]
    l1 += [f"{e} AS __n_{col}" for col, e in ints_num.items()]
    l1 += [f"{value[col]} AS {vname[col]}" for col in value if col not in ints_num]
    if not (lon_c and lat_c):
        l1.append(f"{geom} AS __geom")
    l1.append(f"{' + '.join(masked_cells) or '0'} AS __masked")
    if rk is not None:
        l1.append(f"{rk} AS reporter_key")
    # No join in this pass: duplicate ids and unknown community codes are marked afterwards, on the
    # few rows concerned.
    l1s = f"SELECT {', '.join(l1)} FROM ({l0}) s0"
    # The ints' values use their numbers (__n_<col>): one more level for them and the point.
    l1b = ["*"] + [f"{value[col]} AS {vname[col]}" for col in ints_num]
    l1b += [f"ST_X({point}) AS __lon", f"ST_Y({point}) AS __lat"]
    l1bs = f"SELECT {', '.join(l1b)} FROM ({l1s})"
    reason_sql = "CASE " + " ".join(f"WHEN {cond} THEN {msg}" for cond, msg in reasons) + " END"
    l2 = f"SELECT *, {reason_sql} AS __reason FROM ({l1bs})"
    keep_cols = ["__pid", "__file", "__row", "__lon", "__lat", "__reason", "__masked"] + [vname[col] for col in value]
    if rk is not None:
        keep_cols.append("reporter_key")
    l3 = (f"SELECT {', '.join(keep_cols)}, CASE WHEN __reason IS NOT NULL THEN {raw_json} END AS __raw "
          f"FROM ({l2})")

    say(f"incidents: {len(src.files)} 个 Parquet 文件 / Parquet file(s), DuckDB")
    _drop_temp(con)
    cm = comms.reset_index(drop=True)
    con.register("__inc_comm_src", pd.DataFrame({"cidx": np.arange(len(cm), dtype=np.int64), "code": cm["code"],
                                                 "street": cm["street"], "wkb": cm["wkb"]}))
    try:
        con.execute("CREATE TEMP TABLE __inc_comm AS SELECT cidx, code, street, ST_GeomFromWKB(wkb) AS g "
                    "FROM __inc_comm_src")
    finally:
        con.unregister("__inc_comm_src")
    with unordered(con):
        # Duplicate ids: only the key column is read; the first row (file order) of each repeated id.
        con.execute(
            f"CREATE TEMP TABLE __inc_dup AS SELECT k, min(pid) AS first FROM (SELECT {key_sql} AS k, "
            f"CAST(s.file_index AS BIGINT) * 4294967296 + s.file_row_number AS pid FROM {_read(n_cols)}) "
            "WHERE k IS NOT NULL GROUP BY k HAVING count(*) > 1", [files])
    # Batches of files, in file order (a file's rows keep their global index): the staging tables,
    # the location join and the sort hold one batch at a time, so memory and temporary disk follow
    # the batch, not the 100M rows of a province; `incidents` is the same in one batch or many.
    batches = _file_batches(src)
    tally = [0, 0, 0, 0]  # rows read, good, out of lon/lat range, masked values
    for k, (lo, hi) in enumerate(batches):
        first = k == 0

        def at(sql: str, lo: int = lo, hi: int = hi) -> str:
            return sql.replace(_BATCH, f"s.file_index BETWEEN {int(lo)} AND {int(hi)}")

        if len(batches) > 1:
            say(f"incidents: 第 {k + 1}/{len(batches)} 批 / batch {k + 1} of {len(batches)} "
                f"({hi - lo + 1} 个文件 / file(s))")
        # One pass over the rows: values, reasons and raw text (in any order: incidents is written sorted).
        with unordered(con):
            con.execute(f"CREATE TEMP TABLE __inc_stage AS {at(l3)}", p.values)
        # Repeated ids (their check comes right after the required values) and unknown declared
        # communities (after every check of the row): only the rows concerned are touched. The raw text
        # of rows rejected here is read again below.
        pu = _Params()
        con.execute(f"UPDATE __inc_stage SET __reason = {dup_reason(pu)} FROM __inc_dup d WHERE d.k = __inc_stage.{v(key)} "
                    f"AND d.first <> __inc_stage.__pid AND {required_present.replace('__v', '__inc_stage.__v')}", pu.values)
        if "community_code" in value:
            zc, ec = lab("community_code")
            con.execute(f"UPDATE __inc_stage SET __reason = $1 WHERE __reason IS NULL AND {v('community_code')} IS NOT NULL "
                        f"AND {v('community_code')} NOT IN (SELECT code FROM __inc_comm)",
                        [f"{zc} 在社区图层中不存在 / {ec} not found in the communities layer"])
        counts = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE __reason IS NULL), "
            f"count(*) FILTER (WHERE __reason = {quote_literal('坐标超出经纬度范围 / coordinates outside lon/lat range')}), "
            "coalesce(sum(__masked), 0) FROM __inc_stage").fetchone()
        tally = [x + int(y or 0) for x, y in zip(tally, counts)]
        # Location in the metric CRS: every community within the tolerance; inside wins, lowest on ties.
        pl = _Params(metric, float(tol))
        decl = f"__d.{vname['community_code']}" if "community_code" in value else "CAST(NULL AS VARCHAR)"
        with unordered(con):
            con.execute(
                "CREATE TEMP TABLE __inc_loc AS SELECT __d.__pid, "
                "min(c.cidx) FILTER (WHERE ST_Intersects(c.g, __d.g)) AS inside, min(c.cidx) AS near, "
                f"bool_or(c.code = __d.decl) AS agree FROM (SELECT __pid, {decl} AS decl, "
                "ST_Transform(ST_Point(__lon, __lat), 'EPSG:4326', $1, always_xy := true) AS g "
                "FROM __inc_stage __d WHERE __reason IS NULL) __d JOIN __inc_comm c ON ST_DWithin(c.g, __d.g, $2) "
                "GROUP BY __d.__pid", pl.values)
        zc, ec = lab("community_code")
        zs, es = lab("street_code")
        at_code = "(CASE WHEN l.agree THEN t.decl ELSE ca.code END)"
        located = (
            f"SELECT t.*, l.__pid IS NOT NULL AS located, {at_code} AS at_code, "
            "t.decl IS NOT NULL AND l.__pid IS NOT NULL AND NOT coalesce(l.agree, false) AS contradict "
            f"FROM (SELECT *, {decl.replace('__d.', '')} AS decl FROM __inc_stage WHERE __reason IS NULL) t "
            "LEFT JOIN __inc_loc l ON l.__pid = t.__pid LEFT JOIN __inc_comm ca ON ca.cidx = coalesce(l.inside, l.near)")
        user_street = vname["street_code"] if "street_code" in value else "CAST(NULL AS VARCHAR)"
        full = (f"SELECT z.*, cs.street AS derived, {user_street} IS NOT NULL AND cs.street IS NOT NULL AND "
                f"{user_street} <> cs.street AS clash FROM ({located}) z LEFT JOIN __inc_comm cs ON cs.code = z.at_code")
        out = [f"{vname[col]} AS {quote_ident_safe(col)}" for col in out_contract + extra]
        if rk is not None:
            out.append("reporter_key")
        out += ["at_code AS community_code", "derived AS street_code", "ST_Point(__lon, __lat) AS geometry"]
        con.execute(f"{'CREATE OR REPLACE TABLE incidents AS' if first else 'INSERT INTO incidents'} "
                    f"SELECT {', '.join(out)} FROM ({full}) f WHERE located AND NOT contradict AND NOT clash ORDER BY __pid")
        # Rejects: rows that failed a check of their own, then those the location refused.
        pr = _Params()
        tol_zh = "位置不在任何社区内（也不在任何社区边界 %.0f 米内）" % tol
        tol_en = "location is outside every community (and more than %.0f m from any)" % tol
        loc_reason = (
            f"CASE WHEN NOT located THEN {pr(f'{tol_zh} / {tol_en}')} "
            f"WHEN contradict THEN {pr(f'{zc} ')} || decl || {pr(' 与位置不符：位置在社区 ')} || at_code || "
            f"{pr(f' 内；请更正编码或坐标，或留空由位置判定 / {ec} ')} || decl || "
            f"{pr(' contradicts the location, which lies in community ')} || at_code || "
            f"{pr('; correct the code or the coordinates, or leave it empty to assign by location')} "
            f"ELSE {pr(f'{zs} ')} || {user_street} || {pr(' 与位置不符：位置所在社区 ')} || at_code || {pr(' 属于街道 ')} "
            f"|| derived || {pr(f'；请更正或删除该列 / {es} ')} || {user_street} || {pr(' contradicts the location: its community ')} "
            f"|| at_code || {pr(' belongs to street ')} || derived || {pr('; correct the column or leave it out')} END")
        con.execute(
            f"{'CREATE TEMP TABLE __inc_rej AS' if first else 'INSERT INTO __inc_rej'} "
            "SELECT __file, __row, __reason AS reason, __raw AS raw FROM __inc_stage "
            f"WHERE __reason IS NOT NULL UNION ALL SELECT __file, __row, {loc_reason}, NULL FROM ({full}) f "
            "WHERE NOT located OR contradict OR clash", pr.values)
        n_loc = con.execute("SELECT count(*) FROM __inc_rej WHERE raw IS NULL").fetchone()[0]
        if n_loc:  # their raw text: the rows again, from the files (only those rows are kept)
            pw = _Params(files)
            con.execute(
                f"CREATE TEMP TABLE __inc_rawfix AS SELECT s0.file_index AS __file, s0.file_row_number + 1 AS __row, "
                f"{build_raw(pw)} AS raw FROM ({at(l0)}) s0 SEMI JOIN (SELECT __file, __row FROM __inc_rej WHERE raw IS NULL) r "
                "ON r.__file = s0.file_index AND r.__row = s0.file_row_number + 1", pw.values)
            con.execute("UPDATE __inc_rej SET raw = f.raw FROM __inc_rawfix f WHERE __inc_rej.raw IS NULL AND "
                        "__inc_rej.__file = f.__file AND __inc_rej.__row = f.__row")
            con.execute("DROP TABLE __inc_rawfix")
        for t in ("__inc_stage", "__inc_loc"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
    n_read, n_good, n_range, n_masked = tally
    if n_range and n_range > 0.5 * max(n_good + n_range, 1):
        raise InputFileError(
            f"{src.label}：坐标超出经纬度范围（按 {crs} 解读）；数据可能是投影坐标。请只为这个图层在 gridgov.toml 中"
            f"写明坐标系：[layers.{spec.name}] crs = \"EPSG:4546\"（换成数据的实际坐标系）。",
            f"{src.label}: coordinates are outside lon/lat range when read as {crs}; the data look "
            f"projected. Declare the CRS for this layer only in gridgov.toml: [layers.{spec.name}] crs = "
            "\"EPSG:4546\" (use the data's actual CRS).",
        )
    say(f"incidents: {n_read} 行读取 / rows read, DuckDB")
    n_rej = con.execute("SELECT count(*) FROM __inc_rej").fetchone()[0]
    for t in ("__inc_stage", "__inc_loc", "__inc_dup"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return {"read": int(n_read), "kept": int(n_read - n_rej), "rejected": int(n_rej), "repaired": 0,
            "pii_columns_dropped": dropped, "pii_values_masked": int(n_masked)}


def quote_ident_safe(name: str) -> str:
    """Output column names: contract names, or the user's cleaned names, quoted by the one helper."""
    from pipelines.db import quote_ident

    return quote_ident(name)


def append_rejects(con: duckdb.DuckDBPyConnection, src: Source, layer: str = "incidents") -> None:
    """Add the streamed layer's rejects (``__inc_rej``) to ``rejects``; reasons masked like raw."""
    con.execute(
        f"INSERT INTO rejects SELECT $1, list_extract($2, __file + 1), CAST(__row AS BIGINT), {mask('reason')}, "
        "CAST(raw AS JSON) FROM __inc_rej ORDER BY __file, __row", [layer, src.names])
    _drop_temp(con)


def top_reason(con: duckdb.DuckDBPyConnection) -> tuple[str, int] | None:
    row = con.execute(f"SELECT {mask('reason')} AS r, count(*) AS n FROM __inc_rej GROUP BY r "
                      "ORDER BY n DESC, r LIMIT 1").fetchone()
    return (row[0], int(row[1])) if row else None


def _drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    for t in STREAM_TABLES + ("__inc_rawfix",):
        con.execute(f"DROP TABLE IF EXISTS {t}")
