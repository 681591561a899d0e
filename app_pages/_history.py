"""The plan history page's pieces: cached loaders, the plan table, the map of changed grids.

Everything is read through :mod:`pipelines.services.history` / :mod:`pipelines.results`; texts from the
data that reach the map's tooltips are escaped by ``_mapbuild``'s helpers.
"""
from __future__ import annotations

import json

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
    tooltip_for,
)
from app_pages._shared import open_db
from app_pages.i18n import label, t
from pipelines import results
from pipelines.services import history

CHANGED_COLOR = "#f28e2b"
UNCHANGED_COLOR = "#d9d9d9"
BEFORE_COLOR = "#2166ac"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PLAN_COLUMNS = ["plan_id", "is_current", "parent_plan_id", "created_at", "author", "note",
                "source", "n_grids", "n_basic", "share_within_norm", "workload_cv",
                "mean_compactness", "flagged"]


@st.cache_data(show_spinner=False, max_entries=4)
def load_plans(db: str, mtime: float) -> pd.DataFrame:
    with open_db(db) as con:
        return history.plan_table(con)


@st.cache_data(show_spinner=False, max_entries=8)
def load_comparison(db: str, mtime: float, a: str, b: str) -> dict:
    """The comparison of ``a`` and ``b`` and both plans' grids (EPSG:4326)."""
    with open_db(db) as con:
        cmp = history.compare(con, a, b)
        ga = results.plan_grids(con, a)
        gb = results.plan_grids(con, b)
    return {"cmp": cmp, "a": ga, "b": gb}


@st.cache_data(show_spinner=False, max_entries=4)
def report_bytes(db: str, mtime: float, plan_id: str, against: str | None) -> bytes:
    with open_db(db) as con:
        return history.realignment_workbook(con, plan_id, against)


def plan_view(plans: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The plan table as shown: sources translated, translated headers."""
    view = plans[[c for c in PLAN_COLUMNS if c in plans.columns]].copy()
    view["source"] = [label("history.source", s, lang) for s in view["source"]]
    for c in ("n_grids", "n_basic"):
        view[c] = pd.to_numeric(view[c], errors="coerce").astype("Int64")
    view["flagged"] = view["flagged"].astype("boolean")
    return view.rename(columns={c: t(f"history.col.{c}", lang) for c in view.columns})


def plan_config(lang: str) -> dict:
    c = st.column_config
    return {t("history.col.share_within_norm", lang): c.NumberColumn(format="percent"),
            t("history.col.workload_cv", lang): c.NumberColumn(format="%.3f"),
            t("history.col.mean_compactness", lang): c.NumberColumn(format="%.3f"),
            t("history.col.is_current", lang): c.CheckboxColumn(),
            t("history.col.flagged", lang): c.CheckboxColumn()}


def figures_view(figs: pd.DataFrame, a: str, b: str, lang: str) -> pd.DataFrame:
    """The figures side by side, one text column per plan (so yes/no and numbers mix)."""
    def show(v):
        if v is None or (isinstance(v, float) and pd.isna(v)):
            return "—"
        if isinstance(v, bool) or type(v).__name__ == "bool_":
            return t("cases.yes", lang) if v else t("cases.no", lang)
        v = float(v)
        return f"{v:,.0f}" if v.is_integer() else f"{v:,.3f}"

    return pd.DataFrame({
        t("history.col.figure", lang): figs["label_zh" if lang == "zh" else "label_en"],
        f"{a}": [show(v) for v in figs["a"]],
        f"{b}": [show(v) for v in figs["b"]]})


def grids_view(grids: pd.DataFrame, lang: str) -> pd.DataFrame:
    view = grids.copy()
    view["change"] = [t(f"history.change.{c}", lang) for c in view["change"]]
    for c in ("households_before", "households_after"):
        view[c] = pd.to_numeric(view[c], errors="coerce").astype("Int64")
    return view.rename(columns={c: t(f"history.col.{c}", lang) for c in view.columns})


def legend(lang: str) -> str:
    return "".join([
        f'<i style="background:{CHANGED_COLOR}"></i>{esc(t("history.legend.changed", lang))}<br>',
        f'<i style="background:{UNCHANGED_COLOR}"></i>'
        f'{esc(t("history.legend.unchanged", lang))}<br>',
        f'<i class="line" style="border-color:{BEFORE_COLOR}"></i>'
        f'{esc(t("history.legend.before", lang))}'])


def change_map(ga: gpd.GeoDataFrame, gb: gpd.GeoDataFrame, changed: list[str], *,
               lang: str, tiles: str | None, attribution: str | None) -> folium.Map:
    """Plan ``b``'s grids, those in ``changed`` orange; plan ``a``'s changed outlines dashed."""
    changed_set = {str(g) for g in changed}
    gb = round_coords(gb.reset_index(drop=True))
    before = round_coords(ga[ga["grid_id"].astype(str).isin(changed_set)].reset_index(drop=True))
    focus = gb[gb["grid_id"].astype(str).isin(changed_set)]
    frame_for_bounds = pd.concat([focus.geometry, before.geometry])
    bounds = (gpd.GeoSeries(frame_for_bounds, crs=gb.crs).total_bounds
              if len(frame_for_bounds) else (gb.total_bounds if len(gb) else None))
    m = base_map(bounds, lang=lang, tiles=tiles, zoom_start=14)
    fields = ["grid_id", "households"]
    tip = [t("history.col.grid_id", lang), t("field.households", lang)]
    data = esc_frame(gb[fields + [gb.geometry.name]], fields)
    styles = [{"fillColor": CHANGED_COLOR if str(g) in changed_set else UNCHANGED_COLOR,
               "color": "#555555", "weight": 1, "fillOpacity": 0.7 if str(g) in changed_set
               else 0.35} for g in gb["grid_id"]]
    fg = folium.FeatureGroup(name=t("history.layer.after", lang), show=True)
    folium.GeoJson(json.loads(data.to_json(drop_id=False)), style_function=by_position(styles),
                   highlight_function=lambda f: {"weight": 3, "color": "#222222"},
                   tooltip=tooltip_for(fields, tip)).add_to(fg)
    fg.add_to(m)
    if len(before):
        fb = folium.FeatureGroup(name=t("history.layer.before", lang), show=True)
        bdata = esc_frame(before[["grid_id", before.geometry.name]], ["grid_id"])
        folium.GeoJson(json.loads(bdata.to_json(drop_id=True)),
                       style_function=lambda f: {"color": BEFORE_COLOR, "weight": 2.5,
                                                 "dashArray": "6 4", "fill": False},
                       interactive=False).add_to(fb)
        fb.add_to(m)
    return finish_map(m, legend=legend(lang), attribution=attribution, bounds=bounds)
