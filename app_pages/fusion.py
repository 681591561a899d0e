"""Fusion page (多网融合, #10.3): each department's grids over the unified basic grids — split
grids, coverage, the proposal (which unified grids each department grid should adopt) — on an
offline map, as tables and as a printable Excel workbook.

Layout only: tables from :func:`app_pages._fusion.load_fusion` (``grid_fusion``,
``grid_fusion_overlaps``, ``department_grids``, the current plan's grids), the proposal from
:func:`geo.fusion.proposal`.
"""
from __future__ import annotations

import time

import streamlit as st

from app_pages import _fusion as fu
from app_pages._mapview import map_context, map_notes, show_map
from app_pages._shared import current_db, load_or_stop
from app_pages.i18n import current_lang, t

db, mtime = current_db()
lang = current_lang()
data = load_or_stop(fu.load_fusion, db, mtime)

st.title(t("fusion.title"))
summary, prop = data["summary"], data["proposal"]
if summary is None or summary.empty or prop is None or data["dept"].empty:
    st.info(t("fusion.none"))
    st.code(f"gridgov run {db.parent}", language="bash")
    st.stop()
st.markdown(t("fusion.intro", aligned=fu.ALIGNED_SHARE))

# ---- departments -------------------------------------------------------------------------
st.subheader(t("fusion.summary"))
departments = summary["department"].astype(str).tolist()
dept = st.selectbox(t("fusion.department"), departments, key="fusion_dept")
row = summary[summary["department"].astype(str) == dept].iloc[0]
mine = prop[prop["department"] == dept].reset_index(drop=True)
k1, k2, k3, k4 = st.columns(4)
k1.metric(t("fusion.kpi.grids"), f"{int(row['n_grids']):,}", border=True)
k2.metric(t("fusion.kpi.split"), f"{int(row['n_split']):,}  ({row['share_split']:.0%})",
          border=True)
k3.metric(t("fusion.kpi.aligned"), f"{int(mine['aligned'].sum()):,}  ({row['share_aligned']:.0%})",
          border=True)
k4.metric(t("fusion.kpi.coverage"), f"{1 - row['uncovered_share']:.1%}", border=True)
cols = ["department", "n_grids", "n_split", "share_split", "share_aligned", "uncovered_share"]
st.dataframe(summary[cols].rename(columns={c: t(f"fusion.col.{c}") for c in cols}),
             hide_index=True, width="stretch", column_config=fu.share_config(lang),
             key="fusion_summary")

# ---- map ---------------------------------------------------------------------------------
st.subheader(t("fusion.map"))
ctx = map_context(db, mtime)
dept_shapes = data["dept"][data["dept"]["department"].astype(str) == dept]
fmap = fu.fusion_map(dept_shapes, data["basic"], mine, metric_crs=data["crs"], lang=lang,
                     tiles=ctx.tiles, attribution=ctx.attribution)
show_map(fmap, ctx, key="fusion_map", height=560)
map_notes(ctx, t("fusion.map_caption"))

# ---- proposal ----------------------------------------------------------------------------
st.subheader(t("fusion.proposal"))
st.caption(t("fusion.proposal_caption"))
only_split = st.toggle(t("fusion.only_split"), key="fusion_only_split")
shown = mine[mine["split"]] if only_split else mine
st.dataframe(fu.proposal_view(shown, lang), hide_index=True, width="stretch",
             column_config=fu.share_config(lang), key="fusion_proposal")

# ---- workbook ----------------------------------------------------------------------------
st.caption(t("fusion.download_caption"))
stamp = time.strftime("%Y%m%d", time.localtime(mtime)) if mtime else "fusion"
overlaps = data["overlaps"]
st.download_button(
    t("fusion.download"),
    data=lambda: fu.workbook_bytes(summary, prop, overlaps),  # generated on click
    file_name=f"gridgov_fusion_{stamp}.xlsx", mime=fu.XLSX_MIME, key="fusion_xlsx",
    on_click="ignore", type="primary",
)
