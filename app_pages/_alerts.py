"""The early-warning page's pieces: the cached loader, words for the recurrence interval, the
table as shown and the map.

Alerts come from :func:`pipelines.results_alerts.alerts`; every text from the data that reaches
the map's tooltips is escaped by ``_mapbuild``'s helpers. Owners are grid workers' staff ids,
never names.
"""
from __future__ import annotations

import json
import math

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
from app_pages.i18n import STRINGS, t
from pipelines import results, results_alerts

STATUS_COLORS = {"new": "#d7301f", "acknowledged": "#fd8d3c", "closed": "#9e9e9e"}
DEFAULT_THRESHOLD = 365
#: Widget labels that do not change with the language (Streamlit sends labels back).
STATUS_CHOICES = {"acknowledged": "已确认 / acknowledged", "closed": "已关闭 / closed"}


#: Outlines drawn around the alerts are simplified by this many metres (payload).
TOLERANCE_M = 10.0


@st.cache_data(show_spinner=False, max_entries=4)
def load_alerts(db: str, mtime: float) -> dict:
    """``alerts`` (GeoDataFrame, open first), ``has_table``, the run's ``threshold``
    (``[hotspots.alerts] recurrence_days``) and the map's context, simplified, EPSG:4326:
    ``communities`` (every community's outline) and ``grids`` (the current plan's grids of the
    communities that hold an alert — the whole city's grids would weigh megabytes)."""
    with open_db(db) as con:
        names = results.table_names(con)
        has = "alerts" in names
        frame = results_alerts.alerts(con)
        grids = results.plan_grids(con)
        comms = results.outlines(con).get("communities")
        mcrs = results.metric_crs(con)
        run = results.latest_run(con)
    cfg = (run.get("settings") or {}).get("hotspots", {}).get("alerts", {}) if run else {}
    near = set(frame["community_code"].dropna()) if len(frame) else set()
    grids = grids[grids["community_code"].isin(near)][["grid_id", grids.geometry.name]]
    if comms is None:
        comms = gpd.GeoDataFrame(geometry=[], crs="EPSG:4326")
    if mcrs:
        grids, comms = simplify_m(grids, TOLERANCE_M, mcrs), simplify_m(comms, TOLERANCE_M, mcrs)
    return {"alerts": frame, "has_table": has, "has_incidents": "incidents" in names,
            "grids": grids, "communities": comms,
            "threshold": cfg.get("recurrence_days", DEFAULT_THRESHOLD)}


def _number(x: float) -> str:
    return f"{x:,.1f}" if x < 10 else f"{x:,.0f}"


def recurrence_text(days: float, lang: str) -> str:
    """How often chance alone raises such a signal, in words (days below a year, then years;
    at or above 100 years — the stored cap is far above — "less than once in 100 years").

    >>> recurrence_text(400, "en")
    'by chance about once every 1.1 years'
    >>> recurrence_text(120, "zh")
    '偶然出现约每 120 天一次'
    """
    if days is None or (isinstance(days, float) and math.isnan(days)):
        return "—"
    days = float(days)
    if days >= 36500:
        return t("alerts.rec.century", lang)
    if days >= 365:
        return t("alerts.rec.years", lang, n=_number(days / 365.0))
    return t("alerts.rec.days", lang, n=_number(days))


def category_text(cat: object, lang: str) -> str:
    """An incident category in the interface language (the risk pages' labels), else as stored."""
    if cat == "all":
        return t("hs.category_all", lang)
    key = f"hs.cat.{cat}"
    return t(key, lang) if key in STRINGS else ("" if cat is None else str(cat))


def _day(v) -> str:
    return "—" if v is None or pd.isna(v) else str(pd.Timestamp(v).date())


def window_text(start, end, lang: str) -> str:
    if start is None or pd.isna(start) or end is None or pd.isna(end):
        return "—"
    days = (pd.Timestamp(end) - pd.Timestamp(start)).days + 1
    return t("alerts.window", lang, start=_day(start), end=_day(end), days=days)


def _text(v) -> str | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) or v == "" else str(v)


def described(frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The alerts with the shown texts added (status, place, category, window,
    recurrence in words, owner)."""
    out = frame.copy()
    out["status_text"] = out["status"].map(lambda s: t(f"alerts.status.{s}", lang))
    out["community"] = [_text(n) or _text(c) for n, c in zip(out["community_name"],
                                                               out["community_code"])]
    out["street"] = [_text(n) or _text(c) for n, c in zip(out["street_name"], out["street_code"])]
    out["category_text"] = out["category"].map(lambda c: category_text(c, lang))
    out["window"] = [window_text(s, e, lang) for s, e in zip(out["window_start"],
                                                              out["window_end"])]
    out["recurrence"] = out["recurrence_days"].map(lambda d: recurrence_text(d, lang))
    out["owner"] = out["owner_staff_id"].map(lambda v: _text(v) or t("alerts.no_owner", lang))
    out["note"] = out["note"].map(_text)
    out["detected"] = out["detected_at"].map(_day)
    return out


TABLE = [("status_text", "status"), ("grid_id", "grid_id"), ("community", "community"),
         ("street", "street"), ("category_text", "category"), ("window", "window"),
         ("obs_exp", "obs_exp"), ("recurrence", "recurrence"), ("owner", "owner"),
         ("note", "note"), ("detected", "detected_at"), ("alert_id", "alert_id")]


def obs_exp_text(observed, expected) -> str:
    """``observed / expected (×ratio)``, e.g. ``25 / 1.37 (×18.2)``.

    >>> obs_exp_text(25.0, 1.3737)
    '25 / 1.37 (×18.2)'
    """
    o, e = pd.to_numeric(pd.Series([observed, expected]), errors="coerce").astype(float)
    if math.isnan(o) or math.isnan(e):
        return "—"
    return f"{o:,.0f} / {e:,.2f}" + (f" (×{o / e:,.1f})" if e > 0 else "")


def table_view(frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The alerts table as shown (translated headers; data text shown as typed)."""
    d = described(frame, lang)
    d["obs_exp"] = [obs_exp_text(o, e) for o, e in zip(d["observed"], d["expected"])]
    view = d[[c for c, _ in TABLE]].copy()
    return view.rename(columns={c: t(f"alerts.col.{k}", lang) for c, k in TABLE})


def choice_label(row) -> str:
    """Label of an alert in the status control: id, grid, category, window (no language)."""
    return (f"{row.alert_id} · {row.grid_id} · {row.category} · {_day(row.window_start)}–"
            f"{_day(row.window_end)} · {row.status}")


def legend(lang: str) -> str:
    rows = [f"<b>{esc(t('alerts.legend.title', lang))}</b>"]
    rows += [f'<i style="background:{c}"></i>{esc(t(f"alerts.status.{s}", lang))}<br>'
             for s, c in STATUS_COLORS.items()]
    return "".join(rows)


TIP = ["grid_id", "community", "street", "category_text", "window", "observed", "expected",
       "recurrence", "owner", "status_text"]
TIP_KEYS = ["grid_id", "community", "street", "category", "window", "observed", "expected",
            "recurrence", "owner", "status"]


def _outlines(frame: gpd.GeoDataFrame, name: str, style: dict) -> folium.FeatureGroup:
    fg = folium.FeatureGroup(name=name, show=True)
    g = round_coords(frame[[frame.geometry.name]])
    folium.GeoJson(json.loads(g.to_json(drop_id=True)), interactive=False,
                   style_function=lambda f: style).add_to(fg)
    return fg


def alerts_map(frame: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, *, bounds, lang: str,
               tiles: str | None, attribution: str | None,
               communities: gpd.GeoDataFrame | None = None) -> folium.Map:
    """Community outlines (dark grey), the grids around the alerts (light grey) and the
    alerted grids coloured by status, with a dot on each (visible at city scale); tooltips
    escaped."""
    d = described(frame, lang)
    d = gpd.GeoDataFrame(d, geometry="geometry", crs=frame.crs)
    d = d[d.geometry.notna() & ~d.geometry.is_empty].reset_index(drop=True)
    if len(d):
        d["observed"] = pd.to_numeric(d["observed"], errors="coerce").round(0)
        d["expected"] = pd.to_numeric(d["expected"], errors="coerce").round(2)
    m = base_map(bounds, lang=lang, tiles=tiles, zoom_start=13)
    if communities is not None and len(communities):
        _outlines(communities, t("alerts.layer.communities", lang),
                  {"color": "#555555", "weight": 1.2, "fillOpacity": 0.0}).add_to(m)
    if len(grids):
        _outlines(grids, t("alerts.layer.grids", lang),
                  {"color": "#9a9a9a", "weight": 0.7, "fillOpacity": 0.0}).add_to(m)
    if len(d):
        fields = [f for f in TIP if d[f].notna().any()]
        aliases = [t(f"alerts.col.{k}", lang) for f, k in zip(TIP, TIP_KEYS) if f in fields]
        fg = folium.FeatureGroup(name=t("alerts.layer.alerts", lang), show=True)
        # the most unusual last, so it is drawn on top
        d = d.iloc[::-1].reset_index(drop=True)
        styles = [{"fillColor": STATUS_COLORS.get(s, "#cccccc"), "color": "#222222",
                   "weight": 2, "fillOpacity": 0.55} for s in d["status"]]
        polys = esc_frame(round_coords(d[fields + ["geometry"]]), fields)
        for f in fields:
            polys[f] = polys[f].astype(object).where(polys[f].notna(), "—")
        folium.GeoJson(json.loads(polys.to_json(drop_id=False)), style_function=by_position(styles),
                       tooltip=tooltip_for(fields, aliases)).add_to(fg)
        pts = polys.copy()
        pts["geometry"] = round_coords(d[["geometry"]]).geometry.representative_point()
        folium.GeoJson(
            json.loads(gpd.GeoDataFrame(pts, geometry="geometry", crs=d.crs).to_json(drop_id=False)),
            marker=folium.CircleMarker(radius=7, weight=2, color="#222222", fill_opacity=0.9),
            style_function=by_position([{**s, "fillOpacity": 0.9} for s in styles]),
            tooltip=tooltip_for(fields, aliases)).add_to(fg)
        fg.add_to(m)
    return finish_map(m, legend=legend(lang), attribution=attribution, bounds=bounds)
