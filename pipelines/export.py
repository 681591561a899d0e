"""Export tables of a project database to GeoJSON, GeoPackage, Shapefile (.cpg), CSV or Excel."""
from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd

from pipelines.db import connect, read_gdf, read_table, table_exists
from pipelines.errors import InputFileError

FORMATS = {"geojson": ".geojson", "gpkg": ".gpkg", "shp": ".shp", "csv": ".csv", "xlsx": ".xlsx"}


def load_frame(con, table: str) -> pd.DataFrame:
    """A table as a GeoDataFrame when it has a geometry column, else a DataFrame."""
    if not table_exists(con, table):
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_schema='main' ORDER BY 1").fetchall()]
        raise InputFileError(f"数据库中没有表 {table}；可用的表：{names}",
                             f"No table {table} in the database; available: {names}")
    cols = [r[0] for r in con.execute(f'DESCRIBE "{table}"').fetchall()]
    if "geometry" in cols:
        return read_gdf(con, table)
    return read_table(con, table)


def export_table(db: str | Path, table: str, fmt: str, out: str | Path) -> Path:
    """Write ``table`` of database ``db`` to ``out`` in format ``fmt``; return the path written."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ValueError(f"未知格式 {fmt}；可选 {list(FORMATS)} / unknown format {fmt}; choose one of {list(FORMATS)}")
    out = Path(out)
    if out.suffix.lower() != FORMATS[fmt]:
        out = out.with_suffix(FORMATS[fmt]) if out.suffix else out / f"{table}{FORMATS[fmt]}"
    out.parent.mkdir(parents=True, exist_ok=True)
    con = connect(db, read_only=True)
    try:
        frame = load_frame(con, table)
    finally:
        con.close()
    for c in frame.columns:  # JSON/list/dict values are not valid attribute types in GIS formats
        if c != "geometry" and frame[c].map(lambda v: isinstance(v, dict | list)).any():
            frame[c] = frame[c].map(lambda v: str(v) if isinstance(v, dict | list) else v)
    if fmt == "csv":
        df = pd.DataFrame(frame)
        if isinstance(frame, gpd.GeoDataFrame):
            df["geometry"] = frame.geometry.to_wkt()
        df.to_csv(out, index=False, encoding="utf-8-sig")
    elif fmt == "xlsx":
        df = pd.DataFrame(frame)
        if isinstance(frame, gpd.GeoDataFrame):
            df = df.drop(columns="geometry")
        df.to_excel(out, index=False, sheet_name=table[:31])
    else:
        if not isinstance(frame, gpd.GeoDataFrame):
            raise InputFileError(f"表 {table} 没有几何，请导出为 csv 或 xlsx。",
                                 f"Table {table} has no geometry; export it as csv or xlsx.")
        driver = {"geojson": "GeoJSON", "gpkg": "GPKG", "shp": "ESRI Shapefile"}[fmt]
        kwargs = {"encoding": "UTF-8"} if fmt == "shp" else {}
        frame.to_file(out, driver=driver, engine="pyogrio", **kwargs)
        if fmt == "shp" and not out.with_suffix(".cpg").exists():
            out.with_suffix(".cpg").write_text("UTF-8")
    return out
