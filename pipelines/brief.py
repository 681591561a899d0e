"""A brief that prints: one A4 landscape PDF page per theme, for a district meeting.

``write_brief(project_dir, out_pdf)`` reads a project's result tables (read-only) and writes a
PDF with matplotlib's PDF backend — offline, no browser, no LaTeX — with a CJK font embedded
(Noto Sans CJK SC when installed, ``pdf.fonttype`` 42). Pages, in order (:data:`THEMES`):

1. 风险与预警 risk and alerts — grids by risk score, hot spots, early-warning signals;
2. 案件三率与红黑榜 case rates and the red–black list of the latest month;
3. 人员配置 staffing and allocation — gaps in whole people and why streets are short;
4. 网格与融合 grids and fusion — the current plan's grids and other departments' grids.

Each page has a map (the tables' own geometries in the metric CRS, a scale bar and a north
arrow), a small table, the data date and the plan id. A table the run did not produce gives a
one-line note instead. Why matplotlib: ``docs/brief.md``.
"""
from __future__ import annotations

import logging
import math
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from pipelines import results
from pipelines.db import read_gdf, read_table, table_exists
from pipelines.errors import GridgovError

log = logging.getLogger(__name__)

#: (key, Chinese title, English title), one page each, in order.
THEMES: tuple[tuple[str, str, str], ...] = (
    ("risk", "风险与预警", "Risk and alerts"),
    ("cases", "案件三率与红黑榜", "Case rates and the red–black list"),
    ("staffing", "人员配置", "Staffing and allocation"),
    ("grids", "网格与融合", "Grids and fusion"),
)

#: CJK font families tried in order; any other font whose name says CJK/Han/Hei is the fallback.
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
                "Noto Sans CJK TC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
                "SimHei", "Microsoft YaHei", "PingFang SC", "Droid Sans Fallback")
_CJK_HINTS = ("cjk", "han sans", "han serif", "hei", "song", "kai", "wenquanyi", "fallback",
              "yahei", "ming")

A4_LANDSCAPE = (11.69, 8.27)  # inches
_RED, _BLACK = "#c0392b", "#1b1b1b"
_HOT = {"hot_99": "#08306b", "hot_95": "#2171b5", "hot_90": "#6baed6"}  # outlines on a warm fill
_CLASS_ZH = {"hot_99": "热点99%", "hot_95": "热点95%", "hot_90": "热点90%", "cold_99": "冷点99%",
             "cold_95": "冷点95%", "cold_90": "冷点90%", "none": "—"}


class BriefError(GridgovError):
    """The brief cannot be written (no database, no CJK font); the message is bilingual."""


@dataclass
class _Page:
    """What one page shows: key lines, a table (header + rows) and a note under it."""

    key: str
    title_zh: str
    title_en: str
    lines: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    align: list[str] = field(default_factory=list)  # "l" or "r" per column
    note: str = ""
    legend: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, colour, label)


# --------------------------------------------------------------------------------------------
# fonts


def cjk_font() -> tuple[str, str, bool]:
    """The CJK font to embed: ``(family, file, preferred)``.

    Noto Sans CJK SC (Debian/Ubuntu ``fonts-noto-cjk``) first, then the other
    :data:`CJK_FAMILIES`, then any installed font whose name suggests CJK glyphs;
    ``preferred`` is False for the last two (the caller says so).

    Raises
    ------
    BriefError
        No CJK font is installed.
    """
    from matplotlib import font_manager as fm

    for i, family in enumerate(CJK_FAMILIES):
        try:
            path = fm.findfont(fm.FontProperties(family=family), fallback_to_default=False)
        except ValueError:
            continue
        return family, path, i == 0
    for f in sorted(fm.fontManager.ttflist, key=lambda f: (f.name, f.fname)):
        if any(h in f.name.lower() for h in _CJK_HINTS):
            return f.name, f.fname, False
    raise BriefError(
        "未找到中文字体，简报无法显示汉字。请安装 Noto Sans CJK（Debian/Ubuntu：apt install fonts-noto-cjk），"
        "然后删除 matplotlib 字体缓存（~/.cache/matplotlib）后重试。",
        "No CJK font found, so the brief cannot show Chinese. Install Noto Sans CJK (Debian/Ubuntu: "
        "apt install fonts-noto-cjk), clear matplotlib's font cache (~/.cache/matplotlib) and retry.",
    )


# --------------------------------------------------------------------------------------------
# small formatters


def _pct(x: Any) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) or pd.isna(x) \
        else f"{float(x) * 100:.1f}%"


def _int(x: Any) -> str:
    return "—" if x is None or pd.isna(x) else f"{int(round(float(x))):,}"


def _signed(x: Any) -> str:
    if x is None or pd.isna(x):
        return "—"
    v = int(round(float(x)))
    return f"+{v}" if v > 0 else str(v)


def _width(text: str) -> float:
    """Printed width in ems: wide (CJK) characters 1, others about 0.55."""
    return sum(1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.56 for ch in str(text))


_NO_LINE_START = set("）)]】」』。，、；：！？%．.,;:!?")


def wrap(text: str, ems: float) -> list[str]:
    """Break ``text`` into lines no wider than ``ems`` (CJK-aware: breaks between characters,
    and at spaces in Latin text)."""
    lines: list[str] = []
    for para in str(text).split("\n"):
        line, w = "", 0.0
        tokens: list[str] = []
        buf = ""
        for ch in para:  # Latin words stay whole; every CJK character is its own token
            if unicodedata.east_asian_width(ch) in "WF" or ch == " ":
                if buf:
                    tokens.append(buf)
                    buf = ""
                tokens.append(ch)
            else:
                buf += ch
        if buf:
            tokens.append(buf)
        for tok in tokens:
            tw = _width(tok)
            # a closing mark never starts a line (禁则): it stays on the line it closes
            if w + tw > ems and line.strip() and tok not in _NO_LINE_START:
                lines.append(line.rstrip())
                line, w = ("" if tok == " " else tok), (0.0 if tok == " " else tw)
            else:
                line += tok
                w += tw
        lines.append(line.rstrip())
    return lines


# --------------------------------------------------------------------------------------------
# reading


def _context(con) -> dict:
    run = results.latest_run(con)
    data_date = None
    if table_exists(con, "incidents") and "occurred_at" in results.columns(con, "incidents"):
        data_date = con.execute("SELECT max(occurred_at) FROM incidents").fetchone()[0]
    if data_date is None and run.get("finished_at") is not None:
        data_date = run["finished_at"]
    plan_id = None
    plans = results.plans(con)
    if len(plans):
        cur = plans[plans["is_current"].fillna(False).astype(bool)]
        plan_id = (cur if len(cur) else plans)["plan_id"].iloc[0]
    elif table_exists(con, "grids") and "plan_id" in results.columns(con, "grids"):
        plan_id = con.execute("SELECT max(plan_id) FROM grids").fetchone()[0]
    streets = (read_table(con, results.select_columns(
        con, "streets", ["street_code", "street_name", "district_name"], geometry=None))
        if table_exists(con, "streets") else pd.DataFrame(
            columns=["street_code", "street_name", "district_name"]))
    districts = sorted({str(d) for d in streets["district_name"].dropna()})
    if len(streets) == 1:
        area = f"{'、'.join(districts)} {streets['street_name'].iloc[0]}".strip()
    else:
        area = f"{'、'.join(districts)}（{len(streets)} 个街道）" if districts else f"{len(streets)} 个街道"
    return {
        "data_date": pd.Timestamp(data_date).strftime("%Y-%m-%d") if data_date is not None else "—",
        "plan_id": plan_id or "—",
        "run_id": run.get("run_id") or "—",
        "area": area,
        "n_streets": len(streets),
        "street_names": results.names(con, "streets"),
        "community_names": results.names(con, "communities"),
        "crs": results.metric_crs(con) or "EPSG:3857",
    }


def _units(con, level: str) -> gpd.GeoDataFrame:
    table, code, name = (("streets", "street_code", "street_name") if level == "street"
                         else ("communities", "community_code", "community_name"))
    if not table_exists(con, table):
        return gpd.GeoDataFrame(columns=["code", "name", "geometry"], geometry="geometry",
                                crs="EPSG:4326")
    g = read_gdf(con, results.select_columns(con, table, [code, name]))
    return g.rename(columns={code: "code", name: "name"})


def _level(ctx: dict) -> str:
    """Streets when there are several, else the communities of the one street."""
    return "street" if ctx["n_streets"] >= 2 else "community"


# --------------------------------------------------------------------------------------------
# pages: content


def _risk_page(con, ctx: dict) -> tuple[_Page, list]:
    page = _Page("risk", *THEMES[0][1:])
    layers: list = []
    grids = results.plan_grids(con)
    risk = (read_table(con, "SELECT grid_id, risk_score FROM grid_risk")
            if table_exists(con, "grid_risk") else pd.DataFrame(columns=["grid_id", "risk_score"]))
    hs = results.hotspots(con, category="all", period="all")
    hs = hs[["grid_id", "hotspot_class"]].drop_duplicates("grid_id") if len(hs) else \
        pd.DataFrame(columns=["grid_id", "hotspot_class"])
    alerts = None
    if table_exists(con, "alerts"):
        cols = ["alert_id", "detected_at", "grid_id", "category", "observed", "expected",
                "recurrence_days", "status"]
        has_geom = "geometry" in results.columns(con, "alerts")
        sql = results.select_columns(con, "alerts", cols, geometry="geometry" if has_geom else None)
        alerts = read_gdf(con, sql) if has_geom else read_table(con, sql)
    if len(grids):
        g = grids.merge(risk, on="grid_id", how="left").merge(hs, on="grid_id", how="left")
        layers.append(("choropleth", g, "risk_score", "YlOrRd", "风险指数 risk score"))
        hot = g[g["hotspot_class"].isin(list(_HOT))]
        for cls, colour in _HOT.items():
            part = hot[hot["hotspot_class"] == cls]
            if len(part):
                layers.append(("outline", part, colour, 2.0))
                page.legend.append(("line", colour, f"{_CLASS_ZH[cls]} hot spot"))
        if alerts is not None and isinstance(alerts, gpd.GeoDataFrame) and len(alerts):
            layers.append(("points", alerts, "#6a0dad", "^"))
            page.legend.append(("marker", "#6a0dad", "预警 alert"))
        n_hot = int(g["hotspot_class"].isin(list(_HOT)).sum())
        n_cold = int(g["hotspot_class"].fillna("").str.startswith("cold").sum())
        page.lines = [
            f"网格 {len(g):,} 个；热点网格 {n_hot} 个，冷点网格 {n_cold} 个（全部类别、全期，错误发现率校正）",
            f"Grids: {len(g):,}; hot spots: {n_hot}; cold spots: {n_cold} (all categories, whole period).",
        ]
        n_alert = {}
        if alerts is not None and len(alerts):
            st = alerts["status"].fillna("new") if "status" in alerts else pd.Series("new", alerts.index)
            page.lines.append(f"预警信号 {len(alerts)} 条，其中未处理（new）{int((st == 'new').sum())} 条。"
                              f" / {len(alerts)} early-warning signals.")
            n_alert = alerts.groupby("grid_id").size().to_dict()
        else:
            page.lines.append("本次运行没有预警表（alerts）。 / No alerts table in this run.")
        top = g.dropna(subset=["risk_score"]).sort_values(
            ["risk_score", "grid_id"], ascending=[False, True]).head(10)
        page.header = ["网格 grid", "社区 community", "风险指数", "热点", "预警"]
        page.align = ["l", "l", "r", "l", "r"]
        for r in top.itertuples():
            page.rows.append([
                str(r.grid_id), ctx["community_names"].get(r.community_code, str(r.community_code)),
                f"{float(r.risk_score):.2f}", _CLASS_ZH.get(str(r.hotspot_class), "—"),
                str(n_alert.get(r.grid_id, 0)),
            ])
        page.note = ("风险指数综合事件、独居老人、残疾人、低保对象与重点单位，越高越需关注；"
                     "表中为风险最高的 10 个网格。 The risk index combines incidents, vulnerable "
                     "residents and special units (higher: more attention); the ten highest grids.")
    else:
        page.lines = ["本次运行没有网格表（grids）。 / No grids in this run."]
    return page, layers


def _cases_page(con, ctx: dict) -> tuple[_Page, list]:
    page = _Page("cases", *THEMES[1][1:])
    layers: list = []
    if not table_exists(con, "case_rates"):
        page.lines = ["本次运行没有案件三率表（case_rates）。 / No case_rates table in this run."]
        return page, layers
    level = _level(ctx)
    row = con.execute("SELECT max(period) FROM case_rates WHERE scope = ? AND period <> 'all'",
                      [level]).fetchone()
    period = row[0] if row and row[0] else "all"
    cols = ("scope_id, cases, response_rate, resolution_rate, satisfaction_rate, "
            "on_time_close_rate, returned_rate, score, small_n, rank, board")
    rates = read_table(con, f"SELECT {cols} FROM case_rates WHERE scope = ? AND period = ? "
                            "ORDER BY rank NULLS LAST, scope_id", [level, period])
    overall = read_table(con, f"SELECT {cols} FROM case_rates WHERE scope = ? AND period = 'all'",
                         [level])
    names = ctx["street_names"] if level == "street" else ctx["community_names"]
    units = _units(con, level)
    if len(units):
        g = units.merge(rates, left_on="code", right_on="scope_id", how="left")
        layers.append(("choropleth", g, "score", "RdYlGn", "综合得分 score"))
        for board, colour in (("red", _RED), ("black", _BLACK)):
            part = g[g["board"] == board]
            if len(part):
                layers.append(("outline", part, colour, 2.6))
        page.legend += [("line", _RED, "红榜 red list"), ("line", _BLACK, "黑榜 black list")]
        layers.append(("labels", g[g["board"].notna()], "name"))
    word = "街道" if level == "street" else "社区"
    tot = int(overall["cases"].sum()) if len(overall) else 0
    page.lines = [
        f"统计月份 {period}；按{word}排名（案件少于 {_min_cases(con)} 件的不排名）。",
        f"Month {period}, ranked by {'street' if level == 'street' else 'community'}; "
        f"{tot:,} cases over the whole period.",
    ]
    if len(overall):
        w = overall["cases"].astype(float)

        def mean(col: str) -> str:
            v = overall[col].astype(float)
            ok = v.notna()
            return _pct((v[ok] * w[ok]).sum() / w[ok].sum()) if ok.any() and w[ok].sum() else "—"

        page.lines.append(f"全期：响应率 {mean('response_rate')}，解决率 {mean('resolution_rate')}，"
                          f"满意率 {mean('satisfaction_rate')}，退单率 {mean('returned_rate')}。")
    page.header = ["榜", "名次", "名称 name", "案件", "响应率", "解决率", "满意率", "按期办结", "退单率"]
    page.align = ["l", "r", "l", "r", "r", "r", "r", "r", "r"]
    for board, label in (("red", "红榜"), ("black", "黑榜")):
        part = rates[rates["board"] == board].sort_values("rank")
        for r in part.itertuples():
            page.rows.append([label, _int(r.rank), names.get(r.scope_id, str(r.scope_id)),
                              _int(r.cases), _pct(r.response_rate), _pct(r.resolution_rate),
                              _pct(r.satisfaction_rate), _pct(r.on_time_close_rate),
                              _pct(r.returned_rate)])
    comp = read_table(con, "SELECT scope_id, rank, satisfaction_rate, response_rate FROM case_rates "
                           "WHERE scope = 'service_company' AND period = 'all' AND board = 'black' "
                           "ORDER BY rank DESC")
    if len(comp):
        page.note = ("企业黑榜（全期）Service companies, black list: " + "；".join(
            f"{r.scope_id}（响应率 {_pct(r.response_rate)}，满意率 {_pct(r.satisfaction_rate)}）"
            for r in comp.itertuples()) + "。")
    if not page.rows:
        page.note = ("本月没有达到最少案件数的单位，不排名。 No unit has enough cases this month to be "
                     "ranked. " + page.note)
    return page, layers


def _min_cases(con) -> int:
    s = results.latest_run(con).get("settings", {}).get("cases") or {}
    from pipelines.stage_cases import DEFAULTS

    return int(s.get("min_cases", DEFAULTS["min_cases"]))


def _staffing_page(con, ctx: dict) -> tuple[_Page, list]:
    page = _Page("staffing", *THEMES[2][1:])
    layers: list = []
    if not table_exists(con, "community_allocation"):
        page.lines = ["本次运行没有人员配置表。 / No staffing tables in this run."]
        return page, layers
    comm = read_table(con, results.select_columns(con, "community_allocation", [
        "community_code", "community_name", "current_staff", "recommended_staff", "gap",
        "workload"], geometry=None))
    units = _units(con, "community")
    if len(units):
        g = units.merge(comm, left_on="code", right_on="community_code", how="left")
        g["gap_people"] = pd.to_numeric(g["gap"], errors="coerce")
        layers.append(("diverging", g, "gap_people", "RdBu_r", "缺口（人）gap, people"))
        if len(g) <= 40:
            g["gap_label"] = [_signed(v) for v in g["gap_people"]]
            layers.append(("labels", g, "gap_label"))
    ex = read_table(con, "staffing_explanation") if table_exists(con, "staffing_explanation") else None
    if _level(ctx) == "street" and table_exists(con, "street_allocation"):
        t = read_table(con, results.select_columns(con, "street_allocation", [
            "street_code", "street_name", "current_staff", "recommended_staff", "gap", "workload",
            "gap_rank"], geometry=None)).sort_values("gap_rank").head(12)
        t = t.rename(columns={"street_name": "name"})
        page.header = ["街道 street", "现有(人)", "建议(人)", "缺口(人)", "工作量(小时/月)"]
    else:
        t = comm.sort_values(["gap", "community_code"], ascending=[False, True]).head(12)
        t = t.rename(columns={"community_name": "name"})
        page.header = ["社区 community", "现有(人)", "建议(人)", "缺口(人)", "工作量(小时/月)"]
    page.align = ["l", "r", "r", "r", "r"]
    for r in t.itertuples():
        page.rows.append([str(r.name), _int(r.current_staff), _int(r.recommended_staff),
                          _signed(r.gap), _int(r.workload)])
    if ex is not None and len(ex):
        want = "street" if _level(ctx) == "street" else "community"
        e = ex[ex["level"] == want].iloc[0] if "level" in ex and (ex["level"] == want).any() \
            else ex.iloc[0]
        page.lines = [
            f"编制 {_int(e['budget'])} 人，现有 {_int(e['current_staff'])} 人，"
            f"工作量需 {_int(e['required_people'])} 人；缺员 {_int(e['people_short'])} 人，"
            f"超员 {_int(e['people_over'])} 人。",
            f"Budget {_int(e['budget'])} people, {_int(e['current_staff'])} today, workload needs "
            f"{_int(e['required_people'])}.",
        ]
        page.note = str(e["explanation_zh"])
    else:
        page.lines = [f"社区 {len(comm)} 个；缺口为建议人数减现有人数（正数为缺员）。"]
    return page, layers


def _grids_page(con, ctx: dict) -> tuple[_Page, list]:
    page = _Page("grids", *THEMES[3][1:])
    layers: list = []
    grids = results.plan_grids(con)
    if len(grids):
        g = grids.copy()
        g["households"] = pd.to_numeric(g["households"], errors="coerce")
        layers.append(("choropleth", g, "households", "Blues", "户数 households"))
        ded = g[g["grid_type"] == "dedicated"]
        if len(ded):
            layers.append(("outline", ded, "#7b3294", 1.6))
            page.legend.append(("line", "#7b3294", "专属网格 dedicated grid"))
    if table_exists(con, "department_grids"):
        dept = read_gdf(con, results.select_columns(con, "department_grids", ["department", "grid_id"]))
        if len(dept):
            layers.append(("dashed", dept, "#e66101", 1.1))
            page.legend.append(("dash", "#e66101", "部门网格 department grids"))
    if table_exists(con, "grid_metrics"):
        m = read_table(con, results.select_columns(con, "grid_metrics", [
            "plan_id", "n_grids", "n_basic", "n_dedicated", "households_min", "households_max",
            "share_within_norm", "mean_compactness", "contiguous"], geometry=None)
            + " WHERE plan_id = ?", [str(ctx["plan_id"])])
        if len(m):
            r = m.iloc[-1]
            page.lines = [
                f"方案 {r['plan_id']}：网格 {_int(r['n_grids'])} 个（基础 {_int(r['n_basic'])}，"
                f"专属 {_int(r['n_dedicated'])}）；每格 {_int(r['households_min'])}–"
                f"{_int(r['households_max'])} 户；符合规模标准 {_pct(r['share_within_norm'])}。",
                f"紧凑度均值 {float(r['mean_compactness']):.2f}；每个网格连通："
                f"{'是' if bool(r['contiguous']) else '否'}。 Plan {r['plan_id']}: "
                f"{_int(r['n_grids'])} grids, {_pct(r['share_within_norm'])} within the norm.",
            ]
    if not page.lines:
        page.lines = [f"方案 {ctx['plan_id']}；网格 {len(grids):,} 个。"]
    if table_exists(con, "grid_fusion"):
        f = read_table(con, results.select_columns(con, "grid_fusion", [
            "department", "n_grids", "n_split", "share_split", "share_aligned", "uncovered_share"],
            geometry=None) + " ORDER BY department")
        page.header = ["部门 department", "部门网格数", "被基础网格分割", "分割比例", "对齐比例", "未覆盖比例"]
        page.align = ["l", "r", "r", "r", "r", "r"]
        for r in f.itertuples():
            page.rows.append([str(r.department), _int(r.n_grids), _int(r.n_split),
                              _pct(r.share_split), _pct(r.share_aligned), _pct(r.uncovered_share)])
        page.note = ("网格融合：部门网格被多个基础网格分割的比例越低、对齐比例越高，"
                     "“多网合一”越容易。 Fusion: fewer split and more aligned department grids "
                     "make one shared grid easier.")
    else:
        page.note = "本次运行没有网格融合表（grid_fusion）。 / No grid_fusion table in this run."
    return page, layers


# --------------------------------------------------------------------------------------------
# pages: drawing


def _draw_map(fig, rect, layers: list, ctx: dict, page: _Page) -> None:
    import matplotlib.colors as mcolors
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.lines import Line2D

    ax = fig.add_axes(rect)
    ax.set_axis_off()
    crs = ctx["crs"]
    drawn = False
    bounds = None
    for layer in layers:
        kind, gdf = layer[0], layer[1]
        if gdf is None or not len(gdf):
            continue
        g = gdf[gdf.geometry.notna()].to_crs(crs)
        if kind in ("choropleth", "diverging"):
            col, cmap, label = layer[2], layer[3], layer[4]
            vals = pd.to_numeric(g[col], errors="coerce")
            if vals.notna().any():
                if kind == "diverging":
                    m = max(float(vals.abs().max()), 1.0)
                    norm = mcolors.TwoSlopeNorm(vmin=-m, vcenter=0.0, vmax=m)
                else:
                    norm = mcolors.Normalize(vmin=float(vals.min()), vmax=float(vals.max())
                                             if vals.max() > vals.min() else float(vals.min()) + 1)
                cm = colormaps[cmap]
                colours = [cm(norm(v)) if pd.notna(v) else (0.92, 0.92, 0.92, 1) for v in vals]
                g.plot(ax=ax, color=colours, edgecolor="#666666", linewidth=0.3)
                cax = fig.add_axes([rect[0] + 0.02, rect[1] + 0.035, rect[2] * 0.35, 0.014])
                cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cm), cax=cax,
                                  orientation="horizontal")
                cb.ax.tick_params(labelsize=7)
                cb.ax.xaxis.set_label_position("top")
                cb.set_label(label, fontsize=7.5)
            else:
                g.plot(ax=ax, color="#eeeeee", edgecolor="#666666", linewidth=0.3)
            b = g.total_bounds
            bounds = b if bounds is None else np.r_[np.minimum(bounds[:2], b[:2]),
                                                   np.maximum(bounds[2:], b[2:])]
            drawn = True
        elif kind == "outline":  # many outlines: thinner, so the fill stays readable
            g.boundary.plot(ax=ax, color=layer[2],
                            linewidth=layer[3] if len(g) <= 100 else min(layer[3], 0.7))
        elif kind == "dashed":  # many department grids: thinner, lighter lines
            lw, alpha = (layer[3], 1.0) if len(g) <= 200 else (0.35, 0.7)
            g.boundary.plot(ax=ax, color=layer[2], linewidth=lw, alpha=alpha,
                            linestyle=(0, (4, 2)))
        elif kind == "points":
            pts = g.geometry.representative_point()
            ax.scatter(pts.x, pts.y, s=36, marker=layer[3], color=layer[2], edgecolor="white",
                       linewidth=0.6, zorder=5)
        elif kind == "labels":
            col = layer[2]
            pts = g.geometry.representative_point()
            for p, text in zip(pts, g[col]):
                if isinstance(text, str) and text:
                    ax.annotate(text, (p.x, p.y), fontsize=6.5, ha="center", va="center",
                                color="#111111", zorder=6,
                                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                                      "alpha": 0.75})
    if not drawn:
        ax.text(0.5, 0.5, "无可绘制的地图数据 / nothing to map", ha="center", va="center",
                fontsize=10, transform=ax.transAxes)
        return
    pad_x, pad_y = (bounds[2] - bounds[0]) * 0.04, (bounds[3] - bounds[1]) * 0.04
    x0, x1 = bounds[0] - pad_x, bounds[2] + pad_x
    y0, y1 = bounds[1] - pad_y * 5, bounds[3] + pad_y  # room for the colour bar below
    fig_w, fig_h = fig.get_size_inches()
    box = rect[2] * fig_w / (rect[3] * fig_h)  # width / height of the axes on paper
    if (x1 - x0) / (y1 - y0) < box:  # too tall: widen around the centre
        half = (y1 - y0) * box / 2
        cx = (x0 + x1) / 2
        x0, x1 = cx - half, cx + half
    else:  # too wide: extend upwards and downwards alike
        extra = ((x1 - x0) / box - (y1 - y0)) / 2
        y0, y1 = y0 - extra, y1 + extra
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal", adjustable="box")
    _scale_bar(ax)
    ax.annotate("N", xy=(0.96, 0.97), xytext=(0.96, 0.89), xycoords="axes fraction",
                ha="center", va="center", fontsize=9, fontweight="bold",
                arrowprops={"arrowstyle": "-|>", "color": "#222222", "lw": 1.2})
    if page.legend:
        handles = []
        for kind, colour, label in page.legend:
            if kind == "marker":
                handles.append(Line2D([], [], marker="^", color=colour, linestyle="", label=label))
            else:
                handles.append(Line2D([], [], color=colour, lw=2,
                                      linestyle="--" if kind == "dash" else "-", label=label))
        ax.legend(handles=handles, loc="upper left", fontsize=7, frameon=True, framealpha=0.85)


def _scale_bar(ax) -> None:
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    span = (x1 - x0) * 0.25
    nice = 10 ** math.floor(math.log10(span))
    length = max(v * nice for v in (1, 2, 5) if v * nice <= span)
    bx, by = x1 - (x1 - x0) * 0.05 - length, y0 + (y1 - y0) * 0.035
    ax.plot([bx, bx + length], [by, by], color="#222222", lw=2.2, solid_capstyle="butt")
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.text(bx + length / 2, by + (y1 - y0) * 0.012, label, ha="center", va="bottom", fontsize=7)


def _draw_panel(fig, rect, page: _Page) -> None:
    """Key lines, the table and the note in the right-hand panel."""
    x0, y0, w, h = rect
    fig_w, fig_h = fig.get_size_inches()
    size = 8.5
    line_h = size * 1.55 / 72 / fig_h  # figure fraction per text line
    em_w = size / 72 / fig_w  # one em in figure fraction (width)
    max_ems = w / em_w
    y = y0 + h
    for text in page.lines:
        for ln in wrap(text, max_ems):
            fig.text(x0, y, ln, fontsize=size, va="top", ha="left")
            y -= line_h
    y -= line_h * 0.6
    if page.header:
        widths = [max([_width(page.header[i])] + [_width(r[i]) for r in page.rows]) + 1.2
                  for i in range(len(page.header))]
        scale = min(1.0, max_ems / sum(widths))
        fs = size * scale if scale < 1 else size
        col_x, acc = [], 0.0
        for wd in widths:
            col_x.append(acc)
            acc += wd
        ems = size / 72 / fig_w * (fs / size)
        rows_h = line_h * (fs / size) * 1.05
        table_w = acc * ems
        fig.add_artist(_rule(x0, y + rows_h * 0.15, table_w))
        for i, head in enumerate(page.header):
            _cell(fig, x0, col_x, widths, ems, i, y, head, page.align, fs, bold=True)
        y -= rows_h
        fig.add_artist(_rule(x0, y + rows_h * 0.15, table_w))
        for k, row in enumerate(page.rows):
            if k % 2 == 0:
                from matplotlib.patches import Rectangle
                fig.add_artist(Rectangle((x0, y - rows_h * 0.85), table_w, rows_h,
                                         transform=fig.transFigure, color="#f2f2f2", zorder=0))
            colour = _RED if row and row[0] == "红榜" else None
            for i, cell in enumerate(row):
                _cell(fig, x0, col_x, widths, ems, i, y, cell, page.align, fs,
                      colour=colour if i == 0 else None)
            y -= rows_h
        fig.add_artist(_rule(x0, y + rows_h * 0.15, table_w))
        y -= line_h * 0.6
    if page.note:
        for ln in wrap(page.note, max_ems):
            fig.text(x0, y, ln, fontsize=size - 0.5, va="top", ha="left", color="#333333")
            y -= line_h * 0.95
    if y < y0 - 0.01:
        log.warning("brief page %s: the panel runs %.3f below its box", page.key, y0 - y)


def _rule(x: float, y: float, width: float):
    from matplotlib.lines import Line2D

    return Line2D([x, x + width], [y, y], color="#444444", lw=0.6)


def _cell(fig, x0, col_x, widths, ems, i, y, text, align, fs, *, bold=False, colour=None) -> None:
    right = (align[i] if i < len(align) else "l") == "r"
    x = x0 + (col_x[i] + (widths[i] - 0.6 if right else 0.0)) * ems
    fig.text(x, y, str(text), fontsize=fs, va="top", ha="right" if right else "left",
             fontweight="bold" if bold else "normal", color=colour or "#111111")


def _draw_page(page: _Page, layers: list, ctx: dict, number: int, total: int):
    from matplotlib.figure import Figure

    fig = Figure(figsize=A4_LANDSCAPE)
    fig.text(0.03, 0.955, f"网格化治理简报 · {page.title_zh}", fontsize=17, fontweight="bold",
             va="top")
    fig.text(0.97, 0.955, page.title_en, fontsize=11, va="top", ha="right", color="#444444")
    fig.text(0.03, 0.905, f"数据日期 Data date: {ctx['data_date']}    方案 Plan: {ctx['plan_id']}    "
             f"范围 Area: {ctx['area']}", fontsize=9, va="top", color="#222222")
    from matplotlib.lines import Line2D

    fig.add_artist(Line2D([0.03, 0.97], [0.875, 0.875], color="#999999", lw=0.8))
    _draw_map(fig, [0.03, 0.075, 0.52, 0.78], layers, ctx, page)
    _draw_panel(fig, [0.585, 0.085, 0.385, 0.765], page)
    fig.add_artist(Line2D([0.03, 0.97], [0.055, 0.055], color="#999999", lw=0.5))
    fig.text(0.03, 0.045, f"gridgov 网格化治理分析平台 · 运行 run {ctx['run_id']} · 地图为项目数据几何，"
             f"投影 {ctx['crs']}", fontsize=7, va="top", color="#555555")
    fig.text(0.97, 0.045, f"数据日期 {ctx['data_date']} · 方案 {ctx['plan_id']} · 第 {number}/{total} 页",
             fontsize=7, va="top", ha="right", color="#555555")
    return fig


# --------------------------------------------------------------------------------------------
# public


_BUILDERS = {"risk": _risk_page, "cases": _cases_page, "staffing": _staffing_page,
             "grids": _grids_page}


def write_brief(project_dir: str | Path, out_pdf: str | Path | None = None) -> Path:
    """Write the project's brief as an A4 landscape PDF, one page per theme; return its path.

    Parameters
    ----------
    project_dir
        A project folder that ``gridgov run`` has built (its ``gridgov.duckdb`` is opened
        read-only).
    out_pdf
        Where to write; default ``<project_dir>/brief.pdf``.

    Raises
    ------
    BriefError
        No database in the folder, or no CJK font installed (bilingual message).
    """
    import matplotlib
    from matplotlib.backends.backend_pdf import PdfPages

    project_dir = Path(project_dir)
    db = results.db_path(project_dir)
    if not db.exists():
        raise BriefError(
            f"{db} 不存在：请先运行 gridgov run {project_dir}。",
            f"{db} does not exist: run `gridgov run {project_dir}` first.",
        )
    out = Path(out_pdf) if out_pdf else project_dir / "brief.pdf"
    family, path, preferred = cjk_font()
    if not preferred:
        msg = (f"未找到 Noto Sans CJK SC，改用 {family}（{path}）。 / Noto Sans CJK SC not found; "
               f"using {family} ({path}).")
        warnings.warn(msg, stacklevel=2)
        log.warning(msg)
    rc = {"pdf.fonttype": 42, "font.family": [family, "DejaVu Sans"],
          "axes.unicode_minus": False, "font.size": 9}
    with results.open_project(project_dir) as con, matplotlib.rc_context(rc):
        ctx = _context(con)
        pages = [_BUILDERS[key](con, ctx) for key, _, _ in THEMES]
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        # no creation date: the same tables give the same file
        with PdfPages(tmp, metadata={"Title": f"网格化治理简报 {ctx['area']} {ctx['data_date']}",
                                     "Creator": "gridgov", "CreationDate": None}) as pdf:
            for i, (page, layers) in enumerate(pages, start=1):
                fig = _draw_page(page, layers, ctx, i, len(pages))
                pdf.savefig(fig)
        tmp.replace(out)
    log.info("brief: %s pages -> %s (font %s)", len(pages), out, family)
    return out
