"""Fusion proposal (多网融合): which unified grids each department grid should adopt.

Input: the department grid × unified (basic) grid overlaps of :func:`geo.grids.fusion_report`
(``grid_fusion_overlaps``). No Streamlit, no database: plain pandas, so the rule can be checked
by hand.

The rule, per department (多网融合 aims at one grid network: each unified grid belongs to one
department grid, and each department grid is a union of whole unified grids):

1. every unified grid goes to the department grid that covers the largest area of it (ties:
   the smaller department grid id), so no unified grid is split between two of them;
2. a department grid that lies inside one unified grid (one covers at least ``aligned_share``,
   default 90 %, of it: ``aligned``, as ``grid_fusion.share_aligned`` counts) and was given
   that grid in 1 has status **aligned**: it adopts that grid and needs no other change;
3. otherwise, a department grid given unified grids in 1 has status **adopt**: it should be
   redrawn as the union of those grids (largest overlap first in ``adopt``);
4. a department grid given none (its area belongs more to its neighbours; this includes an
   aligned grid sharing its unified grid with a larger one) has status **merge**: it joins the
   department grid that took the unified grid it overlaps most (``merge_with``);
5. a department grid no unified grid touches is **uncovered** (outside today's grids).

``split`` (more than one unified grid covers more than ``min_share`` of it) is the count of
``grid_fusion.n_split``. ``area_kept_share`` is the share of the department grid's area that
lies in the unified grids it adopts (1.0 = nothing of it is handed to a neighbour).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

STATUSES = ("aligned", "adopt", "merge", "uncovered")
PROPOSAL_COLUMNS = ["department", "dept_grid_id", "status", "adopt", "n_adopt", "merge_with",
                    "aligned", "split", "n_overlapping", "max_share", "covered_share",
                    "area_kept_share"]


def proposal(overlaps: pd.DataFrame, dept_grids: pd.DataFrame | None = None, *,
             aligned_share: float = 0.9, min_share: float = 0.01) -> pd.DataFrame:
    """One row per department grid: its status and the unified grids it should adopt.

    Parameters
    ----------
    overlaps
        ``department, dept_grid_id, basic_grid_id, overlap_km2, share_of_dept_grid``
        (``grid_fusion_overlaps``).
    dept_grids
        ``department, grid_id`` of every department grid, so grids without any overlap are
        listed too (``uncovered``); None lists only those in ``overlaps``.
    aligned_share, min_share
        As :func:`geo.grids.fusion_report` (aligned: one unified grid covers at least this
        share; split: more than one covers more than ``min_share``).

    Returns
    -------
    DataFrame
        :data:`PROPOSAL_COLUMNS`; ``adopt`` is a list of unified grid ids (largest overlap
        first), ``merge_with`` a department grid id or "". Sorted by department and department grid id.

    Examples
    --------
    >>> ov = pd.DataFrame({"department": ["城管"] * 3, "dept_grid_id": ["D1", "D1", "D2"],
    ...                    "basic_grid_id": ["B1", "B2", "B2"], "overlap_km2": [1.0, 0.6, 0.4],
    ...                    "share_of_dept_grid": [0.625, 0.375, 1.0]})
    >>> p = proposal(ov)  # D2 lies inside B2, but D1 covers more of B2
    >>> p[["dept_grid_id", "status", "adopt", "merge_with", "aligned"]].to_dict("records")
    [{'dept_grid_id': 'D1', 'status': 'adopt', 'adopt': ['B1', 'B2'], 'merge_with': '', \
'aligned': False}, {'dept_grid_id': 'D2', 'status': 'merge', 'adopt': [], 'merge_with': 'D1', \
'aligned': True}]
    """
    ov = overlaps[["department", "dept_grid_id", "basic_grid_id", "overlap_km2",
                   "share_of_dept_grid"]].copy()
    for c in ("department", "dept_grid_id", "basic_grid_id"):
        ov[c] = ov[c].astype(str)
    ov["overlap_km2"] = pd.to_numeric(ov["overlap_km2"], errors="coerce").fillna(0.0)
    ov["share_of_dept_grid"] = pd.to_numeric(ov["share_of_dept_grid"],
                                             errors="coerce").fillna(0.0)
    ov = ov[ov["overlap_km2"] > 0]

    # 1. each unified grid to the department grid covering most of it (per department)
    ranked = ov.sort_values(["department", "basic_grid_id", "overlap_km2", "dept_grid_id"],
                            ascending=[True, True, False, True])
    owner = ranked.drop_duplicates(["department", "basic_grid_id"])
    owner_of = {(d, b): g for d, b, g in zip(owner["department"], owner["basic_grid_id"],
                                             owner["dept_grid_id"])}

    keys = ov[["department", "dept_grid_id"]].drop_duplicates()
    if dept_grids is not None:
        extra = pd.DataFrame({"department": dept_grids["department"].astype(str).to_numpy(),
                              "dept_grid_id": dept_grids["grid_id"].astype(str).to_numpy()})
        keys = pd.concat([keys, extra]).drop_duplicates()
    keys = keys.sort_values(["department", "dept_grid_id"]).reset_index(drop=True)

    by_grid = {k: g.sort_values(["overlap_km2", "basic_grid_id"], ascending=[False, True])
               for k, g in ov.groupby(["department", "dept_grid_id"], sort=False)}
    rows = []
    for dept, gid in zip(keys["department"], keys["dept_grid_id"]):
        g = by_grid.get((dept, gid))
        row = {"department": dept, "dept_grid_id": gid, "adopt": [], "merge_with": "",
               "aligned": False, "n_overlapping": 0, "split": False, "max_share": 0.0, "covered_share": 0.0,
               "area_kept_share": 0.0}
        if g is None or g.empty:
            row["status"] = "uncovered"
            rows.append(row)
            continue
        shares = g["share_of_dept_grid"].to_numpy(float)
        row["n_overlapping"] = int((shares > min_share).sum())
        row["split"] = row["n_overlapping"] > 1
        row["max_share"] = float(shares.max())
        row["covered_share"] = float(min(shares.sum(), 1.0))
        row["aligned"] = row["max_share"] >= aligned_share
        mine = [b for b in g["basic_grid_id"] if owner_of.get((dept, b)) == gid]
        top = g["basic_grid_id"].iloc[0]
        if row["aligned"] and owner_of.get((dept, top)) == gid:
            row["status"], row["adopt"] = "aligned", [top]
        elif mine:
            row["status"], row["adopt"] = "adopt", mine
        else:
            row["status"], row["merge_with"] = "merge", owner_of[(dept, top)]
        kept = g[g["basic_grid_id"].isin(row["adopt"])]["share_of_dept_grid"].sum()
        row["area_kept_share"] = float(min(kept, 1.0))
        rows.append(row)
    out = pd.DataFrame(rows, columns=[c for c in PROPOSAL_COLUMNS if c != "n_adopt"])
    out.insert(4, "n_adopt", out["adopt"].map(len).astype("int64"))
    out["n_overlapping"] = out["n_overlapping"].astype("int64")
    out["split"] = out["split"].astype(bool)
    out["aligned"] = out["aligned"].astype(bool)
    return out[PROPOSAL_COLUMNS]


def status_counts(prop: pd.DataFrame) -> pd.DataFrame:
    """Department × status counts of a :func:`proposal` (every status a column, 0 if none)."""
    counts = prop.groupby(["department", "status"]).size().unstack(fill_value=0)
    for s in STATUSES:
        if s not in counts.columns:
            counts[s] = 0
    return counts[list(STATUSES)].astype(np.int64).reset_index()
