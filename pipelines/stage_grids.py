"""Stage ``grids``: cells, dedicated and basic grids, a new plan version, fusion report.

First run: a fresh plan from the engine (:func:`geo.partition.partition`), or, with
``[grids] start_from_current_grids`` and a ``current_grids`` layer, today's map stored as plan
``P0000`` as given and a proposal ``P0001`` that keeps every community meeting the rules and
re-draws the others (:func:`geo.grids.review_current_plan`, :func:`geo.partition.redraw`).
Later runs, when a current plan exists: a *re-draw* from it that keeps grids within the norm and
moves as few households as it can, so ten new buildings do not reshuffle the city. The search
stops on a work budget (``search_budget`` cell visits per community), never on the clock: the
same inputs and settings give the same plan on any machine, under any load, with any ``n_jobs``.
Tables written: ``grid_cells`` (the atoms, for the planner page), the plan history (``plans``,
``plan_grids``, ``plan_members``, ``grid_metrics`` with the geometry checks; see
:mod:`pipelines.plans`), the contract's current-plan tables ``grids`` and ``grid_members``,
``plan_moves`` and ``staff_assignments`` (after a re-draw or a start from today's grids) and
``grid_fusion`` (department grids against the basic grids).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import shapely

from geo import chinacrs
from geo.grids import dedicated_grids, fusion_report, plan_metrics, review_current_plan, within_norm
from geo.partition import (
    DEFAULT_MAX_SECONDS,
    DEFAULT_SEARCH_BUDGET,
    building_members,
    grids_from_labels,
    labels_from_plan,
    norm_for,
    partition,
    redraw,
)
from pipelines import config
from pipelines.cellcache import cache_dir_for, cells_and_adjacency
from pipelines.compute import executor_for
from pipelines.db import read_gdf, read_table, table_exists, write_gdf
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


def _current_grids_start(con, cells, adj, inp, norms, cfg, settings, ded=None, ex=None) -> dict:
    """Store today's grids as plan P0000 (as given), then keep or re-draw each community.

    A community whose current grids all meet the rules (:func:`geo.grids.review_current_plan`)
    keeps them exactly, codes included; the others are re-drawn from today's grids moving as
    few households as possible (:func:`geo.partition.redraw`); those without a dedicated grid
    today get the engine's (``ded``: special units that qualify). The lower bound of households
    to move is, per re-drawn community, the larger of the households above the maximum and the
    households missing below the minimum in its current grids.
    """
    cur = read_gdf(con, "current_grids").to_crs(inp["crs"])
    cur["grid_id"] = cur["grid_id"].astype(str)
    cur = cur[~cur.geometry.isna() & ~cur.geometry.is_empty].drop_duplicates("grid_id").reset_index(drop=True)
    gtype = {g: (t if t in ("basic", "dedicated") else "basic")
             for g, t in zip(cur["grid_id"], cur["grid_type"].astype(str))}
    # buildings -> the current grid their point lies in (lowest grid id where polygons overlap)
    b = inp["buildings"]
    pts = b.geometry.representative_point().to_numpy()
    geoms = np.asarray(cur.geometry.values, dtype=object)
    bi, gi = shapely.STRtree(geoms).query(pts, predicate="within")
    hit = pd.DataFrame({"b": bi, "g": cur["grid_id"].to_numpy()[gi]}).sort_values(["b", "g"]).drop_duplicates("b")
    building_grid = pd.Series(hit["g"].to_numpy(), index=b["building_id"].astype(str).to_numpy()[hit["b"].to_numpy()])
    labels0 = labels_from_plan(cells, building_grid=building_grid, grids=cur[["grid_id", "geometry"]])

    # P0000: the polygons as given, with the households of the buildings in them
    lab = labels0.reindex(cells["cell_id"]).to_numpy()
    sums = (pd.DataFrame({"g": lab, "households": cells["households"].to_numpy(),
                          "residents": cells["residents"].to_numpy(float),
                          "workload": cells["workload"].to_numpy(float)})
            .dropna(subset=["g"]).groupby("g").sum())
    g0 = cur[["grid_id", "geometry"]].copy()
    comm = inp["communities"].set_index(inp["communities"]["community_code"].astype(str))
    if "community_code" in cur.columns and cur["community_code"].notna().any():
        g0["community_code"] = cur["community_code"].astype(str)
    else:
        g0["community_code"] = g0["grid_id"].map(
            pd.Series(cells["community_code"].astype(str).to_numpy(), index=cells["cell_id"].to_numpy())
            .groupby(lab).agg(lambda v: v.mode().iloc[0]))
    g0["grid_type"] = g0["grid_id"].map(gtype)
    g0["street_code"] = g0["community_code"].map(comm["street_code"]) if "street_code" in comm else None
    g0["kind"] = g0["community_code"].map(comm["kind"]).fillna("urban") if "kind" in comm else "urban"
    for c in ("households", "residents", "workload"):
        g0[c] = g0["grid_id"].map(sums[c]).fillna(0)
    g0["households"] = g0["households"].astype("int64")
    area = g0.geometry.area.to_numpy()
    perim = g0.geometry.length.to_numpy()
    g0["area_km2"] = area / 1e6
    g0["compactness"] = np.where(perim > 0, 4 * np.pi * area / np.maximum(perim, 1e-12) ** 2, 0.0)
    g0["n_cells"] = g0["grid_id"].map(pd.Series(lab).value_counts()).fillna(0).astype("int64")
    wn = within_norm(g0.assign(status="ok"), norms)
    g0["status"] = np.where(g0["grid_type"] == "dedicated", "ok", np.where(wn, "ok", "out_of_norm"))
    m0 = building_members(cells, pd.DataFrame({"cell_id": cells["cell_id"].to_numpy(), "grid_id": lab})).dropna()
    metrics0 = plan_metrics(g0, norms, communities=inp["communities"], barriers=inp["barriers"])
    p0 = store_plan(con, g0, m0, metrics0, parent_plan_id=None, author="gridgov run",
                    note="today's grids (current_grids) as given", settings={"norms": norms},
                    source="current_grids", make_current=False, plan_id="P0000")

    review = review_current_plan(cells, labels0, adj, cur, communities=inp["communities"], norms=norms,
                                 barriers=inp["barriers"], grid_type=gtype)
    kept = review[review["keep"]]
    locked = [g for g, t in gtype.items() if t == "dedicated"] + [g for gs in kept["grids"] for g in gs]
    # re-drawn communities without dedicated grids today get the engine's (special units that
    # qualify, geo.grids.dedicated_grids): their cells leave the basic grids, locked
    if ded is not None and len(ded[0]):
        has_ded = {c for g, c in zip(g0["grid_id"], g0["community_code"]) if gtype.get(g) == "dedicated"}
        redraw_codes = set(review.loc[~review["keep"], "community_code"]) - has_ded
        assign = ded[0][ded[0].index.map(
            pd.Series(cells["community_code"].astype(str).to_numpy(), index=cells["cell_id"].to_numpy()))
            .isin(redraw_codes)]
        if len(assign):
            labels0 = labels0.copy().astype(object)
            labels0[assign.index] = assign.astype(str).to_numpy()
            for key in assign.astype(str).unique():
                gtype[key] = "dedicated"
                locked.append(key)
    labels, _moves = redraw(cells, adj, labels0, locked_grids=locked, communities=inp["communities"], norms=norms,
                            weights=cfg.get("weights") or None, seed=cfg.get("seed", 0),
                            n_jobs=int(cfg.get("n_jobs", 1)), executor=ex, **_search_args(cfg))
    grids, members = grids_from_labels(cells, labels, communities=inp["communities"], adjacency=adj, norms=norms,
                                       grid_type={g: gtype.get(g, "basic") for g in labels.dropna().unique()},
                                       codes="keep", dedicated_info=ded[1] if ded is not None else None)
    # lower bound of households to move, from the norm alone
    redrawn = set(review.loc[~review["keep"], "community_code"])
    bound = 0
    frame = pd.DataFrame({"c": cells["community_code"].astype(str).to_numpy(), "g": lab,
                          "h": cells["households"].to_numpy(float)}).dropna(subset=["g"])
    for code, grp in frame[frame["c"].isin(redrawn)].groupby("c"):
        n = norm_for(code, comm["kind"].get(code, "urban") if "kind" in comm else "urban", norms)
        hs = grp[grp["g"].map(gtype).fillna("basic") == "basic"].groupby("g")["h"].sum()
        over = float((hs - n["households_max"]).clip(lower=0).sum())
        under = float((n["households_min"] - hs).clip(lower=0).sum()) if len(hs) > 1 else 0.0
        bound += int(max(over, under))
    log.info("grids: %d of %d communities kept as today; %s", len(kept), len(review),
             review.loc[~review["keep"], "reason"].str.split(":").str[-1].str.strip().value_counts().head(5).to_dict())
    return {"plan_id": p0, "grids": grids, "members": members, "metrics0": metrics0, "kept": len(kept),
            "redrawn": len(review) - len(kept), "communities": len(review), "lower_bound": bound,
            "review": review}


def plan_moves(parent_members: pd.DataFrame, members: pd.DataFrame, buildings: pd.DataFrame, *,
               plan_id: str, parent_plan_id: str) -> pd.DataFrame:
    """Every building whose grid changed between a plan and its parent (contract ``plan_moves``)."""
    a = pd.Series(parent_members["grid_id"].astype(str).to_numpy(),
                  index=parent_members["building_id"].astype(str).to_numpy())
    b = pd.Series(members["grid_id"].astype(str).to_numpy(), index=members["building_id"].astype(str).to_numpy())
    ids = a.index.union(b.index)
    fa, tb = a.reindex(ids), b.reindex(ids)
    changed = ~((fa == tb) | (fa.isna() & tb.isna()))
    hh = pd.Series(pd.to_numeric(buildings["households"], errors="coerce").fillna(0).to_numpy(),
                   index=buildings["building_id"].astype(str).to_numpy())
    hh = hh[~hh.index.duplicated()]
    out = pd.DataFrame({"plan_id": plan_id, "parent_plan_id": parent_plan_id,
                        "building_id": ids[changed.to_numpy()],
                        "households": hh.reindex(ids[changed.to_numpy()]).fillna(0).astype("int64").to_numpy(),
                        "from_grid_id": fa[changed].to_numpy(), "to_grid_id": tb[changed].to_numpy()})
    for c in ("plan_id", "parent_plan_id", "building_id", "from_grid_id", "to_grid_id"):
        out[c] = out[c].astype("string")
    return out


def staff_assignments(con, parent_members: pd.DataFrame, members: pd.DataFrame, grids: pd.DataFrame,
                      buildings: pd.DataFrame, *, plan_id: str) -> pd.DataFrame:
    """Which worker covers which grid of the new plan (contract ``staff_assignments``).

    A worker's previous grids come from ``staff.grid_id`` and ``current_grids.staff_id``. A grid
    that still exists keeps its worker (``kept``); a worker whose grid is gone follows the new
    grid holding most of that grid's households (``moved``), or has none (``unassigned``, no
    grid). Basic grids of the new plan that no worker covers get a row without a worker
    (``unassigned``).
    """
    pairs = []
    if table_exists(con, "staff"):
        st = read_table(con, "SELECT * FROM staff")
        if "grid_id" in st.columns:
            pairs += [(str(s), str(g)) for s, g in zip(st["staff_id"], st["grid_id"]) if pd.notna(g) and str(g)]
        pairs += [(str(s), None) for s in st["staff_id"]]
    if table_exists(con, "current_grids"):
        cg = read_table(con, "SELECT * FROM current_grids")
        if "staff_id" in cg.columns:
            pairs += [(str(s), str(g)) for s, g in zip(cg["staff_id"], cg["grid_id"]) if pd.notna(s) and str(s)]
    with_grid = {s for s, g in pairs if g is not None}
    pairs = sorted({(s, g) for s, g in pairs if g is not None or s not in with_grid}, key=lambda p: (p[0], p[1] or ""))
    new_ids = set(grids["grid_id"].astype(str))
    hh = pd.Series(pd.to_numeric(buildings["households"], errors="coerce").fillna(0).to_numpy(),
                   index=buildings["building_id"].astype(str).to_numpy())
    hh = hh[~hh.index.duplicated()]
    a = pd.Series(parent_members["grid_id"].astype(str).to_numpy(),
                  index=parent_members["building_id"].astype(str).to_numpy())
    b = pd.Series(members["grid_id"].astype(str).to_numpy(), index=members["building_id"].astype(str).to_numpy())
    flow = pd.DataFrame({"a": a, "b": b.reindex(a.index), "h": hh.reindex(a.index).fillna(0) + 1e-6}).dropna()
    succ = flow.groupby(["a", "b"])["h"].sum().sort_values(ascending=False).reset_index().drop_duplicates("a")
    successor = dict(zip(succ["a"], succ["b"]))
    rows = []
    for s, g in pairs:
        if g is None:
            rows.append((s, None, None, "unassigned"))
        elif g in new_ids:
            rows.append((s, g, g, "kept"))
        elif successor.get(g) in new_ids:
            rows.append((s, successor[g], g, "moved"))
        else:
            rows.append((s, None, g, "unassigned"))
    covered = {r[1] for r in rows if r[1] is not None}
    basic = grids.loc[grids["grid_type"] == "basic", "grid_id"].astype(str)
    rows += [(None, g, None, "unassigned") for g in sorted(set(basic) - covered)]
    out = pd.DataFrame(rows, columns=["staff_id", "grid_id", "previous_grid_id", "status"])
    out.insert(0, "plan_id", plan_id)
    return out.astype("string")


def norms_of(settings: dict) -> dict:
    return {k: v for k, v in (settings.get("norms") or {}).items()}


def run(con, settings: dict, *, progress=None) -> dict:
    cfg = settings.get("grids", DEFAULTS)
    with executor_for(settings) as ex:  # a Dask cluster when [compute] scheduler is set
        return _run(con, settings, cfg, ex, progress or (lambda m: None))


def _run(con, settings: dict, cfg: dict, ex, say) -> dict:
    inp = load_engine_inputs(con, settings)
    norms = norms_of(settings)
    say(f"grids: cells for {len(inp['buildings'])} buildings")
    # per community on the workers, and read back from PROJECT/.gridgov_cache when the
    # community's inputs have not changed (pipelines/cellcache.py): the same cells either way
    cache = cache_dir_for(con) if cfg.get("cell_cache", True) else None
    cells, adj, cinfo = cells_and_adjacency(
        inp, max_cell_area=cfg.get("max_cell_area"), workload_weights=cfg.get("workload_weights") or None,
        cache_dir=cache, n_jobs=int(cfg.get("n_jobs", 1)), executor=ex, progress=say)
    ded = dedicated_grids(cells, inp["special_units"], rules=cfg.get("dedicated") or None, adjacency=adj)
    parent = current_plan_id(con)
    moves = None
    start = None
    if (not parent and cfg.get("start_from_current_grids", True) and table_exists(con, "current_grids")
            and cfg.get("redraw", True)):
        say("grids: today's grids (current_grids) as plan P0000; keep what meets the rules, re-draw the rest")
        start = _current_grids_start(con, cells, adj, inp, norms, cfg, settings, ded, ex)
        parent = start["plan_id"]
        grids, members = start["grids"], start["members"]
        source = "redraw"
        note = (f"from today's grids {parent}: {start['kept']} of {start['communities']} communities kept "
                f"as they are, {start['redrawn']} re-drawn")
    elif parent and cfg.get("redraw", True):
        say(f"grids: re-draw from current plan {parent}")
        old_grids, old_members = load_plan(con, parent)
        building_grid = pd.Series(old_members["grid_id"].to_numpy(), index=old_members["building_id"].astype(str))
        labels0 = labels_from_plan(cells, building_grid=building_grid, grids=old_grids.to_crs(inp["crs"]))
        gtype = dict(zip(old_grids["grid_id"], old_grids["grid_type"]))
        locked = [g for g, t in gtype.items() if t == "dedicated"]
        labels, moves = redraw(cells, adj, labels0, locked_grids=locked, communities=inp["communities"],
                               norms=norms, weights=cfg.get("weights") or None, seed=cfg.get("seed", 0),
                               n_jobs=int(cfg.get("n_jobs", 1)), executor=ex, **_search_args(cfg))
        grids, members = grids_from_labels(cells, labels, communities=inp["communities"], adjacency=adj, norms=norms,
                                           grid_type={g: gtype.get(g, "basic") for g in labels.dropna().unique()},
                                           codes="keep")
        source, note = "redraw", f"re-draw of {parent}: {len(moves)} cells moved"
    else:
        say(f"grids: partition {cells['community_code'].nunique()} communities")
        grids, members = partition(cells, adj, inp["communities"], norms=norms,
                                   weights=cfg.get("weights") or None, seed=cfg.get("seed", 0),
                                   dedicated=ded, n_jobs=int(cfg.get("n_jobs", 1)), progress=say,
                                   executor=ex, **_search_args(cfg))
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
    if parent is not None and (moves is not None or start is not None):
        _, parent_members = load_plan(con, parent)
        mv = plan_moves(parent_members, bmembers, inp["buildings"], plan_id=plan_id, parent_plan_id=parent)
        write_gdf(con, "plan_moves", mv)
        # workers' grids are today's (staff.grid_id, current_grids.staff_id): follow their
        # buildings from today's map (P0000) when it is stored, else from the parent plan
        today = parent_members
        if parent != "P0000" and con.execute("SELECT count(*) FROM plans WHERE plan_id = 'P0000'").fetchone()[0]:
            _, today = load_plan(con, "P0000")
        write_gdf(con, "staff_assignments",
                  staff_assignments(con, today, bmembers, grids, inp["buildings"], plan_id=plan_id))
    if start is not None:
        metrics = {**metrics, "p0000_share_within_norm": start["metrics0"].get("share_within_norm"),
                   "communities_kept": start["kept"], "communities_redrawn": start["redrawn"],
                   "households_moved": int(mv["households"].sum()),
                   "households_moved_lower_bound": start["lower_bound"]}
    if table_exists(con, "department_grids"):
        dept = read_gdf(con, "department_grids").to_crs(inp["crs"])
        basic = grids[grids["grid_type"] == "basic"]
        fusion = fusion_report(dept, basic)
        write_gdf(con, "grid_fusion", pd.DataFrame(fusion.summary))
        write_gdf(con, "grid_fusion_overlaps", pd.DataFrame(fusion.overlaps))
    out = {"plan_id": plan_id, "source": source, **{k: v for k, v in metrics.items()},
           "cells_communities_built": cinfo["built"], "cells_communities_from_cache": cinfo["from_cache"]}
    say(f"grids: plan {plan_id}: {metrics['n_grids']} grids, {metrics['share_within_norm']:.1%} within norm")
    return out
