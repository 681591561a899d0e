"""The staffing page's "next month's forecast as hours" section (issue #11.5): where the
forecast says incidents will rise or fall next month, how many hours of grid-worker time that
is, in which grid, and how many full-time workers it amounts to.

One call on the page: ``forecast_workload_section(db, mtime, lang)``. The table comes from
:func:`pipelines.results_alerts.forecast_workload` (written by the staffing stage; see
``docs/staffing.md``). Nothing is drawn when the project has no forecast.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from app_pages._shared import open_db
from app_pages.i18n import STRINGS, t
from pipelines import results_alerts

#: Columns shown, in order (keys of ``fw.col.*``).
SHOWN = ["grid_id", "community", "street", "predicted_incidents", "current_incidents",
         "predicted_hours", "current_hours", "delta_hours", "required_fte_delta"]
TOP = 20


@st.cache_data(show_spinner=False, max_entries=4)
def load_forecast_workload(db: str, mtime: float) -> dict:
    """:func:`pipelines.results_alerts.forecast_workload`, cached per file state."""
    with open_db(db) as con:
        return results_alerts.forecast_workload(con)


def method_label(method: object, lang: str) -> str:
    key = f"hs.method.{method}"
    return t(key, lang) if key in STRINGS else str(method)


def view(table: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The grids as shown: names (codes where a name is missing), rounded, translated headers."""
    v = table.copy()
    v["community"] = v["community_name"].where(v["community_name"].notna(), v["community_code"])
    v["street"] = v["street_name"].where(v["street_name"].notna(), v["street_code"])
    for c in ("predicted_incidents", "current_incidents", "predicted_hours", "current_hours",
              "delta_hours"):
        v[c] = pd.to_numeric(v[c], errors="coerce").round(1)
    v["required_fte_delta"] = pd.to_numeric(v["required_fte_delta"], errors="coerce").round(3)
    return v[SHOWN].rename(columns={c: t(f"fw.col.{c}", lang) for c in SHOWN})


def forecast_workload_section(db: Path, mtime: float, lang: str) -> None:
    """Subheader, totals, and the grids with the largest change (all with a toggle)."""
    data = load_forecast_workload(str(db), mtime)
    table = data["table"]
    if table is None or table.empty:
        return
    st.subheader(t("fw.title", lang))
    period = str(table["period"].iloc[0])
    st.caption(t("fw.caption", lang, period=period,
                 method=method_label(table["method"].iloc[0], lang)))
    pred_h, cur_h = float(table["predicted_hours"].sum()), float(table["current_hours"].sum())
    delta, fte = pred_h - cur_h, float(table["required_fte_delta"].sum())
    k1, k2, k3, k4 = st.columns(4)
    k1.metric(t("fw.kpi.incidents", lang), f"{float(table['predicted_incidents'].sum()):,.0f}",
              border=True)
    k2.metric(t("fw.kpi.hours", lang), f"{pred_h:,.1f}", border=True)
    k3.metric(t("fw.kpi.delta", lang), f"{delta:+,.1f}", border=True)
    k4.metric(t("fw.kpi.fte", lang), f"{fte:+,.2f}", border=True)
    up = int((table["delta_hours"] > 0).sum())
    st.markdown(t("fw.summary", lang, up=up, n=len(table), cur=f"{cur_h:,.1f}",
                  pred=f"{pred_h:,.1f}"))
    every = st.toggle(t("fw.show_all", lang, n=len(table)), key="fw_show_all")
    shown = table if every else table.head(TOP)
    st.dataframe(view(shown, lang), hide_index=True, width="stretch", key="fw_table")
