"""Integer apportionment of a headcount budget: divisor methods with minimums.

A district shares a whole number of grid workers among its streets (Art. 37) and a street among
its communities (Art. 42). The shares must be integers, add up exactly to the budget, honour a
minimum per unit, and be **house-monotone**: raising the budget never takes a person away from
any unit. Divisor methods have that property; the largest-remainder (Hamilton) method does not —
it suffers the *Alabama paradox* (see :func:`largest_remainder` and ``docs/staffing.md``).

The divisor methods are run here as *sequential allocation* with a priority queue: every unit
first receives its minimum, then each further seat goes to the unit with the highest priority
``weight / d(seats)``, where ``d`` is the method's divisor function

* Webster / Sainte-Laguë (default): ``d(s) = s + 1/2`` — unbiased between large and small units;
* Huntington–Hill (equal proportions, used for the US House): ``d(s) = sqrt(s (s + 1))``.

Because the allocation for budget ``B + 1`` is the allocation for ``B`` plus one seat, the
result is house-monotone by construction. Starting from the minimums gives exactly the divisor
method with lower bounds (Balinski & Young, *Fair Representation*). Ties are broken by the
larger weight, then by position, the same way at every budget, so the sequence is unique and
the results are reproducible.
"""
from __future__ import annotations

import heapq
import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "METHODS",
    "BudgetTooSmall",
    "apportion",
    "largest_remainder",
    "normalize_method",
    "seat_order",
]

#: Divisor functions by method name; ``d(s)`` is the divisor for a unit that holds ``s`` seats.
METHODS = {
    "webster": lambda s: s + 0.5,
    "huntington_hill": lambda s: math.sqrt(s * (s + 1.0)),
}

_ALIASES = {
    "webster": "webster",
    "sainte_lague": "webster",
    "sainte-lague": "webster",
    "sainte-laguë": "webster",
    "huntington_hill": "huntington_hill",
    "huntington-hill": "huntington_hill",
    "hill": "huntington_hill",
    "equal_proportions": "huntington_hill",
}


class BudgetTooSmall(ValueError):
    """The budget cannot cover the minimum headcount of every unit."""


def normalize_method(method: str) -> str:
    """Return the canonical method name (``"webster"`` or ``"huntington_hill"``).

    Raises
    ------
    ValueError
        For an unknown name; the message lists the accepted ones.

    Examples
    --------
    >>> normalize_method("Sainte-Lague")
    'webster'
    """
    key = str(method).strip().lower().replace(" ", "_")
    if key not in _ALIASES:
        raise ValueError(
            f"未知的分配方法 {method!r}；可选 {sorted(set(_ALIASES))}。 / "
            f"unknown apportionment method {method!r}; choose one of {sorted(set(_ALIASES))}."
        )
    return _ALIASES[key]


def _validate(
    weights: ArrayLike, minimum: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1:
        raise ValueError(f"weights must be one-dimensional; got shape {w.shape}.")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(
            "权重必须为非负有限数。 / weights must be finite and non-negative; "
            f"got {w[~np.isfinite(w) | (w < 0)][:5].tolist()}."
        )
    m = np.broadcast_to(np.asarray(minimum), w.shape)
    if np.any(m < 0) or np.any(np.asarray(m) != np.floor(m)):
        raise ValueError("每个单位的最低人数必须是非负整数。 / minimum must be non-negative integers.")
    return w, m.astype(np.int64)


def seat_order(
    weights: ArrayLike, seats: int, *, minimum: ArrayLike = 0, method: str = "webster"
) -> NDArray[np.int64]:
    """Return the unit that receives each successive seat, for the first ``seats`` seats.

    The allocation for any budget ``B <= seats`` is ``np.bincount(order[:B], minlength=n)``,
    so one call answers every smaller budget at once (and shows why the method is
    house-monotone). Seats below a unit's minimum come first, one round at a time (every unit
    gets its 1st seat before any gets its 2nd; larger weight first within a round); then seats
    go by the divisor priority ``weight / d(seats held)``.

    Parameters
    ----------
    weights
        Non-negative weight per unit (population, workload, a score …).
    seats
        Number of seats to hand out.
    minimum
        Minimum seats per unit, a scalar or one per unit.
    method
        ``"webster"`` (default) or ``"huntington_hill"`` (aliases accepted).

    Returns
    -------
    numpy.ndarray
        Unit positions, length ``seats``.

    Raises
    ------
    ValueError
        On negative or non-finite weights, or when seats beyond the minimums are asked for and
        every weight is zero.

    Examples
    --------
    >>> seat_order([53, 24, 23], 4).tolist()
    [0, 1, 2, 0]
    """
    w, m = _validate(weights, minimum)
    d = METHODS[normalize_method(method)]
    seats = int(seats)
    if seats < 0:
        raise ValueError(f"seats must be >= 0; got {seats}.")
    if seats > int(m.sum()) and not np.any(w > 0):
        raise ValueError(
            "所有权重均为零，超出最低人数的名额无法分配。 / every weight is zero, so seats beyond "
            "the minimums cannot be apportioned; give at least one unit a positive weight."
        )

    def key(i: int, s: int) -> tuple:
        if s < m[i]:  # still below its minimum: round by round, heavier first
            return (0, s, -w[i], i)
        div = d(s)
        priority = w[i] / div if div > 0 else (math.inf if w[i] > 0 else 0.0)
        return (1, -priority, -w[i], i)

    held = [0] * len(w)
    heap = [key(i, 0) for i in range(len(w))]
    heapq.heapify(heap)
    order = np.empty(seats, dtype=np.int64)
    for k in range(seats):
        i = heapq.heappop(heap)[-1]
        order[k] = i
        held[i] += 1
        heapq.heappush(heap, key(i, held[i]))
    return order


def apportion(
    weights: ArrayLike,
    budget: int,
    *,
    minimum: ArrayLike = 0,
    method: str = "webster",
    strict: bool = True,
) -> NDArray[np.int64]:
    """Apportion an integer ``budget`` among units in proportion to ``weights``.

    Parameters
    ----------
    weights
        Non-negative weight per unit.
    budget
        Total seats; the result sums to exactly this.
    minimum
        Minimum seats per unit (scalar or per unit).
    method
        ``"webster"`` (Sainte-Laguë, default) or ``"huntington_hill"``.
    strict
        If true (default) a budget below the sum of the minimums raises
        :class:`BudgetTooSmall`. If false, the minimums are filled round by round as far as the
        budget goes (still house-monotone); used for communities inside a small street.

    Returns
    -------
    numpy.ndarray
        Integer seats per unit.

    Raises
    ------
    BudgetTooSmall
        ``strict`` and ``budget < sum(minimum)``; the message (Chinese and English) gives the
        smallest feasible budget.

    Examples
    --------
    Webster on populations 53, 24, 23 with 10 seats (the divisor 9.62 rounds 5.51, 2.49, 2.39):

    >>> apportion([53, 24, 23], 10).tolist()
    [6, 2, 2]
    >>> apportion([53, 24, 23], 10, minimum=3).tolist()
    [4, 3, 3]
    """
    w, m = _validate(weights, minimum)
    budget = int(budget)
    need = int(m.sum())
    if budget < 0:
        raise ValueError(f"budget must be >= 0; got {budget}.")
    if strict and budget < need:
        per = f"{int(m[0])} × {len(m)}" if len(m) and np.all(m == m[0]) else "Σ"
        raise BudgetTooSmall(
            f"编制预算 {budget} 人少于最低配置 {per} = {need} 人；请把预算提高到至少 {need}，"
            f"或降低每个单位的最低人数。 / The budget of {budget} is below the minimum "
            f"{per} = {need}; raise the budget to at least {need} or lower the minimum per unit."
        )
    if len(w) == 0:
        if budget:
            raise ValueError("no units to apportion a positive budget among.")
        return np.zeros(0, dtype=np.int64)
    return np.bincount(seat_order(w, budget, minimum=m, method=method), minlength=len(w)).astype(
        np.int64
    )


def largest_remainder(weights: ArrayLike, budget: int) -> NDArray[np.int64]:
    """Hamilton's largest-remainder method — for comparison only, it is not house-monotone.

    Each unit gets the floor of its exact quota ``budget * w / sum(w)``; the seats left over go
    to the largest fractional remainders. Raising the budget can *take* a seat from a unit (the
    Alabama paradox of the 1880 US census), which is why :func:`apportion` does not use it.

    Examples
    --------
    >>> largest_remainder([6, 6, 2], 10).tolist(), largest_remainder([6, 6, 2], 11).tolist()
    ([4, 4, 2], [5, 5, 1])
    """
    w = np.asarray(weights, dtype=float)
    quota = budget * w / w.sum()
    seats = np.floor(quota).astype(np.int64)
    left = int(budget - seats.sum())
    rest = quota - seats
    order = np.lexsort((np.arange(len(w)), -rest))  # largest remainder first, then position
    seats[order[:left]] += 1
    return seats
