"""PBO (CSCV) and the deflated Sharpe ratio against worked examples and a slow reference."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats

from factory.evaluation.overfitting import (
    EULER_GAMMA,
    blocks_for,
    deflated_sharpe,
    deflated_sharpes,
    expected_max_sharpe,
    pbo,
    probabilistic_sharpe,
    sharpe_ratios,
)

# --- PBO ------------------------------------------------------------------------------


def _blocks_of_two(means: list[float]) -> np.ndarray:
    """A column whose block b is the two rows (means[b] + 1, means[b] - 1)."""
    return np.concatenate([[m + 1.0, m - 1.0] for m in means])


def test_pbo_worked_example():
    # 4 blocks of 2 rows, 3 strategies: A good early, B good late, C steady.
    # Two blocks with means a, b: rows a+1, a-1, b+1, b-1, mean (a+b)/2 and variance
    # (4 + (a-b)^2) / 3 (ddof 1), so Sharpe = ((a+b)/2) / sqrt((4 + (a-b)^2) / 3):
    #   means (2, 2): 2 / sqrt(4/3) = 1.732;  (1, 1): 1 / sqrt(4/3) = 0.866
    #   means (2, 0) or (0, 2): 1 / sqrt(8/3) = 0.612;  (0, 0): 0
    m = np.column_stack(
        [_blocks_of_two([2, 2, 0, 0]), _blocks_of_two([0, 0, 2, 2]), _blocks_of_two([1] * 4)]
    )
    r = pbo(m, blocks=4)
    assert r.available and r.combinations == math.comb(4, 2) == 6
    # IS {0,1}: A 1.732 wins; OOS {2,3}: A 0, B 1.732, C 0.866 -> A ranks 1 of 3:
    #   w = 1/4, lambda = ln(1/3). IS {2,3}: B wins the same way and ranks 1: ln(1/3).
    # IS {0,2}, {0,3}, {1,2}, {1,3}: A and B 0.612, C 0.866 wins; OOS is the mirror
    #   (A, B 0.612, C 0.866): C ranks 3, w = 3/4, lambda = ln 3.
    assert r.winners == [0, 2, 2, 2, 2, 1]  # combinations order: 01 02 03 12 13 23
    ln3 = math.log(3)
    assert r.logits == pytest.approx([-ln3, ln3, ln3, ln3, ln3, -ln3])
    assert r.is_sharpe == pytest.approx([math.sqrt(3)] + [math.sqrt(3) / 2] * 4 + [math.sqrt(3)])
    assert r.oos_sharpe == pytest.approx([0.0] + [math.sqrt(3) / 2] * 4 + [0.0])
    assert r.pbo == pytest.approx(2 / 6)  # 2 of 6 splits have lambda <= 0
    s = r.summary()
    assert s["winner_counts"] == [1, 1, 4] and s["oos_loss_probability"] == 0.0


def _reference_pbo(m: np.ndarray, blocks: int) -> tuple[float, list[float]]:
    """CSCV written out slowly: every split, np.std, scipy's average ranks."""
    n = m.shape[1]
    parts = np.array_split(np.arange(len(m)), blocks)
    logits = []
    for chosen in itertools.combinations(range(blocks), blocks // 2):
        ins = np.concatenate([parts[b] for b in chosen])
        oos = np.concatenate([parts[b] for b in range(blocks) if b not in chosen])
        sr_in = [m[ins, j].mean() / m[ins, j].std(ddof=1) for j in range(n)]
        sr_out = [m[oos, j].mean() / m[oos, j].std(ddof=1) for j in range(n)]
        best = int(np.argmax(sr_in))
        w = stats.rankdata(sr_out)[best] / (n + 1)
        logits.append(math.log(w / (1 - w)))
    return float(np.mean(np.array(logits) <= 0)), logits


@pytest.mark.parametrize(("rows", "cols", "blocks", "seed"), [(24, 4, 6, 0), (27, 5, 8, 1)])
def test_pbo_matches_the_slow_reference(rows, cols, blocks, seed):
    rng = np.random.default_rng(seed)
    m = rng.normal(0.05, 1.0, size=(rows, cols)) * [1, 10, 100, 0.1, 3][:cols]
    m[:, 0] += np.linspace(-0.5, 0.5, rows)  # a drift so that winners change
    expected, logits = _reference_pbo(m, blocks)
    r = pbo(m, blocks=blocks)  # 27 rows in 8 blocks: sizes 4,4,4,3,3,3,3,3
    assert r.combinations == math.comb(blocks, blocks // 2)
    assert r.logits == pytest.approx(logits)
    assert r.pbo == pytest.approx(expected)


def test_a_column_best_everywhere_has_no_overfitting():
    rng = np.random.default_rng(7)
    m = rng.normal(0.0, 1.0, size=(240, 6))
    m[:, 2] += 1.0  # Sharpe about 1 a day against about 0: best in every split
    r = pbo(m, blocks=8)
    assert r.pbo == 0.0 and set(r.winners) == {2}
    assert r.logits == pytest.approx([math.log(6 / 7 / (1 / 7))] * 70)  # rank 6 of 6


def test_noise_columns_overfit_half_the_time_on_average():
    # 10 unskilled strategies: the IS winner's OOS rank is uniform on 1..10, and
    # lambda <= 0 for ranks 1..5 (w = rank / 11 <= 5/11 < 1/2): PBO 1/2 on average
    pbos = [pbo(np.random.default_rng(s).normal(size=(160, 10)), blocks=8).pbo for s in range(60)]
    assert abs(np.mean(pbos) - 0.5) < 0.08


def test_pbo_is_not_available_rather_than_a_crash():
    r = pbo(np.ones((10, 3)) * np.arange(10)[:, None], blocks=16)
    assert not r.available and r.pbo is None and "10 periods are fewer than the 16" in r.reason
    assert "at least 2 strategies, got 1" in pbo(np.arange(40.0), blocks=4).reason
    no_trades = np.zeros((40, 3))
    no_trades[5, 0] = 1.0
    assert "never traded" in pbo(no_trades, blocks=4).reason
    assert "under 2 periods" in pbo(np.random.default_rng(0).normal(size=(3, 2)), 2).reason
    assert json.loads(json.dumps(r.summary()))["available"] is False
    with pytest.raises(ValueError, match="even"):
        pbo(np.zeros((40, 2)), blocks=5)
    with pytest.raises(ValueError, match="NaN"):
        pbo(np.full((40, 2), np.nan), blocks=4)


def test_a_strategy_that_did_not_trade_ranks_as_sharpe_zero():
    rng = np.random.default_rng(2)
    m = np.column_stack([rng.normal(0.3, 1, 64), rng.normal(-0.3, 1, 64), np.zeros(64)])
    r = pbo(m, blocks=4)
    assert r.available and np.isfinite(r.logits).all()
    assert r.summary()["winner_counts"][2] == 0  # Sharpe 0 never beats a positive one here


def test_blocks_for_a_short_period():
    assert blocks_for(100) == 16 and blocks_for(9) == 8 and blocks_for(3) == 2


def test_the_summary_is_bounded_and_json():
    r = pbo(np.random.default_rng(0).normal(size=(300, 12)))
    s = json.loads(json.dumps(r.summary()))
    assert s["combinations"] == 12870 and len(s["logit_histogram"]["counts"]) == 20
    assert sum(s["logit_histogram"]["counts"]) == 12870 and sum(s["winner_counts"]) == 12870


# --- deflated Sharpe ------------------------------------------------------------------


def test_deflated_sharpe_of_one_trial_by_hand():
    # returns 2, 0, 2, 0: mean 1, std (ddof 1) sqrt(4/3), SR = sqrt(3)/2 = 0.866 a day;
    # deviations +-1: skew 0, kurtosis m4 / m2^2 = 1 / 1 = 1; one trial: SR0 = 0;
    # z = SR * sqrt(T - 1) / sqrt(1 - 0 + (1 - 1)/4 * SR^2) = sqrt(3)/2 * sqrt(3) = 1.5
    d = deflated_sharpe([2.0, 0.0, 2.0, 0.0], trials=1, sharpe_variance=0.0)
    assert d.sharpe == pytest.approx(math.sqrt(3) / 2) and d.sr0 == 0.0
    assert (d.skew, d.kurtosis) == pytest.approx((0.0, 1.0))
    assert d.dsr == pytest.approx(stats.norm.cdf(1.5)) == pytest.approx(0.9331928)
    assert d.psr == d.dsr and d.sharpe_annual == pytest.approx(math.sqrt(3) / 2 * math.sqrt(252))


def test_expected_maximum_sharpe_by_hand():
    # N = 10, V = 0.01: sqrt(V) * ((1 - g) Z(0.9) + g Z(1 - 1/(10 e)))
    #   = 0.1 * (0.4227843 * 1.2815516 + 0.5772157 * 1.7892418) = 0.1574598
    assert expected_max_sharpe(10, 0.01) == pytest.approx(0.1574598, abs=1e-7)
    g = EULER_GAMMA
    assert expected_max_sharpe(10, 0.01) == pytest.approx(
        0.1 * ((1 - g) * stats.norm.ppf(0.9) + g * stats.norm.ppf(1 - 1 / (10 * math.e)))
    )
    assert expected_max_sharpe(1, 0.5) == 0.0 and expected_max_sharpe(50, 0.0) == 0.0
    with pytest.raises(ValueError, match="trials"):
        expected_max_sharpe(0, 0.01)
    with pytest.raises(ValueError, match="variance"):
        expected_max_sharpe(3, -1.0)


def test_negative_skew_lowers_the_deflated_sharpe_by_hand():
    # 0, 0, 0, 4: mean 1, std 2 (ddof 1), SR 0.5; deviations -1, -1, -1, 3: m2 = 3,
    #   m3 = 6, m4 = 21: skew 6 / 3^1.5 = 2/sqrt(3), kurtosis 21 / 9 = 7/3;
    #   1 - skew*SR + (kurt - 1)/4 * SR^2 = 1 - 0.57735 + 0.08333 = 0.50598;
    #   z = 0.5 * sqrt(3) / sqrt(0.50598) = 1.2175
    # 2, 2, 2, -2 (the mirror about the mean): the same SR and kurtosis, skew -2/sqrt(3):
    #   1 + 0.57735 + 0.08333 = 1.66068, z = 0.866 / 1.28868 = 0.6720
    right = deflated_sharpe([0.0, 0.0, 0.0, 4.0], 1, 0.0)
    left = deflated_sharpe([2.0, 2.0, 2.0, -2.0], 1, 0.0)
    assert right.skew == pytest.approx(2 / math.sqrt(3)) and right.kurtosis == pytest.approx(7 / 3)
    assert left.skew == pytest.approx(-2 / math.sqrt(3)) and left.sharpe == right.sharpe == 0.5
    assert right.dsr == pytest.approx(stats.norm.cdf(1.2175), abs=1e-4)
    assert left.dsr == pytest.approx(stats.norm.cdf(0.6720), abs=1e-4)
    assert left.dsr < right.dsr


def _symmetric(sample: np.ndarray, mean: float, std: float) -> np.ndarray:
    """`sample` and its mirror (skew exactly 0), scaled to `mean` and `std` (ddof 1)."""
    x = np.concatenate([sample, -sample])
    return (x - x.mean()) / x.std(ddof=1) * std + mean


def test_fat_tails_lower_the_deflated_sharpe():
    normal = _symmetric(np.random.default_rng(0).normal(size=250), 0.15, 1.0)
    fat = _symmetric(stats.t.rvs(3, size=250, random_state=0), 0.15, 1.0)
    a, b = deflated_sharpe(normal, 5, 0.002), deflated_sharpe(fat, 5, 0.002)
    assert a.sharpe == pytest.approx(b.sharpe) and abs(a.skew) < 1e-9 and abs(b.skew) < 1e-9
    assert b.kurtosis > a.kurtosis + 3
    assert b.sharpe > b.sr0 and b.dsr < a.dsr
    # by the formula: SR 0.5, 100 returns, kurtosis 3 vs 9: the same z up to the spread
    assert probabilistic_sharpe(0.5, 0.1, 100, 0.0, 9.0) < probabilistic_sharpe(
        0.5, 0.1, 100, 0.0, 3.0
    )


def test_more_trials_lower_the_deflated_sharpe():
    x = np.random.default_rng(1).normal(0.12, 1.0, size=500)
    dsrs = [deflated_sharpe(x, n, 0.003).dsr for n in (1, 2, 5, 10, 100, 1000)]
    assert all(a > b for a, b in itertools.pairwise(dsrs))
    assert dsrs[0] == deflated_sharpe(x, 1, 0.003).psr


def test_the_best_of_many_noise_trials_deflates():
    m = np.random.default_rng(3).normal(size=(250, 200))  # 200 unskilled strategies
    best = int(np.argmax(sharpe_ratios(m)))
    d = deflated_sharpes(m)[best]
    assert d.trials == 200 and d.psr > 0.95  # alone it looks significant
    assert d.dsr < 0.5  # against the best of 200 it does not
    assert d.sharpe_variance == pytest.approx(sharpe_ratios(m).var(ddof=1))


def test_deflated_sharpe_not_available():
    assert "no trades" in deflated_sharpe(np.zeros(30), 3, 0.01).reason
    assert "at least 3 returns" in deflated_sharpe([1.0, 2.0], 3, 0.01).reason
    d = deflated_sharpe(np.zeros(30), 3, 0.01)
    assert not d.available and d.dsr is None and json.loads(json.dumps(d.to_dict()))
    with pytest.raises(ValueError, match="NaN"):
        deflated_sharpe([1.0, np.nan, 2.0], 3, 0.01)
