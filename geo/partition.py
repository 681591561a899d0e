"""Basic grids (基础网格): contiguous, norm-compliant, balanced and compact partitions.

The engine works community by community on the cells of :mod:`geo.tessellation`:

1. **Pieces.** The cells of a community form one or more connected pieces (a community made
   of two polygons, land cut off by a road, railway or river, land cut off by a dedicated
   grid). Barriers hold: a piece with fewer households than the norm's minimum joins the
   neighbouring piece across a barrier only if at most ``BARRIER_JOIN_M`` (50 m) of barrier
   separates them (a corner clipped by a road); otherwise it becomes a grid of its own
   flagged ``under_min_component``. A cell with more households than the maximum (a tower)
   becomes a grid of its own, flagged ``over_max_single_unit``.
2. **Number of grids** per piece: ``k`` in ``[ceil(H/max), floor(H/min)]``, the one whose mean
   is closest to the middle of the norm (urban) or the fewest (rural: the whole village as
   one grid unless it is above the rural maximum). If that range is empty the norm cannot be
   met and the grids say ``infeasible``.
3. **Initial plan** by recursive spanning-tree bisection: a spanning tree of the piece is cut
   at the edge that best splits households in the ratio ``k1 : k2``; both sides are connected
   by construction. The tree is a minimum spanning tree on the distance *along* a cutting
   direction (plus noise), so cuts run across the piece and the halves are compact.
4. **Local search** (AZP-style single-cell moves with an iterated-local-search kick): a
   boundary cell moves to a neighbouring grid when that lowers

   ``F = w_norm * Σ pen(h_g) + w_balance * CV(workload) + w_compactness * (1 - mean PP)``

   where ``pen`` is a linear + quadratic penalty on households outside ``[min, max]`` and PP
   is Polsby–Popper ``4πA/P²``. A move is refused when the cell is an articulation point of
   its grid (the grid would split) or the last cell of its grid, so every grid stays one
   connected piece throughout: contiguity is an invariant, not a repair.

References: Openshaw & Rao (1995) AZP; Ricca & Simeone (2008) local search for political
districting; DeFord, Duchin & Solomon (2021) ReCom spanning-tree bipartitions; Duque, Anselin
& Rey (2012) max-p regions. See ``docs/grid-engine.md``.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import depth_first_order, minimum_spanning_tree

from geo.tessellation import Adjacency, cell_adjacency

log = logging.getLogger(__name__)

#: Households per basic grid. Urban 300–500 is common local practice, not a national rule.
#: The figures are the project defaults of ``pipelines/config.py`` (``[norms.urban]``,
#: ``[norms.rural]``, where the choice of the rural minimum is explained; tests keep the two
#: equal). ``prefer``: how the number of grids is chosen ('mid': mean closest to the middle of
#: the norm, 'fewest': as few grids as the maximum allows). ``allow_small_whole``: a whole
#: community/piece below the minimum, drawn as a single grid, counts as within the norm (a
#: village as one grid).
DEFAULT_NORMS: dict = {
    "urban": {"households_min": 300, "households_max": 500, "prefer": "mid",
              "allow_small_whole": False},
    "rural": {"households_min": 150, "households_max": 600, "prefer": "fewest",
              "allow_small_whole": True},
}

#: Objective weights: ``norm`` (penalty on households outside the norm; keep it dominant),
#: ``balance`` (coefficient of variation of workload among the grids of a piece),
#: ``compactness`` (1 - mean Polsby–Popper), ``move`` (re-draw only: share of households that
#: change grid).
DEFAULT_WEIGHTS: dict = {"norm": 100.0, "balance": 1.0, "compactness": 1.0, "move": 0.0}

#: Work budget of the local search of one community, in *cell visits* (one visit = one cell
#: whose moves to every neighbouring grid are evaluated; a kick move counts as one visit).
#: The search stops when the budget is spent or when it has converged, whichever comes first,
#: so the plan depends only on the inputs, the settings and the seed — never on the machine or
#: its load. 60,000 visits take about 0.3 s on one core of the 2024 benchmark machine, the
#: wall-clock limit this replaces; most communities converge well before it.
DEFAULT_SEARCH_BUDGET = 60_000

#: Wall-clock safety net per community (seconds). It is not a budget: a search that reaches
#: it stops and logs a warning (the plan is then no longer guaranteed to be reproducible).
#: With the work budget above it should never fire; None disables it.
DEFAULT_MAX_SECONDS = 60.0

#: Metres of barrier a grid may have inside it: a piece of a community below the norm's
#: minimum (say a corner clipped by a road) joins its neighbour across the barrier only when
#: the barrier between them is at most this long; beyond it the barrier holds. The same figure
#: counts a grid as "crossed by a barrier" in the plan's metrics (:data:`geo.grids.CROSSING_M`).
BARRIER_JOIN_M = 50.0

#: Statuses a basic grid can carry, most severe first.
STATUSES = ("over_max_single_unit", "under_min_community", "under_min_component",
            "infeasible", "out_of_norm", "ok")


def norm_for(community_code: str | None, kind: str | None, norms: dict | None) -> dict:
    """The norm that applies to a community: defaults < ``norms[kind]`` < ``norms['communities'][code]``."""
    kind = kind if kind in ("urban", "rural") else "urban"
    out = dict(DEFAULT_NORMS[kind])
    if norms:
        out.update(norms.get(kind, {}))
        if community_code is not None:
            out.update(norms.get("communities", {}).get(str(community_code), {}))
    lo, hi = int(out["households_min"]), int(out["households_max"])
    if lo > hi:
        raise ValueError(f"norm for {kind} has households_min={lo} > households_max={hi}")
    out["households_min"], out["households_max"] = lo, hi
    return out


def _weights(weights: dict | None) -> dict:
    out = dict(DEFAULT_WEIGHTS)
    if weights:
        unknown = set(weights) - set(out)
        if unknown:
            raise ValueError(f"unknown weight(s) {sorted(unknown)}; expected {sorted(out)}")
        out.update({k: float(v) for k, v in weights.items()})
    return out


def choose_k(total: float, lo: int, hi: int, prefer: str = "mid") -> tuple[int, bool]:
    """Number of grids for ``total`` households under norm ``[lo, hi]``; and whether feasible.

    Examples
    --------
    >>> choose_k(2000, 300, 500)
    (5, True)
    >>> choose_k(550, 300, 500)   # 1 grid of 550 or 2 of 275: neither meets the norm
    (2, False)
    """
    if total <= 0:
        return 1, False
    k_lo = max(1, math.ceil(total / hi - 1e-9))
    k_hi = math.floor(total / lo + 1e-9) if lo > 0 else k_lo
    if k_lo <= k_hi:
        if prefer == "fewest":
            return k_lo, True
        return int(min(max(round(total / ((lo + hi) / 2)), k_lo), k_hi)), True
    if k_hi < 1:
        return 1, False
    over = total / k_hi / hi - 1  # relative excess with k_hi grids
    under = 1 - total / k_lo / lo  # relative shortfall with k_lo grids
    return (k_hi if over < under else k_lo), False


# --------------------------------------------------------------------------------------------
# the problem: arrays of one community's pool of cells
# --------------------------------------------------------------------------------------------
class _Problem:
    """Cells of one community as plain Python lists (fast scalar access in the search)."""

    def __init__(self, cells: pd.DataFrame, adjacency: Adjacency):
        pos = adjacency.position
        try:
            gidx = np.array([pos[c] for c in cells["cell_id"]], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"cell {exc.args[0]!r} is not in the adjacency of community "
                             f"{adjacency.community_code}") from None
        n = len(cells)
        local = np.full(adjacency.n, -1, dtype=np.int64)
        local[gidx] = np.arange(n)
        self.n = n
        self.cell_ids = cells["cell_id"].to_numpy()
        self.h = cells["households"].to_numpy(float).tolist()
        self.w = cells["workload"].to_numpy(float).tolist()
        if "_area" in cells.columns:
            self.area = cells["_area"].to_numpy(float).tolist()
            self.perim = cells["_perim"].to_numpy(float).tolist()
            self.x = cells["_x"].to_numpy(float)
            self.y = cells["_y"].to_numpy(float)
        else:
            geom = np.asarray(cells.geometry.values, dtype=object)
            self.area = shapely.area(geom).tolist()
            self.perim = shapely.length(geom).tolist()
            cen = shapely.centroid(geom)
            self.x = shapely.get_x(cen)
            self.y = shapely.get_y(cen)
        nbr: list[list[int]] = [[] for _ in range(n)]
        geo: list[list[tuple[int, float]]] = [[] for _ in range(n)]
        indptr, indices, shared = adjacency.indptr, adjacency.indices, adjacency.shared
        for li, gi in enumerate(gidx):
            for k in range(indptr[gi], indptr[gi + 1]):
                lj = local[indices[k]]
                if lj >= 0:
                    nbr[li].append(int(lj))
                    geo[li].append((int(lj), float(shared[k])))
        self.barrier: list[tuple[int, int, float]] = []
        #: metres of barrier along each cell, whoever is on the other side (a dedicated cell too)
        self.bfront = [0.0] * n
        for (a, b), s in zip(adjacency.barrier_pairs, adjacency.barrier_shared):
            la, lb = local[a], local[b]
            if la >= 0:
                self.bfront[la] += float(s)
            if lb >= 0:
                self.bfront[lb] += float(s)
            if la >= 0 and lb >= 0:
                geo[la].append((int(lb), float(s)))
                geo[lb].append((int(la), float(s)))
                self.barrier.append((int(la), int(lb), float(s)))
        self.nbr = nbr
        self.geo = geo

    def link(self, a: int, b: int) -> None:
        """Make a barrier pair contiguous (used to join a too-small piece)."""
        if b not in self.nbr[a]:
            self.nbr[a].append(b)
            self.nbr[b].append(a)

    def components(self, nodes: Iterable[int]) -> list[list[int]]:
        nodes = list(nodes)
        inside = set(nodes)
        seen: set[int] = set()
        comps = []
        for s in nodes:
            if s in seen:
                continue
            comp = [s]
            seen.add(s)
            stack = [s]
            while stack:
                u = stack.pop()
                for v in self.nbr[u]:
                    if v in inside and v not in seen:
                        seen.add(v)
                        comp.append(v)
                        stack.append(v)
            comps.append(comp)
        return comps


def _pen(hh: float, lo: float, hi: float, scale: float) -> float:
    if hh < lo:
        d = (lo - hh) / scale
    elif hh > hi:
        d = (hh - hi) / scale
    else:
        return 0.0
    return d + d * d


class _Budget:
    """A deterministic work budget (cell visits) with a wall-clock safety net.

    ``spend(n)`` counts work; ``done()`` is True once the work is spent, or — as a safety net
    only, with a logged warning — once ``max_seconds`` have passed since the budget was made.
    """

    __slots__ = ("deadline", "fired", "label", "left", "used")

    def __init__(self, work: int | None, max_seconds: float | None = None, label: str = ""):
        self.left = math.inf if work is None else int(work)
        self.used = 0
        self.deadline = (time.perf_counter() + float(max_seconds)) if max_seconds else math.inf
        self.label = label
        self.fired = False

    def spend(self, n: int) -> None:
        self.left -= n
        self.used += n

    def done(self) -> bool:
        if self.left <= 0:
            return True
        if self.fired:
            return True
        if self.deadline != math.inf and time.perf_counter() > self.deadline:
            self.fired = True
            log.warning("grid search%s stopped by the wall-clock safety net after %d cell "
                        "visits (work budget left: %s); this plan may not be reproducible — "
                        "raise [grids] max_seconds or lower search_budget",
                        f" of community {self.label}" if self.label else "", self.used,
                        self.left)
        return self.fired


def _as_budget(budget) -> _Budget:
    if isinstance(budget, _Budget):
        return budget
    return _Budget(budget)


# --------------------------------------------------------------------------------------------
# local search
# --------------------------------------------------------------------------------------------
class _Search:
    """Single-cell move local search on one piece; every grid stays connected."""

    def __init__(self, P: _Problem, nodes: list[int], lab: list[int], lo: float, hi: float,
                 weights: dict, rng: np.random.Generator, init: list[int] | None = None):
        self.P = P
        self.nodes = list(nodes)
        self.lab = lab  # shared list over all cells of the problem (-1 = not in this piece)
        self.lo, self.hi = float(lo), float(hi)
        self.wn = weights["norm"]
        self.wb = weights["balance"]
        self.wc = weights["compactness"]
        self.wm = weights["move"]
        self.rng = rng
        self.init = init  # original labels (re-draw), or None
        if init is None:
            self.wm = 0.0
        labels = sorted({lab[i] for i in nodes})
        K = max(labels) + 1 if labels else 0
        self.K = K
        self.H = [0.0] * K
        self.W = [0.0] * K
        self.A = [0.0] * K
        self.Pm = [0.0] * K
        self.cnt = [0] * K
        for i in nodes:
            g = lab[i]
            self.H[g] += P.h[i]
            self.W[g] += P.w[i]
            self.A[g] += P.area[i]
            self.Pm[g] += P.perim[i]
            self.cnt[g] += 1
            for j, s in P.geo[i]:
                if lab[j] == g:
                    self.Pm[g] -= s  # each internal pair counted twice -> 2*s in total
        self.active = [g for g in range(K) if self.cnt[g] > 0]
        self.valid = set(self.active)  # grids of this piece (a tower next door is not one)
        self.k = len(self.active)
        self.Htot = sum(self.H)
        self.Wtot = sum(self.W)
        self.scale = max(self.Htot / max(self.k, 1), 1.0)
        self.S2 = sum(W * W for W in self.W)
        self.cv = self._cv(self.S2)
        self.moved = 0.0
        if init is not None:
            self.moved = sum(P.h[i] for i in nodes if lab[i] != init[i])

    # -- objective ---------------------------------------------------------------------------
    def _pp(self, a: float, p: float) -> float:
        return 4.0 * math.pi * a / (p * p) if p > 0 else 0.0

    def _cv(self, S2: float) -> float:
        if self.k <= 1 or self.Wtot <= 0:
            return 0.0
        m = self.Wtot / self.k
        var = S2 / self.k - m * m
        return math.sqrt(var) / m if var > 0 else 0.0

    def objective(self) -> float:
        pen = sum(_pen(self.H[g], self.lo, self.hi, self.scale) for g in self.active)
        pp = sum(self._pp(self.A[g], self.Pm[g]) for g in self.active) / max(self.k, 1)
        return (self.wn * pen + self.wb * self._cv(self.S2) + self.wc * (1.0 - pp)
                + self.wm * self.moved / max(self.Htot, 1.0))

    def delta(self, i: int, a: int, b: int) -> float:
        """Change of the objective if cell ``i`` moves from grid ``a`` to grid ``b``."""
        P = self.P
        hi_, wi = P.h[i], P.w[i]
        H = self.H
        d = 0.0
        if hi_:
            lo, hi, sc = self.lo, self.hi, self.scale
            d = self.wn * (_pen(H[a] - hi_, lo, hi, sc) + _pen(H[b] + hi_, lo, hi, sc)
                           - _pen(H[a], lo, hi, sc) - _pen(H[b], lo, hi, sc))
            if self.wm:
                o = self.init[i]
                dm = (hi_ if o == a else 0.0) - (hi_ if o == b else 0.0)
                d += self.wm * dm / max(self.Htot, 1.0)
        if wi and self.wb:
            W = self.W
            Wa, Wb = W[a], W[b]
            S2n = self.S2 + 2.0 * wi * (wi + Wb - Wa)
            m = self.Wtot / self.k
            var = S2n / self.k - m * m
            d += self.wb * ((math.sqrt(var) / m if var > 0 else 0.0) - self.cv)
        if self.wc:
            lab = self.lab
            sa = sb = 0.0
            for j, s in P.geo[i]:
                lj = lab[j]
                if lj == a:
                    sa += s
                elif lj == b:
                    sb += s
            ar, pr = P.area[i], P.perim[i]
            A, Pm = self.A, self.Pm
            pa, pb = Pm[a] - pr + 2 * sa, Pm[b] + pr + -2 * sb
            new = ((A[a] - ar) / (pa * pa) if pa > 0 else 0.0) + (A[b] + ar) / (pb * pb)
            old = A[a] / (Pm[a] * Pm[a]) + A[b] / (Pm[b] * Pm[b])
            d -= self.wc * 4.0 * math.pi / self.k * (new - old)
        return d

    def apply(self, i: int, a: int, b: int) -> None:
        P = self.P
        lab = self.lab
        sa = sb = 0.0
        for j, s in P.geo[i]:
            if lab[j] == a:
                sa += s
            elif lab[j] == b:
                sb += s
        hi_, wi = P.h[i], P.w[i]
        self.S2 += (self.W[a] - wi) ** 2 + (self.W[b] + wi) ** 2 - self.W[a] ** 2 - self.W[b] ** 2
        self.H[a] -= hi_
        self.H[b] += hi_
        self.W[a] -= wi
        self.W[b] += wi
        self.A[a] -= P.area[i]
        self.A[b] += P.area[i]
        self.Pm[a] += -P.perim[i] + 2 * sa
        self.Pm[b] += P.perim[i] - 2 * sb
        self.cnt[a] -= 1
        self.cnt[b] += 1
        self.cv = self._cv(self.S2)
        if self.init is not None:
            o = self.init[i]
            self.moved += (hi_ if o == a else 0.0) - (hi_ if o == b else 0.0)
        lab[i] = b

    # -- contiguity --------------------------------------------------------------------------
    def removal_ok(self, i: int, a: int) -> bool:
        """Would grid ``a`` stay connected without cell ``i``?"""
        lab, nbr = self.lab, self.P.nbr
        nb = [j for j in nbr[i] if lab[j] == a]
        if len(nb) <= 1:
            return True
        # quick test: the neighbours are linked among themselves (a ring around i)
        nbs = set(nb)
        comp = {nb[0]}
        stack = [nb[0]]
        while stack:
            u = stack.pop()
            for v in nbr[u]:
                if v in nbs and v not in comp:
                    comp.add(v)
                    stack.append(v)
        if len(comp) == len(nbs):
            return True
        # full search inside the grid, stopping as soon as every neighbour is reached
        targets = nbs - comp
        seen = set(comp)
        seen.add(i)
        stack = list(comp)
        while stack:
            u = stack.pop()
            for v in nbr[u]:
                if v not in seen and lab[v] == a:
                    if v in targets:
                        targets.discard(v)
                        if not targets:
                            return True
                    seen.add(v)
                    stack.append(v)
        return False

    def _targets(self, i: int, a: int) -> list[int]:
        lab = self.lab
        out = []
        for j in self.P.nbr[i]:
            b = lab[j]
            if b != a and b in self.valid and b not in out:
                out.append(b)
        return out

    # -- drivers -----------------------------------------------------------------------------
    def descend(self, budget=None, max_sweeps: int = 200) -> int:
        """Apply improving moves until none is left (or the budget is spent). Returns moves made.

        After a first sweep over every cell, a sweep only visits the cells of grids that
        changed and their neighbours; a final full sweep confirms the local optimum. Every
        visited cell is charged to ``budget`` (a :class:`_Budget`, a number of visits, or None
        for no limit); the budget is checked after each sweep.
        """
        budget = _as_budget(budget)
        made = 0
        lab, nbr, cnt, valid = self.lab, self.P.nbr, self.cnt, self.valid
        movable = [i for i in self.nodes if lab[i] >= 0]
        todo = movable
        full = True
        for _ in range(max_sweeps):
            improved = 0
            touched: set[int] = set()
            budget.spend(len(todo))
            for i in self.rng.permutation(todo).tolist() if len(todo) > 1 else todo:
                a = lab[i]
                if cnt[a] <= 1:
                    continue
                best, best_b = -1e-10, -1
                seen = a
                for j in nbr[i]:
                    b = lab[j]
                    if b == a or b == seen or b not in valid:
                        continue
                    seen = b
                    d = self.delta(i, a, b)
                    if d < best:
                        best, best_b = d, b
                if best_b >= 0 and self.removal_ok(i, a):
                    self.apply(i, a, best_b)
                    touched.add(a)
                    touched.add(best_b)
                    improved += 1
            made += improved
            if budget.done():
                break
            if not improved:
                if full:
                    break
                todo, full = movable, True
                continue
            # the cells of the touched grids and their neighbours, in the order of ``movable``
            # (only movable cells carry this piece's grid labels; contiguity is symmetric)
            near: set[int] = set()
            for j in movable:
                if lab[j] in touched:
                    near.add(j)
                    near.update(nbr[j])
            todo = [i for i in movable if i in near]
            full = False
        return made

    def kick(self, n_moves: int, budget=None) -> None:
        """Random contiguity-preserving moves (the perturbation of iterated local search)."""
        movable = [i for i in self.nodes if self.lab[i] >= 0]
        picks = self.rng.choice(movable, size=min(n_moves * 3, len(movable)),
                                replace=False).tolist()
        if budget is not None:
            budget.spend(len(picks))
        for i in picks:
            if n_moves <= 0:
                break
            a = self.lab[i]
            tg = self._targets(i, a)
            if not tg or self.cnt[a] <= 1:
                continue
            b = tg[int(self.rng.integers(len(tg)))]
            # keep kicks mild on the norm: no move that pushes a grid far out of it
            if self.delta(i, a, b) > self.wn * 0.05:
                continue
            if self.removal_ok(i, a):
                self.apply(i, a, b)
                n_moves -= 1

    def snapshot(self):
        return ([self.lab[i] for i in self.nodes], list(self.H), list(self.W), list(self.A),
                list(self.Pm), list(self.cnt), self.S2, self.moved)

    def restore(self, snap) -> None:
        labs, self.H, self.W, self.A, self.Pm, self.cnt, self.S2, self.moved = (
            snap[0], list(snap[1]), list(snap[2]), list(snap[3]), list(snap[4]),
            list(snap[5]), snap[6], snap[7])
        for i, g in zip(self.nodes, labs):
            self.lab[i] = g

    def run(self, budget=None, rounds: int = 12) -> float:
        """Descent, then iterated local search until ``rounds`` kicks or the budget is spent."""
        budget = _as_budget(budget)
        self.descend(budget)
        best_f = self.objective()
        best = self.snapshot()
        if self.k <= 1:
            return best_f
        kick_size = max(2, len(self.nodes) // 25)
        for _ in range(rounds):
            if budget.done():
                break
            self.kick(kick_size, budget)
            self.descend(budget)
            f = self.objective()
            if f < best_f - 1e-12:
                best_f, best = f, self.snapshot()
            else:
                self.restore(best)
        self.restore(best)
        return best_f


# --------------------------------------------------------------------------------------------
# initial plan: recursive spanning-tree bisection
# --------------------------------------------------------------------------------------------
def _bisect(P: _Problem, nodes: list[int], k: int, rng: np.random.Generator,
            tries: int = 5) -> list[list[int]]:
    """Split connected ``nodes`` into ``k`` connected parts of balanced households."""
    if k <= 1 or len(nodes) <= 1:
        return [nodes]
    k = min(k, len(nodes))
    k1 = k // 2
    k2 = k - k1
    arr = np.asarray(nodes)
    n = len(arr)
    loc = {v: t for t, v in enumerate(nodes)}
    ei, ej, el = [], [], []
    for t, v in enumerate(nodes):
        for u, s in P.geo[v]:
            tu = loc.get(u)
            if tu is not None and tu > t and u in P.nbr[v]:
                ei.append(t)
                ej.append(tu)
                el.append(s)
    ei, ej, el = np.asarray(ei, dtype=np.int64), np.asarray(ej, dtype=np.int64), np.asarray(el)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(ei, minlength=n), out=indptr[1:])
    h = np.asarray(P.h)[arr]
    h_l = h.tolist()
    H = h.sum()
    x = P.x[arr] - P.x[arr].mean()
    y = P.y[arr] - P.y[arr].mean()
    area = float(np.asarray(P.area)[arr].sum())
    targets = (H * k1 / k, H * k2 / k)
    # the long axis of the piece: cutting across it gives compact halves
    cov = np.cov(np.vstack([x, y])) if n > 2 else np.eye(2)
    _, evecs = np.linalg.eigh(cov)
    theta0 = math.atan2(evecs[1, -1], evecs[0, -1])
    best = None  # (score, subtree_mask, k_sub)
    for attempt in range(tries):
        theta = theta0 + (0.0 if attempt == 0 else rng.normal(0, 0.5))
        p = x * math.cos(theta) + y * math.sin(theta)
        span = max(float(p.max() - p.min()), 1e-6)
        wgt = np.abs(p[ei] - p[ej]) + span * (1e-3 + 0.05 * rng.random(len(ei)))
        # the edges come row by row (ei ascending): CSR straight from them, as coo.tocsr() makes it
        tree = minimum_spanning_tree(csr_matrix((wgt, ej, indptr), shape=(n, n)))
        root = int(np.argmin(p))
        order, pred = depth_first_order(tree, root, directed=False, return_predecessors=True)
        if len(order) < n:  # not connected: should not happen for a piece
            break
        # households and cells below every node of the tree (leaves up), on Python lists
        sub_l = h_l.copy()
        size_l = [1] * n
        pred_l = pred.tolist()
        for v in order[:0:-1].tolist():
            pv = pred_l[v]
            sub_l[pv] += sub_l[v]
            size_l[pv] += size_l[v]
        sub = np.array(sub_l)
        size = np.array(size_l, dtype=np.int64)
        tin = np.empty(n, dtype=np.int64)
        tin[order] = np.arange(n)
        cand = order[1:]
        s = sub[cand]
        dev1 = np.abs(s - targets[0])
        dev2 = np.abs(s - targets[1])
        dev = np.minimum(dev1, dev2)
        ks = np.where(dev1 <= dev2, k1, k2)
        top = np.argsort(dev, kind="stable")[:6]
        ti, tj = tin[ei], tin[ej]
        for t in top:
            v = cand[t]
            lo_, hi_ = tin[v], tin[v] + size[v]
            in_i = (ti >= lo_) & (ti < hi_)
            in_j = (tj >= lo_) & (tj < hi_)
            cut = float(el[in_i != in_j].sum())
            score = dev[t] / max(H / k, 1.0) + 0.15 * cut / math.sqrt(max(area, 1e-9))
            if best is None or score < best[0]:
                best = (score, (tin >= lo_) & (tin < hi_), int(ks[t]))
    if best is None:
        return [nodes]
    _, mask, k_sub = best
    part_a = arr[mask].tolist()
    part_b = arr[~mask].tolist()
    return (_bisect(P, part_a, k_sub, rng, tries) + _bisect(P, part_b, k - k_sub, rng, tries))


# --------------------------------------------------------------------------------------------
# one community
# --------------------------------------------------------------------------------------------
@dataclass
class CommunityPlan:
    """Result of :func:`partition_community`.

    ``labels`` maps ``cell_id -> grid number`` (0..n_grids-1, or the locked grid's original
    label); ``status`` maps grid number -> status; ``community_status`` is the most severe
    grid status; ``objective`` is the search objective of the final plan (lower is better).
    """

    labels: pd.Series
    status: dict
    community_status: str
    objective: float = float("nan")
    seconds: float = 0.0
    info: dict = field(default_factory=dict)


def _pieces_plan(P: _Problem, nodes: list[int], lo: int, hi: int):
    """Giant cells, and the pieces (connected parts) of the other cells.

    Barriers hold: a piece below the norm's minimum joins the neighbouring piece across a
    barrier only when the barrier along it is short — at most :data:`BARRIER_JOIN_M` metres in
    all, e.g. a corner clipped by a road — so that no grid has more than that of barrier
    inside it. Otherwise it becomes a grid of its own, flagged ``under_min_component``, for
    the planner to decide.
    """
    giants = [i for i in nodes if P.h[i] > hi]
    gset = set(giants)
    rest = [i for i in nodes if i not in gset]
    comps = P.components(rest)
    if len(comps) < 2 or not P.barrier:
        return giants, comps
    comp_of = {}
    for c, comp in enumerate(comps):
        for i in comp:
            comp_of[i] = c
    tot = [sum(P.h[i] for i in comp) for comp in comps]
    # barrier length between each pair of pieces
    between: dict[tuple[int, int], float] = {}
    for a, b, s in P.barrier:
        ca, cb = comp_of.get(a), comp_of.get(b)
        if ca is None or cb is None or ca == cb:
            continue
        key = (min(ca, cb), max(ca, cb))
        between[key] = between.get(key, 0.0) + s
    parent = list(range(len(comps)))

    def find(c):
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    front = [sum(P.bfront[i] for i in comp) for comp in comps]
    for r in sorted(range(len(comps)), key=lambda c: (tot[c], c)):
        if tot[r] >= lo:
            continue
        cands = [(s, o) for (x, y), s in between.items() for o in ((y,) if x == r else
                 (x,) if y == r else ()) if find(o) != find(r)]
        if not cands:
            continue
        s, other = max(cands, key=lambda t: (t[0], -t[1]))
        if front[r] > BARRIER_JOIN_M:
            continue  # a long barrier along it: stays a grid of its own
        for a, b, _ in P.barrier:
            if {comp_of.get(a), comp_of.get(b)} == {r, other}:
                P.link(a, b)
        parent[find(r)] = find(other)
    merged: dict[int, list[int]] = {}
    for c, comp in enumerate(comps):
        merged.setdefault(find(c), []).extend(comp)
    return giants, list(merged.values())


def partition_community(
    cells: pd.DataFrame,
    adjacency: Adjacency,
    *,
    households_min: int | None = None,
    households_max: int | None = None,
    kind: str = "urban",
    prefer: str | None = None,
    allow_small_whole: bool | None = None,
    weights: dict | None = None,
    locked: Iterable | None = None,
    initial: pd.Series | None = None,
    seed: int = 0,
    budget: int | None = DEFAULT_SEARCH_BUDGET,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    rounds: int | None = None,
) -> CommunityPlan:
    """Partition the cells of one community into contiguous basic grids.

    Parameters
    ----------
    cells
        Cells of one community (from :func:`geo.tessellation.build_cells`), already without
        dedicated-grid cells. Needs ``cell_id``, ``households``, ``workload``, geometry.
    adjacency
        The community's :class:`~geo.tessellation.Adjacency` (it may hold more cells).
    households_min, households_max
        The norm for this community (default: :data:`DEFAULT_NORMS` of ``kind``, the same
        figures as the project defaults in ``pipelines/config.py``).
    kind
        ``'urban'`` or ``'rural'``; sets the defaults of ``prefer``/``allow_small_whole``.
    prefer
        ``'mid'`` or ``'fewest'`` (see :func:`choose_k`).
    allow_small_whole
        Whether a whole piece below the minimum, as one grid, is within the norm.
    weights
        Objective weights, see :data:`DEFAULT_WEIGHTS`.
    locked
        Grid labels of ``initial`` to keep exactly as they are.
    initial
        ``cell_id -> label`` to start from (warm start) instead of the bisection, in every
        piece where it has the chosen number of grids (elsewhere the bisection is used).
    seed
        Random seed (results are reproducible for a given seed).
    budget
        Work budget of the local search in cell visits, shared by every piece and start of
        the community (default :data:`DEFAULT_SEARCH_BUDGET`; None: until converged). The
        plan depends only on the inputs, the settings and ``seed``.
    max_seconds
        Wall-clock safety net (not a budget): if reached, the search stops and a warning is
        logged. None disables it.
    rounds
        Iterated-local-search kicks per piece; default ``clip(3000 / cells, 12, 200)``
        (small pieces are cheap, so they get more).

    Returns
    -------
    CommunityPlan
    """
    t0 = time.perf_counter()
    defaults = DEFAULT_NORMS["rural" if kind == "rural" else "urban"]
    lo = int(defaults["households_min"] if households_min is None else households_min)
    hi = int(defaults["households_max"] if households_max is None else households_max)
    if lo > hi:
        raise ValueError(f"households_min={lo} > households_max={hi}")
    work = _Budget(budget, max_seconds, label=str(getattr(adjacency, "community_code", "")))
    prefer = prefer or defaults["prefer"]
    allow_small_whole = (defaults["allow_small_whole"] if allow_small_whole is None
                         else allow_small_whole)
    W = _weights(weights)
    rng = np.random.default_rng(seed)
    P = _Problem(cells, adjacency)
    lab = [-1] * P.n
    next_label = 0
    locked_set = set(locked or ())
    nodes = list(range(P.n))
    if initial is not None and locked_set:
        init_lab = initial.reindex(P.cell_ids).to_numpy()
        keep = [i for i in nodes if init_lab[i] in locked_set]
        nodes = [i for i in nodes if init_lab[i] not in locked_set]
        names = {g: t for t, g in enumerate(sorted(locked_set, key=str))}
        for i in keep:
            lab[i] = names[init_lab[i]]
        next_label = len(names)
    giants, pieces = _pieces_plan(P, nodes, lo, hi)
    giant_label = {}
    for i in giants:
        lab[i] = next_label
        giant_label[i] = next_label
        next_label += 1
    total_h = sum(P.h[i] for i in nodes)
    objective = 0.0
    n_pieces_searched = 0
    for piece in sorted(pieces, key=len, reverse=True):
        H = sum(P.h[i] for i in piece)
        if H < lo and giants:
            # a small piece next to a tower joins the tower's grid
            adj_g = [giant_label[j] for i in piece for j in P.nbr[i] if j in giant_label]
            if adj_g:
                for i in piece:
                    lab[i] = adj_g[0]
                continue
        k, _ = choose_k(H, lo, hi, prefer)
        k = max(1, min(k, sum(1 for i in piece if P.h[i] > 0) or 1))
        if initial is not None:
            init_lab = initial.reindex(P.cell_ids[piece]).to_numpy()
            names = {}
            for i, g in zip(piece, init_lab):
                if pd.isna(g):
                    continue
                names.setdefault(g, next_label + len(names))
            parts = _warm_parts(P, piece, init_lab, names) if names else []
            if len(parts) != k:  # the start has the wrong number of grids: start afresh
                parts = _bisect(P, piece, k, rng) if k > 1 else [piece]
        else:
            parts = _bisect(P, piece, k, rng) if k > 1 else [piece]
        base = next_label
        for part in parts:
            for i in part:
                lab[i] = next_label
            next_label += 1
        if len(parts) > 1:
            r = rounds if rounds is not None else int(min(max(3000 / len(piece), 12), 200))
            # small pieces are cheap: several starts from different bisections, keep the best
            starts = 1 if initial is not None else int(min(max(400 // len(piece), 1), 6))
            best_f, best_lab = math.inf, None
            for start in range(starts):
                if start:
                    for t, part in enumerate(_bisect(P, piece, k, rng)):
                        for i in part:
                            lab[i] = base + t
                f = _Search(P, piece, lab, lo, hi, W, rng).run(work, r)
                if f < best_f:
                    best_f, best_lab = f, [lab[i] for i in piece]
                if work.done():
                    break
            for i, g in zip(piece, best_lab):
                lab[i] = g
            objective += best_f
            n_pieces_searched += 1
    # compact label numbering
    used = sorted(set(lab))
    remap = {g: t for t, g in enumerate(used)}
    labels = pd.Series([remap[g] for g in lab], index=pd.Index(P.cell_ids, name="cell_id"),
                       name="grid")
    norm = {"households_min": lo, "households_max": hi, "allow_small_whole": allow_small_whole}
    status = _statuses(P, np.array([remap[g] for g in lab]), norm, total_h)
    worst = _worst(status.values())
    return CommunityPlan(labels=labels, status=status, community_status=worst,
                         objective=objective, seconds=time.perf_counter() - t0,
                         info={"pieces": len(pieces), "giants": len(giants), "work": work.used,
                               "budget_spent": work.left <= 0, "safety_net": work.fired})


def _unassign_stray_bits(P: _Problem, nodes, lab: dict, skip=()) -> None:
    """Keep each grid's largest connected part (most households, then most cells); its other
    bits become unassigned (-1) for :func:`_fill_unlabeled`. Grids in ``skip`` are left alone."""
    groups: dict[int, list[int]] = {}
    for i in nodes:
        if lab[i] >= 0:
            groups.setdefault(lab[i], []).append(i)
    for g, members in groups.items():
        if g in skip:
            continue
        comps = P.components(members)
        if len(comps) > 1:
            comps.sort(key=lambda c: (sum(P.h[i] for i in c), len(c)), reverse=True)
            for c in comps[1:]:
                for i in c:
                    lab[i] = -1


def _warm_parts(P: _Problem, piece: list[int], init_lab, names: dict) -> list[list[int]]:
    """Initial labels restricted to a piece, with every grid made connected.

    Cells without a label, and the smaller disconnected bits of a grid, take the label of
    the neighbouring grid they share most boundary with.
    """
    lab = {i: (names[g] if not pd.isna(g) else -1) for i, g in zip(piece, init_lab)}
    _unassign_stray_bits(P, piece, lab)
    _fill_unlabeled(P, piece, lab)
    parts: dict[int, list[int]] = {}
    for i in piece:
        parts.setdefault(lab[i], []).append(i)
    return list(parts.values())


def _fill_unlabeled(P: _Problem, piece: list[int], lab: dict, prefer_not: set | None = None):
    """Grow labelled grids into unlabelled cells (longest shared boundary first)."""
    todo = [i for i in piece if lab[i] < 0]
    if not todo:
        return
    if len(todo) == len(piece):
        for i in piece:
            lab[i] = 0
        return
    while todo:
        progress = False
        rest = []
        for i in todo:
            score: dict[int, float] = {}
            for j, s in P.geo[i]:
                if j in lab and lab[j] >= 0 and j in P.nbr[i]:
                    score[lab[j]] = score.get(lab[j], 0.0) + s
            if score:
                if prefer_not:
                    ok = {g: v for g, v in score.items() if g not in prefer_not}
                    score = ok or score
                lab[i] = max(score, key=score.get)
                progress = True
            else:
                rest.append(i)
        todo = rest
        if not progress:
            # a bit without any labelled neighbour: becomes its own grid
            new = max(lab.values()) + 1
            for c in P.components(todo):
                for i in c:
                    lab[i] = new
                new += 1
            break


def _statuses(P: _Problem, lab: np.ndarray, norm: dict, total_h: float) -> dict:
    lo, hi = norm["households_min"], norm["households_max"]
    h = np.asarray(P.h)
    grids = np.unique(lab)
    H = {g: float(h[lab == g].sum()) for g in grids}
    hmax = {g: float(h[lab == g].max()) if (lab == g).any() else 0.0 for g in grids}
    # grid graph through contiguity (barriers separate, unless a small piece was joined)
    links: dict[int, set] = {g: set() for g in grids}
    for i in range(P.n):
        for j in P.nbr[i]:
            if lab[i] != lab[j]:
                links[lab[i]].add(lab[j])
    comp_of = {}
    for g in grids:
        if g in comp_of:
            continue
        stack, comp_of[g] = [g], g
        while stack:
            u = stack.pop()
            for v in links[u]:
                if v not in comp_of:
                    comp_of[v] = g
                    stack.append(v)
    comp_h: dict = {}
    for g in grids:
        comp_h[comp_of[g]] = comp_h.get(comp_of[g], 0.0) + H[g]
    out = {}
    for g in grids:
        hg = H[g]
        isolated = not links[g]
        if lo <= hg <= hi or (norm.get("allow_small_whole") and isolated and hg <= hi):
            out[g] = "ok"
        elif hg > hi and hmax[g] > hi:
            out[g] = "over_max_single_unit"
        elif total_h < lo:
            out[g] = "under_min_community"
        elif hg < lo and isolated:
            out[g] = "under_min_component"
        elif not choose_k(comp_h[comp_of[g]], lo, hi)[1]:
            out[g] = "infeasible"
        else:
            out[g] = "out_of_norm"
    return out


def _worst(statuses: Iterable[str]) -> str:
    st = set(statuses)
    for s in STATUSES:
        if s in st:
            return s
    return "ok"


# --------------------------------------------------------------------------------------------
# whole plans
# --------------------------------------------------------------------------------------------
def _community_table(communities, codes) -> pd.DataFrame:
    """community_code -> kind, street_code (defaults: urban, None)."""
    if communities is None:
        t = pd.DataFrame({"community_code": sorted({str(c) for c in codes})})
    else:
        t = pd.DataFrame({"community_code": communities["community_code"].astype(str).to_numpy()})
        for col in ("kind", "street_code"):
            if col in communities.columns:
                t[col] = communities[col].to_numpy()
    if "kind" not in t.columns:
        t["kind"] = "urban"
    t["kind"] = t["kind"].where(t["kind"].isin(["urban", "rural"]), "urban")
    if "street_code" not in t.columns:
        t["street_code"] = None
    return t.drop_duplicates("community_code").set_index("community_code")


def _geometry_columns(cells: gpd.GeoDataFrame) -> pd.DataFrame:
    """Plain frame of what the engine needs (no geometry: cheap to send to workers)."""
    geom = np.asarray(cells.geometry.values, dtype=object)
    cen = shapely.centroid(geom)
    return pd.DataFrame({
        "cell_id": cells["cell_id"].to_numpy(),
        "community_code": cells["community_code"].astype(str).to_numpy(),
        "households": cells["households"].to_numpy(float),
        "workload": cells["workload"].to_numpy(float),
        "_area": shapely.area(geom), "_perim": shapely.length(geom),
        "_x": shapely.get_x(cen), "_y": shapely.get_y(cen),
    })


def _seed_for(seed: int, code: str) -> int:
    import zlib
    return (int(seed) * 1_000_003 + zlib.crc32(str(code).encode())) % (2**32)


def _run_community(task):
    code, frame, adj, norm, weights, seed, budget, max_seconds = task
    plan = partition_community(
        frame, adj, households_min=norm["households_min"], households_max=norm["households_max"],
        prefer=norm.get("prefer", "mid"), allow_small_whole=norm.get("allow_small_whole", False),
        weights=weights, seed=seed, budget=budget, max_seconds=max_seconds)
    return code, plan


def _dedicated_parts(dedicated):
    """(assignment Series cell_id -> key, frame of dedicated grid info or None)."""
    if dedicated is None:
        return pd.Series(dtype=object), None
    if isinstance(dedicated, tuple):
        return dedicated[0], dedicated[1]
    return dedicated, None


def partition(
    cells: gpd.GeoDataFrame,
    adjacency: dict[str, Adjacency] | None,
    communities: pd.DataFrame | None = None,
    *,
    norms: dict | None = None,
    weights: dict | None = None,
    seed: int = 0,
    dedicated=None,
    n_jobs: int = 1,
    budget: int | None = DEFAULT_SEARCH_BUDGET,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    progress=None,
    executor=None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Draw the basic grids of every community (and add the dedicated grids).

    Parameters
    ----------
    cells
        All cells (:func:`geo.tessellation.build_cells`).
    adjacency
        :func:`geo.tessellation.cell_adjacency` of ``cells`` (computed if None).
    communities
        Frame with ``community_code`` and optional ``kind`` (``urban``/``rural``) and
        ``street_code``.
    norms
        ``{'urban': {...}, 'rural': {...}, 'communities': {code: {...}}}``, merged over
        :data:`DEFAULT_NORMS`.
    weights
        Objective weights, merged over :data:`DEFAULT_WEIGHTS`.
    seed
        Random seed; each community gets its own stream derived from it and its code.
    dedicated
        The result of :func:`geo.grids.dedicated_grids` (``(assignment, frame)``) or just the
        assignment ``cell_id -> dedicated key``; those cells form dedicated grids.
    n_jobs
        Worker processes (communities are independent). The plan is the same for any
        ``n_jobs``: each community's random stream comes from ``seed`` and its code, and its
        search stops on a work budget, not on the clock.
    budget, max_seconds
        Work budget (cell visits) and wall-clock safety net of each community's search, see
        :func:`partition_community`.
    progress
        Optional callable ``progress(message)``.
    executor
        Optional ``concurrent.futures.Executor``-like object (e.g. a Dask
        ``Client.get_executor()``) to map the communities over instead of ``n_jobs`` local
        processes; the plan is the same (results are ordered by community code).

    Returns
    -------
    grids : geopandas.GeoDataFrame
        One row per grid: ``grid_id``, ``grid_type``, ``community_code``, ``street_code``,
        ``kind``, ``households``, ``residents``, ``workload``, ``area_km2``, ``compactness``,
        ``n_cells``, ``status``, ``community_status``, ``unit_type``, ``unit_ids``, geometry.
    members : pandas.DataFrame
        ``cell_id``, ``grid_id``, ``community_code``: one row per cell.
    """
    t0 = time.perf_counter()
    if adjacency is None:
        adjacency = cell_adjacency(cells)
    ctab = _community_table(communities, cells["community_code"].unique())
    W = _weights(weights)
    assign, ded_frame = _dedicated_parts(dedicated)
    frame = _geometry_columns(cells)
    is_ded = frame["cell_id"].isin(assign.index).to_numpy()
    tasks = []
    for code, grp in frame[~is_ded].groupby("community_code", sort=True):
        kind = ctab["kind"].get(code, "urban")
        tasks.append((code, grp, adjacency[code], norm_for(code, kind, norms), W,
                      _seed_for(seed, code), budget, max_seconds))
    results = []
    if executor is not None and tasks:
        tasks.sort(key=lambda t: -len(t[1]))  # big first: better load balance
        for i, res in enumerate(executor.map(_run_community, tasks), 1):
            results.append(res)
            if progress:
                progress(f"grids: community {i}/{len(tasks)} done")
    elif n_jobs > 1 and len(tasks) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        tasks.sort(key=lambda t: -len(t[1]))  # big first: better load balance
        with ProcessPoolExecutor(max_workers=n_jobs, mp_context=mp.get_context("fork")) as ex:
            for i, res in enumerate(ex.map(_run_community, tasks, chunksize=1), 1):
                results.append(res)
                if progress:
                    progress(f"grids: community {i}/{len(tasks)} done")
    else:
        for i, t in enumerate(tasks, 1):
            results.append(_run_community(t))
            if progress:
                progress(f"grids: community {i}/{len(tasks)} done")
    results.sort(key=lambda r: r[0])  # the same order for any n_jobs
    fired = [code for code, plan in results if plan.info.get("safety_net")]
    if fired:
        log.warning("partition: the wall-clock safety net stopped the search of %d "
                    "communit%s (%s); the plan may differ from run to run", len(fired),
                    "y" if len(fired) == 1 else "ies", ", ".join(fired[:5]))
    spent = sum(bool(plan.info.get("budget_spent")) for _, plan in results)
    labels = []
    status = {}
    for code, plan in results:
        keys = [f"{code}/b{g:03d}" for g in plan.labels.to_numpy()]
        labels.append(pd.Series(keys, index=plan.labels.index))
        for g, st in plan.status.items():
            status[f"{code}/b{g:03d}"] = st
    gtype = {}
    if len(assign):
        labels.append(assign.astype(str))
        for k in assign.astype(str).unique():
            gtype[k] = "dedicated"
    labels = pd.concat(labels) if labels else pd.Series(dtype=object)
    t1 = time.perf_counter()
    grids, members = grids_from_labels(
        cells, labels, communities=communities, adjacency=adjacency, norms=norms,
        grid_type=gtype, status=status, codes="new", dedicated_info=ded_frame)
    log.info("partition: %d grids for %d communities in %.1f s (search %.1f s); the work "
             "budget ended the search in %d communities, the others converged",
             len(grids), len(tasks), time.perf_counter() - t0, t1 - t0, spent)
    return grids, members


def _dissolve(geoms: np.ndarray):
    """One grid polygon from its cells: valid, and one polygon whenever the cells are connected."""
    if len(geoms) == 1:
        return _one_polygon(geoms[0])
    total = float(shapely.area(geoms).sum())
    try:
        u = shapely.coverage_union_all(geoms)
        if (u.geom_type == "Polygon" and u.is_valid
                and abs(u.area - total) <= 1e-7 * total + 1e-6):
            return u
    except shapely.errors.GEOSException:
        pass  # edges that do not match vertex for vertex (barrier / unit borders)
    return _one_polygon(shapely.union_all(geoms, grid_size=1e-3))


def _one_polygon(geom, debris_m2: float = 10.0):
    """A valid polygon: repaired (holes stay holes) and rid of snapping debris.

    Parts smaller than ``debris_m2`` next to a real part are dropped; a geometry that is
    still several real polygons is returned as a MultiPolygon (the plan's metrics count it).
    """
    if geom is None or geom.is_empty:
        return geom
    if not geom.is_valid:
        geom = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and p.area > 0]
    if not parts:
        return geom
    if len(parts) == 1:
        return parts[0]
    big = [p for p in parts if p.area >= debris_m2] or [max(parts, key=lambda p: p.area)]
    if len(big) == 1:
        return big[0]
    # cells the adjacency calls neighbours may touch only within its 2 mm tolerance (a sliver of
    # another cell between them): close such hairline gaps, never more
    closed = shapely.buffer(shapely.buffer(shapely.MultiPolygon(big), 0.002, join_style="mitre"),
                            -0.002, join_style="mitre")
    if closed.geom_type == "Polygon" and closed.is_valid:
        return closed
    return shapely.MultiPolygon(big)


def grid_status(cells: pd.DataFrame, labels: pd.Series, adjacency: dict[str, Adjacency],
                communities=None, norms: dict | None = None,
                grid_type: dict | None = None) -> pd.Series:
    """Status of every basic grid of a plan (see :data:`STATUSES`), recomputed from scratch.

    Dedicated grids (``grid_type[grid] == 'dedicated'``) get ``'ok'``: the norm does not
    apply to them.
    """
    grid_type = grid_type or {}
    ctab = _community_table(communities, cells["community_code"].unique())
    lab = labels.reindex(cells["cell_id"]).to_numpy()
    frame = _geometry_columns(cells)
    frame["_grid"] = lab
    out = {}
    for code, grp in frame.groupby("community_code", sort=False):
        ded = grp["_grid"].map(lambda g: grid_type.get(g) == "dedicated").to_numpy(bool)
        for g in grp["_grid"][ded].unique():
            out[g] = "ok"
        pool = grp[~ded & grp["_grid"].notna().to_numpy()]
        if not len(pool):
            continue
        norm = norm_for(code, ctab["kind"].get(code, "urban"), norms)
        P = _Problem(pool, adjacency[code])
        names = {g: t for t, g in enumerate(pd.unique(pool["_grid"]))}
        st = _statuses(P, np.array([names[g] for g in pool["_grid"]]), norm,
                       float(pool["households"].sum()))
        inv = {t: g for g, t in names.items()}
        for t, s in st.items():
            out[inv[t]] = s
    return pd.Series(out, name="status", dtype=object)


def grids_from_labels(
    cells: gpd.GeoDataFrame,
    labels: pd.Series,
    *,
    communities=None,
    adjacency: dict[str, Adjacency] | None = None,
    norms: dict | None = None,
    grid_type: dict | None = None,
    status: dict | None = None,
    codes: str | None = "keep",
    dedicated_info: pd.DataFrame | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Dissolve cells into grid polygons with their figures, status and codes.

    Parameters
    ----------
    cells
        All cells of the plan.
    labels
        ``cell_id -> grid label``; every cell should have one.
    communities, norms
        As in :func:`partition` (kinds, street codes, norms for the status).
    adjacency
        Needed to compute statuses when ``status`` is not given.
    grid_type
        ``label -> 'basic'|'dedicated'`` (default basic).
    status
        ``label -> status``; recomputed with :func:`grid_status` when None.
    codes
        ``'new'``: number every grid afresh; ``'keep'``: keep labels that are well-formed
        codes and number the others; None: keep labels as ids.
    dedicated_info
        Frame indexed by dedicated key with ``unit_type`` and ``unit_ids``.
    """
    from geo.gridcodes import grid_codes

    grid_type = dict(grid_type or {})
    ctab = _community_table(communities, cells["community_code"].unique())
    lab = labels.reindex(cells["cell_id"]).to_numpy()
    if pd.isna(lab).any():
        raise ValueError(f"{int(pd.isna(lab).sum())} cell(s) have no grid label")
    df = pd.DataFrame({
        "grid": lab, "community_code": cells["community_code"].astype(str).to_numpy(),
        "households": cells["households"].to_numpy(), "residents": cells["residents"].to_numpy(),
        "workload": cells["workload"].to_numpy()})
    geoms = np.asarray(cells.geometry.values, dtype=object)
    comm_all = np.asarray(df["community_code"].to_numpy(), dtype=object)
    hh_all = df["households"].to_numpy()
    res_all = df["residents"].to_numpy(float)
    wl_all = df["workload"].to_numpy(float)
    rows = []
    for g, idx in df.groupby("grid", sort=False).indices.items():
        comm = comm_all[idx]
        codes_in = pd.unique(comm)
        geom = _dissolve(geoms[idx])
        rows.append({
            "key": g, "grid_type": grid_type.get(g, "basic"),
            "community_code": codes_in[0] if len(codes_in) == 1 else
            pd.Series(comm).mode().iloc[0],
            "n_communities": len(codes_in),
            "households": int(hh_all[idx].sum()),
            "residents": float(res_all[idx].sum()),
            "workload": float(wl_all[idx].sum()),
            "n_cells": len(idx), "geometry": geom})
    grids = gpd.GeoDataFrame(rows, geometry="geometry", crs=cells.crs)
    if status is None:
        if adjacency is None:
            adjacency = cell_adjacency(cells)
        status = grid_status(cells, labels, adjacency, communities, norms, grid_type).to_dict()
    grids["status"] = [("ok" if t == "dedicated" else status.get(k, "ok"))
                       for k, t in zip(grids["key"], grids["grid_type"])]
    worst = grids[grids["grid_type"] == "basic"].groupby("community_code")["status"].agg(_worst)
    grids["community_status"] = grids["community_code"].map(worst).fillna("ok")
    grids["kind"] = grids["community_code"].map(ctab["kind"]).fillna("urban")
    grids["street_code"] = grids["community_code"].map(ctab["street_code"])
    area = shapely.area(grids.geometry.values)
    perim = shapely.length(grids.geometry.values)
    grids["area_km2"] = area / 1e6
    grids["compactness"] = np.where(perim > 0, 4 * np.pi * area / np.maximum(perim, 1e-12) ** 2,
                                    0.0)
    grids["unit_type"] = None
    grids["unit_ids"] = None
    if dedicated_info is not None and len(dedicated_info):
        info = dedicated_info
        grids["unit_type"] = grids["key"].map(info["unit_type"]) if "unit_type" in info else None
        if "unit_ids" in info:
            grids["unit_ids"] = grids["key"].map(info["unit_ids"])
    if codes is None:
        grids["grid_id"] = grids["key"].astype(str)
    else:
        grids["grid_id"] = grids["key"].astype(str)
        grids["grid_id"] = grid_codes(grids, communities=communities,
                                      keep_existing=(codes == "keep"))
    mapping = dict(zip(grids["key"], grids["grid_id"]))
    members = pd.DataFrame({"cell_id": cells["cell_id"].to_numpy(),
                            "grid_id": [mapping[g] for g in lab],
                            "community_code": df["community_code"].to_numpy()})
    cols = ["grid_id", "grid_type", "community_code", "street_code", "kind", "households",
            "residents", "workload", "area_km2", "compactness", "n_cells", "n_communities",
            "status", "community_status", "unit_type", "unit_ids", "geometry"]
    grids = grids[cols].sort_values("grid_id").reset_index(drop=True)
    return grids, members


def building_members(cells: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    """``building_id, grid_id`` (the ``grid_members`` table) from cell members."""
    m = dict(zip(members["cell_id"], members["grid_id"]))
    ex = cells[["cell_id", "building_ids"]].explode("building_ids").dropna()
    return pd.DataFrame({"building_id": ex["building_ids"].to_numpy(),
                         "grid_id": ex["cell_id"].map(m).to_numpy()})


# --------------------------------------------------------------------------------------------
# re-draw
# --------------------------------------------------------------------------------------------
def labels_from_plan(cells: gpd.GeoDataFrame, *, building_grid: pd.Series | None = None,
                     grids: gpd.GeoDataFrame | None = None) -> pd.Series:
    """Current grid of each cell from a stored plan (members) and/or grid polygons.

    Cells with buildings take the grid holding most of their buildings per
    ``building_grid`` (``building_id -> grid_id``; ties: the smallest grid id); other cells take
    the grid polygon (``grids``: ``grid_id``, geometry) covering most of their area. Cells
    matching neither get NaN (a re-draw assigns them). Vectorised: one explode and one
    group-by for the buildings, and an overlay only for the cells that touch several grids.
    """
    out = pd.Series(np.nan, index=pd.Index(cells["cell_id"], name="cell_id"), dtype=object)
    if building_grid is not None and len(building_grid):
        bg = building_grid[~pd.isna(building_grid.to_numpy())]
        bg = pd.Series(bg.to_numpy(), index=bg.index.astype(str))
        bg = bg[~bg.index.duplicated()]
        lists = cells["building_ids"].to_numpy()
        lens = np.fromiter((len(v) if isinstance(v, list | tuple | np.ndarray) else 0 for v in lists),
                           dtype=np.int64, count=len(lists))
        if lens.sum():
            flat = [str(b) for v, n in zip(lists, lens) if n for b in v]
            pos = np.repeat(np.arange(len(lists)), lens)
            got = bg.reindex(pd.Index(flat)).to_numpy()
            ok = ~pd.isna(got)
            if ok.any():
                f = pd.DataFrame({"c": pos[ok], "g": got[ok]})
                cnt = f.groupby(["c", "g"], sort=False).size().rename("n").reset_index()
                # the most frequent grid of each cell; ties: the smallest id (as Series.mode)
                cnt = cnt.sort_values(["c", "n", "g"], ascending=[True, False, True], kind="stable")
                first = cnt.drop_duplicates("c")
                vals = np.empty(len(first), dtype=object)
                vals[:] = list(first["g"].to_numpy())
                out.iloc[first["c"].to_numpy()] = vals
    if grids is not None and len(grids):
        todo = out.isna().to_numpy()
        if todo.any():
            cg = np.asarray(cells.geometry.values, dtype=object)[todo]
            gg = np.asarray(grids.geometry.values, dtype=object)
            tree = shapely.STRtree(gg)
            ci, gi = tree.query(cg, predicate="intersects")
            if len(ci):
                # a cell touching one grid only, inside it, needs no overlay
                n_hit = np.bincount(ci, minlength=len(cg))
                single = n_hit[ci] == 1
                inside = np.zeros(len(ci), dtype=bool)
                if single.any():
                    inside[single] = (shapely.within(cg[ci[single]], gg[gi[single]])
                                      & (shapely.area(cg[ci[single]]) > 0))
                ov = np.zeros(len(ci))
                ov[inside] = 1.0
                rest = ~inside
                if rest.any():
                    ov[rest] = shapely.area(shapely.intersection(cg[ci[rest]], gg[gi[rest]]))
                best = pd.DataFrame({"c": ci, "g": gi, "a": ov}).sort_values("a").groupby(
                    "c").tail(1)
                best = best[best["a"] > 0]
                ids = grids["grid_id"].to_numpy()
                pos = np.flatnonzero(todo)
                out.iloc[pos[best["c"].to_numpy()]] = ids[best["g"].to_numpy()]
    return out


def _next_code(code: str, used: set, prefix: str | None = None) -> str:
    pre = prefix or code
    for n in range(1, 901):
        cand = f"{pre}{n:03d}"
        if cand not in used:
            used.add(cand)
            return cand
    n = 1
    while f"{code}-N{n}" in used:
        n += 1
    used.add(f"{code}-N{n}")
    return f"{code}-N{n}"


def redraw(
    cells: gpd.GeoDataFrame,
    adjacency: dict[str, Adjacency] | None,
    current_labels: pd.Series,
    *,
    locked_grids: Iterable = (),
    communities=None,
    norms: dict | None = None,
    weights: dict | None = None,
    seed: int = 0,
    budget: int | None = DEFAULT_SEARCH_BUDGET,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    max_repairs: int = 60,
    n_jobs: int = 1,
    executor=None,
) -> tuple[pd.Series, pd.DataFrame]:
    """Fix a current plan with as few household moves as possible.

    Grids within the norm stay as they are unless a neighbour needs their cells; locked grids
    (and any grid passed in ``locked_grids``, e.g. the dedicated ones) never change. Cells
    without a current grid (new buildings) join the neighbouring grid they share most
    boundary with. Then single-cell moves fix norm violations, preferring the moves that shift
    the fewest households (objective: norm penalty, then households moved); a grid still over
    the maximum is split in two, and one still under the minimum is merged into a neighbour,
    followed by another round of moves. Barriers hold here too: the part of a current grid
    across a road, railway or river from the rest of it is treated like any cut-off bit (it
    joins a grid on its own side, or becomes a grid of its own), except for the short joins
    of small pieces that :func:`partition` makes too (``BARRIER_JOIN_M``).

    Parameters
    ----------
    cells, adjacency
        The cells and their adjacency.
    current_labels
        ``cell_id -> grid_id`` of the current plan (see :func:`labels_from_plan`); NaN for
        cells not in it.
    locked_grids
        Grid ids that must not change.
    communities, norms, seed, budget, max_seconds
        As in :func:`partition` (the budget is per community, shared by its repair rounds).
    weights
        Defaults here: ``norm`` 100, ``move`` 1, ``balance`` 0, ``compactness`` 0.
    max_repairs
        Rounds of split/merge repairs per community.
    n_jobs, executor
        Where the communities are searched, as in :func:`partition`; the result is the same.

    Returns
    -------
    labels : pandas.Series
        ``cell_id -> grid_id`` of the new plan (new grids get the next free codes).
    moves : pandas.DataFrame
        One row per cell that changed grid: ``cell_id``, ``building_ids``, ``from_grid``
        (None for new cells), ``to_grid``, ``households``, ``reason`` (``new_cell``;
        ``norm``: moved to meet the norm; ``reconnect``: a cut-off bit of its grid;
        ``other_community``: its grid lay mostly in another community).
    """
    if adjacency is None:
        adjacency = cell_adjacency(cells)
    W = _weights({"balance": 0.0, "compactness": 0.0, "move": 1.0, **(weights or {})})
    ctab = _community_table(communities, cells["community_code"].unique())
    prefixes = {}
    from geo.gridcodes import community_prefixes
    prefixes = community_prefixes(cells["community_code"].astype(str).unique(), communities)
    locked = set(locked_grids)
    cur = current_labels.reindex(cells["cell_id"])
    # a current grid spread over several communities keeps its id in the community holding
    # most of its households; its parts elsewhere are new grids (``id@community``)
    home = (pd.DataFrame({"g": cur.to_numpy(), "c": cells["community_code"].astype(str).to_numpy(),
                          "h": cells["households"].to_numpy()})
            .dropna(subset=["g"]).groupby(["g", "c"])["h"].agg(["sum", "size"])
            .sort_values(["sum", "size"], ascending=False).reset_index()
            .drop_duplicates("g").set_index("g")["c"])
    stray = [(not pd.isna(g)) and home.get(g) != c
             for g, c in zip(cur.to_numpy(), cells["community_code"].astype(str).to_numpy())]
    if any(stray):
        cur = cur.astype(object)
        cur[np.array(stray)] = [f"{g}@{c}" for g, c in zip(
            cur[np.array(stray)], cells["community_code"].astype(str).to_numpy()[np.array(stray)])]
    frame = _geometry_columns(cells)
    frame["_cur"] = cur.to_numpy()
    out_labels = []
    move_rows = []
    used_all = {str(g) for g in current_labels.dropna().unique()}
    # every community's search on the workers (they are independent: own random stream, own
    # work budget); the new grids' codes are given here, community by community in code order,
    # exactly as a single process gives them
    tasks = []
    for code, grp in frame.groupby("community_code", sort=True):
        kind = ctab["kind"].get(code, "urban")
        tasks.append((code, grp, adjacency[code], norm_for(code, kind, norms), kind,
                      locked & set(grp["_cur"].dropna()), W, seed, budget, max_seconds, max_repairs))
    results = _map_ordered(_redraw_community, tasks, n_jobs=n_jobs, executor=executor,
                           size=lambda t: len(t[1]))
    for (code, grp, *_), r in zip(tasks, results):
        labl, curv, before_fill = r["labels"], grp["_cur"].to_numpy(), r["before_fill"]
        orig = current_labels.reindex(grp["cell_id"]).to_numpy()
        inv_names = {t: g for g, t in r["names"].items() if "@" not in str(g)}
        used = set(used_all)
        for t in r["start_labels"]:
            if t not in inv_names:
                inv_names[t] = _next_code(code, used, prefixes.get(code))
        for t in sorted(set(labl)):
            if t not in inv_names:
                inv_names[t] = _next_code(code, used, prefixes.get(code))
        used_all |= {inv_names[t] for t in set(labl)}
        ids = grp["cell_id"].to_numpy()
        hh = grp["households"].to_numpy(float).tolist()
        final = [inv_names[t] for t in labl]
        out_labels.append(pd.Series(final, index=ids))
        for i in range(len(ids)):
            old = orig[i]
            old = None if pd.isna(old) else old
            if old != final[i]:
                reason = ("new_cell" if old is None else
                          "other_community" if "@" in str(curv[i]) else
                          "reconnect" if before_fill[i] < 0 else "norm")
                move_rows.append((ids[i], old, final[i], int(hh[i]), reason))
    labels = pd.concat(out_labels) if out_labels else pd.Series(dtype=object)
    labels.index.name = "cell_id"
    moves = pd.DataFrame(move_rows, columns=["cell_id", "from_grid", "to_grid", "households",
                                             "reason"])
    bids = dict(zip(cells["cell_id"], cells["building_ids"]))
    moves.insert(1, "building_ids", moves["cell_id"].map(bids))
    return labels, moves


def _n_out_of_norm(P: _Problem, lab: list[int], nodes: list[int], norm: dict) -> int:
    """Grids of ``nodes`` whose status is ``out_of_norm`` (the norm could be met, is not)."""
    st = _statuses(P, np.asarray(lab), norm, sum(P.h))
    return sum(1 for g in {lab[i] for i in nodes} if st.get(g) == "out_of_norm")


def _fresh_if_better(P: _Problem, grp: pd.DataFrame, adjacency: Adjacency, lab: list[int],
                     nodes: list[int], norm: dict, *, kind: str, seed: int, budget,
                     max_seconds) -> list[int]:
    """The community's free cells drawn by the engine itself, if that leaves fewer grids out of
    the norm than the move-sparing repair did.

    The repair moves single cells and splits or merges whole grids; it can stop with grids out
    of the norm that a fresh draw meets (on the demo city: two neighbours of 289 and 258
    households beside full grids). Meeting the norm comes first, moving few households second:
    a draw warm-started from the repaired plan is tried first, a cold one (the engine's own
    bisection) if that still leaves grids out of the norm; the draw with the fewest grids out
    of the norm wins, ties going to the one that keeps more households in their grids. Each new
    grid keeps the label of the old grid it shares most households with.
    """
    lo, hi = norm["households_min"], norm["households_max"]
    free = grp.iloc[nodes]
    start = pd.Series([lab[i] for i in nodes], index=free["cell_id"].to_numpy())
    best, best_key = lab, (_n_out_of_norm(P, lab, nodes, norm), 0.0)
    tried = [best_key[0]]
    for initial in (start, None):
        plan = partition_community(free, adjacency, households_min=lo, households_max=hi,
                                   kind=kind, prefer=norm.get("prefer"),
                                   allow_small_whole=norm.get("allow_small_whole"),
                                   initial=initial, seed=seed, budget=budget,
                                   max_seconds=max_seconds)
        cand, kept = _relabel(P, lab, nodes, plan.labels.reindex(free["cell_id"]).to_numpy())
        key = (_n_out_of_norm(P, cand, nodes, norm), -kept)
        tried.append(key[0])
        if key < best_key:
            best, best_key = cand, key
        if key[0] == 0:
            break
    log.info("%s: grids out of the norm after the repair / warm / cold draw: %s%s",
             adjacency.community_code, tried, "" if best is lab else " (a draw taken)")
    return best


def _relabel(P: _Problem, lab: list[int], nodes: list[int], new) -> tuple[list[int], float]:
    """``lab`` with ``nodes`` relabelled from ``new``: each new grid takes the old label it
    shares most households with (each old label once), the others fresh labels. Also returns
    the households that keep their label."""
    share: dict[tuple, float] = {}
    for i, g in zip(nodes, new):
        share[(g, lab[i])] = share.get((g, lab[i]), 0.0) + P.h[i] + 1e-9
    taken_new, taken_old, name = set(), set(), {}
    for (g, old), _h in sorted(share.items(), key=lambda kv: (-kv[1], str(kv[0]))):
        if g not in taken_new and old not in taken_old:
            name[g] = old
            taken_new.add(g)
            taken_old.add(old)
    top = max(max(lab), -1) + 1
    for g in sorted(set(new)):
        if g not in name:
            name[g] = top
            top += 1
    cand = list(lab)
    kept = 0.0
    for i, g in zip(nodes, new):
        cand[i] = name[g]
        kept += P.h[i] if cand[i] == lab[i] else 0.0
    return cand, kept


def _map_ordered(fn, tasks: list, *, n_jobs: int = 1, executor=None, size=None) -> list:
    """``[fn(t) for t in tasks]``, on ``executor`` or ``n_jobs`` local processes (big tasks first); same order."""
    if len(tasks) > 1 and (executor is not None or n_jobs > 1):
        order = sorted(range(len(tasks)), key=lambda k: -(size(tasks[k]) if size else 0))
        if executor is not None:
            got = list(executor.map(fn, [tasks[k] for k in order]))
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor
            with ProcessPoolExecutor(max_workers=n_jobs, mp_context=mp.get_context("fork")) as ex:
                got = list(ex.map(fn, [tasks[k] for k in order], chunksize=1))
        out = [None] * len(tasks)
        for k, r in zip(order, got):
            out[k] = r
        return out
    return [fn(t) for t in tasks]


def _redraw_community(task) -> dict:
    """The search of one community of :func:`redraw` (runs on a worker): integer grid labels.

    Returns ``labels`` (one per cell of the community), ``names`` (current grid id -> label),
    ``start_labels`` (the labels before the search, sorted: new ones get codes first) and
    ``before_fill`` (-1 for cells that had no current grid or were a cut-off bit of it).
    """
    code, grp, adj, norm, kind, locked, W, seed, budget, max_seconds, max_repairs = task
    lo, hi = norm["households_min"], norm["households_max"]
    P = _Problem(grp, adj)
    rng = np.random.default_rng(_seed_for(seed, code))
    curv = grp["_cur"].to_numpy()
    # barriers hold, up to the short joins the engine itself makes (BARRIER_JOIN_M)
    _pieces_plan(P, [i for i in range(P.n) if curv[i] not in locked], lo, hi)
    names: dict = {}
    for g in curv:
        if not pd.isna(g) and g not in names:
            names[g] = len(names)
    lab = {i: (names[g] if not pd.isna(g) else -1) for i, g in enumerate(curv)}
    locked_int = {names[g] for g in names if g in locked}
    # every unlocked grid one piece: smaller bits become unassigned
    _unassign_stray_bits(P, range(P.n), lab, skip=locked_int)
    before_fill = [lab[i] for i in range(P.n)]
    _fill_unlabeled(P, list(range(P.n)), lab, prefer_not=locked_int)
    start_labels = sorted(set(lab.values()))
    labl = [lab[i] for i in range(P.n)]
    init = list(labl)
    free_nodes = [i for i in range(P.n) if labl[i] not in locked_int]
    work = _Budget(budget, max_seconds, label=str(code))
    for _round in range(max_repairs + 1):
        if free_nodes:
            s = _Search(P, free_nodes, labl, lo, hi, W, rng, init=init)
            s.descend(work)
        changed = _structural_repair(P, labl, free_nodes, lo, hi, rng, locked_int)
        if not changed:
            if free_nodes and _off_norm(P, labl, free_nodes, lo, hi):
                # stuck just outside the norm (e.g. 401 of 400 with full neighbours):
                # iterated local search, kicks and descents, keeps the best plan
                s = _Search(P, free_nodes, labl, lo, hi, W, rng, init=init)
                s.run(work, int(min(max(3000 / len(free_nodes), 12), 200)))
                # still out: one grid more where the piece's preferred number is higher
                if _off_norm(P, labl, free_nodes, lo, hi) and _structural_repair(
                        P, labl, free_nodes, lo, hi, rng, locked_int, eager=True):
                    continue
            break
    if free_nodes and _off_norm(P, labl, free_nodes, lo, hi):
        labl = _fresh_if_better(P, grp, adj, labl, free_nodes, norm, kind=kind,
                                seed=_seed_for(seed, code), budget=budget, max_seconds=max_seconds)
    return {"labels": labl, "names": names, "start_labels": start_labels, "before_fill": before_fill}


def _off_norm(P: _Problem, lab: list[int], nodes: list[int], lo: float, hi: float) -> bool:
    """Whether a grid of ``nodes`` has households outside ``[lo, hi]`` though its piece could meet it."""
    H: dict[int, float] = {}
    for i in nodes:
        H[lab[i]] = H.get(lab[i], 0.0) + P.h[i]
    bad = {g for g, h in H.items() if not lo <= h <= hi}
    if not bad:
        return False
    # only worth a search where the grid's connected set of grids admits the norm
    for comp in P.components(nodes):
        gs = {lab[i] for i in comp}
        if gs & bad and choose_k(sum(P.h[i] for i in comp), lo, hi)[1]:
            return True
    return False


def _structural_repair(P: _Problem, lab: list[int], nodes: list[int], lo: float, hi: float,
                       rng, locked: set, eager: bool = False) -> bool:
    """Split one grid still over the maximum, or merge one still under the minimum."""
    H: dict[int, float] = {}
    mem: dict[int, list[int]] = {}
    for i in nodes:
        H[lab[i]] = H.get(lab[i], 0.0) + P.h[i]
        mem.setdefault(lab[i], []).append(i)
    # pieces with too few grids for the maximum: a grid over it may split even below 2 * min
    # (the search then fills both halves from the neighbours)
    short = set()
    for comp in P.components(nodes):
        gs = {lab[i] for i in comp}
        total = sum(P.h[i] for i in comp)
        need = choose_k(total, lo, hi)[0] if eager else math.ceil(total / hi - 1e-9)
        if len(gs) < need:
            short |= gs
    # over the maximum and splittable (not a single tower)
    for g in sorted(H, key=lambda g: -H[g]):
        if H[g] > hi and (H[g] >= 2 * lo or g in short) and max(P.h[i] for i in mem[g]) <= hi:
            parts = _bisect(P, mem[g], 2, rng)
            if len(parts) == 2:
                small = min(parts, key=lambda p: sum(P.h[i] for i in p))
                new = max(max(lab), max(locked, default=-1)) + 1
                for i in small:
                    lab[i] = new
                return True
    # under the minimum and with an unlocked neighbour grid
    for g in sorted(H, key=lambda g: H[g]):
        if H[g] >= lo:
            continue
        nb: dict[int, float] = {}
        for i in mem[g]:
            for j in P.nbr[i]:
                t = lab[j]
                if t != g and t not in locked and t in H:
                    nb[t] = H[t]
        if not nb:
            continue
        fits = [t for t in nb if H[g] + nb[t] <= hi]
        target = min(fits or nb, key=lambda t: nb[t])
        for i in mem[g]:
            lab[i] = target
        return True
    return False
