"""The 红黑榜 page's pieces: cached loaders, list and ranking tables, the trend chart.

The rows come from ``case_rates`` / ``case_outcomes`` through :mod:`pipelines.results_more`
(no SQL here); everything except the loaders is plain pandas / altair and testable without
Streamlit.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from app_pages._shared import open_db
from app_pages.i18n import t
from pipelines import results, results_more

SCOPES = ("street", "community", "grid", "department", "service_company", "staff")
RATES = ("response_rate", "resolution_rate", "satisfaction_rate", "on_time_close_rate",
         "returned_rate")
FLAGS = ("responded", "resolved", "satisfied", "closed_on_time", "returned")
#: Cases shown at most in the drill-down's last table.
MAX_CASES = 500
GREY = "color: #9a9a9a; background-color: #f4f4f4"


# --------------------------------------------------------------------------------------------
# loaders (key: path + mtime)


@st.cache_data(show_spinner=False, max_entries=8)
def load_rates(db: str, mtime: float) -> dict:
    """``rates`` (case_rates or None), ``tree`` (case_hierarchy) and ``min_cases``."""
    with open_db(db) as con:
        rates = results_more.case_rates(con)
        tree = results_more.case_hierarchy(con)
        settings = results.latest_run(con).get("settings", {})
        has_incidents = "incidents" in results.table_names(con)
    return {"rates": rates, "tree": tree, "min_cases": min_cases(settings),
            "has_incidents": has_incidents}


@st.cache_data(show_spinner=False, max_entries=32)
def load_cases(db: str, mtime: float, grid: str, period: str | None) -> pd.DataFrame:
    """The cases of one grid (and month)."""
    with open_db(db) as con:
        return results_more.case_outcomes(con, grid=grid, period=period)


@st.cache_data(show_spinner=False, max_entries=2)
def brief_bytes(project_dir: str, mtime: float) -> bytes:
    """The brief PDF of the project (:func:`pipelines.brief.write_brief`), as bytes."""
    from pipelines.brief import write_brief

    with tempfile.TemporaryDirectory(prefix="gridgov-brief-") as tmp:
        out = write_brief(project_dir, Path(tmp) / "brief.pdf")
        return Path(out).read_bytes()


# --------------------------------------------------------------------------------------------
# plain functions


def min_cases(settings: dict | None) -> int:
    """``[cases] min_cases`` of the run's settings, else the stage's default."""
    from geo.caserates import DEFAULTS

    cfg = (settings or {}).get("cases") or {}
    try:
        return int(cfg.get("min_cases", DEFAULTS["min_cases"]))
    except (TypeError, ValueError):
        return int(DEFAULTS["min_cases"])


def scopes_present(rates: pd.DataFrame) -> list[str]:
    """The scopes of :data:`SCOPES` that have rows, in that order."""
    have = set(rates["scope"].dropna())
    return [s for s in SCOPES if s in have]


def default_scope(rates: pd.DataFrame) -> str:
    """The first scope (street first) whose overall rows carry a red and a black list."""
    scopes = scopes_present(rates)
    for s in scopes:
        part = rates[(rates["scope"] == s) & (rates["period"] == "all")]
        if {"red", "black"} <= set(part["board"].dropna()):
            return s
    return scopes[0] if scopes else "street"


def periods(rates: pd.DataFrame, scope: str) -> list[str]:
    """``all`` then the months of ``scope``, newest first."""
    months = sorted({p for p in rates.loc[rates["scope"] == scope, "period"].dropna()
                     if p != "all"}, reverse=True)
    return ["all", *months]


def default_period(rates: pd.DataFrame, scope: str) -> str:
    """The newest month of ``scope`` with a red and a black list, else ``all``."""
    part = rates[(rates["scope"] == scope) & (rates["period"] != "all")]
    for month in periods(rates, scope)[1:]:
        if {"red", "black"} <= set(part.loc[part["period"] == month, "board"].dropna()):
            return month
    return "all"


def rows(rates: pd.DataFrame, scope: str, period: str) -> pd.DataFrame:
    """Rows of one scope and period: ranked first by rank, then the small ones by cases."""
    part = rates[(rates["scope"] == scope) & (rates["period"] == period)].copy()
    part["_r"] = pd.to_numeric(part["rank"], errors="coerce")
    part = part.sort_values(["_r", "cases", "scope_id"], ascending=[True, False, True],
                            na_position="last")
    return part.drop(columns="_r").reset_index(drop=True)


def board(rates: pd.DataFrame, scope: str, period: str, which: str) -> pd.DataFrame:
    """The red (best first) or black list (worst first) of one scope and period."""
    part = rows(rates, scope, period)
    part = part[part["board"] == which]
    return part.iloc[::-1].reset_index(drop=True) if which == "black" else part


def unit_label(row) -> str:
    """``name (id)``, or the id alone when the name is the id."""
    name, sid = row["scope_name"], row["scope_id"]
    if name is None or (isinstance(name, float) and pd.isna(name)) or str(name) == str(sid):
        return str(sid)
    return f"{name} ({sid})"


#: Columns of the side-by-side red and black lists (narrow: half the page each).
LIST_COLUMNS = ["rank", "scope_name", "scope_id", "cases", "score"]


def table(part: pd.DataFrame, lang: str, n_min: int, *, note: bool = True,
          columns: list[str] | None = None) -> pd.DataFrame:
    """The rows as shown: translated headers, rates 0–1, a note on rows not ranked."""
    cols = columns or ["rank", "scope_name", "scope_id", "cases", "score", *RATES]
    out = part[cols].copy()
    out["rank"] = pd.to_numeric(out["rank"], errors="coerce").astype("Int64")
    out["scope_name"] = out["scope_name"].fillna(out["scope_id"])
    if note:
        small = part["small_n"].fillna(False).astype(bool).to_numpy()
        out["note"] = [t("cases.small_n_note", lang, n=n_min) if s else "" for s in small]
    return out.rename(columns={c: t(f"cases.col.{c}", lang) for c in out.columns})


def list_config(lang: str) -> dict:
    """Narrow columns for the side-by-side lists (half the page each: nothing hidden)."""
    c = st.column_config
    return {t(f"cases.col.{k}", lang): c.Column(width=w) for k, w in (
        ("rank", 40), ("scope_id", 105), ("cases", 55), ("score", 70))}


def styled(view: pd.DataFrame, small: pd.Series, lang: str):
    """``view`` as a Styler: rates and score as percent, rows in ``small`` greyed."""
    pct = [t(f"cases.col.{c}", lang) for c in ("score", *RATES)]
    view = view.reset_index(drop=True)
    mask = small.fillna(False).astype(bool).to_numpy()

    def grey(row):
        return [GREY if mask[row.name] else ""] * len(row)

    return (view.style.apply(grey, axis=1)
            .format({c: "{:.1%}" for c in pct if c in view.columns}, na_rep="—"))


def trend_frame(rates: pd.DataFrame, scope: str, scope_id: str, lang: str) -> pd.DataFrame:
    """Long frame of one unit's monthly rates: period, rate (translated), value, cases, small."""
    part = rates[(rates["scope"] == scope) & (rates["scope_id"] == scope_id)
                 & (rates["period"] != "all")].sort_values("period")
    long = part.melt(id_vars=["period", "cases", "small_n"], value_vars=list(RATES),
                     var_name="rate", value_name="value").dropna(subset=["value"])
    long["rate"] = long["rate"].map(lambda r: t(f"cases.col.{r}", lang))
    long["small_n"] = long["small_n"].fillna(False).astype(bool)
    return long.reset_index(drop=True)


def trend_chart(long: pd.DataFrame, lang: str) -> alt.Chart:
    """Lines of the five rates over months; hollow points where the month has few cases."""
    month, rate, value = (t("cases.col.period", lang), t("cases.col.rate", lang),
                          t("cases.col.value", lang))
    data = long.rename(columns={"period": month, "rate": rate, "value": value,
                                "cases": t("cases.col.cases", lang)})
    base = alt.Chart(data).encode(
        x=alt.X(f"{month}:O", title=month),
        y=alt.Y(f"{value}:Q", title=value, axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1])),
        color=alt.Color(f"{rate}:N", title=rate),
        tooltip=[alt.Tooltip(f"{month}:O"), alt.Tooltip(f"{rate}:N"),
                 alt.Tooltip(f"{value}:Q", format=".1%"),
                 alt.Tooltip(f"{t('cases.col.cases', lang)}:Q")],
    )
    full = base.mark_point(size=40, filled=True).transform_filter("!datum.small_n")
    few = base.mark_point(size=40, filled=False).transform_filter("datum.small_n")
    return (base.mark_line() + full + few).properties(height=320)


def case_table(cases: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The drill-down's cases as shown: flags as 是/否, translated headers."""
    cols = ["incident_id", "occurred_at", "category", "service_company", "department",
            "staff_id", "status", *FLAGS]
    out = cases[[c for c in cols if c in cases.columns]].copy()
    yes, no = t("cases.yes", lang), t("cases.no", lang)
    for f in FLAGS:
        if f in out.columns:
            v = pd.to_numeric(out[f], errors="coerce")
            out[f] = v.map(lambda x: "" if pd.isna(x) else (yes if x >= 1 else no)).astype(str)
    out = out.loc[:, [c for c in out.columns if out[c].notna().any()]]
    return out.rename(columns={c: t(f"cases.col.{c}", lang) for c in out.columns})
