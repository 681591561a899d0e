"""The fusion page's pieces: the cached loader, the map, the tables and the workbook.

Tables come from :mod:`pipelines.results_more` / :mod:`pipelines.results`; the proposal is
:func:`geo.fusion.proposal`; the workbook is :func:`pipelines.export.write_workbook`. Every text
from the data that reaches the map's tooltips is escaped by ``_mapbuild``'s helpers.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import folium
import geopandas as gpd
import pandas as pd
import streamlit as st

from app_pages._mapbuild import (
    base_map,
    by_position,
    esc,
    esc_frame,
    finish_map,
    round_coords,
    simplify_m,
    tooltip_for,
)
from app_pages._shared import open_db
from app_pages.i18n import t
from geo.fusion import STATUSES, proposal
from pipelines import results, results_more

STATUS_COLORS = {"aligned": "#1a9850", "adopt": "#fdae61", "merge": "#9e65c4",
                 "uncovered": "#d73027"}
SPLIT_COLOR = "#b2182b"
ALIGNED_SHARE = 0.9  # as geo.grids.fusion_report
TOLERANCE_M = 5.0
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHARES = ("max_share", "covered_share", "area_kept_share", "share_split", "share_aligned",
          "uncovered_share", "mean_max_overlap_share", "share_of_dept_grid",
          "share_of_basic_grid")


@st.cache_data(show_spinner=False, max_entries=4)
def load_fusion(db: str, mtime: float) -> dict:
    """``summary``, ``overlaps`` (None when the grids stage wrote no fusion), ``dept`` and
    ``basic`` (EPSG:4326) and the ``proposal``; the metric CRS for simplifying."""
    with open_db(db) as con:
        tables = results_more.fusion_tables(con)
        dept = results_more.department_grids(con)
        grids = results.plan_grids(con)
        mcrs = results.metric_crs(con)
    out = {**tables, "dept": dept, "basic": grids[grids["grid_type"] == "basic"], "crs": mcrs}
    out["proposal"] = (proposal(tables["overlaps"], dept, aligned_share=ALIGNED_SHARE)
                       if tables["overlaps"] is not None else None)
    return out


def status_label(status: str, lang: str) -> str:
    return t(f"fusion.status.{status}", lang)


def proposal_view(prop: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The proposal as shown: statuses translated, lists joined, translated headers."""
    view = prop.copy()
    view["status"] = view["status"].map(lambda s: status_label(s, lang))
    view["adopt"] = view["adopt"].map(lambda v: ", ".join(v))
    cols = ["dept_grid_id", "status", "n_adopt", "merge_with", "aligned", "split",
            "n_overlapping", "max_share", "covered_share", "area_kept_share",
            "adopt"]  # the long list last
    return view[cols].rename(columns={c: t(f"fusion.col.{c}", lang) for c in cols})


def share_config(lang: str) -> dict:
    """Percent format of the share columns (keyed by translated header), grid ids in full."""
    out = {t(f"fusion.col.{c}", lang): st.column_config.NumberColumn(format="percent")
           for c in SHARES}
    for c in ("dept_grid_id", "merge_with"):
        out[t(f"fusion.col.{c}", lang)] = st.column_config.Column(width=120)
    return out


def legend(lang: str) -> str:
    """The map's HTML legend (interface strings only, escaped)."""
    rows = [f"<b>{esc(t('fusion.legend.title', lang))}</b>"]
    for s in STATUSES:
        rows.append(f'<i style="background:{STATUS_COLORS[s]}"></i>'
                    f"{esc(status_label(s, lang))}<br>")
    rows.append(f'<i class="line" style="border-color:{SPLIT_COLOR}"></i>'
                f"{esc(t('fusion.legend.split', lang))}")
    return "".join(rows)


def fusion_map(dept: gpd.GeoDataFrame, basic: gpd.GeoDataFrame, prop: pd.DataFrame, *,
               metric_crs: str | None, lang: str, tiles: str | None,
               attribution: str | None) -> folium.Map:
    """The unified grids (grey outlines) under one department's grids coloured by proposal,
    split ones outlined thick red; tooltips escaped."""
    frame = dept.merge(prop.rename(columns={"dept_grid_id": "grid_id"}),
                       on=["department", "grid_id"], how="left")
    frame["status_text"] = frame["status"].map(
        lambda s: status_label(s, lang) if isinstance(s, str) else None)
    frame["adopt_text"] = frame["adopt"].map(
        lambda v: ", ".join(v) if isinstance(v, list) else None)
    if metric_crs:
        frame = simplify_m(frame, TOLERANCE_M, metric_crs)
        basic = simplify_m(basic, TOLERANCE_M, metric_crs)
    frame, basic = round_coords(frame), round_coords(basic)
    both = pd.concat([frame.geometry, basic.geometry])
    bounds = gpd.GeoSeries(both, crs=frame.crs).total_bounds if len(both) else None

    m = base_map(bounds, lang=lang, tiles=tiles, zoom_start=13)
    fg_basic = folium.FeatureGroup(name=t("fusion.layer.basic", lang), show=True)
    bdata = esc_frame(basic[["grid_id", basic.geometry.name]], ["grid_id"])
    folium.GeoJson(
        json.loads(bdata.to_json(drop_id=True)),
        style_function=lambda f: {"color": "#8a8a8a", "weight": 1, "fillColor": "#ffffff",
                                  "fillOpacity": 0.15},
        tooltip=tooltip_for(["grid_id"], [t("fusion.col.basic_grid_id", lang)]),
    ).add_to(fg_basic)
    fg_basic.add_to(m)

    tip = {"grid_id": t("fusion.col.dept_grid_id", lang),
           "status_text": t("fusion.col.status", lang),
           "adopt_text": t("fusion.col.adopt", lang),
           "merge_with": t("fusion.col.merge_with", lang)}
    fields = [f for f in tip if frame[f].notna().any() and (frame[f].astype(str) != "").any()]
    sub = esc_frame(frame[fields + [frame.geometry.name]], fields).reset_index(drop=True)
    for f in fields:
        sub[f] = sub[f].astype(object).where(sub[f].notna() & (sub[f] != ""), "—")
    styles = [{"fillColor": STATUS_COLORS.get(s, "#cccccc"),
               "color": SPLIT_COLOR if bool(sp) else "#444444",
               "weight": 3.5 if bool(sp) else 1.2, "fillOpacity": 0.45 if tiles else 0.6}
              for s, sp in zip(frame["status"], frame["split"].fillna(False))]
    fg = folium.FeatureGroup(name=t("fusion.layer.dept", lang), show=True)
    folium.GeoJson(json.loads(sub.to_json(drop_id=False)), style_function=by_position(styles),
                   highlight_function=lambda f: {"weight": 4, "color": "#222222"},
                   tooltip=tooltip_for(fields, [tip[f] for f in fields])).add_to(fg)
    fg.add_to(m)
    return finish_map(m, legend=legend(lang), attribution=attribution, bounds=bounds)


def _bilingual(prefix: str, cols) -> dict[str, str]:
    return {c: f"{t(f'{prefix}.{c}', 'zh')} {t(f'{prefix}.{c}', 'en')}" for c in cols}


def workbook_bytes(summary: pd.DataFrame, prop: pd.DataFrame,
                   overlaps: pd.DataFrame) -> bytes:
    """The fusion workbook (three sheets, bilingual headers), printable and formula-safe."""
    from pipelines.export import write_workbook

    p = prop.copy()
    p["status"] = p["status"].map(lambda s: f"{status_label(s, 'zh')} {status_label(s, 'en')}")
    p["adopt"] = p["adopt"].map(lambda v: ", ".join(v))
    for c in ("aligned", "split"):
        p[c] = p[c].map(lambda v: "是 yes" if v else "否 no")
    for c in SHARES:
        for frame in (p,):
            if c in frame.columns:
                frame[c] = frame[c].round(4)
    s = summary.copy()
    o = overlaps.copy()
    for frame in (s, o):
        for c in frame.columns:
            if c in SHARES or c == "overlap_km2":
                frame[c] = pd.to_numeric(frame[c], errors="coerce").round(4)
    headers = {**_bilingual("fusion.col", set(p.columns) | set(s.columns) | set(o.columns))}
    sheets = [("部门概况 Departments", s), ("融合建议 Proposal", p), ("重叠明细 Overlaps", o)]
    with tempfile.TemporaryDirectory(prefix="gridgov-fusion-") as tmp:
        path = write_workbook(Path(tmp) / "fusion.xlsx", sheets, headers=headers,
                              title="多网融合 / Grid fusion")
        return path.read_bytes()
