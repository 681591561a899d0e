"""Find and read one input layer in any supported format into a raw frame.

Supported: GeoJSON, GeoPackage, Shapefile (folder or .zip), GeoParquet, Parquet and CSV (with
``lon``/``lat`` or a WKT ``geometry`` column), in UTF-8 or GBK/GB18030. The reader returns every
row it could read, with ``__row`` (1-based data row, header not counted) and the geometry as a
shapely array (None where missing or unparseable, with the reason in ``geom_errors``). Validation
happens later, in :mod:`pipelines.ingest`.
"""
from __future__ import annotations

import logging
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import shapely

from pipelines.errors import InputFileError

log = logging.getLogger(__name__)

GIS_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip")
TABLE_SUFFIXES = (".parquet", ".geoparquet", ".csv", ".txt")
LON_NAMES = ("lon", "lng", "longitude", "x", "经度")
LAT_NAMES = ("lat", "latitude", "y", "纬度")
WKT_NAMES = ("geometry", "wkt", "geom", "the_geom", "几何")


@dataclass
class RawLayer:
    """What a reader got out of one file."""

    layer: str
    source_file: str
    frame: pd.DataFrame  # attributes as read, plus "__row"
    geometry: np.ndarray  # shapely geometries or None
    geom_errors: dict[int, tuple[str, str]] = field(default_factory=dict)  # position -> (zh, en)
    file_crs: str | None = None  # CRS declared inside the file, if any
    encoding: str | None = None


def find_layer_file(project_dir: Path, layer: str, override: str | None = None) -> Path | None:
    """The file (or shapefile folder) holding ``layer``; None if absent; error if ambiguous."""
    if override:
        p = (project_dir / override) if not Path(override).is_absolute() else Path(override)
        if not p.exists():
            raise InputFileError(
                f"设置中为图层 {layer} 指定的文件 {p} 不存在。",
                f"The file {p} configured for layer {layer} does not exist.",
            )
        return p
    found = [
        p
        for p in sorted(project_dir.iterdir())
        if (p.is_file() and p.stem == layer and p.suffix.lower() in GIS_SUFFIXES + TABLE_SUFFIXES)
        or (p.is_dir() and p.name == layer and any(p.glob("*.shp")))
    ]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise InputFileError(
            f"图层 {layer} 有多个文件（{names}）；请只保留一个，或在 gridgov.toml 的 [layers.{layer}] file 中指定。",
            f"Layer {layer} has several files ({names}); keep one, or set [layers.{layer}] file in gridgov.toml.",
        )
    return found[0] if found else None


def detect_encoding(path: Path, declared: str = "auto") -> str:
    """UTF-8 (with or without BOM) if the bytes decode as such, else GB18030 (a superset of GBK)."""
    if declared and declared.lower() != "auto":
        return {"utf8": "utf-8", "gb2312": "gb18030", "gbk": "gb18030"}.get(declared.lower(), declared.lower())
    data = path.read_bytes()
    try:
        data.decode("utf-8")
        return "utf-8-sig"
    except UnicodeDecodeError:
        pass
    try:
        data.decode("gb18030")
        return "gb18030"
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"{path.name} 既不是 UTF-8 也不是 GBK/GB18030 编码（第 {exc.start} 字节）；请另存为 UTF-8。",
            f"{path.name} is neither UTF-8 nor GBK/GB18030 (byte {exc.start}); save it as UTF-8.",
        ) from exc


def read_layer(layer: str, path: Path, *, encoding: str = "auto") -> RawLayer:
    """Read ``path`` as layer ``layer``; raise :class:`InputFileError` if the file is unusable."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            return _read_csv(layer, path, encoding)
        if suffix in (".parquet", ".geoparquet"):
            return _read_parquet(layer, path)
        return _read_gis(layer, path, encoding)
    except InputFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a file-level error
        raise InputFileError(
            f"无法读取 {path.name}（图层 {layer}）：{exc}。请确认文件完整且格式受支持"
            "（GeoJSON、GeoPackage、Shapefile、GeoParquet、Parquet、CSV）。",
            f"Cannot read {path.name} (layer {layer}): {exc}. Check the file is complete and in a "
            "supported format (GeoJSON, GeoPackage, Shapefile, GeoParquet, Parquet, CSV).",
        ) from exc


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u2028\u2029\ufeff]")


def clean_columns(columns) -> list[str]:
    """Column names a database can hold: text without control characters or surrounding blanks,
    never empty, never starting with ``__`` (kept for the pipeline's own columns), and unique even
    ignoring case (SQL names are case-insensitive) — ``Name`` and ``name`` become ``Name`` and
    ``name_2``. Quotes, semicolons and any other characters are kept: names are always quoted."""
    out: list[str] = []
    seen: set[str] = set()
    for i, c in enumerate(columns):
        name = _CONTROL.sub("", str(c)).strip()
        if name.startswith("__"):
            name = "_" + name.lstrip("_") if name.strip("_") else ""
        if not name:
            name = f"column_{i + 1}"
        base, k = name, 1
        while name.casefold() in seen:
            k += 1
            name = f"{base}_{k}"
        seen.add(name.casefold())
        out.append(name)
    return out


def _with_rows(df: pd.DataFrame) -> pd.DataFrame:
    df = df.reset_index(drop=True)
    df.columns = clean_columns(df.columns)
    df.insert(0, "__row", np.arange(1, len(df) + 1))
    return df


def _read_gis(layer: str, path: Path, encoding: str) -> RawLayer:
    target = path
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            shps = [n for n in zf.namelist() if n.lower().endswith(".shp")]
        if not shps:
            raise InputFileError(
                f"{path.name} 中没有 .shp 文件。", f"{path.name} contains no .shp file."
            )
        target = f"/vsizip/{path.resolve().as_posix()}/{shps[0]}"
    elif path.is_dir():
        target = sorted(path.glob("*.shp"))[0]
    kwargs = {}
    is_shp = str(target).lower().endswith(".shp")
    if is_shp and encoding and encoding.lower() != "auto":
        kwargs["encoding"] = detect_encoding(path, encoding) if path.is_file() and path.suffix != ".zip" else encoding
    elif is_shp and path.suffix.lower() != ".zip":
        cpg = Path(str(target)[:-4] + ".cpg")
        if not cpg.exists():
            kwargs["encoding"] = _guess_dbf_encoding(Path(str(target)[:-4] + ".dbf"))
    gdf = pyogrio.read_dataframe(str(target), **kwargs)
    crs = gdf.crs.to_string() if gdf.crs is not None else None
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    geoms = np.array([g if g is not None and not g.is_empty else None for g in geoms], dtype=object)
    frame = _with_rows(pd.DataFrame(gdf.drop(columns=gdf.geometry.name)))
    errors = {i: ("缺少几何", "missing geometry") for i in np.flatnonzero(pd.isna(geoms))}
    return RawLayer(layer, path.name, frame, geoms, errors, crs, kwargs.get("encoding"))


def _guess_dbf_encoding(dbf: Path) -> str:
    try:
        data = dbf.read_bytes()
        data.decode("utf-8")
        return "UTF-8"
    except UnicodeDecodeError:
        return "GB18030"
    except OSError:
        return "UTF-8"


def _read_parquet(layer: str, path: Path) -> RawLayer:
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    if b"geo" in meta:
        import geopandas as gpd

        gdf = gpd.read_parquet(path)
        crs = gdf.crs.to_string() if gdf.crs is not None else None
        geoms = np.asarray(gdf.geometry.values, dtype=object)
        geoms = np.array([g if g is not None and not g.is_empty else None for g in geoms], dtype=object)
        frame = _with_rows(pd.DataFrame(gdf.drop(columns=gdf.geometry.name)))
        errors = {i: ("缺少几何", "missing geometry") for i in np.flatnonzero(pd.isna(geoms))}
        return RawLayer(layer, path.name, frame, geoms, errors, crs)
    df = pd.read_parquet(path)
    return _table_geometry(layer, path, df, None)


def _read_csv(layer: str, path: Path, encoding: str) -> RawLayer:
    enc = detect_encoding(path, encoding)
    df = pd.read_csv(path, dtype=str, encoding=enc, keep_default_na=False, na_values=[""], skipinitialspace=True)
    df.columns = [str(c).strip() for c in df.columns]
    return _table_geometry(layer, path, df, enc)


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    for n in names:
        if n in lower:
            return lower[n]
    return None


def _table_geometry(layer: str, path: Path, df: pd.DataFrame, enc: str | None) -> RawLayer:
    """Geometry of a plain table: lon/lat columns, or WKT / WKB in a geometry column."""
    frame = _with_rows(df)
    cols = [c for c in frame.columns if c != "__row"]
    lon_c, lat_c, wkt_c = _pick(cols, LON_NAMES), _pick(cols, LAT_NAMES), _pick(cols, WKT_NAMES)
    n = len(frame)
    geoms = np.full(n, None, dtype=object)
    errors: dict[int, tuple[str, str]] = {}
    if lon_c and lat_c:
        lon = pd.to_numeric(frame[lon_c], errors="coerce").to_numpy(float)
        lat = pd.to_numeric(frame[lat_c], errors="coerce").to_numpy(float)
        ok = np.isfinite(lon) & np.isfinite(lat)
        geoms[ok] = shapely.points(lon[ok], lat[ok])
        for i in np.flatnonzero(~ok):
            errors[int(i)] = (
                f"经纬度无法解析（{lon_c}={frame[lon_c].iloc[i]!r}, {lat_c}={frame[lat_c].iloc[i]!r}）",
                f"coordinates cannot be parsed ({lon_c}={frame[lon_c].iloc[i]!r}, {lat_c}={frame[lat_c].iloc[i]!r})",
            )
        frame = frame.drop(columns=[lon_c, lat_c])
    elif wkt_c:
        raw = frame[wkt_c]
        for i, v in enumerate(raw.tolist()):
            if v is None or (isinstance(v, float) and np.isnan(v)) or v == "":
                errors[i] = ("缺少几何", "missing geometry")
                continue
            try:
                g = shapely.from_wkb(v) if isinstance(v, bytes | bytearray) else shapely.from_wkt(str(v))
                if g is None or g.is_empty:
                    errors[i] = ("几何为空", "empty geometry")
                else:
                    geoms[i] = g
            except Exception:  # noqa: BLE001 - shapely raises several types
                errors[i] = (f"几何（WKT）无法解析：{str(v)[:40]!r}", f"geometry (WKT) cannot be parsed: {str(v)[:40]!r}")
        frame = frame.drop(columns=[wkt_c])
    elif layer in ("staff",):
        pass  # staff is a plain table
    else:
        raise InputFileError(
            f"{path.name}（图层 {layer}）没有几何：需要 lon/lat（经度/纬度）列或 WKT 的 geometry 列。",
            f"{path.name} (layer {layer}) has no geometry: add lon/lat columns or a WKT 'geometry' column.",
        )
    return RawLayer(layer, path.name, frame, geoms, errors, None, enc)
