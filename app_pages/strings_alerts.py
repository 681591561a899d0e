"""Interface strings of the early-warning page (预警): ``key: (中文, English)``.

Loaded into :data:`app_pages.i18n.STRINGS` automatically.
"""
from __future__ import annotations

STRINGS: dict[str, tuple[str, str]] = {
    "nav.alerts": ("预警", "Early warning"),
    "alerts.title": ("预警：近期异常增多的网格", "Early warning: grids with an unusual recent rise"),
    "alerts.intro": (
        "每次运行都在最新数据上检查：最近几天（1、3、7、14 天的时段）某个网格的事件是否比它平常在全市"
        "事件中所占的份额多出很多，多到偶然难以解释。**重现期**说明仅凭偶然，全市多久才会出现一次这么"
        "极端的信号；默认只有偶然约每 {threshold} 天（或更少）才出现一次的信号才会成为预警。每条预警"
        "交给该网格的网格员（以工号显示），并由工作人员在下方设为**已确认**或**已关闭**；状态在以后的"
        "运行中保留。",
        "Each run checks the latest data: did a grid, in the last days (windows of 1, 3, 7 and "
        "14 days), get many more incidents than its usual share of the city's incidents — more "
        "than chance explains? The **recurrence interval** says how often chance alone would "
        "raise a signal this extreme somewhere in the city; by default only signals that chance "
        "raises about once every {threshold} days or less often become alerts. Each alert goes "
        "to the grid's worker (shown by staff id) and staff set it to **acknowledged** or "
        "**closed** below; the status is kept in later runs.",
    ),
    "alerts.none": (
        "当前数据中没有预警：最近的事件没有在任何网格异常增多。",
        "No alert in the current data: no grid had an unusual rise in recent incidents.",
    ),
    "alerts.no_incidents": (
        "本项目没有事件图层（incidents），因此没有可监测的数据。提供 incidents 图层后重新运行即可预警。",
        "This project has no incidents layer, so there is nothing to watch. Add an incidents layer and "
        "run again to get alerts.",
    ),
    "alerts.no_table": (
        "数据库中还没有预警表：请用当前版本重新运行流程。",
        "The database has no alerts table yet: run the pipeline again with this version.",
    ),
    "alerts.kpi.open": ("待处理预警", "Open alerts"),
    "alerts.kpi.new": ("新预警", "New"),
    "alerts.kpi.acknowledged": ("已确认", "Acknowledged"),
    "alerts.kpi.closed": ("已关闭", "Closed"),
    "alerts.table": ("预警列表", "Alerts"),
    "alerts.table_caption": (
        "待处理（新、已确认）的预警在前，按重现期从长到短排列。“实际 / 期望”是时段内的事件数与按该网格"
        "平常份额期望的事件数。",
        "Open alerts (new, acknowledged) first, the rarest first. “Observed / expected” are the "
        "incidents in the window and the number the grid's usual share leads one to expect.",
    ),
    "alerts.show_closed": ("显示已关闭的预警", "Show closed alerts"),
    "alerts.map": ("预警地图", "Map of the alerts"),
    "alerts.map_caption": (
        "红色：新预警；橙色：已确认；灰色：已关闭。圆点标出预警网格的位置，悬停可查看详情。深灰线为社区界，"
        "浅灰线为预警所在社区的网格。",
        "Red: new; orange: acknowledged; grey: closed. Dots mark the alerted grids; hover for "
        "details. Dark grey lines: communities; light grey: the grids of the alerted "
        "communities.",
    ),
    "alerts.layer.communities": ("社区", "Communities"),
    "alerts.layer.grids": ("预警所在社区的网格", "Grids of the alerted communities"),
    "alerts.layer.alerts": ("预警网格", "Alerted grids"),
    "alerts.legend.title": ("预警状态", "Alert status"),
    "alerts.set": ("设置预警状态", "Set an alert's status"),
    "alerts.set_caption": (
        "选择一条预警，设为已确认（已知悉、正在处理）或已关闭（已处理完毕或确认无需处理），可附备注。"
        "状态写入项目数据库，下次运行仍保留；运行进行中时无法保存。",
        "Choose an alert and set it to acknowledged (seen, being handled) or closed (handled, or "
        "nothing to do), with an optional note. The status is written to the project database "
        "and kept by later runs; it cannot be saved while a run is in progress.",
    ),
    "alerts.choose": ("预警", "Alert"),
    "alerts.new_status": ("新状态", "New status"),
    "alerts.note": ("备注（可选）", "Note (optional)"),
    "alerts.by": ("操作人工号（可选）", "Your staff id (optional)"),
    "alerts.save": ("保存状态", "Save status"),
    "alerts.saved": ("预警 {alert_id} 已设为“{status}”。", "Alert {alert_id} is now “{status}”."),
    "alerts.status.new": ("新预警", "new"),
    "alerts.status.acknowledged": ("已确认", "acknowledged"),
    "alerts.status.closed": ("已关闭", "closed"),
    "alerts.rec.days": ("偶然出现约每 {n} 天一次", "by chance about once every {n} days"),
    "alerts.rec.years": ("偶然出现约每 {n} 年一次", "by chance about once every {n} years"),
    "alerts.rec.century": ("偶然出现不到每 100 年一次", "by chance less than once in 100 years"),
    "alerts.window": ("{start} 至 {end}（{days} 天）", "{start} to {end} ({days} days)"),
    "alerts.no_owner": ("未指定", "none"),
    "alerts.col.status": ("状态", "Status"),
    "alerts.col.grid_id": ("网格", "Grid"),
    "alerts.col.community": ("社区", "Community"),
    "alerts.col.street": ("街道", "Street"),
    "alerts.col.category": ("事件类别", "Category"),
    "alerts.col.window": ("时段", "Window"),
    "alerts.col.observed": ("实际", "Observed"),
    "alerts.col.expected": ("期望", "Expected"),
    "alerts.col.obs_exp": ("实际 / 期望（倍数）", "Observed / expected (ratio)"),
    "alerts.col.recurrence": ("重现期", "Recurrence interval"),
    "alerts.col.recurrence_days": ("重现期（天）", "Recurrence (days)"),
    "alerts.col.owner": ("网格员工号", "Grid worker (staff id)"),
    "alerts.col.note": ("备注", "Note"),
    "alerts.col.detected_at": ("发现日期", "Detected"),
    "alerts.col.alert_id": ("预警编号", "Alert id"),
    # staffing page: next month's forecast as hours (#11.5, app_pages/_forecast_workload.py)
    "fw.title": ("下月预测工作量", "Next month's forecast workload"),
    "fw.caption": (
        "{period} 的事件预测（{method}）按各网格近期的事件类别构成，用与工作量模型相同的每件处理时间换算为"
        "网格员工时：哪里会多、多几个小时、相当于多少名专职网格员。仅供排班参考，不改变上面的编制分配。",
        "The incident forecast for {period} ({method}), split by each grid's recent mix of "
        "categories and turned into grid-worker hours with the workload model's own minutes per "
        "incident: where next month gets busier, by how many hours, and how many full-time "
        "workers that is. For planning visits and patrols; the allocation above is unchanged.",
    ),
    "fw.kpi.incidents": ("预测事件数", "Predicted incidents"),
    "fw.kpi.hours": ("预测事件工时（小时/月）", "Predicted incident hours / month"),
    "fw.kpi.delta": ("较目前（小时）", "Change from today (hours)"),
    "fw.kpi.fte": ("折合专职网格员", "In full-time workers"),
    "fw.summary": (
        "{n} 个网格中有 {up} 个下月事件工时增加；全部网格合计由目前每月 {cur} 小时变为 {pred} 小时。",
        "{up} of {n} grids get more incident hours next month; all grids together go from "
        "{cur} hours a month today to {pred}.",
    ),
    "fw.show_all": ("显示全部 {n} 个网格（默认只显示工时增加最多的 20 个）",
                    "Show all {n} grids (by default the 20 largest rises)"),
    "fw.col.grid_id": ("网格", "Grid"),
    "fw.col.community": ("社区", "Community"),
    "fw.col.street": ("街道", "Street"),
    "fw.col.predicted_incidents": ("下月预测事件", "Predicted incidents"),
    "fw.col.current_incidents": ("目前每月事件", "Incidents a month today"),
    "fw.col.predicted_hours": ("下月事件工时", "Incident hours next month"),
    "fw.col.current_hours": ("目前每月事件工时", "Incident hours a month today"),
    "fw.col.delta_hours": ("工时变化", "Change in hours"),
    "fw.col.required_fte_delta": ("折合专职网格员变化", "Change in full-time workers"),
}
