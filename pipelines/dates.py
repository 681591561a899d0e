"""Dates as street offices write them, parsed vectorised into naive Asia/Shanghai local time.

Accepted (full-width digits too)::

    2025-03-05 14:20[:33]   2025/3/5 14:20   2025.3.5   2025-03-05T14:20:00
    2025年3月5日 14时20分[30秒]   2025年03月05日   2025年3月5日14点
    20250305                Excel serial numbers (45721.597 = 2025-03-05 14:20)
    ISO 8601 with a zone (2025-03-05T06:20:00Z, …+08:00): converted to Asia/Shanghai

"Now" for the future-date check comes from :func:`now`, the one clock of the ingest; tests pin it
with the environment variable ``GRIDGOV_NOW`` (e.g. ``2025-06-30 12:00``).
"""
from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

TZ = "Asia/Shanghai"
EARLIEST = pd.Timestamp("2000-01-01")
FORMATS_ZH = "2025-03-05 14:20、2025/3/5 14:20、2025年3月5日 14时20分、Excel 日期序号、带时区的 ISO 8601"
FORMATS_EN = "2025-03-05 14:20, 2025/3/5 14:20, 2025年3月5日 14时20分, Excel serial numbers, ISO 8601 with a zone"
_EXCEL_ORIGIN = pd.Timestamp("1899-12-30")
_EXCEL_MAX = 2958465  # 9999-12-31

_PATTERN = (
    r"^(?P<y>\d{4})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*日?"
    r"(?:\s*[T ]?\s*(?P<H>\d{1,2})\s*[:时点]\s*(?:(?P<M>\d{1,2})\s*分?\s*(?::?\s*(?P<S>\d{1,2}(?:\.\d+)?)\s*秒?)?)?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}:?\d{2})?$"
)
_COMPACT = r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$"
_SERIAL = r"^\d{1,7}(?:\.\d+)?$"


def nfkc(s: pd.Series) -> pd.Series:
    """Text of ``s`` in Unicode NFKC (full-width ``Ｂ０００３`` is ``B0003``), vectorised with pyarrow;
    missing stays missing. Returns a ``string[pyarrow]`` series with the same index."""
    arr = pa.array(s.astype("string[pyarrow]").array)
    return pd.Series(pd.arrays.ArrowStringArray(pc.utf8_normalize(arr, "NFKC")), index=s.index)


def now() -> pd.Timestamp:
    """The run's "now" in Asia/Shanghai local time (naive); ``GRIDGOV_NOW`` overrides it."""
    pinned = os.environ.get("GRIDGOV_NOW")
    if pinned:
        ts = pd.Timestamp(pinned)
        return ts.tz_convert(TZ).tz_localize(None) if ts.tzinfo is not None else ts
    return pd.Timestamp.now(tz=TZ).tz_localize(None).floor("s")


def _empty(n: int, index) -> pd.Series:
    return pd.Series(np.full(n, np.datetime64("NaT"), dtype="datetime64[us]"), index=index)


def excel_serial(values: np.ndarray) -> np.ndarray:
    """Excel serial day numbers (1900 system, float) to datetime64[us]; NaT outside 1 … 9999-12-31."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v) & (v >= 1) & (v <= _EXCEL_MAX)
    out = np.full(len(v), np.datetime64("NaT"), dtype="datetime64[us]")
    us = np.round(v[ok] * 86_400).astype("int64") * 1_000_000  # Excel keeps whole seconds
    out[ok] = np.datetime64(_EXCEL_ORIGIN.to_datetime64(), "us") + us.astype("timedelta64[us]")
    return out


def parse_datetimes(s: pd.Series, *, _fast: bool = True) -> pd.Series:
    """Parse a column of dates and times of any dtype; NaT where empty or not a date.

    Returns a ``datetime64[us]`` series of naive Asia/Shanghai local times, same index as ``s``.
    """
    n = len(s)
    out = _empty(n, s.index)
    if n == 0:
        return out
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        t = s
        if getattr(t.dt, "tz", None) is not None:
            t = t.dt.tz_convert(TZ).dt.tz_localize(None)
        return t.astype("datetime64[us]")
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        out[:] = excel_serial(pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan))
        return out
    # Mixed objects (openpyxl gives datetime for date cells): real datetimes first. Only a true
    # object column can hold them; text (pandas 3 `str`) goes to the patterns below either way.
    if s.dtype == object:
        is_dt = s.map(lambda v: isinstance(v, pd.Timestamp | np.datetime64) or hasattr(v, "isoformat")
                      and not isinstance(v, str)).to_numpy(bool)
        if is_dt.any():
            out[is_dt] = pd.to_datetime(s[is_dt], errors="coerce", utc=False).map(
                lambda t: t.tz_convert(TZ).tz_localize(None) if t is not pd.NaT and t.tzinfo else t
            ).astype("datetime64[us]").to_numpy()
            s = s.where(~is_dt, None)
    # Text: one RE2 pass (pyarrow, vectorised C++) per pattern, components assembled by pandas,
    # which also refuses impossible dates such as 2025-02-30.
    arr = pa.array(s.astype("string[pyarrow]").array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = pc.utf8_trim_whitespace(pc.utf8_normalize(arr, "NFKC"))
    todo = pc.fill_null(pc.greater(pc.utf8_length(arr), 0), False).to_numpy(zero_copy_only=False)
    # Fast path for the format most systems export, when the first values have it.
    head = pc.drop_null(arr)[:50].to_pylist()
    if _fast and head and all(re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?", v) for v in head):
        fmt = "%Y-%m-%d %H:%M:%S" if len(head[0]) == 19 else "%Y-%m-%d %H:%M"
        got = pd.to_datetime(pd.Series(arr.to_numpy(zero_copy_only=False)), format=fmt,
                             errors="coerce").astype("datetime64[us]").to_numpy()
        hit = ~np.isnat(got)
        out.iloc[np.flatnonzero(hit)] = got[hit]
        todo &= ~hit
        if not todo.any():
            return out
        keep = np.flatnonzero(todo)
        # the leftovers (other formats, impossible dates such as 2025-02-30) by the general
        # patterns: the fast path again would find nothing new and recurse for ever
        sub = parse_datetimes(pd.Series(arr.to_numpy(zero_copy_only=False)[keep], dtype="str"),
                              _fast=False)
        out.iloc[keep] = sub.to_numpy()
        return out
    parts = pc.extract_regex(arr, _PATTERN)
    ok = _valid(parts)
    comp = {k: _num(parts, k) for k in ("y", "m", "d", "H", "M", "S")}
    tz = parts.field("tz")
    compact = pc.extract_regex(arr, _COMPACT)
    use_c = ~ok & _valid(compact)
    if use_c.any():
        for k in ("y", "m", "d"):
            comp[k] = np.where(use_c, _num(compact, k), comp[k])
        ok = ok | use_c
    if ok.any():
        sec = np.nan_to_num(comp["S"][ok])
        frame = pd.DataFrame({
            "year": comp["y"][ok], "month": comp["m"][ok], "day": comp["d"][ok],
            "hour": np.nan_to_num(comp["H"][ok]), "minute": np.nan_to_num(comp["M"][ok]),
            "second": np.floor(sec), "us": np.round((sec - np.floor(sec)) * 1e6),
        })
        bad_time = ((frame["hour"] > 23) | (frame["minute"] > 59) | (frame["second"] > 59)).to_numpy()
        ts = pd.to_datetime(frame, errors="coerce").astype("datetime64[us]").to_numpy().copy()
        ts[bad_time] = np.datetime64("NaT")
        has_tz = pc.fill_null(pc.not_equal(tz, ""), False).to_numpy(zero_copy_only=False)[ok]
        if has_tz.any():
            zone = np.asarray(tz.to_numpy(zero_copy_only=False), dtype=object)[ok]
            minutes = np.zeros(len(zone))
            for i in np.flatnonzero(has_tz):
                z = zone[i]
                if z != "Z":
                    d = z[1:].replace(":", "")
                    minutes[i] = (int(d[:2]) * 60 + int(d[2:4])) * (-1 if z[0] == "-" else 1)
            shift = np.where(has_tz, 8 * 60 - minutes, 0).astype("int64")
            ts = ts + shift.astype("timedelta64[m]").astype("timedelta64[us]")
        out.iloc[np.flatnonzero(ok)] = ts
    rest = ~ok & pc.fill_null(pc.match_substring_regex(arr, _SERIAL), False).to_numpy(zero_copy_only=False)
    if rest.any():
        vals = pc.cast(pc.filter(arr, pa.array(rest)), pa.float64()).to_numpy(zero_copy_only=False)
        out.iloc[np.flatnonzero(rest)] = excel_serial(vals)
    return out


def _valid(extracted: pa.Array) -> np.ndarray:
    return extracted.is_valid().to_numpy(zero_copy_only=False)


def _num(extracted: pa.Array, name: str) -> np.ndarray:
    """A captured group as floats (NaN where the group did not take part)."""
    f = extracted.field(name)
    f = pc.if_else(pc.equal(f, ""), pa.scalar(None, pa.string()), f)
    return pc.cast(f, pa.float64()).to_numpy(zero_copy_only=False)
