"""Interface strings of the risk hotspot page (风险热点): ``key: (中文, English)``.

Loaded into :data:`app_pages.i18n.STRINGS` automatically. Option labels of stateful widgets
(category selectbox, period slider) are built bilingual in the page itself, so they do not
change with the language (see the note in ``i18n.py``).
"""
from __future__ import annotations

STRINGS: dict[str, tuple[str, str]] = {
    "nav.hotspots": ("风险热点", "Risk hotspots"),
    "nav.hotspot_risk": ("风险指数与预测", "Risk index and forecast"),
    "nav.case_timeliness": ("案件时效", "Case timeliness"),
    "hs.risk_title": ("风险指数与事件预测", "Risk index and incident forecast"),
    "hs.time_title": ("案件办理时效", "Case timeliness"),
    "hs.title": ("风险热点与风险预警", "Risk hotspots and early warning"),
    "hs.intro": (
        "依据《呼和浩特市街道办事处工作条例》第二十四条（排查风险隐患、监测预警）和第十六条（及时回应诉求）："
        "哪些网格的事件**超出按户数应有的水平**（超额检验，经 FDR 多重检验校正），事件在哪里聚集（等面积格网上的 "
        "Getis–Ord Gi\\*），哪里在变坏（时空趋势），下个月该把人派到哪里（预测及其回测）。",
        "Under Art. 24 (sweep for risks and hidden hazards, monitor and warn early) and Art. 16 "
        "(answer complaints at once) of the Hohhot street office regulation: which grids have "
        "**more incidents than their households lead one to expect** (excess test, corrected "
        "for multiple testing with the false discovery rate), where incidents concentrate "
        "(Getis–Ord Gi\\* on an equal-area fishnet), which places are getting worse (space–time "
        "trends), and where to send people next month (forecast and its backtest).",
    ),
    "hs.question.excess": (
        "**网格的热点判定回答：** 事件是否超出预期（按户数）——该网格的事件比其户数应有的更多（超额检验）。",
        "**The grids' hot spot verdict answers:** more than its households lead one to expect "
        "— does the grid have more incidents than its households would explain (excess test)?",
    ),
    "hs.question.fishnet": (
        "**等面积格网上的 Gi\\* 回答：** 事件在哪里聚集——不论那里住了多少人（可作为图层叠加）。",
        "**Gi\\* on the equal-area fishnet answers:** where incidents concentrate — regardless "
        "of who lives there (an optional map layer).",
    ),
    "hs.no_tables": (
        "本项目数据库中还没有风险热点结果（hotspots 表）。热点分析需要带坐标和发生时间的事件数据（incidents），"
        "请运行 `gridgov run` 生成：",
        "The project database has no risk hotspot results yet (no hotspots table). The analysis "
        "needs incidents with a location and a time; build it with `gridgov run`:",
    ),
    "hs.skipped": ("上次运行跳过了热点分析：{reason}", "The last run skipped the hotspot stage: {reason}"),
    "hs.units_source": (
        "分析单元：{units} 个{source}；空间权重 {weights}；时段 {first} 至 {last}（{months} 个月）。",
        "Analysis units: {units} {source}; spatial weights {weights}; months {first} to "
        "{last} ({months}).",
    ),
    "hs.source.grids": ("网格", "grids"),
    "hs.source.square": ("方格", "square cells"),
    "hs.source.hex": ("六边形格", "hexagonal cells"),
    "hs.warning": ("分析提示：{text}", "Note from the analysis: {text}"),
    # filters
    "hs.filters": ("筛选", "Filters"),
    "hs.category": ("事件类别 / Category", "事件类别 / Category"),
    "hs.period": ("时段 / Period", "时段 / Period"),
    "hs.period_all": ("全部月份 all months", "全部月份 all months"),  # option label: fixed
    "hs.category_all": ("全部类别 All categories", "全部类别 All categories"),  # fixed
    "hs.period_help": (
        "拖动选择某一个月，最左端为全部月份合并分析。",
        "Drag to pick one month; the left end analyses all months together.",
    ),
    "hs.trend_toggle": ("按时空趋势着色（新兴热点分析）", "Colour by space–time trend (emerging hot spots)"),
    "hs.trend_toggle_help": (
        "趋势是整个月份序列的性质（每月 Gi\\* + Mann–Kendall 趋势检验），与所选月份无关。",
        "The trend is a property of the whole monthly series (Gi\\* per month + Mann–Kendall "
        "trend test), not of the chosen month.",
    ),
    "hs.kde_toggle": ("叠加核密度表面", "Overlay the kernel density surface"),
    "hs.kde_toggle_help": (
        "全部时段全部事件的核密度（每平方公里事件数），仅作直观参考；是否显著请看热点类别。",
        "Kernel density of every incident over the whole period (events per km²), a visual "
        "aid only; significance is in the hot spot classes.",
    ),
    # metrics
    "hs.kpi.units": ("分析单元", "Analysis units"),
    "hs.kpi.incidents": ("事件数（所选）", "Incidents (selection)"),
    "hs.kpi.hot": ("热点单元", "Hot spot units"),
    "hs.kpi.cold": ("冷点单元", "Cold spot units"),
    "hs.kpi.hot_help": (
        "事件多于按户数预期、FDR 校正后 p ≤ 0.10 的单元（90%、95%、99% 置信度合计）。",
        "Units with more incidents than their households lead one to expect, FDR-adjusted "
        "p ≤ 0.10 (90, 95 and 99 % confidence together).",
    ),
    "hs.kpi.trend": ("有趋势的单元", "Units with a trend"),
    # map
    "hs.map": ("热点地图", "Hot spot map"),
    "hs.map_caption": (
        "红色 = 热点（事件多于按户数的预期），蓝色 = 冷点（少于预期），浅灰 = 不显著；颜色越深置信度越高。"
        "鼠标悬停查看单元详情。",
        "Red = hot spot (more incidents than its households lead one to expect), blue = cold "
        "spot (fewer), light grey = not significant; darker = more confident. Hover a unit for "
        "details.",
    ),
    "hs.map_caption_trend": (
        "颜色为新兴热点分析的 17 类时空趋势（按 ESRI 规则，见 docs/hotspots.md）。",
        "Colours are the 17 space–time trend classes of the emerging hot spot analysis (ESRI's "
        "rules, see docs/hotspots.md).",
    ),
    "hs.map_none": ("没有分析单元的几何（hotspot_units 表），无法绘制地图。",
                    "No analysis unit geometry (hotspot_units table): nothing to draw."),
    "hs.layer.units": ("分析单元", "Analysis units"),
    "hs.layer.kde": ("核密度表面", "Kernel density surface"),
    "hs.legend.classes": ("冷热点类别（FDR 校正）", "Hot / cold classes (FDR)"),
    "hs.legend.trend": ("时空趋势类别", "Space–time trend"),
    "hs.legend.selection": ("{category} · {period}", "{category} · {period}"),
    "hs.legend.kde": ("核密度（事件/平方公里）", "Density (events per km²)"),
    "hs.legend.kde_range": ("低 → 高（最高 {max}）", "low → high (max {max})"),
    "hs.no_trend": (
        "没有时空趋势分类：新兴热点分析至少需要 10 个月的数据。",
        "No trend classes: the emerging hot spot analysis needs at least 10 months of data.",
    ),
    "hs.class_counts": ("各冷热点类别单元数", "Units per hot/cold class"),
    "hs.trend_counts": ("各时空趋势类别单元数", "Units per trend class"),
    "hs.hot_list": ("所选条件下的热点单元", "Hot spot units of the selection"),
    "hs.hot_none": ("所选类别和时段没有显著的热点单元（FDR 校正后）。",
                    "No significant hot spot unit in this category and period (after FDR)."),
    # fields and columns
    "hs.col.grid_id": ("单元编号", "Unit"),
    "hs.col.community_name": ("社区", "Community"),
    "hs.col.incidents": ("事件数", "Incidents"),
    "hs.col.per_km2": ("每平方公里事件数", "Incidents per km²"),
    "hs.col.z": ("z 值", "z-score"),
    "hs.col.p_fdr": ("FDR 校正 p 值", "p (FDR)"),
    "hs.col.class": ("冷热点类别", "Hot/cold class"),
    "hs.col.trend": ("时空趋势", "Trend"),
    "hs.col.units": ("单元数", "Units"),
    "hs.col.share": ("占比", "Share"),
    "hs.col.rank": ("排名", "Rank"),
    "hs.col.risk_score": ("风险指数（0–100）", "Risk index (0–100)"),
    "hs.col.predicted": ("预测事件数", "Predicted incidents"),
    "hs.col.last_month": ("上月事件数（{period}）", "Last month ({period})"),
    "hs.col.monthly_mean": ("月均事件数", "Monthly mean"),
    # classes
    "hs.class.hot_99": ("热点（99% 置信）", "Hot spot, 99 %"),
    "hs.class.hot_95": ("热点（95% 置信）", "Hot spot, 95 %"),
    "hs.class.hot_90": ("热点（90% 置信）", "Hot spot, 90 %"),
    "hs.class.none": ("不显著", "Not significant"),
    "hs.class.cold_90": ("冷点（90% 置信）", "Cold spot, 90 %"),
    "hs.class.cold_95": ("冷点（95% 置信）", "Cold spot, 95 %"),
    "hs.class.cold_99": ("冷点（99% 置信）", "Cold spot, 99 %"),
    "hs.short.hot_99": ("热点 99%", "Hot 99 %"),
    "hs.short.hot_95": ("热点 95%", "Hot 95 %"),
    "hs.short.hot_90": ("热点 90%", "Hot 90 %"),
    "hs.short.none": ("不显著", "Not significant"),
    "hs.short.cold_90": ("冷点 90%", "Cold 90 %"),
    "hs.short.cold_95": ("冷点 95%", "Cold 95 %"),
    "hs.short.cold_99": ("冷点 99%", "Cold 99 %"),
    "hs.trend.new_hot": ("新增热点", "New hot spot"),
    "hs.trend.consecutive_hot": ("连续热点", "Consecutive hot spot"),
    "hs.trend.intensifying_hot": ("加剧热点", "Intensifying hot spot"),
    "hs.trend.persistent_hot": ("持续热点", "Persistent hot spot"),
    "hs.trend.diminishing_hot": ("减弱热点", "Diminishing hot spot"),
    "hs.trend.sporadic_hot": ("零星热点", "Sporadic hot spot"),
    "hs.trend.oscillating_hot": ("振荡热点", "Oscillating hot spot"),
    "hs.trend.historical_hot": ("历史热点", "Historical hot spot"),
    "hs.trend.new_cold": ("新增冷点", "New cold spot"),
    "hs.trend.consecutive_cold": ("连续冷点", "Consecutive cold spot"),
    "hs.trend.intensifying_cold": ("加剧冷点", "Intensifying cold spot"),
    "hs.trend.persistent_cold": ("持续冷点", "Persistent cold spot"),
    "hs.trend.diminishing_cold": ("减弱冷点", "Diminishing cold spot"),
    "hs.trend.sporadic_cold": ("零星冷点", "Sporadic cold spot"),
    "hs.trend.oscillating_cold": ("振荡冷点", "Oscillating cold spot"),
    "hs.trend.historical_cold": ("历史冷点", "Historical cold spot"),
    "hs.trend.none": ("无趋势模式", "No pattern"),
    # incident categories (the demo's; other values are shown as they are)
    "hs.cat.dispute": ("矛盾纠纷 Disputes", "矛盾纠纷 Disputes"),
    "hs.cat.safety_hazard": ("安全隐患 Safety hazards", "安全隐患 Safety hazards"),
    "hs.cat.sanitation": ("环境卫生 Sanitation", "环境卫生 Sanitation"),
    "hs.cat.public_order": ("社会治安 Public order", "社会治安 Public order"),
    "hs.cat.complaint_12345": ("12345 热线诉求 12345 hotline", "12345 热线诉求 12345 hotline"),
    "hs.cat.unknown": ("未分类 Unknown", "未分类 Unknown"),
    "hs.cat.any": ("任一类别为热点 Hot in any category", "任一类别为热点 Hot in any category"),
    "hs.fishnet_toggle": ("叠加等面积格网 Gi* 聚集区", "Overlay Gi* on the equal-area fishnet"),
    "hs.fishnet_toggle_help": (
        "Gi* 热点/冷点格（虚线框），格大小由增量空间自相关按数据选定；回答“事件在哪里聚集”，不考虑户数。",
        "Gi* hot/cold cells (dashed outlines), cell size chosen from the data (incremental "
        "spatial autocorrelation); answers “where incidents concentrate”, regardless of "
        "households.",
    ),
    "hs.fishnet_caption": (
        "虚线框：{n} 个显著的 Gi* 格（边长 {cell} 米，全时段）。",
        "Dashed outlines: {n} significant Gi* cells ({cell} m side, whole period).",
    ),
    "hs.layer.fishnet": ("等面积格网 Gi*", "Equal-area fishnet Gi*"),
    "hs.col.cell_id": ("格编号", "Cell"),
    "hs.col.fishnet_class": ("Gi* 聚集类别", "Gi* class"),
    "hs.col.observed": ("实际事件（该类别）", "Observed (category)"),
    "hs.col.top_category": ("超出最多的类别", "Category furthest above"),
    "hs.col.expected": ("按户数预期事件", "Expected (households)"),
    "hs.col.ratio": ("实际 ÷ 预期", "Observed ÷ expected"),
    "hs.col.scope": ("层级", "Level"),
    "hs.col.name": ("名称", "Name"),
    "hs.scope.community": ("社区", "Community"),
    "hs.scope.street": ("街道", "Street"),
    "hs.areas": ("社区与街道的热点判定", "Hot spot verdicts of communities and streets"),
    "hs.areas_caption": (
        "与网格相同的超额检验（按户数的预期，FDR 校正），{category}，全时段；热点在前。",
        "The same excess test as the grids (expected from households, FDR), {category}, whole "
        "period; hot ones first.",
    ),
    "hs.period_whole": ("该类别只有全时段结果（不分月份）。",
                        "This category has results for the whole period only (not by month)."),
    # risk
    "hs.risk": ("风险指数最高的单元", "Units with the highest risk index"),
    "hs.risk_caption": (
        "风险指数 = 各分项归一化（0–1）后按设置中的权重加权 × 100；“分”为该分项贡献的分数，各分项之和即风险指数。"
        "权重在 gridgov.toml 的 [hotspots.risk.weights] 中设置。",
        "Risk index = each component normalised to 0–1, weighted by the settings and × 100; "
        "“points” are what each component contributes, and they add up to the index. Weights "
        "are set under [hotspots.risk.weights] in gridgov.toml.",
    ),
    "hs.risk_n": ("显示前 N 个单元", "Show the top N units"),
    "hs.risk_none": ("没有风险指数（grid_risk 表不存在或为空）。",
                     "No risk index (the grid_risk table is missing or empty)."),
    "hs.risk_chart": ("前 {n} 个单元的风险构成（分）", "What makes up the risk of the top {n} (points)"),
    "hs.comp.incidents": ("近期事件·严重度加权", "Recent incidents, severity-weighted"),
    "hs.comp.elderly_alone": ("独居老人", "Elderly living alone"),
    "hs.comp.disabled": ("残疾人", "Disabled residents"),
    "hs.comp.low_income": ("低收入人口", "Low income"),
    "hs.comp.special_units": ("专属网格单位", "Special units"),
    "hs.comp.raw": ("{name}（数值）", "{name} (value)"),
    "hs.comp.points": ("{name}（分）", "{name} (points)"),
    "hs.comp.weight": ("权重 {weight:.0%}", "weight {weight:.0%}"),
    # forecast
    "hs.forecast": ("下月预测：建议重点巡查的单元", "Next month's forecast: where to patrol first"),
    "hs.forecast_caption": (
        "模型（梯度提升，泊松损失）根据历史月份的滞后计数、季节、邻近单元计数与静态特征预测 {period} 每个单元的事件数。",
        "The model (gradient boosting, Poisson loss) predicts each unit's incidents in "
        "{period} from lagged counts, season, the neighbours' counts and static features.",
    ),
    "hs.forecast_none": ("没有预测结果（forecast 表不存在：月份太少或预测已关闭）。",
                         "No forecast (no forecast table: too few months, or disabled)."),
    "hs.backtest": ("滚动回测：模型与朴素基线", "Rolling backtest: model against naive baselines"),
    "hs.backtest_caption": (
        "对最近 {n} 个月逐月回测：每次只用之前的数据训练，再按预测的事件密度（每平方公里）从高到低圈定 5%、10%、20% 的面积。"
        "命中率 = 圈内事件占当月事件的比例；PAI = 命中率 ÷ 面积占比（1 = 与随机无异，越高越好）。",
        "Backtest over the last {n} months: each month is predicted from earlier months only; "
        "units are taken by decreasing predicted density (per km²) until 5, 10 and 20 % of the "
        "area. Hit rate = "
        "share of the month's incidents inside; PAI = hit rate ÷ area share (1 = no better than "
        "random, higher is better).",
    ),
    "hs.verdict_model": (
        "**在本项目数据上模型胜出**：10% 面积处 PAI = {model}，最佳基线（{best}）为 {base}，高 {diff}。",
        "**The model wins on this project's data**: PAI at 10 % of the area = {model}, the best "
        "baseline ({best}) {base}, {diff} higher.",
    ),
    "hs.verdict_baseline": (
        "**在本项目数据上基线胜出，模型没有更好**：10% 面积处“{best}”的 PAI = {base}，模型为 {model}"
        "（低 {diff}）。事件分布稳定时，简单的历史排序已接近能达到的最好水平；下月布控可直接参考该基线，"
        "模型排名仅作补充。",
        "**A baseline wins on this project's data; the model is not better**: at 10 % of the "
        "area “{best}” reaches PAI {base}, the model {model} ({diff} lower). Where incidents "
        "are stable, a simple ranking of the past is already about as good as it gets; use that "
        "baseline for next month's patrols and the model's ranking as a second opinion.",
    ),
    "hs.verdict_tie": (
        "**模型与最佳基线（{best}）持平**：10% 面积处 PAI 均为 {model}。",
        "**The model ties with the best baseline ({best})**: PAI {model} at 10 % of the area.",
    ),
    "hs.col.unit": ("评估单元", "Scored on"),
    "hs.recommendation_unit": ("{unit}：{text}", "{unit}: {text}"),
    "hs.unit.grid": ("按网格", "By grid"),
    "hs.unit.cell": ("按 {m} 米等面积格", "By {m} m equal cells"),
    "hs.backtest_cells": ("等面积格回测（NIJ 方式）", "Backtest on equal-area cells (NIJ style)"),
    "hs.backtest_cells_caption": (
        "同样的预测在等面积格上评估：网格面积相差很大时，这一结果更能说明预测本身的好坏。",
        "The same forecasts scored on equal-area cells: with grids of very different sizes "
        "this is the fairer test of the forecast itself.",
    ),
    "hs.backtest_months": ("逐月回测结果", "Backtest month by month"),
    "hs.col.method": ("方法", "Method"),
    "hs.col.pai": ("PAI {share}", "PAI {share}"),
    "hs.col.hit": ("命中率 {share}", "Hit rate {share}"),
    "hs.col.mae": ("平均绝对误差", "Mean absolute error"),
    "hs.col.hit_rate": ("命中率", "Hit rate"),
    "hs.col.target_period": ("目标月份", "Target month"),
    "hs.col.area_share": ("面积占比", "Area share"),
    "hs.col.events": ("当月事件", "Events"),
    "hs.method.model": ("模型（梯度提升）", "Model (gradient boosting)"),
    "hs.method.last_period": ("上月计数", "Last month"),
    "hs.method.moving_average_3": ("近 3 个月均值", "3-month mean"),
    "hs.method.historical_mean": ("历史均值", "Historical mean"),
    "hs.method.kde": ("历史核密度", "Kernel density of past events"),
    # timeliness
    "hs.time": ("案件办理时效（第十六条）", "Case timeliness (Art. 16)"),
    "hs.time_caption": (
        "时限默认参照北京 12345 热线规范：紧急（严重程度 5）1 小时响应 / 2 小时办结；水电气暖 2 小时 / 24 小时；"
        "一般 24 小时 / 7 天；疑难复杂 24 小时 / 15 天。**这些是需要按本地规定调整的默认值**"
        "（gridgov.toml 的 [hotspots.timeliness]）。按时率只统计已办结或已超期的案件。",
        "Deadlines default to the Beijing 12345 hotline norms: emergencies (severity 5) respond "
        "within 1 h / close within 2 h; water, power, gas, heating 2 h / 24 h; general 24 h / "
        "7 days; complex 24 h / 15 days. **These are defaults to adapt to the local rules** "
        "([hotspots.timeliness] in gridgov.toml). On-time rates count closed or overdue cases "
        "only.",
    ),
    "hs.time_none": ("没有案件时效数据（case_timeliness 表不存在或为空）。",
                     "No case timeliness data (the case_timeliness table is missing or empty)."),
    "hs.time_caveat": (
        "比率是谈话的起点，不是结论：案件少的网格员和网格比率波动大，请结合案件数阅读。",
        "A rate is a prompt for a conversation, not a verdict: few cases make rates jumpy; read "
        "them with the number of cases.",
    ),
    "hs.time.street": ("按街道", "By street"),
    "hs.time.staff": ("按网格员", "By grid worker"),
    "hs.time.grid": ("按网格/单元", "By grid / unit"),
    "hs.time.kpi_cases": ("案件数", "Cases"),
    "hs.time.kpi_on_time": ("总体按时率", "On-time rate (overall)"),
    "hs.time.kpi_repeat": ("重复投诉率", "Repeat rate"),
    "hs.col.scope_id": ("编号", "ID"),
    "hs.col.street_name": ("街道", "Street"),
    "hs.col.staff_id": ("网格员编号", "Worker"),
    "hs.col.cases": ("案件数", "Cases"),
    "hs.col.due_cases": ("应考核案件", "Cases due"),
    "hs.col.on_time_rate": ("按时率（响应与办结均按时）", "On time (both deadlines)"),
    "hs.col.respond_on_time_rate": ("按时响应率", "Responded on time"),
    "hs.col.close_on_time_rate": ("按时办结率", "Closed on time"),
    "hs.col.median_hours_to_respond": ("响应时长中位数（小时）", "Median hours to respond"),
    "hs.col.median_hours_to_close": ("办结时长中位数（小时）", "Median hours to close"),
    "hs.col.repeat_rate": ("重复投诉率", "Repeat rate"),
}
