"""Ingest: read every layer of a project folder, validate it, write clean tables and ``rejects``.

Each row that cannot be used lands in ``rejects`` with a reason in Chinese and English that names
the user's own column, and the row as it was read (``raw``, JSON); a file that cannot be used at
all stops the run with one :class:`~pipelines.errors.InputFileError`. Personal data (names, phone
numbers, ID card numbers) is dropped or masked before anything is written (:mod:`pipelines.privacy`);
phone numbers of reporters become a salted key ``reporter_key`` so that repeat complaints can
still be counted.

Geometry is the truth: a located row belongs to the community its location lies in (within
``[ingest] location_tolerance_m``, default 50 m); a ``community_code`` or ``street_code`` the
row carries is checked against it, and a row that contradicts it or lies outside every community
is a reject. A layer of which most rows are rejected stops the run (:class:`MostlyRejectedError`)
so that good tables are not replaced by a few survivors.

The work per layer is a fixed number of vectorised passes over its rows; each error costs only its
own row (reasons are written by position), so time grows with rows, not rows × errors.

Incidents in a folder of Parquet files (hive-partitioned by month or plain) or in one Parquet file
larger than ``[ingest] stream_threshold_mb`` never enter Python: :mod:`pipelines.ingest_parquet`
runs the same checks, privacy rules and location in DuckDB, under ``[compute] memory_limit``, and
writes the same ``incidents`` table and rejects.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import chinacrs
from pipelines import dates, ingest_parquet, privacy
from pipelines.db import apply_compute_settings, write_gdf
from pipelines.errors import InputFileError, MostlyRejectedError, SettingsError
from pipelines.layers import ALIASES, LAYERS, LayerSpec
from pipelines.readers import RawLayer, find_layer_file, read_layer

log = logging.getLogger(__name__)

REJECT_COLUMNS = ["layer", "source_file", "source_row", "reason", "raw"]
DEFAULT_TOLERANCE_M = 50.0
DEFAULT_MAX_REJECT_SHARE = 0.5
MAX_COUNT = 1_000_000  # households, residents, headcount … of one row; more is an input error
LOCATED = ("buildings", "incidents", "special_units", "current_grids")
_GEOM_OK = {
    "polygon": {"Polygon", "MultiPolygon"},
    "point": {"Point"},
    "line": {"LineString", "MultiLineString"},
    "point_or_polygon": {"Point", "Polygon", "MultiPolygon"},
}
_GEOM_ZH = {"polygon": "面", "point": "点", "line": "线", "point_or_polygon": "点或面"}
_TYPE_NAMES = np.array(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString",
                        "MultiPolygon", "GeometryCollection"], dtype=object)
_RESERVED = {"geometry", "reporter_key"}


@dataclass
class IngestReport:
    """Counts per layer: read, kept, rejected, repaired; personal columns dropped; notes."""

    layers: dict[str, dict] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(v["rejected"] for v in self.layers.values())

    def reject_share(self, layer: str) -> float:
        c = self.layers.get(layer) or {}
        return c.get("rejected", 0) / c["read"] if c.get("read") else 0.0

    def as_dict(self) -> dict:
        return {"layers": self.layers, "files": self.files, "rejected": self.rejected, "notes": self.notes}


class _Flags:
    """The first reason per row; flags by mask or by positions, never one whole-frame pass per error."""

    def __init__(self, n: int) -> None:
        self.zh = np.full(n, None, dtype=object)
        self.en = np.full(n, None, dtype=object)
        self.free = np.ones(n, dtype=bool)

    def mask(self, mask, zh, en) -> None:
        m = np.asarray(mask, dtype=bool) & self.free
        if not m.any():
            return
        self.zh[m] = zh if isinstance(zh, str) else np.asarray(zh, dtype=object)[m]
        self.en[m] = en if isinstance(en, str) else np.asarray(en, dtype=object)[m]
        self.free[m] = False

    def at(self, positions, zh, en) -> None:
        pos = np.asarray(positions, dtype=np.int64)
        if len(pos) == 0:
            return
        keep = self.free[pos]
        pos = pos[keep]
        self.zh[pos] = zh if isinstance(zh, str) else np.asarray(zh, dtype=object)[keep]
        self.en[pos] = en if isinstance(en, str) else np.asarray(en, dtype=object)[keep]
        self.free[pos] = False

    @property
    def bad(self) -> np.ndarray:
        return ~self.free


class _Rejects:
    def __init__(self) -> None:
        self.parts: list[pd.DataFrame] = []

    def add(self, layer: str, source_file: str, raw_rows: pd.DataFrame, zh, en) -> None:
        """``raw_rows``: the rows as read (user's column names, ``__row``); zh/en one per row or one."""
        if raw_rows.empty:
            return
        data = raw_rows.drop(columns=[c for c in raw_rows.columns if c.startswith("__")])
        # The row as read may still hold a phone or ID number in a column that was not masked at
        # read time (an id, a time, a count, a coordinate): mask it, column by column, before JSON.
        data = privacy.mask_frame_values(data)
        if data.shape[1]:
            text = data.to_json(orient="records", lines=True, force_ascii=False, date_format="iso",
                                default_handler=str)
            raw = text.rstrip("\n").split("\n")
        else:
            raw = ["{}"] * len(data)
        n = len(raw_rows)
        zh = np.full(n, zh, dtype=object) if isinstance(zh, str) else np.asarray(zh, dtype=object)
        en = np.full(n, en, dtype=object) if isinstance(en, str) else np.asarray(en, dtype=object)
        self.parts.append(pd.DataFrame({
            "layer": layer, "source_file": source_file,
            "source_row": raw_rows["__row"].astype("int64").to_numpy(),
            "reason": [f"{z} / {e}" for z, e in zip(zh, en)], "raw": raw,
        }))

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame({c: pd.Series(dtype="int64" if c == "source_row" else "object") for c in REJECT_COLUMNS})
        out = pd.concat(self.parts, ignore_index=True)
        # Reasons quote values: mask each distinct reason once (raw was masked column by column).
        uniq = pd.unique(out["reason"].to_numpy(dtype=object))
        masked = privacy.mask_series(pd.Series(uniq, dtype=object))[0]
        if not (masked.to_numpy(dtype=object) == uniq).all():
            out["reason"] = out["reason"].map(dict(zip(uniq, masked)))
        return out


@dataclass
class _Layer:
    """One layer between validation and writing: the clean frame, the rows as read, and labels."""

    spec: LayerSpec
    source_file: str
    frame: pd.DataFrame  # contract names, typed; ``__row``; geometry (EPSG:4326) if the layer has one
    raw: pd.DataFrame  # rows as read, user's names, personal data removed, indexed like ``frame``
    label: dict[str, str]  # contract name -> how the user's file calls it

    def lab(self, col: str) -> tuple[str, str]:
        user = self.label.get(col, col)
        return (f"{user}（{col}）", f"{user} ({col})") if user != col else (col, col)


# -- helpers ------------------------------------------------------------------------------------
def _ingest_settings(settings: dict) -> dict:
    cfg = dict(settings.get("ingest") or {})
    cfg.setdefault("location_tolerance_m", DEFAULT_TOLERANCE_M)
    cfg.setdefault("max_reject_share", DEFAULT_MAX_REJECT_SHARE)
    return cfg


def _rename_map(frame: pd.DataFrame, spec: LayerSpec, settings: dict) -> dict[str, str]:
    """User's column -> contract column."""
    user_map = {str(k): str(v) for k, v in ((settings.get("columns") or {}).get(spec.name) or {}).items()}
    for k, v in user_map.items():
        if v.startswith("__") or v in _RESERVED or not v.strip():
            raise SettingsError(
                f"gridgov.toml：[columns.{spec.name}] 中 \"{k}\" = \"{v}\" 的目标列名保留给系统使用；请改用数据契约中的列名。",
                f"gridgov.toml: [columns.{spec.name}] \"{k}\" = \"{v}\" maps to a name the platform reserves; "
                "map it to a column name of the data contract.",
            )
    contract = set(spec.required) | set(spec.optional)
    targets = contract | {"name"} | ({"street_code", "community_code"} if spec.name in LOCATED else set())
    mapping: dict[str, str] = {}
    for col in frame.columns:
        if col.startswith("__"):
            continue
        if col in user_map:
            mapping[col] = user_map[col]
        elif col.lower() in targets - {"name"} or (col.lower() == "name" and "name" in contract):
            mapping[col] = col.lower()
        elif col in ALIASES and ALIASES[col] in targets:
            target = ALIASES[col]
            if target == "name" and spec.name == "special_units":
                target = "unit_name"
            if target == "name" and "name" not in contract:
                continue
            mapping[col] = target
    targets_seen: dict[str, list[str]] = {}
    for src, dst in mapping.items():
        targets_seen.setdefault(dst, []).append(src)
    for col in frame.columns:  # an unmapped column already called like a target collides too
        if col not in mapping and col in targets_seen:
            targets_seen[col].append(col)
    dup = {d: s for d, s in targets_seen.items() if len(s) > 1}
    if dup:
        what = "; ".join(f"{'、'.join(s)} → {d}" for d, s in dup.items())
        raise InputFileError(
            f"图层 {spec.name} 中多列被映射为同一列（{what}）；请在 gridgov.toml 的 [columns.{spec.name}] 中只保留一个映射，"
            "或删除多余的列。",
            f"Several columns of layer {spec.name} map to the same name ({what}); keep one mapping in "
            f"[columns.{spec.name}] of gridgov.toml, or remove the extra column.",
        )
    return mapping


def _text(s: pd.Series, *, fold: bool = True) -> pd.Series:
    """A column as normalised text: NFKC (full-width ``Ｂ０００３`` is ``B0003``; not for names, whose
    full-width punctuation is kept with ``fold=False``), trimmed, ``"12.0"`` from a numeric column
    read as ``"12"``, empty and ``nan`` as missing."""
    numeric = pd.api.types.is_float_dtype(s.dtype)
    t = (dates.nfkc(s) if fold else s.astype("string[pyarrow]")).str.replace("[\u200b-\u200f\ufeff]", "", regex=True).str.strip()
    if numeric:
        t = t.str.replace(r"\.0$", "", regex=True)
    return t.where(~t.isin(["", "nan", "NaN", "None", "<NA>"]))


def _as_code(s: pd.Series) -> pd.Series:
    t = _text(s)
    return t.str.replace(r"^(\d+)\.0$", r"\1", regex=True)


def _short(v) -> str:
    text = "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
    return text if len(text) <= 40 else text[:39] + "…"


# -- validation of one layer --------------------------------------------------------------------
def _validate(raw: RawLayer, spec: LayerSpec, settings: dict, salt: bytes, rejects: _Rejects,
              report: IngestReport, now: pd.Timestamp) -> _Layer | None:
    mapping = _rename_map(raw.frame, spec, settings)
    contract = set(spec.required) | set(spec.optional)
    keep = {c for c, t in mapping.items() if t in contract | set(spec.names) | {"street_code", "community_code"}}
    keep |= (contract | set(spec.names)) & set(raw.frame.columns)
    protected_targets = (set(spec.key) | set(spec.times) | set(spec.ints) | {"street_code", "community_code"}
                         | {c for c in contract if c.endswith(("_id", "_code")) or c == "repeat_of"})
    protected = {c for c, t in mapping.items() if t in protected_targets} | (protected_targets & set(raw.frame.columns))
    stripped, priv = privacy.strip_frame(raw.frame, keep=keep, protected=protected, salt=salt,
                                         hash_phones=spec.name == "incidents")
    priv.dropped = [privacy.mask_text(c) for c in priv.dropped]  # a column *named* like a phone number
    priv.masked = {privacy.mask_text(c): k for c, k in priv.masked.items()}
    if priv.dropped:
        log.info("%s: personal columns dropped / 已删除个人信息列: %s", spec.name, ", ".join(priv.dropped))
    if priv.masked:
        log.info("%s: phone/ID numbers masked / 已遮蔽号码: %s", spec.name,
                 ", ".join(f"{c} ({n})" for c, n in priv.masked.items()))
    raw_rows = stripped.drop(columns=[c for c in ("reporter_key",) if c in stripped.columns and c not in raw.frame])
    if raw.geom_source is not None:
        raw_rows = pd.concat([raw_rows, raw.geom_source.reset_index(drop=True)], axis=1)
    for note in raw.notes:
        report.notes.append(note)
        log.warning(note)
    frame = stripped.rename(columns=mapping)
    label = {t: s for s, t in mapping.items()}
    n = len(frame)
    if raw.bad_lines:
        width = len([c for c in raw.frame.columns if not c.startswith("__")]) + (
            raw.geom_source.shape[1] if raw.geom_source is not None else 0)
        lines = pd.DataFrame({"__row": [r for r, _, _ in raw.bad_lines], "line": [t for _, _, t in raw.bad_lines]})
        rejects.add(spec.name, raw.source_file, lines,
                    [f"该行有 {k} 个字段，多于表头的 {width} 个（可能有未加引号的逗号）；请修正该行" for _, k, _ in raw.bad_lines],
                    [f"this line has {k} fields, more than the header's {width} (an unquoted comma?); fix the line"
                     for _, k, _ in raw.bad_lines])
    counts = {"read": n + len(raw.bad_lines), "kept": 0, "rejected": 0, "repaired": 0, "pii_columns_dropped": priv.dropped,
              "pii_values_masked": int(sum(priv.masked.values()))}
    report.layers[spec.name] = counts
    if n == 0 and raw.bad_lines:
        if spec.required_layer:
            raise MostlyRejectedError(
                f"{raw.source_file}（图层 {spec.name}）的每一行字段数都多于表头；请检查分隔符和引号。",
                f"Every line of {raw.source_file} (layer {spec.name}) has more fields than the header; check the "
                "delimiter and the quotes.",
            )
        return None  # every line rejected: the share check at the end stops the run
    if n == 0:
        if spec.required_layer:
            raise InputFileError(
                f"{raw.source_file}（图层 {spec.name}）没有数据行；请放入含数据的文件。",
                f"{raw.source_file} (layer {spec.name}) has no data rows; provide a file with data.",
            )
        note = (f"{raw.source_file}（图层 {spec.name}）没有数据行，已跳过。 / "
                f"{raw.source_file} (layer {spec.name}) has no data rows and was skipped.")
        report.notes.append(note)
        log.warning(note)
        return None
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        found = privacy.mask_text(", ".join(c for c in raw.frame.columns if not c.startswith("__")))
        raise InputFileError(
            f"{raw.source_file}（图层 {spec.name}）缺少必需列 {missing}；现有列：{found}。"
            f"请重命名这些列，或在 gridgov.toml 的 [columns.{spec.name}] 中写明对应关系（如 \"楼栋编号\" = \"building_id\"）。",
            f"{raw.source_file} (layer {spec.name}) lacks required columns {missing}; found: {found}. "
            f"Rename them, or map them in [columns.{spec.name}] of gridgov.toml (e.g. \"楼栋编号\" = \"building_id\").",
        )
    lay = _Layer(spec, raw.source_file, frame, raw_rows, label)
    flags = _Flags(n)
    lab = lay.lab

    # Ids and codes: text, NFKC-normalised; keys present and unique.
    codes = [c for c in frame.columns if c in spec.key or c in ("street_code", "community_code", "district_code")
             or (c in contract and c.endswith("_id")) or c == "repeat_of"]
    for col in codes:
        frame[col] = _as_code(frame[col])
    for col in spec.key:
        z, e = lab(col)
        flags.mask(frame[col].isna(), f"缺少 {z}（编号为空）", f"missing {e} (empty id)")
    for col in (contract - set(spec.times) - set(spec.ints) - set(codes)) & set(frame.columns):
        if not pd.api.types.is_numeric_dtype(frame[col].dtype):
            frame[col] = _text(frame[col], fold=col not in spec.names)  # trimmed, empty = missing
    for col in set(spec.required) - set(spec.key) - set(spec.times):
        z, e = lab(col)
        flags.mask(frame[col].isna(), f"缺少必填项 {z}", f"missing required value {e}")
    if spec.key:
        keys = list(spec.key)
        key_ok = frame[keys].notna().all(axis=1).to_numpy()
        dup = (frame[keys].duplicated(keep="first").to_numpy() & key_ok)
        if dup.any():
            firsts = frame.loc[key_ok].drop_duplicates(keys)
            first_row = dict(zip(map(tuple, firsts[keys].to_numpy().tolist()), firsts["__row"].tolist()))
            rows = [first_row.get(tuple(k)) for k in frame.loc[dup, keys].to_numpy().tolist()]
            name = "+".join(lab(k)[1] for k in keys)
            name_zh = "+".join(lab(k)[0] for k in keys)
            flags.at(np.flatnonzero(dup), [f"{name_zh} 重复（与第 {r} 行相同）" for r in rows],
                     [f"duplicate {name} (same as row {r})" for r in rows])
    # Counts: numbers, finite, whole, not negative, not absurdly large.
    for col in spec.ints:
        if col not in frame.columns:
            continue
        z, e = lab(col)
        src = frame[col]
        num = pd.to_numeric(src if pd.api.types.is_numeric_dtype(src.dtype) else _text(src), errors="coerce")
        num = num.astype("float64")
        arr = num.to_numpy(dtype=float, na_value=np.nan)
        given = src.notna().to_numpy() & ~(src.astype("string").str.strip() == "").fillna(False).to_numpy(bool)
        flags.mask(given & np.isnan(arr), f"{z} 不是数字", f"{e} is not a number")
        flags.mask(np.isinf(arr), f"{z} 不是有限数值", f"{e} is not a finite number")
        with np.errstate(invalid="ignore"):
            big = np.isfinite(arr) & (np.abs(arr) > MAX_COUNT)
            flags.mask(big, f"{z} 数值过大（上限 {MAX_COUNT}）", f"{e} is too large (limit {MAX_COUNT})")
            flags.mask(arr < 0, f"{z} 为负数", f"{e} is negative")
            flags.mask(np.isfinite(arr) & (arr != np.round(arr)), f"{z} 不是整数", f"{e} is not a whole number")
            usable = np.isfinite(arr) & (np.abs(arr) <= MAX_COUNT)
        frame[col] = pd.array(np.where(usable, np.round(np.where(usable, arr, 0)), 0).astype("int64"),
                              dtype="Int64")
        frame.loc[~usable, col] = pd.NA
    if "severity" in frame.columns:
        sev = frame["severity"]
        z, e = lab("severity")
        flags.mask((sev.notna() & ~sev.between(1, 5)).to_numpy(bool), f"{z} 须在 1–5 之间", f"{e} must be 1–5")
    # Times: Chinese and Excel formats; not in the future of the run, not before 2000, in order.
    end_of_day = now.normalize() + pd.Timedelta(days=1)
    parsed: dict[str, pd.Series] = {}
    for col in spec.times:
        if col not in frame.columns:
            continue
        z, e = lab(col)
        src = frame[col]
        t = dates.parse_datetimes(src)
        tv = t.to_numpy()
        given = src.notna().to_numpy() & ~(src.astype("string").str.strip() == "").fillna(False).to_numpy(bool)
        unparsed = np.flatnonzero(given & np.isnat(tv))
        if len(unparsed):
            vals = [_short(v) for v in src.iloc[unparsed].tolist()]
            flags.at(unparsed, [f"时间 {z} 无法解析：{v!r}；可用格式：{dates.FORMATS_ZH}" for v in vals],
                     [f"time {e} cannot be parsed: {v!r}; accepted: {dates.FORMATS_EN}" for v in vals])
        if col in spec.required:
            flags.mask(~given, f"缺少时间 {z}", f"missing time {e}")
        with np.errstate(invalid="ignore"):
            future = ~np.isnat(tv) & (tv >= end_of_day.to_datetime64())
            early = ~np.isnat(tv) & (tv < dates.EARLIEST.to_datetime64())
        if future.any():
            pos = np.flatnonzero(future)
            vals = [str(v)[:19] for v in t.iloc[pos]]
            flags.at(pos, [f"{z} 在运行日期 {now.date()} 之后（{v}）" for v in vals],
                     [f"{e} is after the run date {now.date()} ({v})" for v in vals])
        flags.mask(early, f"{z} 早于 2000 年", f"{e} is before 2000")
        parsed[col] = t
        frame[col] = t
    if "occurred_at" in parsed:
        occ = parsed["occurred_at"].to_numpy()
        for col, t in parsed.items():
            if col == "occurred_at":
                continue
            z, e = lab(col)
            tv = t.to_numpy()
            before = ~np.isnat(tv) & ~np.isnat(occ) & (tv < occ)
            zo, eo = lab("occurred_at")
            flags.mask(before, f"{z} 早于发生时间 {zo}", f"{e} is before {eo}")
    # Accepted values.
    for col, values in spec.accepted.items():
        if col not in frame.columns:
            continue
        z, e = lab(col)
        s = _text(frame[col]).str.lower()
        frame[col] = s
        flags.mask((s.notna() & ~s.isin(values)).to_numpy(bool), f"{z} 取值不在允许范围 {list(values)}",
                   f"{e} is not one of {list(values)}")
    # Geometry.
    repaired = 0
    geoms = raw.geometry
    if spec.geom is not None:
        if raw.geom_errors:
            pos = np.fromiter(raw.geom_errors.keys(), dtype=np.int64, count=len(raw.geom_errors))
            flags.at(pos, [v[0] for v in raw.geom_errors.values()], [v[1] for v in raw.geom_errors.values()])
        present = ~pd.isna(geoms)
        flags.mask(~present, "缺少几何", "missing geometry")
        geoms = _to_wgs84(raw, spec, settings, present & flags.free)
        present = ~pd.isna(geoms)
        flags.mask(~present, "坐标超出经纬度范围", "coordinates outside lon/lat range")
        type_id = shapely.get_type_id(geoms)
        types = np.where(type_id >= 0, _TYPE_NAMES[np.clip(type_id, 0, 7)], None)
        wrong = present & ~np.isin(types, list(_GEOM_OK[spec.geom]))
        if wrong.any():
            pos = np.flatnonzero(wrong)
            flags.at(pos, [f"几何类型错误：应为{_GEOM_ZH[spec.geom]}，实为 {t}" for t in types[pos]],
                     [f"wrong geometry type: expected {spec.geom.replace('_', ' ')}, got {t}" for t in types[pos]])
        cand = present & ~wrong & flags.free
        invalid = np.zeros(n, dtype=bool)
        invalid[cand] = ~shapely.is_valid(geoms[cand])
        for i in np.flatnonzero(invalid):
            fixed = _repair(geoms[i], spec.geom)
            if fixed is None:
                flags.at([i], "几何无效且无法安全修复", "invalid geometry that cannot be repaired safely")
            else:
                geoms[i] = fixed
                repaired += 1
    bad = flags.bad
    rejects.add(spec.name, raw.source_file, raw_rows[bad], flags.zh[bad], flags.en[bad])
    counts.update(kept=int((~bad).sum()), rejected=int(bad.sum()), repaired=repaired)
    good = frame[~bad].drop(columns=[c for c in ("geometry",) if c in frame.columns])
    lay.raw = raw_rows[~bad].reset_index(drop=True)
    if spec.geom is None:
        lay.frame = good.reset_index(drop=True)
    else:
        lay.frame = gpd.GeoDataFrame(good.reset_index(drop=True), geometry=list(geoms[~bad]), crs="EPSG:4326")
    return lay


def _source_crs(raw: RawLayer, spec: LayerSpec, settings: dict) -> str:
    layer_cfg = (settings.get("layers") or {}).get(spec.name) or {}
    declared = chinacrs.normalize_crs(layer_cfg.get("crs") or settings.get("crs") or "EPSG:4326")
    if "crs" in layer_cfg or declared in ("GCJ-02", "BD-09") or raw.file_crs is None:
        return declared
    return chinacrs.normalize_crs(raw.file_crs)


def _to_wgs84(raw: RawLayer, spec: LayerSpec, settings: dict, valid: np.ndarray) -> np.ndarray:
    try:
        src = _source_crs(raw, spec, settings)
    except chinacrs.CRSError as exc:
        raise InputFileError(
            f"{raw.source_file}：坐标系无法识别（{exc.args[0] if exc.args else exc}）。请在 gridgov.toml 中设置 crs。",
            f"{raw.source_file}: unknown coordinate reference system; set crs in gridgov.toml.",
        ) from exc
    geoms = raw.geometry.copy()
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        return geoms
    series = gpd.GeoSeries(list(geoms[idx]), crs=None)
    if src not in ("GCJ-02", "BD-09"):
        series = series.set_crs(src, allow_override=True)
    try:
        out = chinacrs.to_wgs84(series, src)
    except Exception as exc:  # noqa: BLE001 - pyproj raises several types for a CRS it cannot use
        raise InputFileError(
            f"{raw.source_file}：无法从 {src} 转换到 WGS84（{exc}）。请在 gridgov.toml 中设置正确的 crs。",
            f"{raw.source_file}: cannot transform from {src} to WGS84 ({exc}); set the right crs in gridgov.toml.",
        ) from exc
    arr = np.asarray(out.values, dtype=object)
    b = shapely.bounds(arr)
    with np.errstate(invalid="ignore"):
        bad = ~((np.abs(b[:, [0, 2]]) <= 180).all(axis=1) & (np.abs(b[:, [1, 3]]) <= 90).all(axis=1))
    if bad.mean() > 0.5:
        raise InputFileError(
            f"{raw.source_file}：坐标超出经纬度范围（按 {src} 解读）；数据可能是投影坐标。请只为这个图层在 gridgov.toml 中"
            f"写明坐标系：[layers.{spec.name}] crs = \"EPSG:4546\"（换成数据的实际坐标系）。",
            f"{raw.source_file}: coordinates are outside lon/lat range when read as {src}; the data look "
            f"projected. Declare the CRS for this layer only in gridgov.toml: [layers.{spec.name}] crs = "
            "\"EPSG:4546\" (use the data's actual CRS).",
        )
    arr[bad] = None
    geoms[idx] = arr
    return geoms


def _repair(geom, kind: str):
    """make_valid, keeping only parts of the expected dimension; None if nothing of it is left."""
    fixed = shapely.make_valid(geom)
    if kind in ("polygon", "point_or_polygon") and geom.geom_type in ("Polygon", "MultiPolygon"):
        parts = [g for g in getattr(fixed, "geoms", [fixed]) if g.geom_type in ("Polygon", "MultiPolygon")]
        if not parts:
            return None
        out = shapely.union_all(parts)
        return out if not out.is_empty else None
    if kind == "line":
        parts = [g for g in getattr(fixed, "geoms", [fixed]) if g.geom_type in ("LineString", "MultiLineString")]
        return shapely.union_all(parts) if parts else None
    return fixed if fixed.is_valid and not fixed.is_empty else None


def _metric_crs(settings: dict, streets: gpd.GeoDataFrame) -> str:
    value = settings.get("metric_crs")
    if not value:
        return chinacrs.metric_crs_for(streets)
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        crs = CRS.from_user_input(value)
    except (CRSError, TypeError, ValueError) as exc:
        raise SettingsError(
            f"gridgov.toml：metric_crs = {value!r} 无法识别；请使用米制投影坐标系，如 \"EPSG:4546\"，或删除该项自动选择。",
            f"gridgov.toml: metric_crs = {value!r} is not a known CRS; use a projected CRS in metres such as "
            "\"EPSG:4546\", or remove the key to choose one automatically.",
        ) from exc
    unit = crs.axis_info[0].unit_name if crs.axis_info else ""
    if not crs.is_projected or unit not in ("metre", "meter"):
        raise SettingsError(
            f"gridgov.toml：metric_crs = {value!r} 不是以米为单位的投影坐标系；请使用如 \"EPSG:4546\"，或删除该项。",
            f"gridgov.toml: metric_crs = {value!r} is not a projected CRS in metres; use e.g. \"EPSG:4546\", "
            "or remove the key.",
        )
    return value


# -- the whole project --------------------------------------------------------------------------
def ingest(project_dir: str | Path, con: duckdb.DuckDBPyConnection, settings: dict, *,
           progress: Callable[[str], None] | None = None, now: pd.Timestamp | None = None) -> IngestReport:
    """Read, validate and write every layer of ``project_dir`` into ``con``.

    Parameters
    ----------
    now
        The run's "now" for the future-date check (default :func:`pipelines.dates.now`).

    Raises
    ------
    InputFileError
        A required layer is missing, or a file cannot be used at all.
    MostlyRejectedError
        More than ``[ingest] max_reject_share`` of a layer's rows were rejected.
    """
    project_dir = Path(project_dir)
    say = progress or (lambda m: None)
    if not project_dir.is_dir():
        raise InputFileError(f"项目文件夹 {project_dir} 不存在。", f"Project folder {project_dir} does not exist.")
    now = dates.now() if now is None else pd.Timestamp(now)
    cfg = _ingest_settings(settings)
    salt = privacy.salt_for(project_dir)
    rejects = _Rejects()
    report = IngestReport()
    layers: dict[str, _Layer] = {}
    streamed: dict[str, ingest_parquet.Source] = {}
    apply_compute_settings(con, settings, project_dir)
    for name, spec in LAYERS.items():
        layer_cfg = (settings.get("layers") or {}).get(name) or {}
        path = find_layer_file(project_dir, name, layer_cfg.get("file"))
        if ingest_parquet.wants_stream(path, name, settings):
            # A Parquet folder or a big Parquet file: validated and located inside DuckDB, after the
            # communities are written (pipelines/ingest_parquet.py).
            streamed[name] = ingest_parquet.source_for(path, project_dir)
            report.files[name] = streamed[name].label
            continue
        if path is None:
            if spec.required_layer:
                raise InputFileError(
                    f"缺少必需图层 {name}：在 {project_dir} 中放入 {name}.geojson（或 .gpkg/.shp/.parquet/.csv/.xlsx）。",
                    f"Required layer {name} is missing: put {name}.geojson (or .gpkg/.shp/.parquet/.csv/.xlsx) "
                    f"in {project_dir}.",
                )
            continue
        say(f"读取 / reading {path.name}")
        raw = read_layer(name, path, encoding=layer_cfg.get("encoding") or settings.get("encoding", "auto"))
        report.files[name] = path.name
        lay = _validate(raw, spec, settings, salt, rejects, report, now)
        if lay is not None:
            layers[name] = lay
            c = report.layers[name]
            say(f"{name}: {c['kept']} 行保留 / kept, {c['rejected']} 拒收 / rejected")
    for name in ("streets", "communities"):
        if not len(layers[name].frame):
            _stop_mostly_rejected(report, rejects, name, force=True)
    metric = _metric_crs(settings, layers["streets"].frame)
    tol = float(cfg["location_tolerance_m"])
    comms = _write_layers(con, layers, report, rejects, metric, tol, say)
    for name, src in streamed.items():
        counts = ingest_parquet.ingest_incidents(con, src, LAYERS[name], settings, salt, now, comms, metric, tol,
                                                 _declared_crs(settings, name), say)
        if counts is None:
            note = (f"{src.label}（图层 {name}）没有数据行，已跳过。 / "
                    f"{src.label} (layer {name}) has no data rows and was skipped.")
            report.notes.append(note)
            log.warning(note)
            continue
        report.layers[name] = counts
        say(f"{name}: {counts['kept']} 行保留 / kept, {counts['rejected']} 拒收 / rejected")
    rej = rejects.frame()
    for name, counts in report.layers.items():
        if name in streamed:
            continue
        counts["rejected"] = int((rej["layer"] == name).sum())
        counts["kept"] = counts["read"] - counts["rejected"]
    limit = float(cfg["max_reject_share"])
    for name in report.layers:
        if report.layers[name]["rejected"] and report.reject_share(name) > limit:
            _stop_mostly_rejected(report, rejects, name, limit=limit, frame=rej,
                                  top=ingest_parquet.top_reason(con) if name in streamed else None)
    con.register("__rejects", rej)
    try:
        con.execute("CREATE OR REPLACE TABLE rejects AS SELECT CAST(layer AS VARCHAR) AS layer, "
                    "CAST(source_file AS VARCHAR) AS source_file, CAST(source_row AS BIGINT) AS source_row, "
                    "CAST(reason AS VARCHAR) AS reason, CAST(raw AS JSON) AS raw FROM __rejects")
    finally:
        con.unregister("__rejects")
    for name, src in streamed.items():
        if name in report.layers:
            ingest_parquet.append_rejects(con, src, name)
    return report


def _declared_crs(settings: dict, layer: str) -> str:
    """The CRS of a streamed layer's coordinates (a Parquet table declares none): the layer's or the
    project's ``crs`` setting."""
    layer_cfg = (settings.get("layers") or {}).get(layer) or {}
    try:
        return chinacrs.normalize_crs(layer_cfg.get("crs") or settings.get("crs") or "EPSG:4326")
    except chinacrs.CRSError as exc:
        raise InputFileError(
            f"图层 {layer}：坐标系无法识别（{exc.args[0] if exc.args else exc}）。请在 gridgov.toml 中设置 crs。",
            f"Layer {layer}: unknown coordinate reference system; set crs in gridgov.toml.",
        ) from exc


def _stop_mostly_rejected(report: IngestReport, rejects: _Rejects, layer: str, *, limit: float | None = None,
                          force: bool = False, frame: pd.DataFrame | None = None,
                          top: tuple[str, int] | None = None) -> None:
    if top is not None:  # a streamed layer: its commonest reason was counted in DuckDB
        reason = f"{top[0]}（{top[1]} 行 / rows）"
    else:
        rej = rejects.frame() if frame is None else frame
        counts = rej.loc[rej["layer"] == layer, "reason"].value_counts()
        reason = f"{counts.index[0]}（{int(counts.iloc[0])} 行 / rows）" if len(counts) else "—"
    c = report.layers[layer]
    share = c["rejected"] / c["read"] if c["read"] else 1.0
    f = report.files.get(layer, layer)
    if force:
        raise MostlyRejectedError(
            f"{f}：图层 {layer} 的 {c['read']} 行全部被拒收，无法继续；最常见原因：{reason}。请修正后重新运行。",
            f"{f}: every one of the {c['read']} rows of layer {layer} was rejected, so the run cannot go on; "
            f"commonest reason: {reason}. Fix the file and run again.",
        )
    raise MostlyRejectedError(
        f"{f}：图层 {layer} 有 {c['rejected']}/{c['read']} 行（{share:.0%}）被拒收，超过上限 {limit:.0%}；"
        f"为保护现有数据，本次运行已停止，原数据库未改动。最常见原因：{reason}。请修正文件，或在 gridgov.toml 的 "
        f"[ingest] 中提高 max_reject_share（如 1.0）。",
        f"{f}: {c['rejected']} of {c['read']} rows ({share:.0%}) of layer {layer} were rejected, above the "
        f"limit {limit:.0%}; the run stopped and the previous database is unchanged. Commonest reason: {reason}. "
        f"Fix the file, or raise [ingest] max_reject_share in gridgov.toml (e.g. 1.0).",
    )


def _reject(rejects: _Rejects, lay: _Layer, mask: np.ndarray, zh, en) -> None:
    """Move the rows of ``mask`` from the layer to rejects (zh/en: one string or one per masked row)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return
    rejects.add(lay.spec.name, lay.source_file, lay.raw[mask], zh, en)
    lay.frame = lay.frame[~mask].reset_index(drop=True)
    lay.raw = lay.raw[~mask].reset_index(drop=True)


def _first_hit(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """For pairs (left[i], right[i]) sorted any way: the smallest ``right`` per ``left``, -1 if none."""
    out = np.full(n, -1, dtype=np.int64)
    if len(left):
        order = np.lexsort((right, left))
        lo, hi = left[order], right[order]
        first = np.ones(len(lo), dtype=bool)
        first[1:] = lo[1:] != lo[:-1]
        out[lo[first]] = hi[first]
    return out


def _locate(points_m: np.ndarray, polys_m: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Index of the polygon containing each point (lowest index on ties), else of the nearest one
    within ``tol`` metres; -1 if none. Also whether the hit is strict containment."""
    tree = shapely.STRtree(polys_m)
    n = len(points_m)
    pi, ci = tree.query(points_m, predicate="intersects")
    inside = _first_hit(n, pi, ci)
    near = inside.copy()
    todo = np.flatnonzero(inside < 0)
    if len(todo) and tol > 0:
        qi, qj = tree.query(points_m[todo], predicate="dwithin", distance=tol)
        hit = _first_hit(len(todo), qi, qj)
        near[todo] = hit
    return near, inside >= 0


def _points(geoms: np.ndarray) -> np.ndarray:
    pts = np.asarray(geoms, dtype=object).copy()
    poly = shapely.get_type_id(pts) != 0
    if poly.any():
        pts[poly] = shapely.point_on_surface(pts[poly])
    return pts


def _write_layers(con, layers: dict[str, _Layer], report: IngestReport, rejects: _Rejects, metric: str,
                  tol: float, say) -> pd.DataFrame:
    """Write every validated layer; return the communities (code, street, metric WKB) in their order,
    for the streamed incidents."""
    streets = layers["streets"]
    sf = streets.frame
    sf["area_km2"] = np.round(sf.to_crs(metric).geometry.area.to_numpy() / 1e6, 6)
    if "function_type" not in sf:
        sf["function_type"] = None
    streets_m = sf.to_crs(metric).geometry.to_numpy()
    street_codes = sf["street_code"].to_numpy(dtype=object)

    comms = layers["communities"]
    cf = comms.frame
    unknown = ~cf["street_code"].isin(set(street_codes)).to_numpy()
    z, e = comms.lab("street_code")
    _reject(rejects, comms, unknown, f"{z} 在街道图层中不存在", f"{e} not found in the streets layer")
    cf = comms.frame
    # A community must lie in the street it names (its inner point within the tolerance).
    if len(cf):
        pts = shapely.point_on_surface(cf.to_crs(metric).geometry.to_numpy())
        idx = {c: i for i, c in enumerate(street_codes)}
        own = streets_m[[idx[c] for c in cf["street_code"]]]
        dist = shapely.distance(pts, own)
        wrong = dist > tol
        if wrong.any():
            at, _ = _locate(pts[wrong], streets_m, tol)
            where = [street_codes[i] if i >= 0 else "—" for i in at]
            vals = cf.loc[wrong, "street_code"].tolist()
            _reject(rejects, comms, wrong,
                    [f"{z} {v} 与位置不符：社区位于街道 {w} 内（距所填街道 {d:.0f} 米）；请更正编码或边界"
                     for v, w, d in zip(vals, where, dist[wrong])],
                    [f"{e} {v} contradicts the geometry: the community lies in street {w} ({d:.0f} m from the "
                     f"street it names); correct the code or the boundary" for v, w, d in zip(vals, where, dist[wrong])])
    cf = comms.frame
    if "kind" not in cf:
        cf["kind"] = None
    cf["kind"] = cf["kind"].fillna(pd.Series(np.where(cf["community_name"].astype(str).str.contains("村"),
                                                      "rural", "urban"), index=cf.index))
    cf["area_km2"] = np.round(cf.to_crs(metric).geometry.area.to_numpy() / 1e6, 6)
    order = {"streets": ["street_code", "street_name", "district_code", "district_name", "function_type", "area_km2"],
             "communities": ["community_code", "community_name", "street_code", "kind", "area_km2"]}
    for name, df in (("streets", sf), ("communities", cf)):
        cols = order[name] + [c for c in df.columns if c not in order[name] and c not in _RESERVED
                              and not c.startswith("__")]
        write_gdf(con, name, df[cols + ["geometry"]])
    comm_codes = cf["community_code"].to_numpy(dtype=object)
    comm_street = dict(zip(cf["community_code"], cf["street_code"]))
    comm_idx = {c: i for i, c in enumerate(comm_codes)}
    comms_m = cf.to_crs(metric).geometry.to_numpy()
    comms_out = pd.DataFrame({"code": comm_codes, "street": cf["street_code"].to_numpy(dtype=object),
                              "wkb": shapely.to_wkb(comms_m)})

    for name in LOCATED:
        if name not in layers:
            continue
        lay = layers[name]
        df = lay.frame
        if "community_code" not in df:
            df["community_code"] = pd.Series(None, index=df.index, dtype="str")
        zc, ec = lay.lab("community_code")
        unknown = (df["community_code"].notna() & ~df["community_code"].isin(comm_idx)).to_numpy()
        _reject(rejects, lay, unknown, f"{zc} 在社区图层中不存在", f"{ec} not found in the communities layer")
        df = lay.frame
        if len(df):
            pts_m = gpd.GeoSeries(_points(df.geometry.to_numpy()), crs="EPSG:4326").to_crs(metric).to_numpy()
            at, strictly = _locate(pts_m, comms_m, tol)
            declared = df["community_code"].to_numpy(dtype=object)
            has = pd.notna(declared)
            decl_i = np.array([comm_idx[c] if h else -1 for c, h in zip(declared, has)], dtype=np.int64)
            # A declared community is kept when the location lies in it or within the tolerance of it.
            agree = has & (decl_i == at)
            check = np.flatnonzero(has & ~agree)
            if len(check):
                d = shapely.distance(pts_m[check], comms_m[decl_i[check]])
                agree[check[d <= tol]] = True
                at[check[d <= tol]] = decl_i[check[d <= tol]]
            outside = at < 0
            contradict = has & ~agree & ~outside
            if name == "buildings" and outside.any():
                in_street, _ = _locate(pts_m[outside], streets_m, tol)
                no_street = np.zeros(len(df), dtype=bool)
                no_street[np.flatnonzero(outside)[in_street < 0]] = True
            else:
                no_street = np.zeros(len(df), dtype=bool)
            reason_zh = np.full(len(df), None, dtype=object)
            reason_en = np.full(len(df), None, dtype=object)
            reason_zh[outside] = "位置不在任何社区内（也不在任何社区边界 %.0f 米内）" % tol
            reason_en[outside] = "location is outside every community (and more than %.0f m from any)" % tol
            reason_zh[no_street] = "楼栋不在任何街道内"
            reason_en[no_street] = "building lies in no street"
            if contradict.any():
                pos = np.flatnonzero(contradict)
                reason_zh[pos] = [f"{zc} {declared[i]} 与位置不符：位置在社区 {comm_codes[at[i]]} 内；"
                                  f"请更正编码或坐标，或留空由位置判定" for i in pos]
                reason_en[pos] = [f"{ec} {declared[i]} contradicts the location, which lies in community "
                                  f"{comm_codes[at[i]]}; correct the code or the coordinates, or leave it empty "
                                  f"to assign by location" for i in pos]
            df["community_code"] = [comm_codes[i] if i >= 0 else None for i in at]
            derived = df["community_code"].map(comm_street)
            if "street_code" in df.columns:
                zs, es = lay.lab("street_code")
                user = df["street_code"]
                clash = (user.notna() & derived.notna() & (user != derived)).to_numpy(bool) & pd.isna(reason_zh)
                if clash.any():
                    pos = np.flatnonzero(clash)
                    reason_zh[pos] = [f"{zs} {user.iloc[i]} 与位置不符：位置所在社区 {df['community_code'].iloc[i]} "
                                      f"属于街道 {derived.iloc[i]}；请更正或删除该列" for i in pos]
                    reason_en[pos] = [f"{es} {user.iloc[i]} contradicts the location: its community "
                                      f"{df['community_code'].iloc[i]} belongs to street {derived.iloc[i]}; "
                                      f"correct the column or leave it out" for i in pos]
            df["street_code"] = derived
            lay.frame = df
            bad = pd.notna(reason_zh)
            _reject(rejects, lay, bad, reason_zh[bad], reason_en[bad])
        df = lay.frame
        spec = lay.spec
        contract = [c for c in spec.required + spec.optional if c in df.columns and c != "community_code"]
        extra = [c for c in df.columns if c not in contract and c not in ("community_code", "street_code")
                 and c not in _RESERVED and not c.startswith("__")]
        tail = (["reporter_key"] if "reporter_key" in df.columns else []) + ["community_code", "street_code"]
        out = df[contract + extra + tail + ["geometry"]]
        write_gdf(con, name, out)
        say(f"{name}: {len(out)} 行写入 / rows written")
    known_streets = set(street_codes)
    if "staff" in layers:
        lay = layers["staff"]
        df = lay.frame
        z, e = lay.lab("street_code")
        _reject(rejects, lay, ~df["street_code"].isin(known_streets).to_numpy(),
                f"{z} 在街道图层中不存在", f"{e} not found in the streets layer")
        df = lay.frame
        if "community_code" in df:
            zc, ec = lay.lab("community_code")
            cc = df["community_code"]
            _reject(rejects, lay, (cc.notna() & ~cc.isin(comm_idx)).to_numpy(),
                    f"{zc} 在社区图层中不存在", f"{ec} not found in the communities layer")
            df = lay.frame
            cc = df["community_code"]
            other = cc.map(comm_street)
            clash = (cc.notna() & (other != df["street_code"])).to_numpy(bool)
            if clash.any():
                pos = np.flatnonzero(clash)
                _reject(rejects, lay, clash,
                        [f"{zc} {cc.iloc[i]} 属于街道 {other.iloc[i]}，与 {z} {df['street_code'].iloc[i]} 不符"
                         for i in pos],
                        [f"{ec} {cc.iloc[i]} belongs to street {other.iloc[i]}, not to {e} "
                         f"{df['street_code'].iloc[i]}" for i in pos])
        df = lay.frame
        write_gdf(con, "staff", df.drop(columns=[c for c in df.columns if c.startswith("__")]))
    for name in ("barriers", "department_grids"):
        if name in layers:
            df = layers[name].frame
            write_gdf(con, name, df.drop(columns=[c for c in df.columns if c.startswith("__")]))
    return comms_out
