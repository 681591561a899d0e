"""Divisor-method apportionment: exact sums, minimums, house monotonicity, hand examples."""
from __future__ import annotations

import math

import numpy as np
import pytest

from geo.apportion import (
    METHODS,
    BudgetTooSmall,
    apportion,
    largest_remainder,
    normalize_method,
    seat_order,
)


def satisfies_divisor_criterion(w, seats, minimum, method) -> bool:
    """A divisor λ exists: every extra seat's priority ≥ every withheld seat's priority."""
    d = METHODS[method]

    def prio(wi, s):
        div = d(s)
        return wi / div if div > 0 else math.inf

    withheld = max(prio(wi, s) for wi, s in zip(w, seats))
    given = [prio(wi, s - 1) for wi, s, m in zip(w, seats, minimum) if s > m]
    return not given or min(given) >= withheld - 1e-12


# --- hand-computed examples -------------------------------------------------------------------

def test_webster_hand_example():
    # populations 53, 24, 23, 10 seats. Priorities w/(s+½) in order: 106 (A), 48 (B), 46 (C),
    # 35.3 (A), 21.2 (A), 16 (B), 15.3 (C), 15.1 (A), 11.8 (A), 9.64 (A) | next 9.6 (B).
    assert apportion([53, 24, 23], 10).tolist() == [6, 2, 2]
    assert seat_order([53, 24, 23], 10).tolist() == [0, 1, 2, 0, 0, 1, 2, 0, 0, 0]


def test_webster_hand_example_with_minimum():
    # minimum 3 each uses 9 seats; the 10th goes to the largest 53/3.5 = 15.1 (A).
    assert apportion([53, 24, 23], 10, minimum=3).tolist() == [4, 3, 3]


def test_huntington_hill_hand_example():
    # w/sqrt(s(s+1)): first seats free (∞); then 37.5 (A), 21.6 (A), 17.0 (B), 16.3 (C),
    # 15.3 (A), 11.9 (A), and the 10th seat 24/√6 = 9.80 (B) beats 53/√30 = 9.68 (A).
    assert apportion([53, 24, 23], 10, method="huntington_hill").tolist() == [5, 3, 2]


# --- Alabama paradox -------------------------------------------------------------------------

def test_largest_remainder_shows_alabama_paradox_and_divisor_methods_do_not():
    w = [6, 6, 2]
    hamilton_10, hamilton_11 = largest_remainder(w, 10), largest_remainder(w, 11)
    assert hamilton_10.tolist() == [4, 4, 2] and hamilton_11.tolist() == [5, 5, 1]
    assert hamilton_11[2] < hamilton_10[2]  # the house grew and C lost a seat
    for method in METHODS:
        a10, a11 = apportion(w, 10, method=method), apportion(w, 11, method=method)
        assert a10.sum() == 10 and a11.sum() == 11
        assert (a11 >= a10).all()


def test_largest_remainder_is_not_monotone_somewhere_in_random_cases_but_ours_always_is():
    rng = np.random.default_rng(1)
    hamilton_paradoxes = 0
    for _ in range(30):
        w = rng.lognormal(0, 1, size=rng.integers(3, 12))
        prev_h = prev_w = None
        for b in range(20, 120):
            h, a = largest_remainder(w, b), apportion(w, b)
            if prev_h is not None:
                hamilton_paradoxes += int((h < prev_h).any())
                assert (a >= prev_w).all()
            prev_h, prev_w = h, a
    assert hamilton_paradoxes > 0


# --- properties over budgets 50..500 and random weights --------------------------------------

@pytest.mark.parametrize("method,seeds", [("webster", range(20)), ("huntington_hill", range(10))])
def test_sums_minimums_monotone_and_divisor_criterion(method, seeds):
    for seed in seeds:
        rng = np.random.default_rng(seed)
        n = int(rng.integers(3, 40))
        w = rng.lognormal(0, 1.2, size=n) * rng.integers(1, 1000)
        w[rng.random(n) < 0.1] = 0.0  # some units with no weight at all
        w[0] = max(w[0], 1.0)
        minimum = rng.integers(0, 3, size=n)
        if method == "huntington_hill":
            minimum = np.maximum(minimum, 1)
        prev = None
        for budget in range(50, 501):
            if budget < minimum.sum():
                with pytest.raises(BudgetTooSmall):
                    apportion(w, budget, minimum=minimum, method=method)
                continue
            a = apportion(w, budget, minimum=minimum, method=method)
            assert a.dtype.kind == "i"
            assert a.sum() == budget
            assert (a >= minimum).all()
            assert (a[w == 0] == minimum[w == 0]).all()
            if prev is not None:
                assert (a >= prev).all(), (seed, budget)
            if budget % 50 == 0:
                assert satisfies_divisor_criterion(w, a, minimum, method)
            prev = a


def test_more_weight_never_means_fewer_seats():
    rng = np.random.default_rng(7)
    for _ in range(50):
        w = rng.lognormal(0, 1, size=8)
        base = apportion(w, 60, minimum=2)
        i = int(rng.integers(0, 8))
        w2 = w.copy()
        w2[i] *= 1.0 + rng.random()
        assert apportion(w2, 60, minimum=2)[i] >= base[i]


def test_equal_weights_split_evenly():
    assert apportion([5, 5, 5, 5], 12).tolist() == [3, 3, 3, 3]
    assert apportion([5, 5, 5, 5], 13).sum() == 13


def test_seat_order_prefix_is_every_smaller_budget():
    w = [10.0, 3.0, 7.0, 1.0]
    order = seat_order(w, 40, minimum=1)
    for b in range(4, 41):
        assert np.bincount(order[:b], minlength=4).tolist() == apportion(w, b, minimum=1).tolist()


# --- unhappy paths ------------------------------------------------------------------------------

def test_budget_below_minimums_is_refused_in_chinese_and_english():
    with pytest.raises(BudgetTooSmall, match=r"编制预算 29 人少于最低配置 10 × 3 = 30.*budget of 29"):
        apportion([1, 2, 3], 29, minimum=10)


def test_non_strict_fills_minimums_round_by_round_and_stays_monotone():
    w = [1.0, 5.0, 3.0]
    assert apportion(w, 2, minimum=2, strict=False).tolist() == [0, 1, 1]
    assert apportion(w, 4, minimum=2, strict=False).tolist() == [1, 2, 1]
    prev = np.zeros(3, dtype=int)
    for b in range(30):
        a = apportion(w, b, minimum=2, strict=False)
        assert a.sum() == b and (a >= prev).all()
        prev = a


def test_all_zero_weights_cannot_share_seats_beyond_minimums():
    assert apportion([0, 0], 4, minimum=2).tolist() == [2, 2]
    with pytest.raises(ValueError, match="every weight is zero"):
        apportion([0, 0], 5, minimum=2)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="non-negative"):
        apportion([1, -1], 3)
    with pytest.raises(ValueError, match="unknown apportionment method 'dhondt'"):
        apportion([1, 2], 3, method="dhondt")
    assert normalize_method("Sainte-Lague") == "webster"
    assert normalize_method("equal proportions") == "huntington_hill"
    assert apportion([], 0).tolist() == []
