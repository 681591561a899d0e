"""Interface strings of the planner page (网格规划): ``key: (中文, English)``.

Loaded into :data:`app_pages.i18n.STRINGS` automatically. Option labels of stateful widgets
(radio, selectbox) are built bilingual in the page itself, so they do not change with the
language (see the note in ``i18n.py``).
"""
from __future__ import annotations

STRINGS: dict[str, tuple[str, str]] = {
    "nav.planner": ("网格规划", "Grid planner"),
    "planner.title": ("网格规划", "Grid planner"),
    "planner.intro": (
        "选择街道和社区，查看现行网格方案；调整户数规范和权重后一键重新划分，或逐个单元调整网格归属。"
        "每个网格始终连通、不跨社区；满意后另存为新方案（旧方案保留，可追溯），并导出调整报告。",
        "Pick a street and a community to see its current grids; change the households norm and "
        "the weights and re-draw in one click, or reassign units one at a time. Every grid stays "
        "one connected piece inside its community; save the result as a new plan (the old one is "
        "kept) and export the realignment report.",
    ),
    "planner.no_plan": (
        "数据库中还没有网格方案（grid_cells / plans 表）。请先运行网格阶段：",
        "The database has no grid plan yet (no grid_cells / plans tables). Run the grids stage "
        "first:",
    ),
    "planner.street": ("街道", "Street"),
    "planner.community": ("社区", "Community"),
    "planner.flash_saved": (
        "已保存新方案 {plan_id}（上一版 {parent}），现已成为当前方案。",
        "Saved new plan {plan_id} (parent {parent}); it is now the current plan.",
    ),
    "planner.reset_by_plan": (
        "当前方案已变更为 {plan_id}，本社区的编辑已重新开始。",
        "The current plan is now {plan_id}; the edit of this community starts afresh.",
    ),
    # headline
    "planner.kpi.households": ("户数", "Households"),
    "planner.kpi.cells": ("网格单元", "Units (cells)"),
    "planner.kpi.grids": ("现行基础网格", "Basic grids today"),
    "planner.kpi.plan": ("当前方案", "Current plan"),
    "planner.kpi.kind": ("类型", "Kind"),
    "planner.kind.urban": ("城市", "urban"),
    "planner.kind.rural": ("农村", "rural"),
    # controls
    "planner.controls": ("规范、权重与重新划分", "Norm, weights and re-draw"),
    "planner.color_by": ("着色 / Colour by", "着色 / Colour by"),
    "planner.color.households": ("户数 households", "户数 households"),
    "planner.color.workload": ("工作量 workload", "工作量 workload"),
    "planner.norm_min": ("每格最少户数", "Households per grid: minimum"),
    "planner.norm_max": ("每格最多户数", "Households per grid: maximum"),
    "planner.norm_help": (
        "户数规范是设置项（城市社区常用 300–500 户），不是国家标准；这里只改变本社区的规范。",
        "The norm is a setting (300–500 households is common local practice, not a national "
        "rule); this changes it for this community only.",
    ),
    "planner.w_balance": ("工作量均衡权重", "Weight: workload balance"),
    "planner.w_compactness": ("形状紧凑权重", "Weight: compactness"),
    "planner.w_help": (
        "户数规范的权重保持最大；在满足规范的方案中，这两个权重决定更看重工作量均衡还是网格形状规整。",
        "The norm keeps the largest weight; among plans that meet it these two decide between "
        "balanced workload and compact shapes.",
    ),
    "planner.mode": ("划分方式 / Mode", "划分方式 / Mode"),
    "planner.mode.fresh": ("重新划分 fresh", "重新划分 fresh"),
    "planner.mode.minimal": ("最少调整 minimal change", "最少调整 minimal change"),
    "planner.mode_help": (
        "重新划分：锁定网格以外的部分重新划分；最少调整：只移动为满足规范所必需的最少户数。",
        "Fresh: draw everything outside the locked grids anew. Minimal change: move as few "
        "households as needed to meet the norm.",
    ),
    "planner.redraw": ("重新划分", "Re-draw"),
    "planner.undo": ("撤销", "Undo"),
    "planner.discard": ("放弃方案", "Discard proposal"),
    "planner.redraw_done": (
        "已生成方案：{mode}，用时 {seconds:.2f} 秒。",
        "Proposal drawn ({mode}) in {seconds:.2f} s.",
    ),
    "planner.undone": ("已撤销：{what}", "Undone: {what}"),
    "planner.nothing_to_undo": ("没有可撤销的操作。", "Nothing to undo."),
    "planner.op.redraw": ("重新划分", "re-draw"),
    "planner.op.move": ("单元调整", "unit move"),
    "planner.op.lock": ("锁定/解锁", "lock/unlock"),
    "planner.bad_norm": ("最少户数不能大于最多户数。", "The minimum cannot exceed the maximum."),
    # maps
    "planner.map.current": ("现行方案 {plan_id}", "Current plan {plan_id}"),
    "planner.map.proposal": ("调整方案（编辑中）", "Proposal (being edited)"),
    "planner.map.same": (
        "尚无修改：点击“重新划分”，或在此图上点选单元后调整。",
        "No changes yet: press “Re-draw”, or click a unit on this map and move it.",
    ),
    "planner.map.click_hint": (
        "点击右图中的单元即可选中（黄色），再在下方选择相邻网格并调整。"
        "红色斜线 = 户数不达标；深色粗边 = 已锁定。",
        "Click a unit on the right-hand map to pick it (yellow), then pick a neighbouring grid "
        "below. Red hatching = outside the norm; dark heavy outline = locked.",
    ),
    "planner.layer.grids": ("网格", "Grids"),
    "planner.layer.cells": ("网格单元", "Units (cells)"),
    "planner.layer.violations": ("户数不达标", "Outside the norm"),
    "planner.layer.labels": ("网格编号", "Grid numbers"),
    "planner.legend.households": ("每格户数", "Households per grid"),
    "planner.legend.workload": ("每格工作量", "Workload per grid"),
    "planner.legend.dedicated": ("专属网格", "Dedicated grid"),
    "planner.legend.violation": ("户数不达标", "Outside the norm"),
    "planner.legend.locked": ("已锁定", "Locked"),
    "planner.legend.selected": ("选中的单元", "Selected unit"),
    "planner.tip.grid_id": ("网格编码", "Grid code"),
    "planner.tip.households": ("户数", "Households"),
    "planner.tip.workload": ("工作量", "Workload"),
    "planner.tip.status": ("状态", "Status"),
    "planner.tip.type": ("类型", "Type"),
    "planner.type.basic": ("基础网格", "basic grid"),
    "planner.type.dedicated": ("专属网格", "dedicated grid"),
    "planner.locked_suffix": ("（已锁定）", " (locked)"),
    # comparison and checks
    "planner.compare": ("现行与调整方案对比", "Current against proposed"),
    "planner.col.metric": ("指标", "Figure"),
    "planner.col.current": ("现行", "Current"),
    "planner.col.proposed": ("方案", "Proposed"),
    "planner.kpi.within": ("方案户数达标率", "Proposal within the norm"),
    "planner.kpi.moved": ("调整户数", "Households moved"),
    "planner.kpi.moved_buildings": ("调整楼栋", "Buildings moved"),
    "planner.kpi.seconds": ("划分用时", "Re-draw time"),
    "planner.checks": ("有效性检查", "Validity checklist"),
    "planner.yes": ("是", "yes"),
    "planner.no": ("否", "no"),
    # edit panel
    "planner.edit": ("调整单元归属", "Reassign units"),
    "planner.cell": ("单元（楼栋）", "Unit (building)"),
    "planner.cell_help": (
        "在右侧地图上点击即可选中；也可在此按单元编号或楼栋编号查找。",
        "Click on the right-hand map to select, or pick by cell or building id here.",
    ),
    "planner.cell_none": ("（未选中）", "(none selected)"),
    "planner.cell_info": (
        "单元 {cell} 属于网格 **{grid}**：{n} 栋楼、{households} 户。",
        "Unit {cell} is in grid **{grid}**: {n} building(s), {households} households.",
    ),
    "planner.to_grid": ("调整到相邻网格", "Move to neighbouring grid"),
    "planner.across": ("（隔道路/铁路/河流）", " (across a barrier)"),
    "planner.no_neighbours": ("该单元没有相邻的其他网格。", "This unit touches no other grid."),
    "planner.move": ("调整", "Move"),
    "planner.moved": ("已将单元 {cell} 调整到网格 {grid}。", "Moved unit {cell} to grid {grid}."),
    "planner.refused": ("无法调整：{reason}", "Move refused: {reason}"),
    "planner.lock_grid": ("锁定网格", "Lock a grid"),
    "planner.lock": ("锁定", "Lock"),
    "planner.unlock": ("解锁", "Unlock"),
    "planner.locked_list": ("已锁定：{grids}", "Locked: {grids}"),
    "planner.locked_none": ("没有锁定的网格（专属网格始终锁定）。",
                            "No grid is locked (dedicated grids always are)."),
    "planner.grid_table": ("网格明细", "Grids in detail"),
    "planner.moves_table": ("调整明细（楼栋）", "What moved (buildings)"),
    "planner.no_moves": ("与现行方案相比没有楼栋调整。",
                         "No building moves against the current plan."),
    "planner.col.grid_id": ("网格编码", "Grid code"),
    "planner.col.grid_type": ("类型", "Type"),
    "planner.col.households": ("户数", "Households"),
    "planner.col.residents": ("人口", "Residents"),
    "planner.col.workload": ("工作量", "Workload"),
    "planner.col.compactness": ("紧凑度", "Compactness"),
    "planner.col.status": ("状态", "Status"),
    "planner.col.locked": ("锁定", "Locked"),
    "planner.col.building_id": ("楼栋编号", "Building"),
    "planner.col.from_grid": ("原网格", "From grid"),
    "planner.col.to_grid": ("新网格", "To grid"),
    # save and export
    "planner.save": ("保存与导出", "Save and export"),
    "planner.author": ("编制人", "Author"),
    "planner.note": ("说明", "Note"),
    "planner.note_placeholder": ("例如：按 300–450 户重新划分",
                                 "e.g. re-drawn at 300–450 households"),
    "planner.save_button": ("另存为新方案", "Save as new plan"),
    "planner.save_help": (
        "保存为新的方案版本（上一版保留），并设为当前方案；其他社区的网格保持不变。",
        "Stores a new plan version (the old one is kept) and makes it current; the other "
        "communities' grids stay as they are.",
    ),
    "planner.save_nothing": ("还没有调整方案可保存。", "There is no proposal to save yet."),
    "planner.save_failed": ("保存失败：{error}", "Could not save: {error}"),
    "planner.report_button": ("下载调整报告 (Excel)", "Download realignment report (Excel)"),
    "planner.geojson_button": ("下载网格 GeoJSON", "Download grids (GeoJSON)"),
    "planner.export_caption": (
        "调整报告列出每栋调整的楼栋（原网格 → 新网格）以及各网格调整前后的户数、人口、工作量；"
        "GeoJSON 为当前编辑中的方案。",
        "The realignment report lists every building that moves (from grid → to grid) and each "
        "grid's households, residents and workload before and after; the GeoJSON holds the plan "
        "being edited.",
    ),
    # statuses
    "planner.status.ok": ("达标", "within the norm"),
    "planner.status.out_of_norm": ("户数超出规范", "outside the norm"),
    "planner.status.infeasible": ("规范无法满足", "norm cannot be met"),
    "planner.status.under_min_component": ("孤立片区户数不足", "isolated piece below the minimum"),
    "planner.status.under_min_community": ("社区户数不足一个网格", "community below the minimum"),
    "planner.status.over_max_single_unit": ("单栋楼超过上限", "one building above the maximum"),
    # multi-select, lock all, next problem, search, balance only (#10.5)
    "planner.op.move_many": ("多单元调整", "multi-unit move"),
    "planner.op.lock_all": ("全部锁定/解锁", "lock/unlock all"),
    "planner.multi": ("点击地图加入多选", "Map clicks add to the selection"),
    "planner.multi_help": ("打开后，在右侧地图上每点击一个单元即加入（再次点击则移出）下方的多选；"
                           "关闭时点击只选中一个单元。",
                           "When on, each click on the proposal map adds a unit to the selection "
                           "below (a second click removes it); when off a click picks one unit."),
    "planner.selection": ("多选单元", "Selected units"),
    "planner.sel_to_grid": ("整体调整到网格", "Move the selection to grid"),
    "planner.sel_grids": ("所选单元现属网格：{grids}", "The selected units are now in: {grids}"),
    "planner.move_many": ("整体调整", "Move selection"),
    "planner.clear_sel": ("清空多选", "Clear selection"),
    "planner.moved_many": ("已将 {n} 个单元调整到网格 {grid}（可一步撤销）。",
                           "Moved {n} units to grid {grid} (one step to undo)."),
    "planner.lock_all": ("全部锁定", "Lock all"),
    "planner.unlock_all": ("全部解锁", "Unlock all"),
    "planner.next_problem": ("定位下一个问题网格", "Zoom to the next problem grid"),
    "planner.no_problem": ("方案中没有问题网格（户数达标、未被道路/铁路/河流穿越、连成一片）。",
                           "No problem grid in this plan (within the norm, not crossed by a "
                           "barrier, one piece)."),
    "planner.problem_at": ("问题网格 {grid}（第 {i}/{n} 个）：{why}",
                           "Problem grid {grid} ({i} of {n}): {why}"),
    "planner.why.out_of_norm": ("户数超出规范", "outside the norm"),
    "planner.why.barrier": ("被道路/铁路/河流穿越", "crossed by a barrier"),
    "planner.why.pieces": ("不连成一片", "not one piece"),
    "planner.search": ("按名称查找社区或街道（全市）", "Find a community or street by name (whole city)"),
    "planner.search_pick": ("匹配结果", "Matches"),
    "planner.search_go": ("转到", "Go"),
    "planner.search_none": ("没有匹配的社区或街道。", "No community or street matches."),
    "planner.search_street": ("街道", "street"),
    "planner.balance_only": ("仅均衡（不计紧凑度）", "Balance only (no compactness)"),
    "planner.balance_only_help": ("重新划分时只考虑户数规范与均衡，紧凑度权重为 0；"
                                  "下方可对比户数极差、变异系数与紧凑度。",
                                  "The re-draw weighs only the norm and the households balance "
                                  "(compactness weight 0); compare the households spread and "
                                  "compactness below."),
    "planner.spread": ("户数极差（最大−最小）", "Households spread (max−min)"),
    "planner.cv": ("户数变异系数", "Households CV"),
    "planner.compactness": ("平均紧凑度", "Mean compactness"),
    "planner.tradeoff": ("均衡与紧凑的取舍（基础网格；方案 vs 现行）",
                         "Balance vs compactness (basic grids; proposal vs current)"),
}
