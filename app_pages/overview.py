"""Overview page: what the project holds, how the last run went, and what was rejected."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages._shared import (
    COUNT_TABLES,
    current_db,
    half,
    load_rejects_summary,
    load_runs,
    load_table_counts,
    show_db_error,
)
from app_pages.i18n import current_lang, label, t

db, mtime = current_db()
try:
    counts = load_table_counts(str(db), mtime)
    runs = load_runs(str(db), mtime)
    rejects = load_rejects_summary(str(db), mtime)
except Exception as exc:  # a locked or corrupt file: say so instead of a traceback
    show_db_error(db, exc)

st.title(t("overview.title"))

# ---- counts ------------------------------------------------------------------------------
st.subheader(t("overview.counts"))
cards = ["streets", "communities", "buildings", "households", "residents",
         "incidents", "special_units", "staff"]
cols = st.columns(4)
for i, key in enumerate(cards):
    value = counts.get(key)
    shown = f"{value:,}" if value is not None else "—"
    help_ = t("count.not_supplied") if value is None and key in COUNT_TABLES else None
    cols[i % 4].metric(t(f"count.{key}"), shown, help=help_, border=True)

with st.expander(t("overview.all_tables")):
    tables = pd.DataFrame(
        [(name, n) for name, n in counts.items() if name not in ("households", "residents")],
        columns=[t("col.table"), t("col.rows")],
    )
    st.dataframe(tables, hide_index=True, width="stretch")

# ---- latest run --------------------------------------------------------------------------
st.subheader(t("overview.run"))
if runs.empty:
    st.info(t("overview.no_runs"))
else:
    last = runs.iloc[0]
    started = pd.to_datetime(last["started_at"], errors="coerce")
    finished = pd.to_datetime(last["finished_at"], errors="coerce")
    duration = "—"
    if pd.notna(started) and pd.notna(finished):
        secs = (finished - started).total_seconds()
        duration = f"{secs:,.1f} s" if secs < 120 else f"{secs / 60:,.1f} min"
    fmt = "%Y-%m-%d %H:%M:%S"
    c1, c2, c3 = st.columns([1, 1, 2])
    c1.metric(t("run.status"), label("status", last["status"]), border=True)
    c2.metric(t("run.duration"), duration, border=True)
    c3.markdown(
        f"{t('run.run_id')}: `{last['run_id']}`  \n"
        f"{t('run.started_at')}: {started.strftime(fmt) if pd.notna(started) else '—'}  \n"
        f"{t('run.finished_at')}: {finished.strftime(fmt) if pd.notna(finished) else '—'}"
    )
    status = str(last["status"]).lower()
    if status in ("failed", "error"):
        st.error(f"{t('run.status')}: {label('status', last['status'])}")

    with st.expander(t("run.history")):
        history = runs.assign(status=[label("status", s) for s in runs["status"]]).rename(
            columns={c: t(f"run.{c}") for c in ("run_id", "started_at", "finished_at", "status")}
        )
        st.dataframe(history, hide_index=True, width="stretch")

# ---- rejects -----------------------------------------------------------------------------
st.subheader(t("overview.rejects"))
total = int(rejects["n"].sum()) if not rejects.empty else 0
st.columns(4)[0].metric(t("overview.rejects_total"), f"{total:,}", border=True)
if total == 0:
    st.success(t("overview.rejects_none"))
else:
    by_layer = rejects.groupby("layer", as_index=False)["n"].sum()
    by_layer["layer"] = [label("layer_name", v) for v in by_layer["layer"]]
    left, right = st.columns([1, 2])
    left.dataframe(
        by_layer.rename(columns={"layer": t("col.layer"), "n": t("col.count")}),
        hide_index=True, width="stretch",
    )
    lang = current_lang()
    detail = rejects.assign(
        layer=[label("layer_name", v) for v in rejects["layer"]],
        reason=[half(r, lang) for r in rejects["reason"]],  # stored as "中文 / English"
    )
    right.dataframe(
        detail.rename(columns={"layer": t("col.layer"), "reason": t("col.reason"),
                               "n": t("col.count")}),
        hide_index=True, width="stretch",
    )
    st.caption(t("overview.rejects_help"))
