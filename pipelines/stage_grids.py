"""Stage ``grids``: cells, dedicated and basic grids, a new plan version, fusion report.

First run: a fresh plan from the engine (:func:`geo.partition.partition`). Later runs, when a
current plan exists: a *re-draw* from it (:func:`geo.partition.redraw`) that keeps grids within the
norm and moves as few households as it can, so ten new buildings do not reshuffle the city.
Tables written: ``grid_cells`` (the atoms, for the planner page), the plan history (``plans``,
``plan_grids``, ``plan_members``, ``grid_metrics``; see :mod:`pipelines.plans`), the contract's
current-plan tables ``grids`` and ``grid_members``, ``plan_moves`` (what a re-draw moved) and
``grid_fusion`` (department grids against the basic grids).
"""
from __future__ import annotations

import logging

import pandas as pd

from geo import chinacrs
from geo.grids import dedicated_grids, fusion_report, plan_metrics
from geo.partition import (
    DEFAULT_MAX_SECONDS,
    DEFAULT_SEARCH_BUDGET,
    building_members,
    grids_from_labels,
    labels_from_plan,
    partition,
    redraw,
)
from geo.tessellation import build_cells, cell_adjacency
from pipelines import config
from pipelines.db import read_gdf, table_exists, write_gdf
from pipelines.plans import current_plan_id, load_plan, store_plan

log = logging.getLogger(__name__)

DEFAULTS: dict = config.DEFAULTS["grids"]  # defined, with their meaning, in pipelines/config.py


def metric_crs(con, settings: dict) -> str:
    """The metric CRS of the project (setting, else chosen from the streets' longitude)."""
    if settings.get("metric_crs"):
        return settings["metric_crs"]
    return chinacrs.metric_crs_for(read_gdf(con, "SELECT ST_Envelope(geometry) AS geometry FROM streets"))


def load_engine_inputs(con, settings: dict) -> dict:
    """Buildings, communities, barriers and special units from the database, in the metric CRS."""
    crs = metric_crs(con, settings)
    out = {"crs": crs}
    out["communities"] = read_gdf(con, "SELECT community_code, street_code, kind, community_name, geometry "
                                       "FROM communities").to_crs(crs)
    out["buildings"] = read_gdf(con, "SELECT * FROM buildings").to_crs(crs)
    out["barriers"] = read_gdf(con, "barriers").to_crs(crs) if table_exists(con, "barriers") else None
    out["special_units"] = read_gdf(con, "special_units").to_crs(crs) if table_exists(con, "special_units") else None
    return out


def _search_args(cfg: dict) -> dict:
    """The search's work budget (cell visits per community) and wall-clock safety net.

    A ``time_limit`` (seconds) of older settings is ignored: plans never depend on the clock.
    """
    budget = cfg.get("search_budget", DEFAULT_SEARCH_BUDGET)
    secs = cfg.get("max_seconds", DEFAULT_MAX_SECONDS)
    return {"budget": None if budget is None else int(budget),
            "max_seconds": None if not secs else float(secs)}


def norms_of(settings: dict) -> dict:
    return {k: v for k, v in (settings.get("norms") or {}).items()}


def run(con, settings: dict, *, progress=None) -> dict:
    cfg = settings.get("grids", DEFAULTS)
    say = progress or (lambda m: None)
    inp = load_engine_inputs(con, settings)
    norms = norms_of(settings)
    say(f"grids: cells for {len(inp['buildings'])} buildings")
    cells = build_cells(inp["buildings"], inp["communities"], inp["barriers"], special_units=inp["special_units"],
                        max_cell_area=cfg.get("max_cell_area"), workload_weights=cfg.get("workload_weights") or None)
    adj = cell_adjacency(cells)
    ded = dedicated_grids(cells, inp["special_units"], rules=cfg.get("dedicated") or None, adjacency=adj)
    parent = current_plan_id(con)
    moves = None
    if parent and cfg.get("redraw", True):
        say(f"grids: re-draw from current plan {parent}")
        old_grids, old_members = load_plan(con, parent)
        building_grid = pd.Series(old_members["grid_id"].to_numpy(), index=old_members["building_id"].astype(str))
        labels0 = labels_from_plan(cells, building_grid=building_grid, grids=old_grids.to_crs(inp["crs"]))
        gtype = dict(zip(old_grids["grid_id"], old_grids["grid_type"]))
        locked = [g for g, t in gtype.items() if t == "dedicated"]
        labels, moves = redraw(cells, adj, labels0, locked_grids=locked, communities=inp["communities"],
                               norms=norms, weights=cfg.get("weights") or None, seed=cfg.get("seed", 0),
                               **_search_args(cfg))
        grids, members = grids_from_labels(cells, labels, communities=inp["communities"], adjacency=adj, norms=norms,
                                           grid_type={g: gtype.get(g, "basic") for g in labels.dropna().unique()},
                                           codes="keep")
        source, note = "redraw", f"re-draw of {parent}: {len(moves)} cells moved"
    else:
        say(f"grids: partition {cells['community_code'].nunique()} communities")
        grids, members = partition(cells, adj, inp["communities"], norms=norms, weights=cfg.get("weights") or None,
                                   seed=cfg.get("seed", 0), dedicated=ded, n_jobs=int(cfg.get("n_jobs", 1)),
                                   progress=None, **_search_args(cfg))
        source, note, parent = "engine", "drawn by gridgov run", None
    metrics = plan_metrics(grids, norms, communities=inp["communities"], barriers=inp["barriers"])
    if metrics.get("flagged"):
        log.warning("grids: plan flagged: %s basic grids crossed by a barrier, %s overlapping pairs, "
                    "%s invalid polygons", metrics["n_barrier_crossed"], metrics["n_overlaps"],
                    metrics["n_invalid"])
    bmembers = building_members(cells, members)
    cells_out = cells.drop(columns=["building_ids"]).assign(
        building_ids=cells["building_ids"].map(lambda v: ",".join(map(str, v)) if isinstance(v, list) else ""))
    cells_out = cells_out.merge(members[["cell_id", "grid_id"]], on="cell_id", how="left")
    write_gdf(con, "grid_cells", cells_out)
    plan_id = store_plan(con, grids, bmembers, metrics, parent_plan_id=parent, author="gridgov run", note=note,
                         settings={"norms": norms, "grids": cfg}, source=source)
    if moves is not None:
        mv = pd.DataFrame(moves).drop(columns=["building_ids"], errors="ignore").assign(plan_id=plan_id)
        mv["households"] = pd.to_numeric(mv.get("households"), errors="coerce").fillna(0).astype("int64")
        for c in mv.columns:
            if mv[c].dtype == object:
                mv[c] = mv[c].astype("string")
        write_gdf(con, "plan_moves", mv)
    if table_exists(con, "department_grids"):
        dept = read_gdf(con, "department_grids").to_crs(inp["crs"])
        basic = grids[grids["grid_type"] == "basic"]
        fusion = fusion_report(dept, basic)
        write_gdf(con, "grid_fusion", pd.DataFrame(fusion.summary))
        write_gdf(con, "grid_fusion_overlaps", pd.DataFrame(fusion.overlaps))
    out = {"plan_id": plan_id, "source": source, **{k: v for k, v in metrics.items()}}
    say(f"grids: plan {plan_id}: {metrics['n_grids']} grids, {metrics['share_within_norm']:.1%} within norm")
    return out
