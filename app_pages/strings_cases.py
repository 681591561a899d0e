"""Interface strings of the 红黑榜 page (case rates, 接诉即办): ``key: (中文, English)``.

Loaded into :data:`app_pages.i18n.STRINGS` automatically. Option labels of stateful widgets
(scope, month, unit pickers) are built bilingual or from the data, so they do not change with
the language (see the note in ``i18n.py``).
"""
from __future__ import annotations

STRINGS: dict[str, tuple[str, str]] = {
    "nav.cases": ("红黑榜", "Red–black list"),
    "cases.title": ("接诉即办红黑榜", "Case handling: the red–black list"),
    "cases.intro": (
        "按《呼和浩特市街道办事处工作条例》第十六、四十三至四十五条，对接诉即办的办理情况排名："
        "**综合得分**为响应率、解决率、满意率、按期办结率和（1 − 退单率）的加权平均；每个范围、每个月"
        "得分最高的为红榜，最低的为黑榜。案件少于 {min_cases} 件的单位只显示比率，不排名。",
        "Under Art. 16 and 43–45 of the Hohhot street office regulation, units are ranked on how "
        "they handle 12345 cases: the **score** is a weighted mean of the response, resolution, "
        "satisfaction and on-time close rates and (1 − returned rate); in each scope and month "
        "the best are on the red list, the worst on the black list. Units with fewer than "
        "{min_cases} cases show their rates but are not ranked.",
    ),
    "cases.no_incidents": (
        "本项目没有事件图层（incidents），因此没有案件可以评价。提供带办理时间的 incidents 图层后重新运行。",
        "This project has no incidents layer, so there are no cases to rate. Add an incidents layer "
        "(with its handling times) and run again.",
    ),
    "cases.none": (
        "本项目数据库中还没有案件比率（case_rates 表）。请先运行流程：",
        "The project database has no case rates yet (no case_rates table). Run the pipeline:",
    ),
    "cases.scope": ("排名范围 / Scope", "排名范围 / Scope"),
    "cases.period": ("月份 / Month", "月份 / Month"),
    "cases.period_all": ("全部时间 / all months", "全部时间 / all months"),
    "scope.street": ("街道 / Street", "街道 / Street"),
    "scope.community": ("社区 / Community", "社区 / Community"),
    "scope.grid": ("网格 / Grid", "网格 / Grid"),
    "scope.department": ("承办部门 / Department", "承办部门 / Department"),
    "scope.service_company": ("公共服务企业 / Service company", "公共服务企业 / Service company"),
    "scope.staff": ("网格员 / Grid worker", "网格员 / Grid worker"),
    "cases.red": ("红榜", "Red list"),
    "cases.black": ("黑榜", "Black list"),
    "cases.red_help": ("综合得分最高", "highest scores"),
    "cases.black_help": ("综合得分最低", "lowest scores"),
    "cases.board_none": (
        "该范围、该月份没有足够的单位上榜（需要至少两个案件数达标的单位）。",
        "Too few ranked units in this scope and month for a list (two units with enough cases "
        "are needed).",
    ),
    "cases.ranking": ("完整排名", "Full ranking"),
    "cases.ranking_caption": (
        "灰色行：案件少于 {min_cases} 件，不排名（一件案件就会使比率变化至少 {step} 个百分点）。",
        "Grey rows: fewer than {min_cases} cases, not ranked (one case moves a rate by at "
        "least {step} points).",
    ),
    "cases.small_n_note": ("案件少于 {n} 件，不排名", "fewer than {n} cases, not ranked"),
    "cases.trend": ("趋势", "Trend"),
    "cases.trend_unit": ("单位 / Unit", "单位 / Unit"),
    "cases.trend_caption": (
        "所选单位各月的五项比率；空心点表示该月案件少于 {min_cases} 件。",
        "The unit's five rates month by month; hollow points: fewer than {min_cases} cases "
        "that month.",
    ),
    "cases.trend_none": ("该单位没有按月的数据。", "This unit has no monthly rows."),
    "cases.drill": ("逐级查看：街道 → 社区 → 网格 → 案件", "Drill down: street → community → grid → cases"),
    "cases.drill_street": ("街道 / Street", "街道 / Street"),
    "cases.drill_community": ("社区 / Community", "社区 / Community"),
    "cases.drill_grid": ("网格 / Grid", "网格 / Grid"),
    "cases.drill_pick": ("— 请选择 / choose —", "— 请选择 / choose —"),
    "cases.drill_communities": ("{name} 的社区", "Communities of {name}"),
    "cases.drill_grids": ("{name} 的网格", "Grids of {name}"),
    "cases.drill_cases": ("网格 {grid} 的案件（{n} 件）", "Cases of grid {grid} ({n})"),
    "cases.drill_capped": ("只显示最早的 {shown} 件（共 {n} 件）。", "Only the first {shown} of {n} cases are shown."),
    "cases.drill_empty": ("没有数据。", "No rows."),
    "cases.brief": ("会议简报（PDF）", "Meeting brief (PDF)"),
    "cases.brief_caption": (
        "每个主题一页 A4 横版（风险与预警、案件三率与红黑榜、人员配置、网格与融合），含地图与小表，"
        "点击后生成（约需十余秒）。",
        "One A4 landscape page per theme (risk and alerts, case rates and the red–black list, "
        "staffing, grids and fusion), each with a map and a small table; generated on click "
        "(takes a few seconds).",
    ),
    "cases.brief_button": ("下载简报 PDF", "Download the brief (PDF)"),
    # columns
    "cases.col.rank": ("名次", "Rank"),
    "cases.col.scope_name": ("单位", "Unit"),
    "cases.col.scope_id": ("编码", "Code"),
    "cases.col.cases": ("案件数", "Cases"),
    "cases.col.score": ("综合得分", "Score"),
    "cases.col.response_rate": ("响应率", "Response"),
    "cases.col.resolution_rate": ("解决率", "Resolution"),
    "cases.col.satisfaction_rate": ("满意率", "Satisfaction"),
    "cases.col.on_time_close_rate": ("按期办结率", "On-time close"),
    "cases.col.returned_rate": ("退单率", "Returned"),
    "cases.col.board": ("榜单", "List"),
    "cases.col.note": ("备注", "Note"),
    "cases.col.period": ("月份", "Month"),
    "cases.col.incident_id": ("案件编号", "Case"),
    "cases.col.occurred_at": ("发生时间", "Reported"),
    "cases.col.category": ("类别", "Category"),
    "cases.col.service_company": ("服务企业", "Company"),
    "cases.col.department": ("承办部门", "Department"),
    "cases.col.staff_id": ("网格员", "Worker"),
    "cases.col.status": ("状态", "Status"),
    "cases.col.responded": ("按时响应", "Responded on time"),
    "cases.col.resolved": ("已解决", "Resolved"),
    "cases.col.satisfied": ("满意", "Satisfied"),
    "cases.col.closed_on_time": ("按期办结", "Closed on time"),
    "cases.col.returned": ("退单", "Returned"),
    "cases.col.rate": ("比率", "Rate"),
    "cases.col.value": ("数值", "Value"),
    "board.red": ("红榜", "red"),
    "board.black": ("黑榜", "black"),
    "cases.yes": ("是", "yes"),
    "cases.no": ("否", "no"),
}
