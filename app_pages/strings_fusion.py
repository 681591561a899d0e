"""Interface strings of the fusion page (多网融合): ``key: (中文, English)``.

Loaded into :data:`app_pages.i18n.STRINGS` automatically.
"""
from __future__ import annotations

STRINGS: dict[str, tuple[str, str]] = {
    "nav.fusion": ("多网融合", "Grid fusion"),
    "fusion.title": ("多网融合：部门网格与统一网格", "Grid fusion: department grids on the unified grids"),
    "fusion.intro": (
        "各部门（城管、应急、公安等）自有的网格与统一的基础网格对照：一个部门网格被多个基础网格分割即为"
        "**被分割**，落在一个基础网格之内（≥ {aligned:.0%}）即为**已对齐**。**融合建议**遵循“一个基础网格"
        "只属于一个部门网格”：每个基础网格归入覆盖它面积最大的部门网格，部门网格改划为其所得基础网格的并集；"
        "一个基础网格都没有得到的部门网格（例如同在一个基础网格内的几个小网格中较小的那些）并入取得该基础网格"
        "的部门网格。",
        "Each department's own grids (city management, emergency, police …) against the unified "
        "basic grids: a department grid cut by several basic grids is **split**, one inside a "
        "single basic grid (≥ {aligned:.0%}) is **aligned**. The **proposal** follows “one basic "
        "grid belongs to one department grid”: every basic grid goes to the department grid that "
        "covers most of it, and each department grid is redrawn as the union of the basic grids "
        "it gets; one that gets none (say the smaller of several grids inside one basic grid) "
        "joins the department grid that took its basic grid.",
    ),
    "fusion.none": (
        "本项目没有部门网格（department_grids），或者还没有运行网格阶段（grid_fusion 表）。"
        "提供 department_grids 图层后运行：",
        "This project has no department grids (department_grids), or the grids stage has not "
        "run (no grid_fusion table). Supply the department_grids layer, then run:",
    ),
    "fusion.summary": ("各部门概况", "Departments at a glance"),
    "fusion.department": ("部门 / Department", "部门 / Department"),
    "fusion.kpi.grids": ("部门网格", "Department grids"),
    "fusion.kpi.split": ("被分割", "Split"),
    "fusion.kpi.aligned": ("已对齐", "Aligned"),
    "fusion.kpi.coverage": ("被基础网格覆盖", "Covered by basic grids"),
    "fusion.map": ("地图", "Map"),
    "fusion.map_caption": (
        "灰色细线：统一的基础网格；彩色：所选部门的网格，按融合建议着色；粗红边：被分割的部门网格。",
        "Thin grey lines: the unified basic grids; colours: the chosen department's grids by "
        "proposal; thick red outline: split department grids.",
    ),
    "fusion.layer.basic": ("统一基础网格", "Unified basic grids"),
    "fusion.layer.dept": ("部门网格", "Department grids"),
    "fusion.legend.title": ("融合建议", "Proposal"),
    "fusion.legend.split": ("被分割", "split"),
    "fusion.proposal": ("融合建议", "Proposal"),
    "fusion.proposal_caption": (
        "“采用的基础网格”按重叠面积从大到小排列；“保留面积”为部门网格面积中落在所采用基础网格内的比例。",
        "“Adopts” lists basic grids by overlap, largest first; “area kept” is the share of the "
        "department grid's area inside the grids it adopts.",
    ),
    "fusion.only_split": ("只看被分割的网格", "Only split grids"),
    "fusion.download": ("下载融合表（Excel）", "Download the fusion workbook (Excel)"),
    "fusion.download_caption": (
        "三张工作表：各部门概况、融合建议（每个部门网格一行）、重叠明细；横版打印、表头重复。",
        "Three sheets: departments, proposal (one row per department grid) and overlaps; "
        "landscape, header repeated on every page.",
    ),
    "fusion.status.aligned": ("已对齐（保留）", "aligned (keep)"),
    "fusion.status.adopt": ("改划为基础网格", "adopt basic grids"),
    "fusion.status.merge": ("并入相邻网格", "merge into a neighbour"),
    "fusion.status.uncovered": ("不在基础网格内", "outside the basic grids"),
    "fusion.col.department": ("部门", "Department"),
    "fusion.col.dept_grid_id": ("部门网格编号", "Department grid"),
    "fusion.col.status": ("建议", "Proposal"),
    "fusion.col.adopt": ("采用的基础网格", "Adopts basic grids"),
    "fusion.col.n_adopt": ("采用数", "Adopted"),
    "fusion.col.merge_with": ("并入", "Merge into"),
    "fusion.col.aligned": ("已对齐", "Aligned"),
    "fusion.col.split": ("被分割", "Split"),
    "fusion.col.n_overlapping": ("涉及基础网格数", "Basic grids touched"),
    "fusion.col.max_share": ("最大重叠比例", "Largest overlap share"),
    "fusion.col.covered_share": ("覆盖比例", "Covered share"),
    "fusion.col.area_kept_share": ("保留面积", "Area kept"),
    "fusion.col.n_grids": ("网格数", "Grids"),
    "fusion.col.n_split": ("被分割数", "Split"),
    "fusion.col.share_split": ("被分割比例", "Share split"),
    "fusion.col.share_aligned": ("已对齐比例", "Share aligned"),
    "fusion.col.uncovered_share": ("未覆盖面积比例", "Share uncovered"),
    "fusion.col.mean_max_overlap_share": ("平均最大重叠", "Mean largest overlap"),
    "fusion.col.basic_grid_id": ("基础网格编码", "Basic grid"),
    "fusion.col.overlap_km2": ("重叠面积（平方公里）", "Overlap (km²)"),
    "fusion.col.share_of_dept_grid": ("占部门网格比例", "Share of department grid"),
    "fusion.col.share_of_basic_grid": ("占基础网格比例", "Share of basic grid"),
    "fusion.col.grid_id": ("网格编码", "Grid"),
}
