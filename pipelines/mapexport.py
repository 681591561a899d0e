"""Maps to take away: each map page's content as a PNG or an A4 landscape PDF.

``export_map(project_dir, kind, out, fmt="png" | "pdf")`` draws one of :data:`KINDS` from a
project's result tables (opened read-only) with matplotlib — offline, no browser, no basemap —
in the project's metric CRS (:func:`pipelines.results.metric_crs`), with a title, a legend,
a metric scale bar, a north arrow, the data date, the plan id and the attribution line
(``[app] attribution`` in the settings, else the demo's sources or "this project's input
files"). Chinese text uses the CJK font the brief uses (:func:`pipelines.brief.cjk_font`),
embedded in the PDF (``pdf.fonttype`` 42). Names from the data are shortened to fit the legend
and the labels, never spilled over the map.

Kinds:

``overview``  streets and community household density (户/km²); with ``street_code`` the
              communities of that street and its buildings;
``grids``     the grids of a plan (current plan by default, ``plan_id`` for another one),
              shaded by households, dedicated grids outlined;
``hotspots``  analysis units coloured by hot/cold-spot class (``category``, default ``any``
              as on the hot-spot page, else ``all``; whole period), the page's colours;
``alerts``    grids with early-warning alerts, by status (``category`` filters);
``staffing``  staffing gap in whole people by street (by community with ``street_code``,
              ``level="community"`` or when the project has one street).
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from pipelines import results
from pipelines.brief import A4_LANDSCAPE, _context, _scale_bar, _width, cjk_font, wrap
from pipelines.db import read_gdf, read_table, table_exists
from pipelines.errors import GridgovError

#: Map kinds, with their Chinese and English titles.
KINDS: dict[str, tuple[str, str]] = {
    "overview": ("街道社区与户数密度", "Streets, communities and household density"),
    "grids": ("网格方案", "Grids of a plan"),
    "hotspots": ("风险热点", "Risk hot spots"),
    "alerts": ("预警", "Early-warning alerts"),
    "staffing": ("人员缺口", "Staffing gap"),
}
FORMATS = ("png", "pdf")
PNG_DPI = 150  # an A4 landscape PNG is 1753 × 1240 pixels
PNG_SIZE = (int(A4_LANDSCAPE[0] * PNG_DPI), int(A4_LANDSCAPE[1] * PNG_DPI))

#: Hot/cold-spot classes and colours, as the hot-spot page draws them.
CLASS_ORDER = ("hot_99", "hot_95", "hot_90", "none", "cold_90", "cold_95", "cold_99")
CLASS_COLORS = {
    "hot_99": "#b2182b", "hot_95": "#ef6548", "hot_90": "#fdbb84", "none": "#e4e4e4",
    "cold_90": "#9ecae1", "cold_95": "#4292c6", "cold_99": "#08519c",
}
CLASS_LABELS = {
    "hot_99": "热点 99% hot spot", "hot_95": "热点 95% hot spot", "hot_90": "热点 90% hot spot",
    "none": "不显著 not significant", "cold_90": "冷点 90% cold spot",
    "cold_95": "冷点 95% cold spot", "cold_99": "冷点 99% cold spot",
}
CATEGORY_LABELS = {"all": "全部类别 all categories", "any": "任一类别为热点 hot in any category"}
ALERT_COLORS = {"new": "#d7301f", "acknowledged": "#fd8d3c", "closed": "#969696"}
ALERT_LABELS = {"new": "新预警 new", "acknowledged": "已确认 acknowledged", "closed": "已关闭 closed"}
_NO_DATA = "#eeeeee"
LEGEND_EMS = 22.0  # widest legend label, in ems (CJK characters)
LABEL_EMS = 9.0  # widest map label
LABEL_MIN_WIDTH = 0.1  # a unit gets a label when it spans this share of the map's width

DEMO_ATTRIBUTION = ("边界: 天地图 (Tianditu) · 名称与代码: 国家统计局 2023 · 街道/社区几何与楼栋为合成演示数据 / "
                    "Boundaries: Tianditu · names and codes: NBS 2023 · geometry and buildings "
                    "are synthetic demo data")
PROJECT_ATTRIBUTION = "数据: 本项目输入数据 / Data: this project's input files"


class MapExportError(GridgovError):
    """The map cannot be drawn (unknown kind, street, plan or category; no database)."""


@dataclass
class _Map:
    """What one exported map shows."""

    kind: str
    subtitle: str = ""
    plan_id: str | None = None  # the plan drawn, when not the current one
    layers: list[dict] = field(default_factory=list)
    legend: list[tuple[str, str, str]] = field(default_factory=list)  # (patch|line|dash|marker, colour, label)
    colorbar: dict | None = None  # norm, cmap, label
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# small helpers


def fit(text: Any, ems: float) -> str:
    """``text`` shortened with "…" to at most ``ems`` printed ems (CJK characters count 1)."""
    s = re.sub(r"[\r\n\t\v\f]+", " ", str(text)).strip()
    if _width(s) <= ems:
        return s
    out, w = "", 0.0
    for ch in s:
        cw = _width(ch)
        if w + cw > ems - 1.0:
            break
        out += ch
        w += cw
    return out.rstrip() + "…"


def attribution(project_dir: str | Path) -> str:
    """The credit line: ``[app] attribution`` of the project's ``gridgov.toml``, else the demo's
    sources when the folder is the demo city, else a neutral line (as the app's maps do)."""
    credit = results.project_attribution(project_dir)
    return {"demo": DEMO_ATTRIBUTION, "project": PROJECT_ATTRIBUTION}.get(credit, credit)


def file_name(kind: str, fmt: str = "png", *, street_code: str | None = None,
              category: str | None = None, plan_id: str | None = None) -> str:
    """A download name such as ``gridgov-hotspots-sanitation.pdf`` (ASCII-safe parts only)."""
    parts = ["gridgov", kind] + [str(p) for p in (street_code, plan_id, category) if p]
    name = "-".join(re.sub(r"[^A-Za-z0-9_.]+", "_", p).strip("_") or "x" for p in parts)
    return f"{name}.{fmt}"


def _empty(cols: list[str]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns=cols + ["geometry"], geometry="geometry", crs="EPSG:4326")


def _street_rows(con, street_code: str | None) -> gpd.GeoDataFrame:
    if not table_exists(con, "streets"):
        return _empty(["street_code", "street_name"])
    s = read_gdf(con, results.select_columns(con, "streets", ["street_code", "street_name"]))
    if street_code is not None:
        if str(street_code) not in set(s["street_code"].astype(str)):
            known = "、".join(sorted(s["street_code"].astype(str))[:10])
            raise MapExportError(
                f"街道代码 {street_code} 不在 streets 表中；可选：{known}。",
                f"Street code {street_code} is not in the streets table; choose one of: {known}.")
        s = s[s["street_code"].astype(str) == str(street_code)]
    return s


def _communities(con) -> gpd.GeoDataFrame:
    layers = results.map_layers(con)
    return layers.get("communities", _empty(["community_code", "community_name", "street_code"]))


def _within(gdf: gpd.GeoDataFrame, area: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Rows of ``gdf`` whose representative point lies in ``area`` (any CRS, both EPSG:4326)."""
    if not len(gdf) or not len(area):
        return gdf.iloc[:0]
    shape = area.geometry.union_all()
    pts = gdf.geometry.representative_point()
    return gdf[pts.within(shape).to_numpy()]


def _sequential(values: pd.Series, cmap: str, label: str) -> tuple[list, dict]:
    import matplotlib.colors as mcolors
    from matplotlib import colormaps

    v = pd.to_numeric(values, errors="coerce")
    if not v.notna().any():
        return [_NO_DATA] * len(v), None
    lo, hi = float(v.min()), float(v.max())
    norm = mcolors.Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1)
    cm = colormaps[cmap]
    colours = [cm(norm(x)) if pd.notna(x) else _NO_DATA for x in v]
    return colours, {"norm": norm, "cmap": cm, "label": label}


def _diverging(values: pd.Series, cmap: str, label: str) -> tuple[list, dict]:
    import matplotlib.colors as mcolors
    from matplotlib import colormaps

    v = pd.to_numeric(values, errors="coerce")
    m = max(float(v.abs().max()) if v.notna().any() else 1.0, 1.0)
    norm = mcolors.TwoSlopeNorm(vmin=-m, vcenter=0.0, vmax=m)
    cm = colormaps[cmap]
    return [cm(norm(x)) if pd.notna(x) else _NO_DATA for x in v], \
        {"norm": norm, "cmap": cm, "label": label}


def _short(name: Any) -> str:
    """A community's name for a map label: without the 居委会 / 村委会 suffix."""
    s = "" if name is None or (not isinstance(name, str) and pd.isna(name)) else str(name)
    for suffix in ("居民委员会", "村民委员会", "居委会", "村委会"):
        if s.endswith(suffix) and len(s) > len(suffix):
            return s[: -len(suffix)]
    return s


def _signed(x: Any) -> str:
    if x is None or pd.isna(x):
        return "—"
    v = int(round(float(x)))
    return f"+{v}" if v > 0 else str(v)


# --------------------------------------------------------------------------------------------
# content of each kind


def _overview(con, ctx: dict, street_code: str | None, **_) -> _Map:
    m = _Map("overview")
    streets = _street_rows(con, street_code)
    comm = _communities(con)
    if street_code is not None:
        comm = comm[comm["street_code"].astype(str) == str(street_code)]
        m.subtitle = f"街道 Street: {fit(streets['street_name'].iloc[0], 16)}（{street_code}）"
    if len(comm):
        comm = comm.copy()
        km2 = comm.to_crs(ctx["crs"]).area / 1e6
        comm["density"] = pd.to_numeric(comm["households"], errors="coerce") / km2.where(km2 > 0)
        colours, m.colorbar = _sequential(comm["density"], "YlGnBu", "户数密度（户/km²）households per km²")
        m.layers.append({"kind": "fill", "gdf": comm, "colours": colours, "edge": "#7a7a7a",
                         "lw": 0.4, "frame": True})
        total = pd.to_numeric(comm["households"], errors="coerce").sum()
        m.notes.append(f"社区 {len(comm):,} 个，户数 {int(total):,} 户。 "
                       f"{len(comm):,} communities, {int(total):,} households.")
    if len(streets):
        m.layers.append({"kind": "outline", "gdf": streets, "colour": "#222222", "lw": 1.3,
                         "frame": not len(comm)})
        m.legend.append(("line", "#222222", "街道边界 street boundary"))
    layers = results.map_layers(con)
    if street_code is not None and "buildings" in layers:
        b = layers["buildings"]
        b = b[b["street_code"].astype(str) == str(street_code)]
        if len(b):
            m.layers.append({"kind": "points", "gdf": b, "colour": "#4d4d4d", "size": 1.5,
                             "marker": "o"})
            m.legend.append(("marker", "#4d4d4d", f"楼栋 buildings ({len(b):,})"))
    bar = layers.get("barriers")
    if bar is not None and len(bar):
        bar = _within(bar, streets) if street_code is not None else bar
        if len(bar):
            m.layers.append({"kind": "outline", "gdf": bar, "colour": "#8c510a", "lw": 0.9,
                             "dash": True})
            m.legend.append(("dash", "#8c510a", "障碍（道路、河流、铁路）barriers"))
    su = layers.get("special_units")
    if su is not None and len(su):
        if street_code is not None:
            su = su[su["street_code"].astype(str) == str(street_code)]
        if len(su):
            m.layers.append({"kind": "points", "gdf": su, "colour": "#c51b7d", "size": 16,
                             "marker": "s"})
            m.legend.append(("square", "#c51b7d", f"重点单位 special units ({len(su):,})"))
    if street_code is None and len(streets) >= 2:
        m.layers.append({"kind": "labels", "gdf": streets, "texts": list(streets["street_name"])})
    elif len(comm) <= 40:
        m.layers.append({"kind": "labels", "gdf": comm,
                         "texts": [_short(n) for n in comm["community_name"]]})
    return m


def _grids(con, ctx: dict, street_code: str | None, plan_id: str | None, **_) -> _Map:
    m = _Map("grids")
    if plan_id is not None:
        plans = results.plans(con)
        if str(plan_id) not in set(plans["plan_id"].astype(str)):
            known = "、".join(plans["plan_id"].astype(str).tolist()[:10]) or "—"
            raise MapExportError(f"方案 {plan_id} 不存在；可选：{known}。",
                                 f"Plan {plan_id} does not exist; choose one of: {known}.")
    grids = results.plan_grids(con, plan_id)
    m.plan_id = plan_id
    streets = _street_rows(con, street_code)
    if street_code is not None:
        grids = grids[grids["street_code"].astype(str) == str(street_code)]
        m.subtitle = f"街道 Street: {fit(streets['street_name'].iloc[0], 16)}"
    comm = _communities(con)
    if street_code is not None:
        comm = comm[comm["street_code"].astype(str) == str(street_code)]
    if len(grids):
        colours, m.colorbar = _sequential(grids["households"], "Blues", "每格户数（户）households per grid")
        m.layers.append({"kind": "fill", "gdf": grids, "colours": colours, "edge": "#ffffff",
                         "lw": 0.3 if len(grids) > 500 else 0.6, "frame": True})
        ded = grids[grids["grid_type"] == "dedicated"]
        if len(ded):
            m.layers.append({"kind": "outline", "gdf": ded, "colour": "#7b3294",
                             "lw": 1.2 if len(ded) <= 100 else 0.6})
            m.legend.append(("line", "#7b3294", f"专属网格 dedicated grids ({len(ded):,})"))
        hh = pd.to_numeric(grids["households"], errors="coerce")
        m.notes.append(f"网格 {len(grids):,} 个（基础 {int((grids['grid_type'] != 'dedicated').sum()):,}，"
                       f"专属 {len(ded):,}）；每格 {int(hh.min()):,}–{int(hh.max()):,} 户。 "
                       f"{len(grids):,} grids.")
    else:
        m.notes.append("本方案没有网格。 / This plan has no grids.")
    if len(comm):
        m.layers.append({"kind": "outline", "gdf": comm, "colour": "#444444", "lw": 0.8,
                         "frame": not len(grids)})
        m.legend.append(("line", "#444444", "社区边界 community boundary"))
    if len(streets):
        m.layers.append({"kind": "outline", "gdf": streets, "colour": "#000000", "lw": 1.5})
        m.legend.append(("line", "#000000", "街道边界 street boundary"))
    return m


def _hotspots(con, ctx: dict, street_code: str | None, category: str | None, **_) -> _Map:
    m = _Map("hotspots")
    cat = category or "all"
    if table_exists(con, "hotspots"):
        cats = [r[0] for r in con.execute(
            "SELECT DISTINCT category FROM hotspots ORDER BY category").fetchall()]
        if category is None and "any" in cats:  # the hot-spot page's default view
            cat = "any"
        if cat not in cats:
            raise MapExportError(f"类别 {cat} 不在 hotspots 表中；可选：{'、'.join(cats)}。",
                                 f"Category {cat} is not in the hotspots table; choose one of: "
                                 f"{', '.join(cats)}.")
    label = CATEGORY_LABELS.get(cat) or fit(cat, 16)
    m.subtitle = f"类别 Category: {label}    全期 whole period"
    units = results.hotspot_units(con)
    streets = _street_rows(con, street_code)
    if street_code is not None:
        units = _within(units, streets)
        m.subtitle += f"    街道 Street: {fit(streets['street_name'].iloc[0], 16)}"
    if not len(units):
        m.notes.append("本次运行没有热点分析单元（hotspot_units）。 / No hot-spot units in this run.")
    else:
        hs = results.hotspots(con, category=cat, period="all")[["grid_id", "hotspot_class"]]
        g = units.merge(hs.drop_duplicates("grid_id"), on="grid_id", how="left")
        cls = g["hotspot_class"].where(g["hotspot_class"].isin(CLASS_ORDER), "none")
        m.layers.append({"kind": "fill", "gdf": g, "colours": [CLASS_COLORS[c] for c in cls],
                         "edge": "#ffffff", "lw": 0.3 if len(g) > 1000 else 0.6, "frame": True})
        counts = cls.value_counts()
        for c in CLASS_ORDER:
            if counts.get(c, 0):
                m.legend.append(("patch", CLASS_COLORS[c], f"{CLASS_LABELS[c]} ({int(counts[c]):,})"))
        n_hot = int(cls.str.startswith("hot").sum())
        m.notes.append(f"分析单元 {len(g):,} 个，热点 {n_hot:,} 个（错误发现率校正）。 "
                       f"{len(g):,} units, {n_hot:,} hot spots (FDR-corrected).")
    if len(streets):
        m.layers.append({"kind": "outline", "gdf": streets, "colour": "#222222", "lw": 1.2,
                         "frame": not len(units)})
        m.legend.append(("line", "#222222", "街道边界 street boundary"))
    return m


def _alerts(con, ctx: dict, street_code: str | None, category: str | None, **_) -> _Map:
    m = _Map("alerts")
    streets = _street_rows(con, street_code)
    grids = results.plan_grids(con)
    if street_code is not None:
        grids = grids[grids["street_code"].astype(str) == str(street_code)]
        m.subtitle = f"街道 Street: {fit(streets['street_name'].iloc[0], 16)}"
    if category:
        m.subtitle = (m.subtitle + "    " if m.subtitle else "") + f"类别 Category: {fit(category, 16)}"
    if len(grids):
        m.layers.append({"kind": "fill", "gdf": grids, "colours": ["#f4f4f4"] * len(grids),
                         "edge": "#bdbdbd", "lw": 0.3, "frame": True})
        m.legend.append(("patch", "#f4f4f4", "网格 grid (无预警 no alert)"))
    alerts = _empty(["alert_id", "grid_id", "category", "status"])
    if table_exists(con, "alerts") and "geometry" in results.columns(con, "alerts"):
        alerts = read_gdf(con, results.select_columns(con, "alerts", [
            "alert_id", "grid_id", "category", "status", "detected_at"]))
        if category:
            alerts = alerts[alerts["category"].astype(str) == str(category)]
        if street_code is not None:
            alerts = _within(alerts, streets)
    if len(alerts):
        st = alerts["status"].fillna("new").astype(str)
        colours = [ALERT_COLORS.get(s, "#d7301f") for s in st]
        m.layers.append({"kind": "fill", "gdf": alerts, "colours": colours,
                         "edge": "#000000", "lw": 0.8, "frame": not len(grids)})
        m.layers.append({"kind": "points", "gdf": alerts, "colours": colours, "ring": True,
                         "size": 140})
        for s, n in st.value_counts().sort_index().items():
            m.legend.append(("patch", ALERT_COLORS.get(s, "#d7301f"),
                             f"{ALERT_LABELS.get(s, fit(s, 12))} ({int(n):,})"))
        n_open = int((st != "closed").sum())
        m.notes.append(f"预警 {len(alerts):,} 条，未关闭 {n_open:,} 条。 "
                       f"{len(alerts):,} alerts, {n_open:,} not closed.")
    else:
        m.notes.append("本次运行没有预警。 / No early-warning alerts in this run.")
    if len(streets):
        m.layers.append({"kind": "outline", "gdf": streets, "colour": "#222222", "lw": 1.2,
                         "frame": not len(grids) and not len(alerts)})
        m.legend.append(("line", "#222222", "街道边界 street boundary"))
    return m


def _staffing(con, ctx: dict, street_code: str | None, level: str | None = None, **_) -> _Map:
    m = _Map("staffing")
    streets = _street_rows(con, street_code)
    by_street = level == "street" or (level is None and street_code is None and len(streets) >= 2)
    label = "缺口（人）gap, people: + 缺员 short, − 超员 over"
    if by_street and table_exists(con, "street_allocation"):
        t = read_table(con, results.select_columns(con, "street_allocation", [
            "street_code", "current_staff", "recommended_staff", "gap"], geometry=None))
        g = streets.merge(t, on="street_code", how="left")
        names = g["street_name"]
        unit = "街道 streets"
    elif table_exists(con, "community_allocation"):
        t = read_table(con, results.select_columns(con, "community_allocation", [
            "community_code", "current_staff", "recommended_staff", "gap"], geometry=None))
        comm = _communities(con)
        if street_code is not None:
            comm = comm[comm["street_code"].astype(str) == str(street_code)]
            m.subtitle = f"街道 Street: {fit(streets['street_name'].iloc[0], 16)}"
        g = comm.merge(t, on="community_code", how="left")
        names = g["community_name"]
        unit = "社区 communities"
    else:
        m.notes.append("本次运行没有人员配置表。 / No staffing tables in this run.")
        if len(streets):
            m.layers.append({"kind": "outline", "gdf": streets, "colour": "#222222", "lw": 1.2,
                             "frame": True})
        return m
    gap = pd.to_numeric(g["gap"], errors="coerce").round()
    colours, m.colorbar = _diverging(gap, "RdBu_r", label)
    m.colorbar["integer"] = True
    m.layers.append({"kind": "fill", "gdf": g, "colours": colours, "edge": "#666666",
                     "lw": 0.5, "frame": True})
    if len(g) <= 60:
        m.layers.append({"kind": "labels", "gdf": g,
                         "texts": [f"{fit(_short(n), 7)} {_signed(v)}" for n, v in zip(names, gap)]})
    if len(streets) and not by_street:
        m.layers.append({"kind": "outline", "gdf": streets, "colour": "#222222", "lw": 1.2})
        m.legend.append(("line", "#222222", "街道边界 street boundary"))
    cur = pd.to_numeric(g["current_staff"], errors="coerce").sum()
    rec = pd.to_numeric(g["recommended_staff"], errors="coerce").sum()
    m.notes.append(f"{unit}：现有 {int(round(cur)):,} 人，建议 {int(round(rec)):,} 人；"
                   f"缺员 {int((gap > 0).sum())} 个，超员 {int((gap < 0).sum())} 个。 "
                   f"Staff today {int(round(cur)):,}, recommended {int(round(rec)):,} (whole people).")
    return m


_BUILDERS = {"overview": _overview, "grids": _grids, "hotspots": _hotspots, "alerts": _alerts,
             "staffing": _staffing}


# --------------------------------------------------------------------------------------------
# drawing


def _draw_layers(ax, layers: list[dict], crs: str) -> tuple[np.ndarray | None, int]:
    """Draw the layers in ``crs``; return the frame (xmin, ymin, xmax, ymax) of the frame
    layers and how many units were too small for their label."""
    bounds = None
    labels: list = []
    for layer in layers:
        gdf = layer["gdf"]
        if gdf is None or not len(gdf):
            continue
        keep = gdf.geometry.notna().to_numpy()
        g = gdf[keep].to_crs(crs)
        if not len(g):
            continue
        kind = layer["kind"]
        if kind == "fill":
            colours = [c for c, k in zip(layer["colours"], keep) if k]
            g.plot(ax=ax, color=colours, edgecolor=layer["edge"], linewidth=layer["lw"], zorder=1)
        elif kind == "outline":
            geom = g.geometry
            lines = geom.boundary if geom.geom_type.isin(["Polygon", "MultiPolygon"]).all() else geom
            lines.plot(ax=ax, color=layer["colour"], linewidth=layer["lw"], zorder=3,
                       linestyle=(0, (4, 2)) if layer.get("dash") else "-")
        elif kind == "points":
            pts = g.geometry.representative_point()
            if layer.get("ring"):  # rings that find a small unit on a large map
                colours = [c for c, k in zip(layer["colours"], keep) if k]
                ax.scatter(pts.x, pts.y, s=layer["size"], marker="o", facecolor="none",
                           edgecolor=colours, linewidth=1.6, zorder=5)
            else:
                ax.scatter(pts.x, pts.y, s=layer["size"], marker=layer["marker"],
                           color=layer["colour"], edgecolor="white" if layer["size"] > 4 else "none",
                           linewidth=0.5, zorder=4)
        elif kind == "labels":
            texts = [t for t, k in zip(layer["texts"], keep) if k]
            labels.append((g, texts))
        if layer.get("frame"):
            b = g.total_bounds
            bounds = b if bounds is None else np.r_[np.minimum(bounds[:2], b[:2]),
                                                   np.maximum(bounds[2:], b[2:])]
    skipped = 0
    for g, texts in labels:  # only on units wide enough for their label
        span = (bounds[2] - bounds[0]) if bounds is not None else 0.0
        b = g.geometry.bounds
        wide = ((b["maxx"] - b["minx"]) >= span * LABEL_MIN_WIDTH).to_numpy()
        skipped += int((~wide).sum())
        pts = g.geometry.representative_point()
        for p, text, ok in zip(pts, texts, wide):
            if ok and isinstance(text, str) and text.strip():
                ax.annotate(fit(text, LABEL_EMS + 4), (p.x, p.y), fontsize=6, ha="center",
                            va="center", color="#111111", zorder=6,
                            bbox={"boxstyle": "round,pad=0.12", "fc": "white", "ec": "none",
                                  "alpha": 0.7})
    return bounds, skipped


def _set_frame(ax, fig, rect, bounds) -> None:
    """Frame ``bounds`` with a margin, stretched to the axes' shape (equal scale in x and y)."""
    w, h = bounds[2] - bounds[0], bounds[3] - bounds[1]
    pad = max(w, h, 50.0) * 0.04
    x0, x1, y0, y1 = bounds[0] - pad, bounds[2] + pad, bounds[1] - pad * 2.5, bounds[3] + pad
    fig_w, fig_h = fig.get_size_inches()
    box = rect[2] * fig_w / (rect[3] * fig_h)
    if (x1 - x0) / (y1 - y0) < box:
        half, cx = (y1 - y0) * box / 2, (x0 + x1) / 2
        x0, x1 = cx - half, cx + half
    else:
        extra = ((x1 - x0) / box - (y1 - y0)) / 2
        y0, y1 = y0 - extra, y1 + extra
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal", adjustable="box")


def _legend_handles(legend: list[tuple[str, str, str]]) -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = []
    for kind, colour, label in legend:
        label = fit(label, LEGEND_EMS)
        if kind == "patch":
            handles.append(Patch(facecolor=colour, edgecolor="#888888", linewidth=0.5, label=label))
        elif kind in ("marker", "square"):
            handles.append(Line2D([], [], marker="o" if kind == "marker" else "s", color=colour,
                                  linestyle="", markersize=5, label=label))
        else:
            handles.append(Line2D([], [], color=colour, lw=1.8, label=label,
                                  linestyle=(0, (4, 2)) if kind == "dash" else "-"))
    return handles


MAP_RECT = [0.03, 0.075, 0.66, 0.79]
PANEL_X = 0.72  # left edge of the legend panel (figure fraction); it ends at 0.97
PANEL_EMS = 27.0  # its width in ems of 7.5 pt text


def _draw(mp: _Map, ctx: dict, credit: str):
    from matplotlib.cm import ScalarMappable
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    zh, en = KINDS[mp.kind]
    fig = Figure(figsize=A4_LANDSCAPE)
    fig.text(0.03, 0.955, f"{zh} · {fit(ctx['area'], 22)}", fontsize=17, fontweight="bold", va="top")
    fig.text(0.97, 0.955, en, fontsize=11, va="top", ha="right", color="#444444")
    line = f"数据日期 Data date: {ctx['data_date']}    方案 Plan: {mp.plan_id or ctx['plan_id']}"
    if mp.subtitle:
        line += f"    {mp.subtitle}"
    fig.text(0.03, 0.905, fit(line, 120), fontsize=9, va="top", color="#222222")
    fig.add_artist(Line2D([0.03, 0.97], [0.875, 0.875], color="#999999", lw=0.8))

    ax = fig.add_axes(MAP_RECT)
    ax.set_axis_off()
    bounds, skipped = _draw_layers(ax, mp.layers, ctx["crs"])
    if skipped:
        mp.notes.append(f"{skipped} 个较小单位未标注名称。 {skipped} small units are not labelled.")
    if bounds is None:
        ax.text(0.5, 0.5, "无可绘制的地图数据 / nothing to map", ha="center", va="center",
                fontsize=11, transform=ax.transAxes)
    else:
        _set_frame(ax, fig, MAP_RECT, bounds)
        _scale_bar(ax)
        ax.annotate("N", xy=(0.965, 0.97), xytext=(0.965, 0.89), xycoords="axes fraction",
                    ha="center", va="center", fontsize=10, fontweight="bold",
                    arrowprops={"arrowstyle": "-|>", "color": "#222222", "lw": 1.3})
    # the panel on the right: colour bar, legend, notes
    fig.text(PANEL_X, 0.855, "图例 Legend", fontsize=10, fontweight="bold", va="top")
    y = 0.82
    if mp.colorbar is not None:
        head = wrap(mp.colorbar["label"], PANEL_EMS)[:2]
        for i, ln in enumerate(head):
            fig.text(PANEL_X, y - i * 0.022, ln, fontsize=7.5, va="top")
        y -= 0.022 * len(head) + 0.01
        cax = fig.add_axes([PANEL_X, y - 0.02, 0.22, 0.018])
        cb = fig.colorbar(ScalarMappable(norm=mp.colorbar["norm"], cmap=mp.colorbar["cmap"]),
                          cax=cax, orientation="horizontal")
        cb.ax.tick_params(labelsize=7)
        if mp.colorbar.get("integer"):  # whole people
            from matplotlib.ticker import MaxNLocator

            cb.ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        y -= 0.075
    if mp.legend:
        fig.legend(handles=_legend_handles(mp.legend), loc="upper left",
                   bbox_to_anchor=(PANEL_X - 0.005, y), fontsize=7.5, frameon=False,
                   handlelength=1.8, borderaxespad=0.0, labelspacing=0.6)
    notes = [ln for text in mp.notes for ln in wrap(text, PANEL_EMS)][:10]
    for i, ln in enumerate(reversed(notes)):
        fig.text(PANEL_X, 0.085 + i * 0.024, ln, fontsize=7.5, va="bottom", color="#333333")

    fig.add_artist(Line2D([0.03, 0.97], [0.055, 0.055], color="#999999", lw=0.5))
    fig.text(0.03, 0.045, fit(credit, 125), fontsize=7, va="top", color="#555555")
    fig.text(0.03, 0.022, "比例尺与面积按项目的米制投影计算 · scale bar and areas in the project's "
             "metric CRS", fontsize=6.5, va="top", color="#777777")
    fig.text(0.97, 0.022, f"gridgov · 投影 CRS {ctx['crs']} · 数据日期 Data date {ctx['data_date']}",
             fontsize=6.5, va="top", ha="right", color="#555555")
    return fig


# --------------------------------------------------------------------------------------------
# public


def render_map(project_dir: str | Path, kind: str, *, fmt: str = "png",
               street_code: str | None = None, category: str | None = None,
               plan_id: str | None = None, level: str | None = None) -> bytes:
    """The map as PNG or PDF bytes (for a download button); see :func:`export_map`."""
    import matplotlib

    if kind not in KINDS:
        raise MapExportError(f"未知地图类型 {kind}；可选：{'、'.join(KINDS)}。",
                             f"Unknown map kind {kind}; choose one of: {', '.join(KINDS)}.")
    if level not in (None, "street", "community"):
        raise MapExportError(f"未知层级 {level}；可选：street、community。",
                             f"Unknown level {level}; choose street or community.")
    if fmt not in FORMATS:
        raise MapExportError(f"未知格式 {fmt}；可选：png、pdf。",
                             f"Unknown format {fmt}; choose png or pdf.")
    project_dir = Path(project_dir)
    db = results.db_path(project_dir)
    if not db.exists():
        raise MapExportError(f"{db} 不存在：请先运行 gridgov run {project_dir}。",
                             f"{db} does not exist: run `gridgov run {project_dir}` first.")
    family, _, _ = cjk_font()
    rc = {"pdf.fonttype": 42, "font.family": [family, "DejaVu Sans"],
          "axes.unicode_minus": False, "font.size": 9}
    with results.open_project(project_dir) as con, matplotlib.rc_context(rc):
        ctx = _context(con)
        if ctx["crs"] is None:
            ctx["crs"] = "EPSG:3857"
        mp = _BUILDERS[kind](con, ctx, street_code=street_code, category=category,
                             plan_id=plan_id, level=level)
        fig = _draw(mp, ctx, attribution(project_dir))
        buf = io.BytesIO()
        if fmt == "pdf":
            zh, en = KINDS[kind]
            fig.savefig(buf, format="pdf", metadata={
                "Title": f"{zh} {en} {ctx['data_date']}", "Creator": "gridgov",
                "CreationDate": None})
        else:
            fig.savefig(buf, format="png", dpi=PNG_DPI, metadata={"Software": "gridgov"})
    return buf.getvalue()


def export_map(project_dir: str | Path, kind: str, out: str | Path, *, fmt: str = "png",
               street_code: str | None = None, category: str | None = None,
               plan_id: str | None = None, level: str | None = None) -> Path:
    """Write one map of the project as an A4 landscape PNG (150 dpi) or PDF; return its path.

    Parameters
    ----------
    project_dir
        A project folder that ``gridgov run`` has built (its database is opened read-only).
    kind
        One of :data:`KINDS`: ``overview``, ``grids``, ``hotspots``, ``alerts``, ``staffing``.
    out
        The file to write (parent folders are created; written atomically).
    fmt
        ``"png"`` or ``"pdf"``.
    street_code, category, plan_id
        Narrow the map to one street, one incident category (hot spots, alerts) or one plan
        (grids; default the current plan).
    level
        Staffing only: ``"street"`` or ``"community"`` (default: streets when the project has
        several and no ``street_code`` is given, else communities).

    Raises
    ------
    MapExportError
        Unknown kind, format, street, plan or category, or no database (bilingual message).
    """
    data = render_map(project_dir, kind, fmt=fmt, street_code=street_code, category=category,
                      plan_id=plan_id, level=level)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    return out


__all__ = ["KINDS", "FORMATS", "PNG_DPI", "PNG_SIZE", "MapExportError", "attribution",
           "export_map", "file_name", "fit", "render_map"]
