"""Interface strings of the plan history page (方案历史): ``key: (中文, English)``.

Loaded into :data:`app_pages.i18n.STRINGS` automatically.
"""
from __future__ import annotations

STRINGS: dict[str, tuple[str, str]] = {
    "nav.history": ("方案历史", "Plan history"),
    "history.title": ("网格方案历史", "Grid plan history"),
    "history.intro": (
        "每次运行和每次在网格规划中保存都会生成一个新方案，旧方案不会被覆盖。可以比较任意两个方案、"
        "把旧方案恢复为当前方案（作为一个新方案保存，上一版为被恢复的方案），并下载任一方案相对于"
        "上一版的调整报告。",
        "Every run and every save in the grid planner stores a new plan; nothing is overwritten. "
        "Compare any two plans, restore an older plan as the current one (stored as a new plan "
        "whose parent is the restored one), and download the realignment workbook of any plan "
        "against its parent.",
    ),
    "history.none": (
        "本项目数据库中还没有网格方案（plans 表）。请先运行网格阶段：",
        "The project database has no grid plans yet (no plans table). Run the grids stage:",
    ),
    "history.plans": ("全部方案", "All plans"),
    "history.current": ("当前方案：{plan}", "Current plan: {plan}"),
    "history.compare": ("比较两个方案", "Compare two plans"),
    "history.plan_a": ("调整前 / Before", "调整前 / Before"),
    "history.plan_b": ("调整后 / After", "调整后 / After"),
    "history.same": ("请选择两个不同的方案。", "Choose two different plans."),
    "history.kpi.buildings": ("调整楼栋", "Buildings moved"),
    "history.kpi.households": ("调整户数", "Households moved"),
    "history.kpi.grids": ("变动网格", "Grids changed"),
    "history.kpi.grids_help": ("新增 {added}，撤销 {removed}，户数变动 {changed}",
                               "{added} added, {removed} removed, {changed} with other households"),
    "history.figures": ("指标对比", "Figures side by side"),
    "history.map": ("变动的网格", "Changed grids"),
    "history.map_caption": (
        "橙色：“调整后”方案中新增或户数变动的网格；蓝色虚线：“调整前”方案中被撤销或变动的网格边界；"
        "灰色：未变动的网格。",
        "Orange: grids of the “after” plan that are new or hold other households; dashed blue: "
        "outlines of the “before” plan's grids that were removed or changed; grey: unchanged.",
    ),
    "history.map_none": ("两个方案的网格完全相同。", "The two plans have the same grids."),
    "history.layer.after": ("调整后网格", "Grids after"),
    "history.layer.before": ("调整前（变动）", "Before (changed)"),
    "history.legend.changed": ("新增或变动", "new or changed"),
    "history.legend.unchanged": ("未变动", "unchanged"),
    "history.legend.before": ("调整前边界", "outline before"),
    "history.grids_table": ("变动网格明细", "Changed grids"),
    "history.restore": ("恢复旧方案", "Restore an older plan"),
    "history.restore_caption": (
        "恢复会把所选方案复制为一个新方案并设为当前方案，历史记录完整保留；正在运行 gridgov run 时不能恢复。",
        "A restore copies the chosen plan as a new plan and makes it current; the history stays "
        "complete. It is refused while `gridgov run` is writing the project.",
    ),
    "history.restore_plan": ("要恢复的方案 / Plan to restore", "要恢复的方案 / Plan to restore"),
    "history.author": ("操作人", "Your name"),
    "history.note": ("说明", "Note"),
    "history.restore_button": ("恢复为当前方案", "Restore as the current plan"),
    "history.restore_current": ("所选方案已经是当前方案。", "The chosen plan is already current."),
    "history.restored": ("已恢复：新方案 {new}（上一版 {old}）现为当前方案。",
                         "Restored: the new plan {new} (parent {old}) is now current."),
    "history.report": ("调整报告（Excel）", "Realignment workbook (Excel)"),
    "history.report_caption": (
        "所选方案相对于对比方案（默认为其上一版）的调整：每栋调整网格的楼、每个变动网格的户数、指标对比。",
        "The chosen plan against another (its parent by default): every building that changed "
        "grid, the households of every grid touched, the figures side by side.",
    ),
    "history.report_plan": ("方案 / Plan", "方案 / Plan"),
    "history.report_against": ("对比方案 / Against", "对比方案 / Against"),
    "history.report_parent": ("上一版 / parent", "上一版 / parent"),
    "history.report_button": ("下载调整报告", "Download the realignment workbook"),
    "history.report_none": ("所选方案没有上一版，请选择一个对比方案。",
                            "The chosen plan has no parent: choose a plan to compare with."),
    "history.col.plan_id": ("方案", "Plan"),
    "history.col.parent_plan_id": ("上一版", "Parent"),
    "history.col.created_at": ("创建时间", "Created"),
    "history.col.author": ("编制人", "Author"),
    "history.col.note": ("说明", "Note"),
    "history.col.source": ("来源", "Source"),
    "history.col.is_current": ("当前", "Current"),
    "history.col.n_grids": ("网格数", "Grids"),
    "history.col.n_basic": ("基础网格", "Basic"),
    "history.col.share_within_norm": ("户数达标占比", "Within norm"),
    "history.col.workload_cv": ("工作量变异系数", "Workload CV"),
    "history.col.mean_compactness": ("平均紧凑度", "Compactness"),
    "history.col.flagged": ("有问题", "Flagged"),
    "history.col.figure": ("指标", "Figure"),
    "history.col.grid_id": ("网格编码", "Grid"),
    "history.col.change": ("变化", "Change"),
    "history.col.households_before": ("调整前户数", "Households before"),
    "history.col.households_after": ("调整后户数", "Households after"),
    "history.col.gained": ("迁入户数", "Households in"),
    "history.col.lost": ("迁出户数", "Households out"),
    "history.change.added": ("新增", "added"),
    "history.change.removed": ("撤销", "removed"),
    "history.change.changed": ("变动", "changed"),
    "history.source.engine": ("自动生成", "engine"),
    "history.source.planner": ("规划编辑", "planner"),
    "history.source.restore": ("恢复", "restore"),
    "history.source.redraw": ("按现状修正", "re-draw"),
    "history.source.current_grids": ("现状网格", "today's grids"),
    "history.today": ("现状网格 / today's map", "现状网格 / today's map"),  # option label: fixed
}
