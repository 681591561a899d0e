"""Early-warning page (预警, issue #11.4): the open alerts first with their place, window,
observed vs expected, recurrence interval in words, grid worker (staff id) and status; a map
of the alerted grids; and a control that sets an alert to acknowledged or closed.

Layout only: alerts from :func:`app_pages._alerts.load_alerts`; a status is written by
:func:`pipelines.results_alerts.save_alert_status` (the project's write lock, a read-write
connection only for the time of the write; refused while a run holds the lock).
"""
from __future__ import annotations

import streamlit as st

from app_pages import _alerts as al
from app_pages._mapview import map_context, map_downloads, map_notes, show_map
from app_pages._shared import current_db, load_or_stop
from app_pages.i18n import current_lang, t
from pipelines.results_alerts import AlertStatusError, save_alert_status

db, mtime = current_db()
lang = current_lang()
data = load_or_stop(al.load_alerts, db, mtime)
frame = data["alerts"]

st.title(t("alerts.title"))
flash = st.session_state.pop("alerts_flash", None)
if flash:
    getattr(st, flash[0])(flash[1])
st.markdown(t("alerts.intro", threshold=f"{float(data['threshold']):,.0f}"))

if not data["has_incidents"]:
    st.info(t("alerts.no_incidents"))  # an own city without the optional incidents layer
    st.stop()
if not data["has_table"]:
    st.info(t("alerts.no_table"))
    st.code(f"gridgov run {db.parent}", language="bash")
    st.stop()
if frame.empty:
    st.info(t("alerts.none"))
    st.stop()

# ---- figures -----------------------------------------------------------------------------
counts = frame["status"].value_counts()
k1, k2, k3, k4 = st.columns(4)
k1.metric(t("alerts.kpi.open"), f"{int(frame['is_open'].sum()):,}", border=True)
k2.metric(t("alerts.kpi.new"), f"{int(counts.get('new', 0)):,}", border=True)
k3.metric(t("alerts.kpi.acknowledged"), f"{int(counts.get('acknowledged', 0)):,}", border=True)
k4.metric(t("alerts.kpi.closed"), f"{int(counts.get('closed', 0)):,}", border=True)

# ---- table -------------------------------------------------------------------------------
st.subheader(t("alerts.table"))
st.caption(t("alerts.table_caption"))
show_closed = st.toggle(t("alerts.show_closed"), key="alerts_show_closed")
shown = frame if show_closed else frame[frame["is_open"]]
st.dataframe(al.table_view(shown, lang), hide_index=True, width="stretch", key="alerts_table")

# ---- map ---------------------------------------------------------------------------------
st.subheader(t("alerts.map"))
ctx = map_context(db, mtime)
fmap = al.alerts_map(shown, data["grids"], bounds=ctx.bounds, lang=lang, tiles=ctx.tiles,
                     attribution=ctx.attribution, communities=data["communities"])
show_map(fmap, ctx, key="alerts_map", height=520)
map_downloads(db, mtime, "alerts", key="alerts_dl")
map_notes(ctx, t("alerts.map_caption"))

# ---- status ------------------------------------------------------------------------------
st.subheader(t("alerts.set"))
st.caption(t("alerts.set_caption"))
labels = {r.alert_id: al.choice_label(r) for r in frame.itertuples()}
with st.form("alerts_status_form"):
    chosen = st.selectbox(t("alerts.choose"), list(labels), format_func=labels.get,
                          key="alerts_choice")
    status = st.radio(t("alerts.new_status"), list(al.STATUS_CHOICES),
                      format_func=al.STATUS_CHOICES.get, horizontal=True, key="alerts_new_status")
    note = st.text_input(t("alerts.note"), key="alerts_note", max_chars=500)
    by = st.text_input(t("alerts.by"), key="alerts_by", max_chars=40)
    submitted = st.form_submit_button(t("alerts.save"), type="primary")
if submitted and chosen:
    try:
        save_alert_status(db, chosen, status, note=note, by=by)
    except AlertStatusError as exc:
        st.error(f"{exc.zh} / {exc.en}")
    else:
        st.session_state["alerts_flash"] = (
            "success", t("alerts.saved", alert_id=chosen, status=t(f"alerts.status.{status}")))
        st.rerun()
