"""Fixed-effect terms with Wald z tests and 95 % CIs, one type for the mixed model and its ordinal check."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class WaldTerm:
    term: str
    estimate: float
    std_error: float
    z: float
    pvalue: float  # two-sided, normal reference distribution
    ci_low: float  # 95 %
    ci_high: float


def wald_terms(names: Sequence[str], estimates: np.ndarray, std_errors: np.ndarray) -> list[WaldTerm]:
    """One :class:`WaldTerm` per name: z = estimate / SE, two-sided normal p, estimate -/+ 1.96 SE."""
    q = sps.norm.ppf(0.975)
    return [
        WaldTerm(
            name,
            float(b),
            float(s),
            float(b / s),
            float(2 * sps.norm.sf(abs(b / s))),
            float(b - q * s),
            float(b + q * s),
        )
        for name, b, s in zip(names, estimates, std_errors, strict=True)
    ]
