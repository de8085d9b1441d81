"""The odds that a backtest's winner is a fluke: PBO by CSCV, and the deflated Sharpe ratio.

Both are pure functions of numbers (no files, no models), so a plan's report passes the
daily P&L of its models and a search can pass its trials: any number of columns.

**Probability of backtest overfitting** (Bailey, Borwein, López de Prado, Zhu, "The
probability of backtest overfitting", 2014), by combinatorially symmetric
cross-validation (CSCV). `pbo(M, blocks=S)` takes a T x N performance matrix M (rows:
periods in time order, e.g. the trading days of the test split; columns: the N
strategies tried) and:

1. cuts the rows into S contiguous blocks (S even; `np.array_split`, so the sizes differ
   by at most one row when S does not divide T);
2. for each of the C(S, S/2) ways to pick S/2 blocks as in-sample (IS; the other S/2
   are out-of-sample, OOS, rows kept in time order), finds the IS-best strategy n* by
   Sharpe ratio (mean / std, ddof 1, per period; the first column wins a tie);
3. ranks n*'s OOS Sharpe among the N OOS Sharpes (1 = worst, ties averaged), takes its
   relative rank w = rank / (N + 1) and its logit lambda = ln(w / (1 - w));
4. PBO = the share of splits with lambda <= 0: the IS winner did no better than the
   median out of sample.

A Sharpe ratio of a column with no variation in the rows taken is 0 when its mean is 0
(a strategy that did not trade), +-inf otherwise. Too few rows (fewer than S, or halves
under 2 rows), fewer than 2 strategies, or fewer than 2 whose returns vary at all give
`available=False` with the reason, not an error.

**Deflated Sharpe ratio** (Bailey & López de Prado, "The deflated Sharpe ratio", 2014):
the probabilistic Sharpe ratio of a return series against the Sharpe ratio the best of
N unskilled trials would reach by luck,

    SR0 = sqrt(V) * ((1 - g) * Z(1 - 1/N) + g * Z(1 - 1/(N e)))      (0 when N = 1)
    DSR = Phi((SR - SR0) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2))

with SR the series' per-period Sharpe ratio (mean / std, ddof 1), V the variance of
the N trials' per-period Sharpe ratios, g the Euler-Mascheroni constant, Z the standard
normal inverse CDF, Phi its CDF, T the number of observations, skew and kurt (not
excess: 3 for a normal) the series' sample moments. DSR is a probability that the true
Sharpe ratio is above SR0; more trials, negative skew or fat tails lower it. The
annualized figures multiply the per-period ones by sqrt(periods per year) (252 days).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

EULER_GAMMA = 0.5772156649015329  # the Euler-Mascheroni constant
PERIODS_PER_YEAR = 252
DEFAULT_BLOCKS = 16  # the paper's S: C(16, 8) = 12870 splits
MAX_BLOCKS = 20  # C(20, 10) = 184756 splits
_CHUNK = 4096  # splits evaluated at once


@dataclass(frozen=True)
class PBOResult:
    """PBO of a T x N matrix; `available=False` with `reason` when it cannot be computed."""

    available: bool
    reason: str | None
    rows: int
    strategies: int
    blocks: int
    combinations: int = 0
    pbo: float | None = None
    # per split (itertools.combinations order of the IS blocks): lambda, the IS winner,
    # its IS Sharpe and its OOS Sharpe (per period)
    logits: list[float] = field(default_factory=list)
    winners: list[int] = field(default_factory=list)
    is_sharpe: list[float] = field(default_factory=list)
    oos_sharpe: list[float] = field(default_factory=list)

    def summary(self, bins: int = 20) -> dict[str, Any]:
        """JSON-able, bounded: the figures, how often each strategy won IS, the share of
        splits whose winner lost OOS (OOS Sharpe < 0), and a histogram of lambda."""
        out = {k: v for k, v in asdict(self).items() if not isinstance(v, list)}
        if not self.available:
            return out
        oos = np.asarray(self.oos_sharpe)
        out["winner_counts"] = np.bincount(self.winners, minlength=self.strategies).tolist()
        out["oos_loss_probability"] = float(np.mean(oos < 0))
        out["median_logit"] = float(np.median(self.logits))
        counts, edges = np.histogram(self.logits, bins=bins)
        out["logit_histogram"] = {"counts": counts.tolist(), "edges": edges.tolist()}
        return out


@dataclass(frozen=True)
class DeflatedSharpe:
    """The deflated Sharpe ratio of one return series (see the module docstring)."""

    available: bool
    reason: str | None
    observations: int
    trials: int
    sharpe_variance: float
    sharpe: float | None = None  # per period
    sharpe_annual: float | None = None
    skew: float | None = None
    kurtosis: float | None = None  # not excess: 3 for a normal
    sr0: float | None = None  # the benchmark, per period
    sr0_annual: float | None = None
    psr: float | None = None  # against SR0 = 0 (one trial)
    dsr: float | None = None  # against SR0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- PBO ---------------------------------------------------------------------------


def _matrix(performance: Any) -> np.ndarray:
    m = np.asarray(performance, dtype=np.float64)
    if m.ndim == 1:
        m = m[:, None]
    if m.ndim != 2:
        raise ValueError(f"the performance matrix must be T x N (2-D), got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("the performance matrix has NaN or infinite values; fix: fill them")
    return m


def _unavailable_pbo(m: np.ndarray, blocks: int) -> str | None:
    t, n = m.shape
    if n < 2:
        return f"needs at least 2 strategies, got {n}"
    if int((m.std(axis=0) > 0).sum()) < 2:
        return "fewer than 2 strategies have returns that vary (the others never traded)"
    if t < blocks:
        return f"{t} periods are fewer than the {blocks} blocks"
    if (blocks // 2) * (t // blocks) < 2:
        return f"{t} periods in {blocks} blocks leave halves of under 2 periods"
    return None


def _sharpe(total, total_sq, count, scale):
    """Per-period Sharpe ratios from sums of values and of their squares over `count`
    rows (exact for rows of zeros: a strategy that did not trade; daily P&L has mean <<
    std, so the sums lose nothing that matters). A mean or std under 1e-9 of the
    column's `scale` (its largest |value|) counts as 0 (rounding)."""
    mean = total / count
    var = np.maximum(total_sq - count * mean**2, 0.0) / (count - 1)
    mean = np.where(np.abs(mean) <= 1e-9 * scale, 0.0, mean)
    std = np.sqrt(var)
    flat = std <= 1e-9 * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        sr = np.where(flat, np.sign(mean) * np.inf, mean / np.where(flat, 1.0, std))
    return np.where(flat & (mean == 0), 0.0, sr)


def _oos_rank(oos: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Rank (1 = worst, ties averaged) of column best[i] among row i of `oos`."""
    picked = oos[np.arange(len(oos)), best][:, None]
    below = (oos < picked).sum(axis=1)
    equal = (oos == picked).sum(axis=1)  # includes the winner itself
    return below + (equal + 1) / 2.0


def pbo(performance: Any, blocks: int = DEFAULT_BLOCKS) -> PBOResult:
    """The probability of backtest overfitting of a T x N matrix (module docstring)."""
    if blocks < 2 or blocks % 2 or blocks > MAX_BLOCKS:
        raise ValueError(f"blocks must be even, 2..{MAX_BLOCKS}, got {blocks}")
    m = _matrix(performance)
    t, n = m.shape
    reason = _unavailable_pbo(m, blocks)
    if reason:
        return PBOResult(False, reason, t, n, blocks)
    scale = np.maximum(np.abs(m).max(axis=0), 1e-300)
    parts = np.array_split(m, blocks)
    sums = np.stack([p.sum(axis=0) for p in parts])  # S x N
    sq = np.stack([(p**2).sum(axis=0) for p in parts])
    sizes = np.array([len(p) for p in parts], dtype=np.float64)
    combos = np.array(list(itertools.combinations(range(blocks), blocks // 2)))
    logits, winners, is_sr, oos_sr = [], [], [], []
    for start in range(0, len(combos), _CHUNK):
        chosen = np.zeros((min(_CHUNK, len(combos) - start), blocks))
        rows = np.arange(len(chosen))[:, None]
        chosen[rows, combos[start : start + _CHUNK]] = 1.0
        rest = 1.0 - chosen
        ins = _sharpe(chosen @ sums, chosen @ sq, (chosen @ sizes)[:, None], scale)
        oos = _sharpe(rest @ sums, rest @ sq, (rest @ sizes)[:, None], scale)
        best = ins.argmax(axis=1)
        omega = _oos_rank(oos, best) / (n + 1)
        logits.append(np.log(omega / (1.0 - omega)))
        winners.append(best)
        is_sr.append(ins[np.arange(len(best)), best])
        oos_sr.append(oos[np.arange(len(best)), best])
    lam = np.concatenate(logits)
    return PBOResult(
        True,
        None,
        t,
        n,
        blocks,
        combinations=len(combos),
        pbo=float(np.mean(lam <= 0)),
        logits=lam.tolist(),
        winners=np.concatenate(winners).tolist(),
        is_sharpe=np.concatenate(is_sr).tolist(),
        oos_sharpe=np.concatenate(oos_sr).tolist(),
    )


def blocks_for(periods: int, preferred: int = DEFAULT_BLOCKS) -> int:
    """The most blocks, up to `preferred`, that `periods` rows allow (even, >= 2)."""
    return max(2, min(preferred, periods - periods % 2))


# ---- deflated Sharpe ---------------------------------------------------------------


def expected_max_sharpe(trials: int, sharpe_variance: float) -> float:
    """E[max Sharpe] of `trials` unskilled trials whose Sharpe ratios have variance
    `sharpe_variance` (per period): SR0 of the deflated Sharpe ratio; 0 for one trial."""
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    if not math.isfinite(sharpe_variance) or sharpe_variance < 0:
        raise ValueError(f"the variance of Sharpe must be finite and >= 0, got {sharpe_variance}")
    if trials == 1:
        return 0.0
    z = stats.norm.ppf
    g = EULER_GAMMA
    spread = (1 - g) * z(1 - 1 / trials) + g * z(1 - 1 / (trials * math.e))
    return float(math.sqrt(sharpe_variance) * spread)


def probabilistic_sharpe(
    sharpe: float, benchmark: float, observations: int, skew: float, kurtosis: float
) -> float:
    """P(true Sharpe > benchmark) given a per-period Sharpe ratio estimated from
    `observations` returns with these moments (kurtosis not excess)."""
    spread = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    z = (sharpe - benchmark) * math.sqrt(observations - 1) / math.sqrt(max(spread, 1e-300))
    return float(stats.norm.cdf(z))


def deflated_sharpe(
    returns: Any,
    trials: int,
    sharpe_variance: float,
    periods_per_year: int = PERIODS_PER_YEAR,
) -> DeflatedSharpe:
    """The deflated Sharpe ratio of `returns` (one per period, in time order) picked as
    the best of `trials` whose per-period Sharpe ratios have variance `sharpe_variance`."""
    x = np.asarray(returns, dtype=np.float64).ravel()
    sr0 = expected_max_sharpe(trials, sharpe_variance)
    head = {"observations": len(x), "trials": int(trials), "sharpe_variance": sharpe_variance}
    if not np.isfinite(x).all():
        raise ValueError("the return series has NaN or infinite values; fix: fill them")
    if len(x) < 3:
        return DeflatedSharpe(False, f"needs at least 3 returns, got {len(x)}", **head)
    std = float(x.std(ddof=1))
    if std <= 1e-12 * max(abs(float(x.mean())), 1.0):
        return DeflatedSharpe(False, "the returns do not vary (no trades?)", **head)
    sr = float(x.mean()) / std
    skew = float(stats.skew(x))
    kurt = float(stats.kurtosis(x, fisher=False))
    annual = math.sqrt(periods_per_year)
    return DeflatedSharpe(
        True,
        None,
        **head,
        sharpe=sr,
        sharpe_annual=sr * annual,
        skew=skew,
        kurtosis=kurt,
        sr0=sr0,
        sr0_annual=sr0 * annual,
        psr=probabilistic_sharpe(sr, 0.0, len(x), skew, kurt),
        dsr=probabilistic_sharpe(sr, sr0, len(x), skew, kurt),
    )


def sharpe_ratios(performance: Any) -> np.ndarray:
    """Per-period Sharpe ratio of each column (NaN where a column does not vary)."""
    m = _matrix(performance)
    std = m.std(axis=0, ddof=1) if len(m) > 1 else np.full(m.shape[1], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std > 0, m.mean(axis=0) / std, np.nan)


def deflated_sharpes(performance: Any, trials: int | None = None) -> list[DeflatedSharpe]:
    """The deflated Sharpe ratio of every column of a T x N matrix, each picked among the
    N columns (or `trials`, when more were tried than are given): V is the variance
    (ddof 1) of the columns' Sharpe ratios that are defined, 0 with fewer than 2."""
    m = _matrix(performance)
    srs = sharpe_ratios(m)
    defined = srs[np.isfinite(srs)]
    variance = float(defined.var(ddof=1)) if len(defined) > 1 else 0.0
    n = trials if trials is not None else m.shape[1]
    return [deflated_sharpe(m[:, j], n, variance) for j in range(m.shape[1])]
