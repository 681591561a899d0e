"""Interface strings of the leaders' page (人员配置): ``key: (中文, English)``.

Loaded into :data:`app_pages.i18n.STRINGS` automatically. Option labels of stateful widgets
(radio, selectbox) are built bilingual in the page itself, so they do not change with the
language (see the note in ``i18n.py``).
"""
from __future__ import annotations

STRINGS: dict[str, tuple[str, str]] = {
    "nav.leaders": ("人员配置", "Staffing"),
    "leaders.title": ("网格员配置与编制分配", "Grid staff and headcount allocation"),
    "leaders.intro": (
        "按《呼和浩特市街道办事处工作条例》第三十七条，依据各街道的功能定位、面积、人口和工作量分配编制；"
        "**缺口 = 建议人数 − 现有人数，正数表示缺员**。分配采用除数法（{method}）：总数恰好等于预算，"
        "每个街道不低于最低人数，预算增加时任何街道都不会减人。",
        "Under Art. 37 of the Hohhot street office regulation, headcount is shared among streets "
        "by functional positioning, area, population and workload. **Gap = recommended − "
        "current: positive means short of staff.** The divisor method ({method}) makes the "
        "numbers sum exactly to the budget, gives every street its minimum, and never takes a "
        "person from a street when the budget rises.",
    ),
    "leaders.method.webster": ("韦伯斯特/圣拉格法", "Webster / Sainte-Laguë"),
    "leaders.method.huntington_hill": ("亨廷顿-希尔法", "Huntington–Hill"),
    "leaders.no_tables": (
        "本项目数据库中还没有人员配置结果（street_allocation 表）。请先运行人员配置阶段：",
        "The project database has no staffing results yet (no street_allocation table). "
        "Run the staffing stage first:",
    ),
    "leaders.stale": (
        "注意：按本次运行的设置重算的分配与数据库中保存的结果不完全一致（设置可能已修改）；"
        "推演以重算结果为起点。",
        "Note: re-running the allocation with this run's settings does not reproduce the stored "
        "table exactly (the settings may have changed); what-ifs start from the re-run.",
    ),
    # headline figures
    "leaders.kpi.budget": ("编制预算", "Budget"),
    "leaders.kpi.current": ("现有网格员", "Staff today"),
    "leaders.kpi.required": ("工作量所需", "Needed for the workload"),
    "leaders.people": ("{n} 人", "{n} people"),
    "leaders.ftype_default": ("（默认：{ftype}）", "(default: {ftype})"),
    "leaders.kpi.under": ("缺员街道", "Streets short of staff"),
    "leaders.kpi.over": ("超员街道", "Streets over-staffed"),
    "leaders.kpi.budget_help": (
        "建议人数之和；预算来源：{source}；每街道最低 {minimum} 人。",
        "Sum of the recommended headcounts; budget from: {source}; at least {minimum} per "
        "street.",
    ),
    "leaders.source.settings": ("设置文件 gridgov.toml 的 [allocation] budget",
                                "[allocation] budget in gridgov.toml"),
    "leaders.source.current_staff": ("现有人数（重新分配现有人员）",
                                     "today's headcount (a re-distribution)"),
    "leaders.source.required_staff": ("工作量所需人数（向上取整）",
                                      "required staff, rounded up"),
    "leaders.kpi.required_help": (
        "每月工作量 {hours} 小时/月 ÷ 一名全职网格员每月 {capacity:.0f} 小时的现场工作时间 = {fte} 个全职当量，"
        "按街道向上取整为整人。",
        "Monthly workload {hours} h/month ÷ {capacity:.0f} field hours a month of one "
        "full-time worker = {fte} full-time equivalents, rounded up to whole people per street.",
    ),
    # map
    "leaders.map": ("缺口地图", "Map of the gap"),
    "leaders.map_level": ("地图层级 / Map level", "地图层级 / Map level"),
    "leaders.map_caption": (
        "红色 = 缺员（建议多于现有），蓝色 = 超员；鼠标悬停查看详情。社区层级显示各街道建议人数在其社区间的分配（第四十二条）。",
        "Red = short of staff (more recommended than today), blue = over-staffed; hover for "
        "details. The community level shows each street's recommendation split among its "
        "communities (Art. 42).",
    ),
    "leaders.map_none": ("数据库中没有街道边界，无法绘制地图。", "No street boundaries to draw."),
    "leaders.layer.streets": ("街道缺口", "Street gap"),
    "leaders.layer.communities": ("社区缺口", "Community gap"),
    "leaders.layer.outline": ("街道边界", "Street boundaries"),
    "leaders.tip.hours": ("现人均工作量（小时/月）", "Hours/month per head today"),
    "leaders.legend.title": ("缺口（建议 − 现有，人）", "Gap (recommended − current)"),
    "leaders.legend.under": ("缺员", "short of staff"),
    "leaders.legend.over": ("超员", "over-staffed"),
    "leaders.legend.balanced": ("持平", "balanced"),
    "leaders.legend.no_data": ("无数据", "no data"),
    # extremes
    "leaders.extremes": ("最需关注的街道", "Streets to look at first"),
    "leaders.most_under": ("缺员最多", "Furthest under-staffed"),
    "leaders.most_over": ("超员最多", "Furthest over-staffed"),
    "leaders.none_under": ("没有缺员的街道。", "No street is short of staff."),
    "leaders.none_over": ("没有超员的街道。", "No street is over-staffed."),
    "leaders.extreme_line": (
        "**{name}**：缺口 {gap:+d} 人（现有 {current} 人，建议 {recommended} 人），现人均 {hours} 小时/月",
        "**{name}**: gap {gap:+d} people (today {current}, recommended {recommended}), "
        "{hours} h/month per head today",
    ),
    # street table
    "leaders.table": ("街道配置表", "Street allocation"),
    "leaders.table_caption": (
        "按缺员程度排序（1 = 最缺员）。现有人数为街道网格员人数（兼职按人计）；工作量不含专属网格。",
        "Sorted by gap rank (1 = furthest under-staffed). Current staff counts street grid "
        "workers as people (part-timers included); workload excludes dedicated grids.",
    ),
    "leaders.communities_table": ("社区配置表（第四十二条）", "Community allocation (Art. 42)"),
    "leaders.col.street_name": ("街道", "Street"),
    "leaders.col.street_code": ("街道代码", "Street code"),
    "leaders.col.community_name": ("社区", "Community"),
    "leaders.col.function_type": ("功能定位", "Function type"),
    "leaders.col.area_km2": ("面积（平方公里）", "Area (km²)"),
    "leaders.col.residents": ("常住人口", "Residents"),
    "leaders.col.workload": ("工作量（小时/月）", "Workload (h/month)"),
    "leaders.col.current_staff": ("现有人数（人）", "Current staff (people)"),
    "leaders.col.required_staff": ("工作量所需（全职当量）", "Required (FTE)"),
    "leaders.col.required_headcount": ("工作量所需（人）", "Needed for the workload (people)"),
    "leaders.col.recommended_staff": ("建议人数（人）", "Recommended (people)"),
    "leaders.col.gap": ("缺口（人）", "Gap (people)"),
    "leaders.col.gap_note": ("缺口说明", "Why"),
    "leaders.col.main_grid_id": ("主要负责网格", "Main grid"),
    "leaders.col.gap_help": ("建议 − 现有；正数为缺员", "recommended − current; positive = short of staff"),
    "leaders.col.status": ("状态", "Status"),
    "leaders.col.hours_per_current_staff": ("现人均工作量（小时/月）", "Hours/month per head today"),
    "leaders.col.hours_per_recommended_staff": ("建议人均工作量（小时/月）", "Hours/month per head, recommended"),
    "leaders.col.gap_rank": ("缺员排序", "Gap rank"),
    "leaders.status.under": ("缺员", "short"),
    "leaders.status.over": ("超员", "over"),
    "leaders.status.balanced": ("持平", "balanced"),
    # equity
    "leaders.equity": ("配置公平性", "Equity of the allocation"),
    "leaders.equity_caption": (
        "基尼系数衡量人员相对工作量（或人口）的分布是否均衡：0 = 每小时工作量配备的人员完全相同，越大越不均。"
        "条形图比较各街道现状与建议方案；虚线为全区现状水平。",
        "The Gini coefficient measures how evenly staff are spread against workload (or "
        "residents): 0 = every hour of work staffed alike; higher = less even. The bars compare "
        "each street today with the recommendation; the dashed line is today's district figure.",
    ),
    "leaders.equity_communities": (
        "本项目只有一个街道：以下比较其各社区（社区配置，第四十二条）。",
        "This project has a single street: the figures below compare its communities "
        "(community allocation, Art. 42).",
    ),
    "leaders.gini_workload": ("基尼系数·人员/工作量", "Gini · staff per workload"),
    "leaders.gini_resident": ("基尼系数·人员/人口", "Gini · staff per resident"),
    "leaders.gini_help": (
        "现状 {current} → 建议 {recommended}（越低越均衡）",
        "today {current} → recommended {recommended} (lower is more even)",
    ),
    "leaders.maxmin": ("人均工作量最高/最低之比", "Most / least hours per head"),
    "leaders.gini_chart_title": ("基尼系数：现状与建议", "Gini today and recommended"),
    "leaders.metric.per_10k": ("每万人口配备", "Staff per 10,000 residents"),
    "leaders.metric.per_km2": ("每平方公里配备", "Staff per km²"),
    "leaders.metric.per_1k_hours": ("每千小时工作量配备", "Staff per 1,000 workload hours"),
    "leaders.series.current": ("现状", "Today"),
    "leaders.series.recommended": ("建议", "Recommended"),
    "leaders.series.whatif": ("推演", "What-if"),
    "leaders.metric": ("指标", "Metric"),
    "leaders.value": ("数值", "Value"),
    # what-if
    "leaders.whatif": ("推演：如果……会怎样", "What if …"),
    "leaders.whatif_caption": (
        "修改预算、最低人数、某街道的功能定位或权重，立即得到新的分配和变动的街道（不改动数据库）。",
        "Change the budget, the minimum, a street's function type or the weights and see the "
        "new allocation and which streets move, at once (the database is not changed).",
    ),
    "leaders.wi.budget": ("编制预算（人）", "Budget (people)"),
    "leaders.wi.budget_help": (
        "全区网格员总编制，最多 {ceiling} 人。建议人数之和恰好等于预算。",
        "District headcount, at most {ceiling}. The recommendations sum exactly to it.",
    ),
    "leaders.wi.minimum": ("每街道最低人数（人）", "Minimum per street (people)"),
    "leaders.wi.method": ("分配方法 / Method", "分配方法 / Method"),
    "leaders.wi.street": ("调整功能定位的街道 / Street", "调整功能定位的街道 / Street"),
    "leaders.wi.ftype": ("新的功能定位 / New function type", "新的功能定位 / New function type"),
    "leaders.wi.ftype_now": ("当前功能定位：{ftype}", "Function type now: {ftype}"),
    "leaders.wi.unchanged": ("不变 / unchanged", "不变 / unchanged"),
    "leaders.wi.weights": ("得分权重", "Score weights"),
    "leaders.wi.w_workload": ("工作量", "Workload"),
    "leaders.wi.w_residents": ("人口", "Residents"),
    "leaders.wi.w_area": ("面积", "Area"),
    "leaders.wi.weights_note": (
        "权重按比例使用（自动归一）：工作量 {workload:.0%}、人口 {residents:.0%}、面积 {area:.0%}。",
        "Weights are used in proportion (normalised): workload {workload:.0%}, residents "
        "{residents:.0%}, area {area:.0%}.",
    ),
    "leaders.wi.reset": ("恢复为本次运行的设置", "Reset to this run's settings"),
    "leaders.wi.total": ("推演总人数", "What-if total"),
    "leaders.wi.moved": ("调动人数", "People moved"),
    "leaders.wi.moved_help": ("从一个街道调到另一个街道的人数（增加部分之和）",
                              "People who would change street (sum of the increases)"),
    "leaders.wi.streets_changed": ("人数变化的街道", "Streets that change"),
    "leaders.wi.gini": ("推演基尼系数·人员/工作量", "What-if Gini · staff per workload"),
    "leaders.wi.timing": ("计算用时 {ms:.0f} 毫秒。", "Computed in {ms:.0f} ms."),
    "leaders.wi.no_change": (
        "与本次运行的建议相比，没有街道的人数发生变化。",
        "No street's headcount changes against this run's recommendation.",
    ),
    "leaders.wi.what_moved": ("变动的街道", "What moved"),
    "leaders.wi.full": ("推演后的全部街道", "The whole what-if allocation"),
    "leaders.wi.before": ("原建议（人）", "Recommended, run (people)"),
    "leaders.wi.after": ("推演建议（人）", "What-if (people)"),
    "leaders.wi.change": ("变化（人）", "Change (people)"),
    "leaders.wi.new_gap": ("推演缺口（人）", "What-if gap (people)"),
    "leaders.wi.csv": ("下载推演结果（CSV）", "Download the what-if (CSV)"),
    "leaders.wi.error": ("无法计算：{error}", "Cannot compute: {error}"),
    # performance
    "leaders.perf": ("网格员绩效（第二十八条）", "Grid worker performance (Art. 28)"),
    "leaders.perf_caveat": (
        "**比率是谈话的起点，不是结论。** 困难网格的网格员往往遇到更难的案件；请结合 95% 区间和承担的工作量阅读按时办结率。"
        "案件少于 {small_n} 件的网格员（本表 {k} / {n} 人，已标记“样本偏少”）比率仅供参考，不要据此排名。",
        "**A rate is a prompt for a conversation, not a verdict.** Workers in hard grids get "
        "harder cases; read the on-time rate with its 95 % interval and the workload carried. "
        "Workers with fewer than {small_n} cases ({k} of {n} here, flagged “few cases”) have "
        "indicative rates only — do not rank them.",
    ),
    "leaders.perf_filter": ("街道 / Street", "街道 / Street"),
    "leaders.perf_all": ("全部街道 / all streets", "全部街道 / all streets"),
    "leaders.perf_none": (
        "没有网格员绩效数据（worker_performance 表不存在或为空）。",
        "No worker performance data (the worker_performance table is missing or empty).",
    ),
    "leaders.perf_sorted": (
        "按网格员编号排列，不按比率排名。按时办结率的区间为 95% 威尔逊区间。",
        "Listed by worker ID, not ranked by rate. The on-time interval is a 95 % Wilson "
        "interval.",
    ),
    "leaders.col.staff_id": ("网格员编号", "Worker"),
    "leaders.col.role": ("岗位", "Role"),
    "leaders.col.cases": ("案件数", "Cases"),
    "leaders.col.on_time_rate": ("按时办结率", "On-time rate"),
    "leaders.col.on_time_ci": ("95% 区间", "95 % interval"),
    "leaders.col.median_hours_to_close": ("办结时长中位数（小时）", "Median hours to close"),
    "leaders.col.repeat_complaints": ("重复投诉", "Repeat complaints"),
    "leaders.col.repeat_rate": ("重复投诉率", "Repeat rate"),
    "leaders.col.workload_carried": ("承担工作量（小时/月）", "Workload carried (h/month)"),
    "leaders.col.small_n": ("样本偏少", "Few cases"),
    "leaders.col.note": ("备注", "Note"),
    "leaders.role.full_time": ("专职", "full-time"),
    "leaders.role.part_time": ("兼职", "part-time"),
    # report
    "leaders.report": ("Excel 报告", "Excel report"),
    "leaders.report_caption": (
        "一个工作簿，中文表头：说明、街道配置、社区配置、网格工作量、网格员绩效、公平性指标。"
        "内容为本次运行保存的结果（不含推演）。",
        "One workbook with Chinese headers: about, streets, communities, grid workload, worker "
        "performance, equity. It holds this run's stored results (not the what-if).",
    ),
    "leaders.report_button": ("下载 Excel 报告", "Download the Excel report"),
}
