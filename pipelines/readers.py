"""Find and read one input layer in any supported format into a raw frame.

Supported: GeoJSON, GeoPackage, Shapefile (folder or .zip), GeoParquet, Parquet and CSV (with
``lon``/``lat`` or a WKT ``geometry`` column), in UTF-8 or GBK/GB18030. The reader returns every
row it could read, with ``__row`` (1-based data row, header not counted) and the geometry as a
shapely array (None where missing or unparseable, with the reason in ``geom_errors``). Validation
happens later, in :mod:`pipelines.ingest`.
"""
from __future__ import annotations

import contextlib
import io
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
TABLE_SUFFIXES = (".parquet", ".geoparquet", ".csv", ".txt", ".xlsx", ".xls")
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
    geom_source: pd.DataFrame | None = None  # the user's lon/lat or WKT columns as read (for rejects.raw)
    bad_lines: list[tuple[int, int, str]] = field(default_factory=list)  # (row, fields, text): unreadable lines
    notes: list[str] = field(default_factory=list)  # one-line bilingual notes about the file


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
        or (p.is_dir() and p.name == layer and (any(p.glob("*.shp")) or bool(parquet_files(p))))
    ]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise InputFileError(
            f"图层 {layer} 有多个文件（{names}）；请只保留一个，或在 gridgov.toml 的 [layers.{layer}] file 中指定。",
            f"Layer {layer} has several files ({names}); keep one, or set [layers.{layer}] file in gridgov.toml.",
        )
    return found[0] if found else None


def parquet_files(path: Path) -> list[Path]:
    """The Parquet files of a layer: ``path`` itself, or every ``*.parquet`` below the folder ``path``
    (hive partitions such as ``month=2024-01/part-0.parquet`` included), in sorted path order;
    hidden files and folders (``.``, ``_``: ``_SUCCESS``, ``.crc``) are skipped."""
    if path.is_file():
        return [path] if path.suffix.lower() in (".parquet", ".geoparquet") else []
    if not path.is_dir():
        return []
    out = []
    for f in path.rglob("*"):
        rel = f.relative_to(path).parts
        if f.is_file() and f.suffix.lower() in (".parquet", ".geoparquet") and not any(
                x.startswith((".", "_")) for x in rel):
            out.append(f)
    return sorted(out, key=lambda f: f.relative_to(path).as_posix())


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
        if path.is_dir() and not any(path.glob("*.shp")) and parquet_files(path):
            files = parquet_files(path)  # a small folder of Parquet files: read whole, in path order
            df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
            raw = _table_geometry(layer, path, df, None)
            raw.source_file = path.name + "/"
            return raw
        if suffix in (".xlsx", ".xls"):
            return _read_excel(layer, path)
        return _read_gis(layer, path, encoding)
    except InputFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a file-level error
        raise InputFileError(
            f"无法读取 {path.name}（图层 {layer}）：{exc}。请确认文件完整且格式受支持"
            "（GeoJSON、GeoPackage、Shapefile、GeoParquet、Parquet、CSV、Excel .xlsx）。",
            f"Cannot read {path.name} (layer {layer}): {exc}. Check the file is complete and in a "
            "supported format (GeoJSON, GeoPackage, Shapefile, GeoParquet, Parquet, CSV, Excel .xlsx).",
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


def _with_rows(df: pd.DataFrame, rows: np.ndarray | None = None) -> pd.DataFrame:
    df = df.reset_index(drop=True)
    df.columns = clean_columns(df.columns)
    df.insert(0, "__row", np.arange(1, len(df) + 1) if rows is None else np.asarray(rows, dtype=np.int64))
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
        kwargs["encoding"] = detect_encoding(path, encoding)
    elif is_shp:
        kwargs["encoding"] = _shapefile_encoding(path, str(target))
    # Dates stay text (parsed once, by pipelines.dates, keeping the original for rejects); an
    # unreadable geometry becomes a missing one (a reject), not an unreadable file.
    gdf = pyogrio.read_dataframe(str(target), datetime_as_string=True, on_invalid="ignore", **kwargs)
    crs = gdf.crs.to_string() if gdf.crs is not None else None
    geoms = _non_empty(gdf.geometry.values)
    frame = _with_rows(pd.DataFrame(gdf.drop(columns=gdf.geometry.name)))
    errors = {i: ("缺少几何", "missing geometry") for i in np.flatnonzero(pd.isna(geoms))}
    return RawLayer(layer, path.name, frame, geoms, errors, crs, kwargs.get("encoding"))


def _non_empty(values) -> np.ndarray:
    geoms = np.array(values, dtype=object)
    geoms[pd.isna(geoms) | shapely.is_empty(geoms)] = None
    return geoms


def _shapefile_encoding(path: Path, target: str) -> str:
    """The declared .cpg if there is one, else what the DBF's text fields decode as."""
    stem = target[:-4]
    if path.suffix.lower() == ".zip":
        member = target.split(f"{path.resolve().as_posix()}/", 1)[1][:-4]
        with zipfile.ZipFile(path) as zf:
            names = {n.lower(): n for n in zf.namelist()}
            cpg = names.get((member + ".cpg").lower())
            if cpg:
                return _cpg_encoding(zf.read(cpg))
            dbf = names.get((member + ".dbf").lower())
            return dbf_text_encoding(zf.read(dbf)) if dbf else "UTF-8"
    cpg = Path(stem + ".cpg")
    if cpg.exists():
        return _cpg_encoding(cpg.read_bytes())
    dbf = Path(stem + ".dbf")
    return dbf_text_encoding(dbf.read_bytes()) if dbf.exists() else "UTF-8"


def _cpg_encoding(data: bytes) -> str:
    text = data.decode("ascii", "ignore").strip().upper()
    return {"UTF8": "UTF-8", "GBK": "GB18030", "GB2312": "GB18030", "936": "GB18030", "CP936": "GB18030",
            "": "UTF-8"}.get(text, text)


def dbf_text_encoding(data: bytes) -> str:
    """UTF-8 if the field names and the character fields of every record decode strictly as UTF-8,
    else GB18030. Only text is tested — the header's binary counts and lengths are not."""
    try:
        header_len = int.from_bytes(data[8:10], "little")
        rec_len = int.from_bytes(data[10:12], "little")
        n_rec = int.from_bytes(data[4:8], "little")
        fields, pos, offset = [], 32, 1  # each record starts with a deletion flag
        while pos + 32 <= header_len and data[pos] != 0x0D:
            desc = data[pos:pos + 32]
            fields.append((desc[:11].split(b"\x00")[0], chr(desc[11]), offset, desc[16]))
            offset += desc[16]
            pos += 32
        text = [name for name, *_ in fields]
        body = np.frombuffer(data, dtype=np.uint8, count=min(n_rec, (len(data) - header_len) // max(rec_len, 1))
                             * rec_len, offset=header_len).reshape(-1, rec_len) if rec_len else None
        if body is not None:
            for _, kind, start, length in fields:
                if kind in "CMV" and length:
                    text.append(body[:, start:start + length].tobytes())
        blob = b"\n".join(text)
    except (IndexError, ValueError):
        blob = data
    try:
        blob.decode("utf-8")
        return "UTF-8"
    except UnicodeDecodeError:
        return "GB18030"


def _read_parquet(layer: str, path: Path) -> RawLayer:
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    if b"geo" in meta:
        import geopandas as gpd

        gdf = gpd.read_parquet(path)
        crs = gdf.crs.to_string() if gdf.crs is not None else None
        geoms = _non_empty(gdf.geometry.values)
        frame = _with_rows(pd.DataFrame(gdf.drop(columns=gdf.geometry.name)))
        errors = {i: ("缺少几何", "missing geometry") for i in np.flatnonzero(pd.isna(geoms))}
        return RawLayer(layer, path.name, frame, geoms, errors, crs)
    df = pd.read_parquet(path)
    return _table_geometry(layer, path, df, None)


def _read_excel(layer: str, path: Path) -> RawLayer:
    """The sheet named like the layer, else the first sheet; every cell as text (dates as
    ``YYYY-MM-DD HH:MM:SS``), so ids keep their leading zeros and nothing is guessed twice."""
    if path.suffix.lower() == ".xls":
        raise InputFileError(
            f"{path.name} 是旧版 Excel（.xls）文件；请在 Excel 中另存为 .xlsx 或 CSV（UTF-8）。",
            f"{path.name} is an old Excel (.xls) file; save it as .xlsx or CSV (UTF-8) in Excel.",
        )
    sheets = pd.ExcelFile(path, engine="openpyxl").sheet_names
    sheet = layer if layer in sheets else sheets[0]
    df = pd.read_excel(path, sheet_name=sheet, dtype=object, engine="openpyxl")
    df = df.dropna(how="all")
    for c in df.columns:
        df[c] = _excel_text(df[c])
    df.columns = [str(c).strip() for c in df.columns]
    return _table_geometry(layer, path, df, None)


def _excel_text(s: pd.Series) -> pd.Series:
    def one(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        if hasattr(v, "strftime"):
            return v.strftime("%Y-%m-%d %H:%M:%S")
        return str(v)
    return pd.Series([one(v) for v in s.tolist()], index=s.index, dtype="str")


def _read_csv(layer: str, path: Path, encoding: str) -> RawLayer:
    enc = detect_encoding(path, encoding)
    source: Path | io.StringIO = path
    notes: list[str] = []
    if enc == "gb18030" and (not encoding or encoding.lower() == "auto"):
        mixed = _decode_mixed(path.read_bytes())
        if mixed is not None:  # a UTF-8 file with a few GBK lines pasted in: each line as written
            text, n_gbk = mixed
            source, enc = io.StringIO(text), "utf-8"
            notes.append(f"{path.name}：{n_gbk} 行为 GBK 编码，其余为 UTF-8，已逐行识别。 / "
                         f"{path.name}: {n_gbk} line(s) are GBK, the rest UTF-8; each line was decoded as written.")
    rows, bad = None, []
    try:
        df = pd.read_csv(source, dtype=str, encoding=enc, keep_default_na=False, na_values=[""],
                         skipinitialspace=True)
    except pd.errors.ParserError:
        if isinstance(source, io.StringIO):
            source.seek(0)
        df, rows, bad = _read_csv_lenient(source, enc)  # a line with too many fields: a reject, not a stop
    df.columns = [str(c).strip() for c in df.columns]
    raw = _table_geometry(layer, path, df, enc, rows)
    raw.bad_lines = bad
    raw.notes = notes
    return raw


def _decode_mixed(data: bytes) -> tuple[str, int] | None:
    """If most lines holding non-ASCII bytes are valid UTF-8, decode each line on its own (UTF-8, else
    GB18030) and return the text and the number of GB18030 lines; None if the file is simply GBK."""
    lines = data.split(b"\n")
    utf8 = gbk = 0
    out: list[str] = []
    for i, line in enumerate(lines):
        if i == 0 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        try:
            out.append(line.decode("utf-8"))
            utf8 += line.isascii() is False
        except UnicodeDecodeError:
            out.append(line.decode("gb18030", errors="replace"))
            gbk += 1
    return ("\n".join(out), gbk) if utf8 > gbk else None


def _read_csv_lenient(path, enc: str) -> tuple[pd.DataFrame, np.ndarray, list[tuple[int, int, str]]]:
    """Read a CSV line by line: lines with more fields than the header are set aside with their
    data-row number (blank lines skipped and not counted, as pandas does)."""
    import csv

    good: list[list[str]] = []
    rows: list[int] = []
    bad: list[tuple[int, int, str]] = []
    with (open(path, encoding=enc, newline="") if isinstance(path, Path) else contextlib.nullcontext(path)) as fh:
        reader = csv.reader(fh, skipinitialspace=True)
        header = next(reader, [])
        k = 0
        for rec in reader:
            if not rec or (len(rec) == 1 and not rec[0].strip()):
                continue
            k += 1
            if len(rec) > len(header):
                bad.append((k, len(rec), ",".join(rec)[:1000]))
            else:
                good.append(rec + [""] * (len(header) - len(rec)))
                rows.append(k)
    df = pd.DataFrame(good, columns=header, dtype="str") if good else pd.DataFrame(columns=header, dtype="str")
    df = df.where(df != "", None)
    return df, np.asarray(rows, dtype=np.int64), bad


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    for n in names:
        if n in lower:
            return lower[n]
    return None


def _table_geometry(layer: str, path: Path, df: pd.DataFrame, enc: str | None,
                    rows: np.ndarray | None = None) -> RawLayer:
    """Geometry of a plain table: lon/lat columns, or WKT / WKB in a geometry column."""
    frame = _with_rows(df, rows)
    cols = [c for c in frame.columns if c != "__row"]
    lon_c, lat_c, wkt_c = _pick(cols, LON_NAMES), _pick(cols, LAT_NAMES), _pick(cols, WKT_NAMES)
    n = len(frame)
    geoms = np.full(n, None, dtype=object)
    errors: dict[int, tuple[str, str]] = {}
    source = None
    if lon_c and lat_c:
        lon_raw, lat_raw = frame[lon_c], frame[lat_c]
        lon = _coord(lon_raw)
        lat = _coord(lat_raw)
        ok = np.isfinite(lon) & np.isfinite(lat)
        geoms[ok] = shapely.points(lon[ok], lat[ok])
        bad = np.flatnonzero(~ok)
        if len(bad):
            lv = lon_raw.iloc[bad].astype("string").fillna("").str.slice(0, 40).tolist()
            tv = lat_raw.iloc[bad].astype("string").fillna("").str.slice(0, 40).tolist()
            for i, a, b in zip(bad.tolist(), lv, tv):
                errors[i] = (f"经纬度无法解析（{lon_c}={a!r}, {lat_c}={b!r}）",
                             f"coordinates cannot be parsed ({lon_c}={a!r}, {lat_c}={b!r})")
        source = frame[[lon_c, lat_c]]
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
        if raw.map(lambda v: isinstance(v, str)).all():
            source = pd.DataFrame({wkt_c: raw.str.slice(0, 200)})
        frame = frame.drop(columns=[wkt_c])
    elif layer in ("staff",):
        pass  # staff is a plain table
    else:
        raise InputFileError(
            f"{path.name}（图层 {layer}）没有几何：需要 lon/lat（经度/纬度）列或 WKT 的 geometry 列。",
            f"{path.name} (layer {layer}) has no geometry: add lon/lat columns or a WKT 'geometry' column.",
        )
    return RawLayer(layer, path.name, frame, geoms, errors, None, enc, source)


def _coord(s: pd.Series) -> np.ndarray:
    """Coordinates as floats (full-width digits and a decimal comma accepted); NaN if not a number."""
    if pd.api.types.is_numeric_dtype(s.dtype):
        return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    from pipelines.dates import nfkc

    text = nfkc(s).str.strip().str.replace(r"^(-?\d+),(\d+)$", r"\1.\2", regex=True)
    return pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
