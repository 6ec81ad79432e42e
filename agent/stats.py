"""Significance tests the gate and the canary use (``training.gate``, ``agent.canary``). Pure
functions over numbers, seeded.

* ``paired_test``: differences between two models on the same items. The p-values come from the
  sign-flip (paired randomisation) test: under "no difference" each item's difference is as
  likely to have the other sign, so the observed mean is compared with the means of the
  differences with random signs (every sign pattern when there are at most ``EXACT_MAX`` items,
  else ``resamples`` seeded draws). The confidence interval is the paired bootstrap's percentile
  interval of the mean difference. Both one-sided p-values are reported: the gate asks "better?"
  of the whole set and "worse?" of each slice.
* ``two_proportions``: the two-sided z-test of two rates (pooled standard error), with the
  normal-approximation interval of their difference.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

EXACT_MAX = 12  # up to 2**12 sign patterns are enumerated rather than sampled


@dataclass(frozen=True)
class PairedResult:
    n: int
    mean: float  # mean difference (candidate - production, in the metric's better direction)
    ci_low: float
    ci_high: float
    p_better: float  # one-sided: the first is better
    p_worse: float  # one-sided: the first is worse
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}

    def interval(self) -> str:
        return f"{self.confidence:.0%} CI [{self.ci_low:+.4f}, {self.ci_high:+.4f}]"


def paired_test(
    diffs: Sequence[float], *, resamples: int = 2000, seed: int = 0, confidence: float = 0.95
) -> PairedResult:
    """Sign-flip p-values and a bootstrap interval for the mean of ``diffs`` (see the module)."""
    import numpy as np

    d = np.asarray(diffs, dtype=float)
    n = len(d)
    if n == 0:
        return PairedResult(0, 0.0, 0.0, 0.0, 1.0, 1.0, confidence)
    observed = float(d.mean())
    rng = np.random.default_rng(seed)
    if n <= EXACT_MAX:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        flipped = (signs * d).mean(axis=1)
        p_better = float(np.mean(flipped >= observed - 1e-12))
        p_worse = float(np.mean(flipped <= observed + 1e-12))
    else:
        signs = rng.choice((1.0, -1.0), size=(resamples, n))
        flipped = (signs * d).mean(axis=1)
        # The observed pattern counts as one draw, so a p-value is never 0.
        p_better = float((1 + np.sum(flipped >= observed - 1e-12)) / (resamples + 1))
        p_worse = float((1 + np.sum(flipped <= observed + 1e-12)) / (resamples + 1))
    boot = d[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = (float(x) for x in np.quantile(boot, [tail, 1 - tail]))
    return PairedResult(n, observed, low, high, min(p_better, 1.0), min(p_worse, 1.0), confidence)


@dataclass(frozen=True)
class ProportionsResult:
    successes: tuple[int, int]
    trials: tuple[int, int]
    rates: tuple[float | None, float | None]
    difference: float | None  # second rate - first rate
    ci_low: float | None
    ci_high: float | None
    p_value: float | None  # two-sided; None when either arm has no trials or nothing varies

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def two_proportions(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int, confidence: float = 0.95
) -> ProportionsResult:
    """Two-sided two-proportion z-test of rate b against rate a (see the module docstring)."""
    rate_a = successes_a / trials_a if trials_a else None
    rate_b = successes_b / trials_b if trials_b else None
    if rate_a is None or rate_b is None:
        return ProportionsResult(
            (successes_a, successes_b), (trials_a, trials_b), (rate_a, rate_b), None, None, None, None
        )
    diff = rate_b - rate_a
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b))
    p = None if se_pooled == 0 else math.erfc(abs(diff) / se_pooled / math.sqrt(2))
    se = math.sqrt(rate_a * (1 - rate_a) / trials_a + rate_b * (1 - rate_b) / trials_b)
    z = _normal_quantile(1 - (1 - confidence) / 2)
    return ProportionsResult(
        (successes_a, successes_b),
        (trials_a, trials_b),
        (rate_a, rate_b),
        diff,
        diff - z * se,
        diff + z * se,
        p,
    )


def _normal_quantile(q: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(q)
