"""Planted-cluster city generator for the hot spot tests (CPU-light, numpy only).

A city of ``n_streets`` streets; each street is urban (20–40 small grids on a ~250 m lattice,
0.02–0.2 km²) or rural (5–14 grids on a ~2.5 km lattice, 1–50 km²), so grid areas differ by
three orders of magnitude like the demo's. Households per grid: 250–550 urban, 50–600 rural,
and 3 % dedicated grids with none. Background incidents are negative binomial with mean ∝
households (20 a month for an average grid, 24 months) and variance
μ + α μ² (over-dispersed, α = 0.02–0.05: grid rates vary ±14–22 % beyond households), plus a small area-proportional background on the
dedicated grids. Planted clusters add about twice the median grid's total, the rest in the grid under
the planted centre and 10 % in each of its three nearest grids within 1 km.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SynthCity:
    xy: np.ndarray  # (n, 2) grid centroids, metres
    area_km2: np.ndarray
    households: np.ndarray
    counts: np.ndarray  # (n, T) monthly counts
    centres: np.ndarray  # indices of the grids under planted centres
    kinds: list = field(default_factory=list)  # kind per planted centre

    @property
    def total(self) -> np.ndarray:
        return self.counts.sum(axis=1)


def _streets(n_streets: int, rng) -> tuple[np.ndarray, np.ndarray]:
    xy, area = [], []
    for s in range(n_streets):
        ox, oy = (s % 7) * 12_000.0, (s // 7) * 12_000.0
        if s == 0 or (s != 1 and rng.random() < 0.65):  # urban (street 1 is always rural)
            m = int(rng.integers(25, 46))
            side = int(np.ceil(np.sqrt(m)))
            ij = np.array([(i, j) for i in range(side) for j in range(side)][:m], float)
            pts = ij * 250.0 + rng.normal(0, 30, (m, 2))
            a = np.clip(0.0625 * rng.lognormal(0, 0.6, m), 0.01, 0.25)
        else:  # rural
            m = int(rng.integers(5, 15))
            side = int(np.ceil(np.sqrt(m)))
            ij = np.array([(i, j) for i in range(side) for j in range(side)][:m], float)
            pts = ij * 2500.0 + rng.normal(0, 200, (m, 2))
            a = np.clip(4.0 * rng.lognormal(0, 1.0, m), 1.0, 52.0)
        xy.append(pts + [ox, oy])
        area.append(a)
    return np.vstack(xy), np.concatenate(area)


def make_city(
    n_streets: int,
    n_clusters: int,
    seed: int,
    *,
    months: int = 24,
    alpha: float | None = None,
    kinds=("persistent",),
    strength: float = 2.0,
) -> SynthCity:
    """A synthetic city with ``n_clusters`` planted clusters (see the module docstring).

    ``kinds`` cycles over the planted clusters: ``persistent`` (the same excess every month),
    ``intensifying`` (excess growing linearly from 0), ``new`` (excess only in the last 3
    months), ``diminishing`` (excess falling linearly to 0 in the last months).
    """
    rng = np.random.default_rng(seed)
    xy, area = _streets(n_streets, rng)
    n = len(xy)
    urban = area < 0.5
    hh = np.where(urban, rng.uniform(250, 550, n), rng.uniform(50, 600, n)).round()
    hh[rng.random(n) < 0.03] = 0
    a = float(rng.uniform(0.02, 0.05)) if alpha is None else alpha
    per_month = 20.0 * hh / max(np.mean(hh[hh > 0]), 1.0)  # ~ 480 over 24 months per grid
    mu = np.repeat(per_month[:, None], months, axis=1) * rng.uniform(0.8, 1.2, months)[None, :]
    mu[hh == 0] = 0.5 * area[hh == 0, None]  # dedicated grids: a little, by area
    # over-dispersion: a lasting rate factor per grid (mean 1, variance α), so a grid's total
    # over the months is negative binomial with Var = μ + α μ²
    factor = rng.gamma(1.0 / a, a, size=n) if a > 0 else np.ones(n)
    counts = rng.poisson(mu * factor[:, None]).astype(float)
    median_total = float(np.median(mu.sum(axis=1)[hh > 0]))
    # planted centres: grids with households, at least 600 m apart
    centres: list[int] = []
    for i in rng.permutation(np.flatnonzero(hh > 0)):
        if len(centres) == n_clusters:
            break
        if all(np.hypot(*(xy[i] - xy[j])) > 600 for j in centres):
            centres.append(int(i))
    labels = []
    for c_no, c in enumerate(centres):
        kind = kinds[c_no % len(kinds)]
        labels.append(kind)
        extra = strength * median_total * rng.uniform(0.8, 1.2)
        t = np.arange(months, dtype=float)
        if kind == "persistent":
            prof = np.ones(months)
        elif kind == "intensifying":
            prof = t + 0.5
        elif kind == "new":
            prof = (t >= months - 3).astype(float)
        elif kind == "diminishing":
            prof = np.clip(months - 3 - t, 0, None)
        else:
            raise ValueError(kind)
        prof = prof / prof.sum()
        d = np.hypot(*(xy - xy[c]).T)
        near = [j for j in np.argsort(d)[1:4] if d[j] <= 1000]  # spill only to close grids
        for grid, share in [(c, 1.0 - 0.1 * len(near))] + [(j, 0.1) for j in near]:
            counts[grid] += rng.poisson(extra * share * prof)
    return SynthCity(xy=xy, area_km2=area, households=hh, counts=counts,
                     centres=np.asarray(centres), kinds=labels)


def far_share(hot: np.ndarray, city: SynthCity, km: float = 1.5) -> float:
    """Share of hot grids more than ``km`` from every planted centre (0 when none is hot)."""
    idx = np.flatnonzero(hot)
    if len(idx) == 0:
        return 0.0
    d = np.hypot(
        city.xy[idx, None, 0] - city.xy[None, city.centres, 0],
        city.xy[idx, None, 1] - city.xy[None, city.centres, 1],
    ).min(axis=1)
    return float((d > km * 1000).mean())
