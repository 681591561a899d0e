"""The staffing page's building blocks (no layout): loaders, the gap map and its legend,
the allocation tables as shown, the equity charts, the what-if section.

The page (``leaders.py``) reads the staffing stage's tables through
:func:`pipelines.results.staffing_tables`; the what-if figures are computed by
:func:`pipelines.results.whatif` (``geo.staffing.whatif`` on the stored allocation; the
database is never changed and the pipeline never re-run). Text from the data reaches the map
only escaped (:func:`app_pages._mapbuild.esc`).
"""
from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import altair as alt
import folium
import geopandas as gpd
import pandas as pd
import streamlit as st

from app_pages._mapbuild import (
    NO_DATA_COLOR,
    TOLERANCE_M,
    _features,
    base_map,
    by_position,
    finish_map,
    outline_layer,
    round_coords,
    shift_to,
    simplify_m,
    tooltip_for,
)
from app_pages._shared import half, load, map_frame, open_db
from app_pages.i18n import label, t
from geo import staffing as model
from geo.apportion import BudgetTooSmall
from pipelines import results

MAP_KEY = "leaders_map"
MAP_HEIGHT = 520
#: Diverging colours of the gap: over-staffed (blue) … balanced … short of staff (red).
OVER_COLORS = ("#c6dbef", "#6baed6", "#2171b5")  # light → dark
UNDER_COLORS = ("#fcbba1", "#fb6a4a", "#cb181d")
BALANCED_COLOR = "#f7f7f7"
SERIES_COLORS = {"current": "#9ecae1", "recommended": "#08519c", "whatif": "#f16913"}
EXTREMES_N = 5
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Session keys of the what-if controls (reset together).
WI_KEYS = ("wi_budget", "wi_minimum", "wi_method", "wi_street", "wi_ftype",
           "wi_w_workload", "wi_w_residents", "wi_w_area")


# --------------------------------------------------------------------------------------------
# cached loaders (key: database path + mtime)


def load_staffing_tables(db: str, mtime: float) -> dict:
    """The staffing stage's tables and the latest run's settings and summary."""
    return load(db, mtime, "staffing_tables")


def load_base_allocation(db: str, mtime: float) -> model.Allocation:
    """The stored street allocation as an ``Allocation`` (the start of every what-if)."""
    return load(db, mtime, "base_allocation", load_staffing_tables(db, mtime)["settings"])


@st.cache_data(show_spinner=False, max_entries=6)
def load_gap_geometries(db: str, mtime: float, tiles_crs: str) -> dict[str, gpd.GeoDataFrame]:
    """Street and community outlines, simplified, shifted to the tiles' CRS and rounded."""
    layers = dict(load(db, mtime, "outlines"))
    mcrs = map_frame(db, mtime)[1]
    for name, frame in layers.items():
        frame = simplify_m(frame, TOLERANCE_M[name], mcrs)
        frame, _ = shift_to(frame, tiles_crs)
        layers[name] = round_coords(frame)
    return layers


@st.cache_data(show_spinner=False, max_entries=2)
def report_bytes(db: str, mtime: float) -> bytes:
    """The Excel report of the stored tables (``export_report``), as bytes."""
    from pipelines.stage_staffing import export_report

    with tempfile.TemporaryDirectory(prefix="gridgov-report-") as tmp:
        path = Path(tmp) / "report.xlsx"
        with open_db(db) as con:
            export_report(con, path)
        return path.read_bytes()




# --------------------------------------------------------------------------------------------
# helpers




def bilingual(key: str) -> str:
    """A fixed "中文 English" option label (widget option labels must not change language)."""
    zh, en = t(key, "zh"), t(key, "en")
    return zh if zh == en else f"{zh} {en}"


def fmt_num(x: object, digits: int = 0) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "—"
    return "—" if not math.isfinite(v) else f"{v:,.{digits}f}"


def gap_step(values: pd.Series) -> int:
    """Class width of the gap colours: about a third of the largest |gap|, a round number."""
    v = pd.to_numeric(values, errors="coerce").abs()
    m = float(v.max()) if v.notna().any() else 0.0
    if m <= 3:
        return 1
    want = 0.9 * m / 3  # the first round width from 90 % of a third of the largest gap
    for p in range(9):
        for mult in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5, 8):
            step = mult * 10**p
            if step >= want and step == int(step):
                return int(step)
    return math.ceil(want)


def gap_color(gap: object, step: int) -> str:
    """Diverging colour of a gap: red when short of staff, blue when over, grey-white at 0."""
    try:
        g = float(gap)
    except (TypeError, ValueError):
        return NO_DATA_COLOR
    if not math.isfinite(g):
        return NO_DATA_COLOR
    if g == 0:
        return BALANCED_COLOR
    k = min(3, max(1, math.ceil(abs(g) / step)))
    return (UNDER_COLORS if g > 0 else OVER_COLORS)[k - 1]


def gap_legend(step: int, lang: str, level_key: str) -> str:
    """HTML legend of the diverging gap classes (short of staff on top)."""
    def rng(k: int) -> str:
        lo, hi = (k - 1) * step + 1, k * step
        return f"{lo}" if lo == hi else f"{lo}–{hi}"

    rows = [f"<b>{t('leaders.legend.title', lang)}</b>", f"<small>{t(level_key, lang)}</small><br>"]
    rows.append(f'<i style="background:{UNDER_COLORS[2]}"></i>≥ +{2 * step + 1} '
                f'{t("leaders.legend.under", lang)}<br>')
    for k in (2, 1):
        rows.append(f'<i style="background:{UNDER_COLORS[k - 1]}"></i>+{rng(k)}<br>')
    rows.append(f'<i style="background:{BALANCED_COLOR}"></i>0 '
                f'{t("leaders.legend.balanced", lang)}<br>')
    for k in (1, 2):
        rows.append(f'<i style="background:{OVER_COLORS[k - 1]}"></i>−{rng(k)}<br>')
    rows.append(f'<i style="background:{OVER_COLORS[2]}"></i>≤ −{2 * step + 1} '
                f'{t("leaders.legend.over", lang)}<br>')
    rows.append(f'<i style="background:{NO_DATA_COLOR}"></i>{t("leaders.legend.no_data", lang)}')
    return "".join(rows)


def gap_map(
    shapes: gpd.GeoDataFrame,
    values: pd.DataFrame,
    *,
    code: str,
    name: str,
    level_key: str,
    outline: gpd.GeoDataFrame | None,
    lang: str,
    tiles: str | None,
    attribution: str | None,
) -> folium.Map:
    """A choropleth of ``values['gap']`` on ``shapes`` (joined on ``code``), offline-ready."""
    frame = shapes.merge(values, on=code, how="left")
    step = gap_step(frame["gap"])
    frame["status_label"] = [
        label("leaders.status", s, lang) if isinstance(s, str) else None for s in frame["status"]]
    frame["ftype_label"] = [None if v == "—" else v for v in ftype_labels(frame, lang)]
    frame["hours"] = pd.to_numeric(frame["hours_per_current_staff"], errors="coerce").round(0)
    frame["gap_text"] = [
        None if pd.isna(g) else f"{int(g):+d}" for g in frame["gap"]]
    tip = {
        name: t("leaders.col.community_name" if code == "community_code"
                else "leaders.col.street_name", lang),
        "ftype_label": t("leaders.col.function_type", lang),
        "current_staff": t("leaders.col.current_staff", lang),
        "recommended_staff": t("leaders.col.recommended_staff", lang),
        "gap_text": t("leaders.col.gap", lang),
        "status_label": t("leaders.col.status", lang),
        "hours": t("leaders.tip.hours", lang),
    }
    data, fields = _features(frame, list(tip))

    bounds = frame.total_bounds if not frame.empty else None
    m = base_map(bounds, lang=lang, tiles=tiles, zoom_start=11)
    opacity = 0.6 if tiles else 0.85
    fg = folium.FeatureGroup(name=t(level_key, lang), show=True)
    folium.GeoJson(
        data,
        style_function=by_position([
            {"fillColor": gap_color(g, step), "color": "#555555", "weight": 0.8,
             "fillOpacity": opacity} for g in frame["gap"]]),
        highlight_function=lambda f: {"weight": 3, "color": "#222222"},
        tooltip=tooltip_for(fields, [tip[f] for f in fields]),
    ).add_to(fg)
    fg.add_to(m)
    if outline is not None and not outline.empty:
        outline_layer(outline, t("leaders.layer.outline", lang),
                      {"color": "#1b3a5c", "weight": 2.2, "fill": False}).add_to(m)
    return finish_map(m, legend=gap_legend(step, lang, level_key), attribution=attribution,
                      bounds=bounds)


def ftype_label(value: object, assumed: object, lang: str | None = None) -> str:
    """A function type in words, "—" when missing, with "（默认：居住区）" where the stage used
    the stated default (``function_type_assumed``)."""
    if not (isinstance(value, str) and value):
        return "—"
    text = label("function_type", value, lang)
    if assumed is not None and pd.notna(assumed) and bool(assumed):
        return t("leaders.ftype_default", lang, ftype=text)
    return text


def ftype_labels(table: pd.DataFrame, lang: str | None = None) -> list[str]:
    """:func:`ftype_label` of every row (a table without the columns gives "—")."""
    values = table["function_type"] if "function_type" in table else [None] * len(table)
    assumed = table["function_type_assumed"] if "function_type_assumed" in table \
        else [False] * len(table)
    return [ftype_label(v, a, lang) for v, a in zip(values, assumed)]


def headcount(table: pd.DataFrame) -> pd.Series:
    """Whole people the workload needs per row: ``required_headcount`` (the stage's FTE rounded
    up), else the FTE rounded up here for an older run."""
    if "required_headcount" in table:
        return pd.to_numeric(table["required_headcount"], errors="coerce").astype("Int64")
    fte = pd.to_numeric(table["required_staff"], errors="coerce")
    return fte.map(lambda v: math.ceil(v - 1e-9) if pd.notna(v) else pd.NA).astype("Int64")


def gap_notes(table: pd.DataFrame, lang: str) -> pd.Series | None:
    col = "gap_note_zh" if lang == "zh" else "gap_note_en"
    return table[col] if col in table else None


def explanation(table: pd.DataFrame | None, n_streets: int, lang: str) -> str | None:
    """The stage's sentence on why streets are short when the total is not
    (``staffing_explanation``): the 'street' row, the 'community' row for a one-street
    project (as the brief reads it); None when the run wrote none."""
    if table is None or table.empty:
        return None
    col = "explanation_zh" if lang == "zh" else "explanation_en"
    if col not in table:
        return None
    want = "community" if n_streets < 2 else "street"
    rows = table[table["level"] == want] if "level" in table else table
    if rows.empty:
        rows = table
    text = rows[col].iloc[0]
    return text if isinstance(text, str) and text else None


def street_view(table: pd.DataFrame, lang: str, extra: list[str] | None = None) -> pd.DataFrame:
    """The street table as shown: whole people (人), hours a month, translated values and
    headers, the stage's gap note; sorted by gap rank."""
    table = table.sort_values("gap_rank")
    cols = ["street_name", "street_code", "function_type", "area_km2", "residents", "workload",
            "current_staff", "recommended_staff", "gap", "gap_note", "status",
            "required_headcount", "hours_per_current_staff",
            "hours_per_recommended_staff"] + (extra or [])
    table = table.assign(function_type=ftype_labels(table, lang),
                         required_headcount=headcount(table), gap_note=gap_notes(table, lang))
    view = table[[c for c in cols if c in table.columns]].copy()
    view["status"] = [label("leaders.status", v, lang) for v in view["status"]]
    for c in ("current_staff", "recommended_staff", "gap"):
        view[c] = view[c].astype("int64")
    view = view.dropna(axis=1, how="all")
    return view.rename(columns={c: t(f"leaders.col.{c}", lang) for c in view.columns})


def number_config(lang: str) -> dict:
    """Column formats of the allocation tables (keyed by translated header)."""
    c = st.column_config
    return {
        t("leaders.col.area_km2", lang): c.NumberColumn(format="%.2f"),
        t("leaders.col.residents", lang): c.NumberColumn(format="localized"),
        t("leaders.col.workload", lang): c.NumberColumn(format="%.0f"),
        t("leaders.col.required_headcount", lang): c.NumberColumn(format="%d"),
        t("leaders.col.current_staff", lang): c.NumberColumn(format="%d"),
        t("leaders.col.recommended_staff", lang): c.NumberColumn(format="%d"),
        t("leaders.col.hours_per_current_staff", lang): c.NumberColumn(format="%.0f"),
        t("leaders.col.hours_per_recommended_staff", lang): c.NumberColumn(format="%.0f"),
        t("leaders.col.gap", lang): c.NumberColumn(format="%+d", help=t("leaders.col.gap_help",
                                                                        lang)),
    }


def equity_chart(frame: pd.DataFrame, metric: str, title: str, lang: str,
                 district: float | None, name: str = "street_name") -> alt.Chart:
    """Horizontal grouped bars of one equity metric per unit: today against recommended."""
    frame = frame.assign(**{name: frame[name].astype(str)})
    order = frame.sort_values(f"current_{metric}", ascending=False)[name].tolist()
    long = pd.concat([
        pd.DataFrame({"street": frame[name], "series": t(f"leaders.series.{who}", lang),
                      "value": frame[f"{who}_{metric}"].astype(float).round(2)})
        for who in ("current", "recommended")
    ], ignore_index=True)
    names = [t("leaders.series.current", lang), t("leaders.series.recommended", lang)]
    bars = alt.Chart(long).mark_bar().encode(
        y=alt.Y("street:N", sort=order, title=None, axis=alt.Axis(labelLimit=160)),
        x=alt.X("value:Q", title=title),
        yOffset=alt.YOffset("series:N", sort=names),
        color=alt.Color("series:N", scale=alt.Scale(
            domain=names, range=[SERIES_COLORS["current"], SERIES_COLORS["recommended"]]),
            legend=alt.Legend(title=None, orient="top")),
        tooltip=[alt.Tooltip("street:N", title=t(f"leaders.col.{name}", lang)),
                 alt.Tooltip("series:N", title=" "),
                 alt.Tooltip("value:Q", title=title, format=",.2f")],
    )
    height = 90 + 28 * len(order)  # the axis and legend take ~90 px of the height
    if district is not None and math.isfinite(district):
        rule = alt.Chart(pd.DataFrame({"value": [round(district, 2)]})).mark_rule(
            strokeDash=[5, 4], color="#444444").encode(x="value:Q")
        return alt.layer(bars, rule).properties(height=height)
    return bars.properties(height=height)


def gini_chart(equity: pd.DataFrame, lang: str) -> alt.Chart:
    rows = []
    for metric, key in (("gini_staff_per_workload", "leaders.gini_workload"),
                        ("gini_staff_per_resident", "leaders.gini_resident")):
        sel = equity[equity["metric"] == metric]
        if sel.empty:
            continue
        for who in ("current", "recommended"):
            v = float(sel.iloc[0][who])
            rows.append({"metric": t(key, lang), "series": t(f"leaders.series.{who}", lang),
                         "value": round(v, 3) if math.isfinite(v) else None})
    data = pd.DataFrame(rows, columns=["metric", "series", "value"])
    names = [t("leaders.series.current", lang), t("leaders.series.recommended", lang)]
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("metric:N", title=None, sort=None, axis=alt.Axis(labelAngle=0, labelLimit=220)),
        xOffset=alt.XOffset("series:N", sort=names),
        y=alt.Y("value:Q", title=t("leaders.gini_chart_title", lang),
                scale=alt.Scale(domainMin=0)),
        color=alt.Color("series:N", scale=alt.Scale(
            domain=names, range=[SERIES_COLORS["current"], SERIES_COLORS["recommended"]]),
            legend=alt.Legend(title=None, orient="top")),
        tooltip=[alt.Tooltip("metric:N", title=" "), alt.Tooltip("series:N", title=" "),
                 alt.Tooltip("value:Q", format=".3f")],
    ).properties(height=260)


def equity_value(equity: pd.DataFrame | None, metric: str, who: str,
                 level: str = "street") -> float:
    if equity is None:
        return float("nan")
    sel = equity[(equity["level"] == level) & (equity["metric"] == metric)]
    return float(sel.iloc[0][who]) if len(sel) and pd.notna(sel.iloc[0][who]) else float("nan")



def community_view(communities: pd.DataFrame, names: dict, lang: str) -> pd.DataFrame:
    """The community allocation as shown: street names, translated status and headers."""
    cview = communities.sort_values(["street_code", "gap_rank"]).copy()
    cview["street_name"] = cview["street_code"].map(names)
    cview["status"] = [label("leaders.status", v, lang) for v in cview["status"]]
    cview = cview.assign(required_headcount=headcount(cview), gap_note=gap_notes(cview, lang))
    ccols = ["street_name", "community_name", "residents", "workload", "current_staff",
             "recommended_staff", "gap", "gap_note", "status", "required_headcount",
             "hours_per_current_staff", "hours_per_recommended_staff"]
    cview = cview[[c for c in ccols if c in cview.columns]].dropna(axis=1, how="all")
    return cview.rename(columns={c: t(f"leaders.col.{c}", lang) for c in cview.columns})


def performance_view(view: pd.DataFrame, names: dict, community_names: dict,
                     lang: str) -> pd.DataFrame:
    """Worker performance rows as shown (untranslated headers), the on-time rate's interval
    as text."""
    ci = [
        "—" if pd.isna(lo) or pd.isna(hi) else f"{lo:.0%}–{hi:.0%}"
        for lo, hi in zip(view["on_time_ci_low"], view["on_time_ci_high"])]
    grid = view["main_grid_id"] if "main_grid_id" in view else view.get("grid_id")
    return pd.DataFrame({
        "staff_id": view["staff_id"],
        "main_grid_id": grid if grid is not None else None,
        "street_name": view["street_code"].map(names),
        "community_name": view["community_code"].map(community_names),
        "role": [label("leaders.role", r, lang) for r in view["role"]],
        "cases": view["cases"],
        "on_time_rate": view["on_time_rate"],
        "on_time_ci": ci,
        "median_hours_to_close": view["median_hours_to_close"],
        "repeat_complaints": view["repeat_complaints"],
        "repeat_rate": view["repeat_rate"],
        "workload_carried": view["workload_carried"],
        "small_n": view["small_n"].fillna(False).astype(bool),
        "note": [half(n, lang) for n in view["note"]],
    })


# --------------------------------------------------------------------------------------------
# the what-if section


@dataclass(frozen=True)
class WhatIf:
    """What the what-if section starts from (the stored allocation and the page's figures)."""

    db: str
    mtime: float
    base: model.Allocation
    streets: pd.DataFrame
    equity: pd.DataFrame | None
    names: dict
    method: str
    minimum: object
    budget: int
    lang: str


def _wi_defaults(ctx: WhatIf) -> dict:
    base, streets, minimum, method = ctx.base, ctx.streets, ctx.minimum, ctx.method
    w = base.params["score"]["weights"]
    return {
        "wi_budget": int(base.params["budget"]),
        "wi_minimum": int(minimum) if not isinstance(minimum, dict) else 0,
        "wi_method": method,
        "wi_street": str(streets.sort_values("gap_rank")["street_code"].iloc[0]),
        "wi_ftype": "",
        "wi_w_workload": float(w.get("workload", 0.0)),
        "wi_w_residents": float(w.get("residents", 0.0)),
        "wi_w_area": float(w.get("area", 0.0)),
    }


def _wi_reset(ctx: WhatIf) -> None:
    for k, v in _wi_defaults(ctx).items():
        st.session_state[k] = v


@st.fragment
def whatif_section(ctx: WhatIf) -> None:
    """The what-if controls and their result; reruns on its own when a control changes."""
    streets, names, lang = ctx.streets, ctx.names, ctx.lang
    st.subheader(t("leaders.whatif"))
    st.caption(t("leaders.whatif_caption"))
    defaults = _wi_defaults(ctx)
    ident = (ctx.db, ctx.mtime)
    if st.session_state.get("wi_ident") != ident:  # new database: start from its settings
        st.session_state["wi_ident"] = ident
        _wi_reset(ctx)
    for k, v in defaults.items():
        st.session_state.setdefault(k, v)

    c1, c2, c3 = st.columns(3)
    # A ceiling keeps the divisor method (one step per person) well under a second.
    ceiling = max(10 * defaults["wi_budget"], 1000)
    c1.number_input(t("leaders.wi.budget"), min_value=0, max_value=ceiling, step=1,
                    key="wi_budget", help=t("leaders.wi.budget_help", ceiling=f"{ceiling:,}"))
    c1.number_input(t("leaders.wi.minimum"), min_value=0, max_value=ceiling, step=1,
                    key="wi_minimum")
    c1.selectbox(t("leaders.wi.method"), ["webster", "huntington_hill"], key="wi_method",
                 format_func=lambda m: bilingual(f"leaders.method.{m}"))
    codes = streets.sort_values("gap_rank")["street_code"].tolist()
    c2.selectbox(t("leaders.wi.street"), codes, key="wi_street",
                 format_func=lambda c: f"{names.get(c, c)} ({c})")
    c2.selectbox(t("leaders.wi.ftype"), [""] + list(model.FUNCTION_TYPES), key="wi_ftype",
                 format_func=lambda v: bilingual(f"function_type.{v}") if v
                 else t("leaders.wi.unchanged"))
    chosen = st.session_state["wi_street"]
    row = streets.set_index("street_code").loc[chosen]
    now = row.get("function_type")
    now = now if isinstance(now, str) and now else None  # NULL / NA: no type stored
    c2.caption(t("leaders.wi.ftype_now", ftype=ftype_label(now, row.get("function_type_assumed"))))
    c3.markdown(f"**{t('leaders.wi.weights')}**")
    for part in ("workload", "residents", "area"):
        c3.slider(t(f"leaders.wi.w_{part}"), 0.0, 1.0, step=0.05, key=f"wi_w_{part}")
    weights = {p: float(st.session_state[f"wi_w_{p}"]) for p in ("workload", "residents", "area")}
    total_w = sum(weights.values())
    if total_w > 0:
        c3.caption(t("leaders.wi.weights_note", **{p: w / total_w for p, w in weights.items()}))
    c3.button(t("leaders.wi.reset"), on_click=_wi_reset, args=(ctx,), key="wi_reset")

    changes: dict = {"budget": int(st.session_state["wi_budget"]),
                     "minimum": int(st.session_state["wi_minimum"])}
    if st.session_state["wi_method"] != ctx.method:
        changes["method"] = st.session_state["wi_method"]
    if any(abs(weights[p] - defaults[f"wi_w_{p}"]) > 1e-9 for p in weights):
        changes["weights"] = weights
    ftype = st.session_state["wi_ftype"]
    if ftype and ftype != now:
        changes["function_type"] = {chosen: ftype}
    t0 = time.perf_counter()
    try:
        out = results.whatif(ctx.base, streets, **changes)
    except BudgetTooSmall as exc:
        st.error(half(exc, lang))
        return
    except (ValueError, KeyError) as exc:
        st.error(t("leaders.wi.error", error=half(exc, lang)))
        return
    ms = (time.perf_counter() - t0) * 1000
    result, full, g_new = out["result"], out["table"], out["gini"]
    g_run = equity_value(ctx.equity, "gini_staff_per_workload", "recommended")

    total = int(full["recommended_staff"].sum())
    m1, m2, m3, m4 = st.columns(4)
    m1.metric(t("leaders.wi.total"), t("leaders.people", n=f"{total:,}"),
              delta=total - ctx.budget or None, border=True)
    m2.metric(t("leaders.wi.moved"), t("leaders.people", n=f"{result.persons_moved:,}"),
              border=True,
              help=t("leaders.wi.moved_help"))
    m3.metric(t("leaders.wi.streets_changed"), f"{len(result.moved)} / {len(full)}",
              border=True)
    g_delta = round(g_new - g_run, 3) if math.isfinite(g_new) and math.isfinite(g_run) else 0
    m4.metric(t("leaders.wi.gini"), fmt_num(g_new, 3), border=True, delta_color="inverse",
              delta=g_delta or None)
    st.caption(t("leaders.wi.timing", ms=ms))

    full = full.assign(function_type=[ftype_label(v, False, lang)
                                      for v in full["function_type"]])
    headers = {
        "street_name": t("leaders.col.street_name"), "street_code": t("leaders.col.street_code"),
        "function_type": t("leaders.col.function_type"),
        "current_staff": t("leaders.col.current_staff"), "before": t("leaders.wi.before"),
        "recommended_staff": t("leaders.wi.after"), "change": t("leaders.wi.change"),
        "gap": t("leaders.wi.new_gap"),
        "hours_per_recommended_staff": t("leaders.col.hours_per_recommended_staff"),
    }
    order = list(headers)
    cfg = {
        headers["change"]: st.column_config.NumberColumn(format="%+d"),
        headers["gap"]: st.column_config.NumberColumn(format="%+d"),
        headers["hours_per_recommended_staff"]: st.column_config.NumberColumn(format="%.0f"),
    }
    moved = full[full["change"] != 0].sort_values(["change", "street_code"],
                                                  ascending=[False, True])
    st.markdown(f"**{t('leaders.wi.what_moved')}**")
    if moved.empty:
        st.info(t("leaders.wi.no_change"))
    else:
        st.dataframe(moved[order].rename(columns=headers), hide_index=True, width="stretch",
                     column_config=cfg, key="wi_moved")
    with st.expander(t("leaders.wi.full")):
        shown = full.sort_values("gap", ascending=False)[order].rename(columns=headers)
        st.dataframe(shown, hide_index=True, width="stretch", column_config=cfg, key="wi_full")
        csv = results.text_cells(shown).to_csv(index=False).encode("utf-8-sig")
        st.download_button(t("leaders.wi.csv"), csv,
                           file_name="whatif_allocation.csv", mime="text/csv", key="wi_csv",
                           on_click="ignore")

