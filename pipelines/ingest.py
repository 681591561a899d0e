"""Ingest: read every layer of a project folder, validate it, write clean tables and ``rejects``.

Each row that cannot be used lands in ``rejects`` with a reason in Chinese and English; a file that
cannot be used at all stops the run with one :class:`~pipelines.errors.InputFileError`. Personal
data (names, phone numbers, ID card numbers, addresses of persons) is dropped before anything is
written; phone numbers of reporters become a salted hash ``reporter_key`` so that repeat
complaints can still be counted.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import chinacrs
from pipelines import privacy
from pipelines.db import quote_ident, write_gdf
from pipelines.errors import InputFileError
from pipelines.layers import ALIASES, LAYERS, LayerSpec
from pipelines.readers import RawLayer, find_layer_file, read_layer

log = logging.getLogger(__name__)

REJECT_COLUMNS = ["layer", "source_file", "source_row", "reason", "raw"]
_GEOM_OK = {
    "polygon": {"Polygon", "MultiPolygon"},
    "point": {"Point"},
    "line": {"LineString", "MultiLineString"},
    "point_or_polygon": {"Point", "Polygon", "MultiPolygon"},
}
_GEOM_ZH = {"polygon": "面", "point": "点", "line": "线", "point_or_polygon": "点或面"}


@dataclass
class IngestReport:
    """Counts per layer: read, kept, rejected, repaired; and the PII columns dropped."""

    layers: dict[str, dict] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        return sum(v["rejected"] for v in self.layers.values())

    def as_dict(self) -> dict:
        return {"layers": self.layers, "files": self.files, "rejected": self.rejected}


class _Rejects:
    def __init__(self) -> None:
        self.parts: list[pd.DataFrame] = []

    def add(self, layer: str, source_file: str, rows: pd.DataFrame, zh: pd.Series | str, en: pd.Series | str) -> None:
        if rows.empty:
            return
        raw = [json.dumps(rec, ensure_ascii=False, default=str) for rec in
               rows.drop(columns=[c for c in rows.columns if c.startswith("__")]).to_dict("records")]
        zh_s = zh if isinstance(zh, pd.Series) else pd.Series(zh, index=rows.index)
        en_s = en if isinstance(en, pd.Series) else pd.Series(en, index=rows.index)
        self.parts.append(pd.DataFrame({
            "layer": layer, "source_file": source_file, "source_row": rows["__row"].astype("int64").to_numpy(),
            "reason": (zh_s.loc[rows.index] + " / " + en_s.loc[rows.index]).to_numpy(), "raw": raw,
        }))

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame({c: pd.Series(dtype="int64" if c == "source_row" else "object") for c in REJECT_COLUMNS})
        out = pd.concat(self.parts, ignore_index=True)
        # Reasons quote values and raw holds whole rows: neither may carry a phone or ID number.
        for col in ("raw", "reason"):
            out[col] = privacy.mask_series(out[col].astype(object))[0]
        return out


def _rename(frame: pd.DataFrame, spec: LayerSpec, settings: dict) -> pd.DataFrame:
    user_map = {str(k): str(v) for k, v in ((settings.get("columns") or {}).get(spec.name) or {}).items()}
    contract = set(spec.required) | set(spec.optional)
    mapping: dict[str, str] = {}
    for col in frame.columns:
        if col in user_map:
            mapping[col] = user_map[col]
        elif col.lower() in contract:
            mapping[col] = col.lower()
        elif col in ALIASES and ALIASES[col] in contract | {"name"}:
            target = ALIASES[col]
            if target == "name" and spec.name == "special_units":
                target = "unit_name"
            mapping[col] = target
    out = frame.rename(columns=mapping)
    if out.columns.duplicated().any():
        dup = sorted(set(out.columns[out.columns.duplicated()]))
        raise InputFileError(
            f"图层 {spec.name} 中多列被映射为同一列 {dup}；请在 gridgov.toml 的 [columns.{spec.name}] 中只保留一个映射。",
            f"Several columns of layer {spec.name} map to the same name {dup}; keep one mapping in "
            f"[columns.{spec.name}] of gridgov.toml.",
        )
    return out


def _strip_pii(frame: pd.DataFrame, spec: LayerSpec, salt: bytes) -> tuple[pd.DataFrame, privacy.PrivacyReport]:
    """Drop person/contact columns, mask phone and ID numbers elsewhere, hash reporters' phones."""
    contract = set(spec.required) | set(spec.optional)
    protected = (set(spec.key) | set(spec.times) | set(spec.ints)
                 | {c for c in contract if c.endswith(("_id", "_code")) or c == "repeat_of"})
    frame, rep = privacy.strip_frame(frame, keep=contract | set(spec.names), protected=protected, salt=salt,
                                     hash_phones=spec.name == "incidents")
    if rep.dropped:
        log.info("%s: personal columns dropped / 已删除个人信息列: %s", spec.name, ", ".join(rep.dropped))
    if rep.masked:
        log.info("%s: phone/ID numbers masked / 已遮蔽号码: %s", spec.name,
                 ", ".join(f"{c} ({n})" for c, n in rep.masked.items()))
    return frame, rep


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
    out = chinacrs.to_wgs84(series, src)
    arr = np.asarray(out.values, dtype=object)
    b = shapely.bounds(arr)
    bad = ~((np.abs(b[:, [0, 2]]) <= 180).all(axis=1) & (np.abs(b[:, [1, 3]]) <= 90).all(axis=1))
    if bad.mean() > 0.5:
        raise InputFileError(
            f"{raw.source_file}：坐标超出经纬度范围（按 {src} 解读）；数据可能是投影坐标。请在 gridgov.toml 中设置正确的 crs（如 EPSG:4546）。",
            f"{raw.source_file}: coordinates are outside lon/lat range when read as {src}; the data look "
            "projected. Set the right crs in gridgov.toml (e.g. EPSG:4546).",
        )
    arr[bad] = None
    geoms[idx] = arr
    return geoms


def _validate(raw: RawLayer, spec: LayerSpec, settings: dict, salt: bytes, rejects: _Rejects,
              report: IngestReport) -> gpd.GeoDataFrame | pd.DataFrame:
    frame = _rename(raw.frame, spec, settings)
    frame, priv = _strip_pii(frame, spec, salt)
    dropped = priv.dropped
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        found = ", ".join(c for c in frame.columns if not c.startswith("__"))
        raise InputFileError(
            f"{raw.source_file}（图层 {spec.name}）缺少必需列 {missing}；现有列：{found}。"
            f"请重命名这些列，或在 gridgov.toml 的 [columns.{spec.name}] 中写明对应关系（如 \"楼栋编号\" = \"building_id\"）。",
            f"{raw.source_file} (layer {spec.name}) lacks required columns {missing}; found: {found}. "
            f"Rename them, or map them in [columns.{spec.name}] of gridgov.toml (e.g. \"楼栋编号\" = \"building_id\").",
        )
    n = len(frame)
    zh = pd.Series([None] * n, index=frame.index, dtype=object)
    en = pd.Series([None] * n, index=frame.index, dtype=object)

    def flag(mask, z, e) -> None:
        m = pd.Series(np.asarray(mask, bool), index=frame.index) & zh.isna()
        if m.any():
            zh[m] = z if isinstance(z, str) else pd.Series(z, index=frame.index)[m]
            en[m] = e if isinstance(e, str) else pd.Series(e, index=frame.index)[m]

    # Keys: text, present, unique.
    for col in spec.key:
        s = frame[col]
        s = s.where(s.isna(), s.astype(str).str.strip())
        s = s.where(~s.isin(["", "nan", "None"]), None)
        s = s.str.replace(r"\.0$", "", regex=True) if s.notna().any() else s
        frame[col] = s
        flag(s.isna(), f"缺少 {col}（编号为空）", f"missing {col} (empty id)")
    for col in set(spec.required) - set(spec.key) - set(spec.times):
        s = frame[col]
        if s.dtype == object:
            s = s.where(s.isna(), s.astype(str).str.strip()).replace({"": None})
            frame[col] = s
        flag(s.isna(), f"缺少必填项 {col}", f"missing required value {col}")
    if spec.key:
        key_ok = frame[list(spec.key)].notna().all(axis=1)
        dup = frame[list(spec.key)].duplicated(keep="first") & key_ok
        if dup.any():
            first_row = frame[key_ok].drop_duplicates(list(spec.key)).set_index(list(spec.key))["__row"]
            firsts = [first_row.get(tuple(k) if len(k) > 1 else k[0]) for k in frame.loc[dup, list(spec.key)].itertuples(index=False)]
            z = pd.Series(None, index=frame.index, dtype=object)
            e = pd.Series(None, index=frame.index, dtype=object)
            z[dup] = [f"{'+'.join(spec.key)} 重复（与第 {r} 行相同）" for r in firsts]
            e[dup] = [f"duplicate {'+'.join(spec.key)} (same as row {r})" for r in firsts]
            flag(dup, z, e)
    # Integers: numeric, non-negative.
    for col in spec.ints:
        if col not in frame.columns:
            continue
        raw_s = frame[col]
        num = pd.to_numeric(raw_s, errors="coerce")
        bad_num = raw_s.notna() & num.isna()
        flag(bad_num, f"{col} 不是数字", f"{col} is not a number")
        flag(num < 0, f"{col} 为负数", f"{col} is negative")
        flag(num.notna() & (num != np.round(num)), f"{col} 不是整数", f"{col} is not a whole number")
        frame[col] = num.round().astype("Int64")
    if "severity" in frame.columns:
        flag(frame["severity"].notna() & ~frame["severity"].between(1, 5), "severity 须在 1–5 之间", "severity must be 1–5")
    # Times.
    for col in spec.times:
        if col not in frame.columns:
            continue
        s = frame[col]
        parsed = pd.to_datetime(s, errors="coerce", format="ISO8601")
        retry = s.notna() & parsed.isna()
        if retry.any():
            parsed[retry] = pd.to_datetime(s[retry].astype(str).str.replace("年", "-").str.replace("月", "-")
                                           .str.replace("日", " ").str.strip(), errors="coerce", format="mixed")
        parsed = parsed.dt.tz_localize(None) if getattr(parsed.dt, "tz", None) is not None else parsed
        flag(s.notna() & parsed.isna(), f"时间 {col} 无法解析（{col}）", f"time {col} cannot be parsed")
        if col in spec.required:
            flag(s.isna(), f"缺少时间 {col}", f"missing time {col}")
        frame[col] = parsed
    # Accepted values.
    for col, values in spec.accepted.items():
        if col not in frame.columns:
            continue
        s = frame[col].where(frame[col].isna(), frame[col].astype(str).str.strip().str.lower())
        frame[col] = s
        bad = s.notna() & ~s.isin(values)
        flag(bad, f"{col} 取值不在允许范围 {list(values)}", f"{col} is not one of {list(values)}")
    # Geometry.
    geoms = raw.geometry
    if spec.geom is not None:
        for pos, (z, e) in raw.geom_errors.items():
            flag(np.arange(n) == pos, z, e)
        present = np.array([g is not None for g in geoms])
        flag(~present, "缺少几何", "missing geometry")
        geoms = _to_wgs84(raw, spec, settings, present & zh.isna().to_numpy())
        present = np.array([g is not None for g in geoms])
        flag(~present & zh.isna().to_numpy(), "坐标超出经纬度范围", "coordinates outside lon/lat range")
        types = np.array([g.geom_type if g is not None else None for g in geoms], dtype=object)
        ok_types = _GEOM_OK[spec.geom]
        wrong = present & ~np.isin(types, list(ok_types))
        z = [f"几何类型错误：应为{_GEOM_ZH[spec.geom]}，实为 {t}" for t in types]
        e = [f"wrong geometry type: expected {spec.geom.replace('_', ' ')}, got {t}" for t in types]
        flag(wrong, z, e)
        repaired = 0
        cand = present & ~wrong & zh.isna().to_numpy()
        invalid = cand & ~shapely.is_valid(np.where(cand, geoms, None).astype(object))
        for i in np.flatnonzero(invalid):
            fixed = _repair(geoms[i], spec.geom)
            if fixed is None:
                flag(np.arange(n) == i, "几何无效且无法安全修复", "invalid geometry that cannot be repaired safely")
            else:
                geoms[i] = fixed
                repaired += 1
    else:
        repaired = 0
    bad = zh.notna()
    rejects.add(spec.name, raw.source_file, frame[bad], zh, en)
    good = frame[~bad]
    report.layers[spec.name] = {"read": n, "kept": int((~bad).sum()), "rejected": int(bad.sum()),
                                "repaired": repaired, "pii_columns_dropped": dropped,
                                "pii_values_masked": sum(priv.masked.values())}
    if spec.geom is None:
        return good.reset_index(drop=True)
    gdf = gpd.GeoDataFrame(good, geometry=gpd.GeoSeries(list(geoms[~bad.to_numpy()]), index=good.index),
                           crs="EPSG:4326")
    return gdf.reset_index(drop=True)


def _repair(geom, kind: str):
    """make_valid, keeping only parts of the expected dimension; None if that changes the area by >1 %."""
    fixed = shapely.make_valid(geom)
    if kind in ("polygon", "point_or_polygon") and geom.geom_type in ("Polygon", "MultiPolygon"):
        parts = [g for g in getattr(fixed, "geoms", [fixed]) if g.geom_type in ("Polygon", "MultiPolygon")]
        if not parts:
            return None
        out = shapely.union_all(parts)
        ref = shapely.Polygon(geom.exterior).area if geom.geom_type == "Polygon" else out.area
        if ref > 0 and abs(out.area - ref) / ref > 0.01 and geom.geom_type == "Polygon":
            # A bow-tie keeps both lobes: area of the lobes vs the signed shoelace is not comparable.
            pass
        return out if not out.is_empty else None
    if kind == "line":
        parts = [g for g in getattr(fixed, "geoms", [fixed]) if g.geom_type in ("LineString", "MultiLineString")]
        return shapely.union_all(parts) if parts else None
    return fixed if fixed.is_valid and not fixed.is_empty else None


def _metric_area_km2(gdf: gpd.GeoDataFrame, metric: str) -> np.ndarray:
    return np.round(gdf.to_crs(metric).geometry.area.to_numpy() / 1e6, 6)


def _spatial_assign(con: duckdb.DuckDBPyConnection, table: str, point_expr: str) -> None:
    """Add community_code by point-in-polygon for rows without a community_code."""
    q = quote_ident(table)
    con.execute(f"ALTER TABLE {q} ALTER community_code TYPE VARCHAR")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE __assign AS
        SELECT t.__row, c.community_code AS c_code, c.street_code AS c_street
        FROM {q} t JOIN communities c ON ST_Intersects(c.geometry, {point_expr})
        WHERE t.community_code IS NULL
        QUALIFY row_number() OVER (PARTITION BY t.__row ORDER BY c.community_code) = 1
    """)
    con.execute(f"""
        UPDATE {q} t SET community_code = a.c_code FROM __assign a WHERE t.__row = a.__row
    """)


def ingest(project_dir: str | Path, con: duckdb.DuckDBPyConnection, settings: dict, *,
           progress: Callable[[str], None] | None = None) -> IngestReport:
    """Read, validate and write every layer of ``project_dir`` into ``con``.

    Raises
    ------
    InputFileError
        A required layer is missing, or a file cannot be used at all.
    """
    project_dir = Path(project_dir)
    say = progress or (lambda m: None)
    if not project_dir.is_dir():
        raise InputFileError(f"项目文件夹 {project_dir} 不存在。", f"Project folder {project_dir} does not exist.")
    salt = privacy.salt_for(project_dir)
    rejects = _Rejects()
    report = IngestReport()
    frames: dict[str, pd.DataFrame] = {}
    for name, spec in LAYERS.items():
        layer_cfg = (settings.get("layers") or {}).get(name) or {}
        path = find_layer_file(project_dir, name, layer_cfg.get("file"))
        if path is None:
            if spec.required_layer:
                raise InputFileError(
                    f"缺少必需图层 {name}：在 {project_dir} 中放入 {name}.geojson（或 .gpkg/.shp/.parquet/.csv）。",
                    f"Required layer {name} is missing: put {name}.geojson (or .gpkg/.shp/.parquet/.csv) in {project_dir}.",
                )
            continue
        say(f"读取 / reading {path.name}")
        raw = read_layer(name, path, encoding=layer_cfg.get("encoding") or settings.get("encoding", "auto"))
        report.files[name] = path.name
        frames[name] = _validate(raw, spec, settings, salt, rejects, report)
        say(f"{name}: {report.layers[name]['kept']} 行保留 / kept, {report.layers[name]['rejected']} 拒收 / rejected")
    metric = settings.get("metric_crs") or chinacrs.metric_crs_for(frames["streets"])
    _write_layers(con, frames, report, rejects, metric, say)
    rej = rejects.frame()
    con.register("__rejects", rej)
    con.execute("CREATE OR REPLACE TABLE rejects AS SELECT CAST(layer AS VARCHAR) AS layer, "
                "CAST(source_file AS VARCHAR) AS source_file, CAST(source_row AS BIGINT) AS source_row, "
                "CAST(reason AS VARCHAR) AS reason, CAST(raw AS JSON) AS raw FROM __rejects")
    con.unregister("__rejects")
    for name, counts in report.layers.items():
        counts["rejected"] = int((rej["layer"] == name).sum())
    return report


def _reject_rows(rejects: _Rejects, report: IngestReport, frame: pd.DataFrame, rows: np.ndarray, layer: str,
                 zh: str, en: str) -> pd.DataFrame:
    """Move rows (by __row) from ``frame`` to rejects; return the rest."""
    if len(rows) == 0:
        return frame
    mask = frame["__row"].isin(rows)
    moved = frame[mask]
    if isinstance(moved, gpd.GeoDataFrame):
        moved = pd.DataFrame(moved.drop(columns=moved.geometry.name))
    rejects.add(layer, report.files[layer], moved, zh, en)
    report.layers[layer]["kept"] -= int(mask.sum())
    return frame[~mask]


def _write_layers(con, frames, report, rejects, metric, say) -> None:
    streets = frames["streets"]
    streets["area_km2"] = _metric_area_km2(streets, metric)
    if "function_type" not in streets:
        streets["function_type"] = None
    comms = frames["communities"]
    known_streets = set(streets["street_code"])
    comms["street_code"] = comms["street_code"].astype(str).str.replace(r"\.0$", "", regex=True)
    bad = comms.loc[~comms["street_code"].isin(known_streets), "__row"].to_numpy()
    comms = _reject_rows(rejects, report, comms, bad, "communities",
                         "street_code 在街道图层中不存在", "street_code not found in the streets layer")
    if "kind" not in comms:
        comms["kind"] = None
    comms["kind"] = comms["kind"].fillna(pd.Series(np.where(comms["community_name"].astype(str).str.contains("村"),
                                                            "rural", "urban"), index=comms.index))
    comms["area_km2"] = _metric_area_km2(comms, metric)
    frames["communities"] = comms
    order = {"streets": ["street_code", "street_name", "district_code", "district_name", "function_type", "area_km2"],
             "communities": ["community_code", "community_name", "street_code", "kind", "area_km2"]}
    for name in ("streets", "communities"):
        df = frames[name]
        cols = order[name] + [c for c in df.columns if c not in order[name] and c != "geometry" and not c.startswith("__")]
        write_gdf(con, name, df[cols + ["geometry"]])
    known_comm = set(comms["community_code"])
    for name in ("buildings", "incidents", "special_units", "current_grids"):
        if name not in frames:
            continue
        df = frames[name]
        if "community_code" not in df:
            df["community_code"] = None
        df["community_code"] = df["community_code"].where(df["community_code"].isna(),
                                                          df["community_code"].astype(str).str.replace(r"\.0$", "", regex=True))
        unknown = df["community_code"].notna() & ~df["community_code"].isin(known_comm)
        df = _reject_rows(rejects, report, df, df.loc[unknown, "__row"].to_numpy(), name,
                          "community_code 在社区图层中不存在", "community_code not found in the communities layer")
        write_gdf(con, f"__stg_{name}", df)
        point = "t.geometry" if name == "incidents" else "ST_PointOnSurface(t.geometry)"
        _spatial_assign(con, f"__stg_{name}", point)
        if name == "buildings":
            no_street = con.execute(f"""
                SELECT t.__row FROM __stg_buildings t WHERE t.community_code IS NULL AND NOT EXISTS
                (SELECT 1 FROM streets s WHERE ST_Intersects(s.geometry, {point}))""").fetchnumpy()["__row"]
            df = _reject_rows(rejects, report, df, no_street, name, "楼栋不在任何街道内", "building lies in no street")
            con.execute(f"DELETE FROM __stg_buildings WHERE __row IN (SELECT unnest(?::BIGINT[]))", [no_street.tolist()])
        outside = con.execute(f"SELECT __row FROM {quote_ident('__stg_' + name)} WHERE community_code IS NULL").fetchnumpy()["__row"]
        _reject_rows(rejects, report, df, outside, name, "位置不在任何社区内", "location is outside every community")
        contract = [c for c in LAYERS[name].required + LAYERS[name].optional if c in df.columns and c != "community_code"]
        extra = [c for c in df.columns if c not in contract and c not in ("community_code", "geometry") and not c.startswith("__")]
        sel = ", ".join(f"t.{quote_ident(c)}" for c in contract + extra)
        con.execute(f"""
            CREATE OR REPLACE TABLE {quote_ident(name)} AS
            SELECT {sel}, t.community_code, c.street_code, t.geometry
            FROM {quote_ident("__stg_" + name)} t JOIN communities c USING (community_code)
            ORDER BY t.__row
        """)
        con.execute(f"DROP TABLE {quote_ident('__stg_' + name)}")
        say(f"{name}: {con.execute(f'SELECT count(*) FROM {quote_ident(name)}').fetchone()[0]} 行写入 / rows written")
    if "staff" in frames:
        df = frames["staff"]
        df["street_code"] = df["street_code"].astype(str).str.replace(r"\.0$", "", regex=True)
        bad = df.loc[~df["street_code"].isin(known_streets), "__row"].to_numpy()
        df = _reject_rows(rejects, report, df, bad, "staff", "street_code 在街道图层中不存在",
                                "street_code not found in the streets layer")
        if "community_code" in df:
            cc = df["community_code"].where(df["community_code"].isna(), df["community_code"].astype(str).str.replace(r"\.0$", "", regex=True))
            df["community_code"] = cc
            bad = df.loc[cc.notna() & ~cc.isin(known_comm), "__row"].to_numpy()
            df = _reject_rows(rejects, report, df, bad, "staff", "community_code 在社区图层中不存在",
                                    "community_code not found in the communities layer")
        write_gdf(con, "staff", df.drop(columns=[c for c in df.columns if c.startswith("__")]))
    for name in ("barriers", "department_grids"):
        if name in frames:
            df = frames[name]
            write_gdf(con, name, df.drop(columns=[c for c in df.columns if c.startswith("__")]))
