"""Plan history (#10.4): list, compare and restore stored grid plans; the realignment workbook of
any plan against its parent (or any other plan).

No Streamlit here; the page ``app_pages/history.py`` and notebooks call these::

    from pipelines.services import history
    from pipelines.results import open_project
    with open_project("demo-city") as con:
        table = history.plan_table(con)                 # plans with their metrics
        cmp = history.compare(con, "P0001", "P0002")    # moves, changed grids, metrics
        xlsx = history.realignment_workbook(con, "P0002")   # against its parent
    history.restore("demo-city/gridgov.duckdb", "P0001", author="王工", note="回退")

A restore never rewrites history: it stores a *copy* of the older plan as a new plan (parent =
the restored plan, source ``restore``) and makes it current, under the project's write lock,
exactly as the planner saves (:func:`pipelines.services.planner.save_plan`). Like
:func:`pipelines.plans.set_current`, it leaves ``grid_cells`` as they are: the planner reads a
cell's grid from the current plan's members.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from geo.grids import diff_plans
from pipelines import results, results_more
from pipelines.db import read_table, table_exists
from pipelines.errors import GridgovError
from pipelines.plans import METRIC_COLUMNS, load_plan, store_plan

#: Figures compared side by side: key, 中文, English.
FIGURES = (
    ("n_grids", "网格数", "Grids"),
    ("n_basic", "基础网格数", "Basic grids"),
    ("n_dedicated", "专属网格数", "Dedicated grids"),
    ("households_min", "最少户数", "Fewest households"),
    ("households_max", "最多户数", "Most households"),
    ("share_within_norm", "户数达标网格占比", "Share of grids within the norm"),
    ("workload_cv", "工作量变异系数", "Workload CV"),
    ("mean_compactness", "平均紧凑度", "Mean compactness"),
    ("n_barrier_crossed", "被障碍线穿越的网格", "Grids crossed by a barrier"),
    ("n_overlaps", "重叠网格对", "Overlapping pairs"),
    ("n_invalid", "无效多边形", "Invalid polygons"),
    ("flagged", "有问题", "Flagged"),
)
#: Seconds a restore waits for another writer (as a planner save).
RESTORE_LOCK_WAIT = 5.0


class HistoryError(GridgovError, ValueError):
    """A restore that cannot be done, with a Chinese and an English message."""


# --------------------------------------------------------------------------------------------
# reading


def plan_table(con) -> pd.DataFrame:
    """Every plan, newest first, with its figures (``grid_metrics``) joined on ``plan_id``."""
    plans = results.plans(con)
    metrics = results_more.grid_metrics(con)
    out = plans.merge(metrics, on="plan_id", how="left")
    out["is_current"] = out["is_current"].fillna(False).astype(bool)
    return out.reset_index(drop=True)


def plan_settings(con, plan_id: str) -> dict:
    """The settings stored with a plan (``{}`` when none)."""
    if not table_exists(con, "plans") or "settings" not in results.columns(con, "plans"):
        return {}
    row = con.execute("SELECT settings FROM plans WHERE plan_id = ?", [str(plan_id)]).fetchone()
    try:
        value = json.loads(row[0]) if row and row[0] else {}
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _buildings(con) -> pd.DataFrame:
    cols = ["building_id", "community_code", "households", "residents"]
    if not table_exists(con, "buildings"):
        return pd.DataFrame(columns=cols)
    b = read_table(con, results.select_columns(con, "buildings", cols, geometry=None))
    b["building_id"] = b["building_id"].astype(str)
    return b.drop_duplicates("building_id").set_index("building_id")


@dataclass
class Comparison:
    """Plan ``a`` (before) against plan ``b`` (after)."""

    a: str
    b: str
    moves: pd.DataFrame  # building_id, community_code, households, residents, from_grid, to_grid
    grids: pd.DataFrame  # grid_id, change (added/removed/changed), households before/after,
    #                      gained, lost
    figures: pd.DataFrame  # metric, label_zh, label_en, a, b
    households_moved: int
    buildings_moved: int
    n_unchanged: int

    @property
    def changed_grid_ids(self) -> list[str]:
        return self.grids["grid_id"].astype(str).tolist()


def compare(con, a: str, b: str) -> Comparison:
    """Which buildings and grids changed from plan ``a`` to plan ``b``, and their figures."""
    ma = results_more.plan_members(con, a)
    mb = results_more.plan_members(con, b)
    bld = _buildings(con)
    hh = pd.concat([ma.set_index("building_id")["households"],
                    mb.set_index("building_id")["households"]])
    hh = pd.to_numeric(hh[~hh.index.duplicated()], errors="coerce").fillna(0)
    d = diff_plans(ma[["building_id", "grid_id"]], mb[["building_id", "grid_id"]],
                   households=hh)
    mv = d["moves"]
    moves = pd.DataFrame({
        "building_id": mv["id"].astype(str).to_numpy(),
        "community_code": mv["id"].astype(str).map(bld.get("community_code", pd.Series(
            dtype=str))).to_numpy(),
        "households": pd.to_numeric(mv["households"], errors="coerce").fillna(0)
        .astype("int64").to_numpy(),
        "residents": pd.to_numeric(mv["id"].astype(str).map(bld.get("residents", pd.Series(
            dtype=float))), errors="coerce").to_numpy(),
        "from_grid": mv["from_grid"].to_numpy(), "to_grid": mv["to_grid"].to_numpy()})
    moves = moves.sort_values(["from_grid", "to_grid", "building_id"],
                              na_position="first").reset_index(drop=True)
    before = hh.groupby(ma.set_index("building_id")["grid_id"]).sum() if len(ma) else pd.Series()
    after = hh.groupby(mb.set_index("building_id")["grid_id"]).sum() if len(mb) else pd.Series()
    changed = d["grids_changed"].assign(change="changed")
    added = pd.DataFrame({"grid_id": d["grids_added"], "change": "added",
                          "households_before": None,
                          "households_after": [after.get(g, 0) for g in d["grids_added"]]})
    removed = pd.DataFrame({"grid_id": d["grids_removed"], "change": "removed",
                            "households_before": [before.get(g, 0)
                                                  for g in d["grids_removed"]],
                            "households_after": None})
    grids = pd.concat([x for x in (changed, added, removed) if len(x)] or [changed],
                      ignore_index=True)
    gained = moves.dropna(subset=["to_grid"]).groupby("to_grid")["households"].sum()
    lost = moves.dropna(subset=["from_grid"]).groupby("from_grid")["households"].sum()
    grids["gained"] = grids["grid_id"].map(gained).fillna(0).astype("int64")
    grids["lost"] = grids["grid_id"].map(lost).fillna(0).astype("int64")
    grids = grids[["grid_id", "change", "households_before", "households_after", "gained",
                   "lost"]].sort_values("grid_id").reset_index(drop=True)
    both = (mv["from_grid"].notna() & mv["to_grid"].notna()).to_numpy()
    return Comparison(a=str(a), b=str(b), moves=moves, grids=grids,
                      figures=figures(con, a, b),
                      households_moved=int(d["households_moved"]),
                      buildings_moved=int(both.sum()), n_unchanged=int(d["n_unchanged"]))


def figures(con, a: str, b: str) -> pd.DataFrame:
    """The two plans' ``grid_metrics`` side by side: metric, label_zh, label_en, a, b."""
    m = results_more.grid_metrics(con).set_index("plan_id")

    def get(pid, key):
        if pid in m.index and key in m.columns:
            v = m.loc[pid, key]
            return None if pd.isna(v) else v
        return None

    return pd.DataFrame([{"metric": k, "label_zh": zh, "label_en": en, "a": get(a, k),
                          "b": get(b, k)} for k, zh, en in FIGURES])


# --------------------------------------------------------------------------------------------
# restoring


def restore(db_path: str | Path, plan_id: str, *, author: str, note: str = "", con=None) -> str:
    """Store a copy of plan ``plan_id`` as a new current plan (parent = ``plan_id``); its id.

    Takes the project's write lock (:mod:`pipelines.lock`) like a planner save; a running
    ``gridgov run`` makes it fail with a :class:`HistoryError` that says so. ``con``: an open
    read-write connection to use instead (the caller then holds the lock).
    """
    from pipelines.lock import ProjectLocked, project_lock
    from pipelines.services.planner import connect_rw

    if not str(author or "").strip():
        raise HistoryError("请填写操作人。", "Please give your name.")
    if con is not None:
        return _restore(con, plan_id, author=str(author).strip(), note=note)
    try:
        with project_lock(Path(db_path).parent, wait=RESTORE_LOCK_WAIT, purpose="save"):
            own = connect_rw(db_path)
            try:
                new_id = _restore(own, plan_id, author=str(author).strip(), note=note)
                own.execute("CHECKPOINT")
            finally:
                own.close()
            return new_id
    except ProjectLocked as exc:
        raise HistoryError(exc.zh, exc.en) from exc


def _restore(con, plan_id: str, *, author: str, note: str) -> str:
    plan_id = str(plan_id)
    if not table_exists(con, "plans") or not con.execute(
            "SELECT count(*) FROM plans WHERE plan_id = ?", [plan_id]).fetchone()[0]:
        raise HistoryError(f"没有方案 {plan_id}。", f"There is no plan {plan_id}.")
    grids, members = load_plan(con, plan_id)
    if grids.empty:
        raise HistoryError(f"方案 {plan_id} 没有网格。", f"Plan {plan_id} has no grids.")
    row = read_table(con, "SELECT * FROM grid_metrics WHERE plan_id = ?", [plan_id]) \
        if table_exists(con, "grid_metrics") else pd.DataFrame()
    metrics = {c: (None if row.empty or c not in row.columns or pd.isna(row[c].iloc[0])
                   else row[c].iloc[0]) for c in METRIC_COLUMNS}
    settings = plan_settings(con, plan_id)
    settings["restored_from"] = plan_id
    text = str(note or "").strip() or f"恢复方案 {plan_id} / restored {plan_id}"
    return store_plan(con, grids.drop(columns=["plan_id"], errors="ignore"), members, metrics,
                      parent_plan_id=plan_id, author=author, note=text, settings=settings,
                      source="restore")


# --------------------------------------------------------------------------------------------
# the realignment workbook


def _bi(pairs: dict[str, tuple[str, str]]) -> dict[str, str]:
    return {k: f"{zh} {en}" for k, (zh, en) in pairs.items()}


def realignment_workbook(con, plan_id: str, against: str | None = None) -> bytes:
    """The realignment workbook (调整报告) of plan ``plan_id`` against ``against`` (default: its
    parent): summary, every building that changed grid, the grids touched, the figures side by
    side — printable and formula-safe (:func:`pipelines.export.write_workbook`).

    Raises :class:`HistoryError` when the plan has no parent and no ``against`` is given.
    """
    from pipelines.export import write_workbook

    table = plan_table(con).set_index("plan_id")
    if plan_id not in table.index:
        raise HistoryError(f"没有方案 {plan_id}。", f"There is no plan {plan_id}.")
    base = against or table.loc[plan_id, "parent_plan_id"]
    if base is None or pd.isna(base) or base not in table.index:
        raise HistoryError(f"方案 {plan_id} 没有上一版方案可比较。",
                           f"Plan {plan_id} has no parent plan to compare with.")
    c = compare(con, base, plan_id)

    def info(pid, key):
        v = table.loc[pid, key] if key in table.columns else None
        return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)

    summary = pd.DataFrame([
        ("对比方案 Compared with", base),
        ("方案 Plan", plan_id),
        ("编制人 Author", info(plan_id, "author")),
        ("说明 Note", info(plan_id, "note")),
        ("来源 Source", info(plan_id, "source")),
        ("创建时间 Created", info(plan_id, "created_at")),
        ("调整楼栋 Buildings moved", c.buildings_moved),
        ("调整户数 Households moved", c.households_moved),
        ("新增网格 Grids added", int((c.grids["change"] == "added").sum())),
        ("撤销网格 Grids removed", int((c.grids["change"] == "removed").sum())),
        ("变动网格 Grids changed", int((c.grids["change"] == "changed").sum())),
        ("未变楼栋 Buildings unchanged", c.n_unchanged),
    ], columns=["项目 Item", "内容 Value"])
    figs = pd.DataFrame({
        "指标 Figure": [f"{zh} {en}" for zh, en in zip(c.figures["label_zh"],
                                                       c.figures["label_en"])],
        f"{base}": [_cell(v) for v in c.figures["a"]],
        f"{plan_id}": [_cell(v) for v in c.figures["b"]]})
    headers = _bi({
        "building_id": ("楼栋编号", "Building ID"), "community_code": ("社区代码", "Community code"),
        "households": ("户数", "Households"), "residents": ("人口", "Residents"),
        "from_grid": ("原网格", "From grid"), "to_grid": ("新网格", "To grid"),
        "grid_id": ("网格编码", "Grid code"), "change": ("变化", "Change"),
        "households_before": ("调整前户数", "Households before"),
        "households_after": ("调整后户数", "Households after"),
        "gained": ("迁入户数", "Households in"), "lost": ("迁出户数", "Households out")})
    grids = c.grids.assign(change=c.grids["change"].map(
        {"added": "新增 added", "removed": "撤销 removed", "changed": "变动 changed"}))
    sheets = [("概要 Summary", summary), ("楼栋调整 Buildings moved", c.moves),
              ("网格对比 Grids", grids), ("指标 Metrics", figs)]
    with tempfile.TemporaryDirectory(prefix="gridgov-realign-") as tmp:
        path = write_workbook(Path(tmp) / "realignment.xlsx", sheets, headers=headers,
                              title="网格调整报告 / Realignment report")
        return path.read_bytes()


def _cell(v):
    if v is None:
        return None
    if isinstance(v, bool) or str(type(v)).endswith("bool_'>"):
        return "是 yes" if v else "否 no"
    if isinstance(v, float):
        return round(v, 4)
    return v
