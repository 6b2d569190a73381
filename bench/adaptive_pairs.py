"""Adaptive pairs against uniform assignment by repeated simulation (survey.analysis.adaptive_simulation):
per scenario (true Bradley-Terry log-strengths), ``--studies`` collections of each design, each
``--participants`` participants x 4 pairwise judgements on 8 references (one grid per condition),
planned at each participant's arrival; answers drawn from Bradley-Terry (no ties).

* judgements to reach the precision: the first point where the mean standard error of the centred
  log-strengths (Firth's fit, the one the choices use; Fisher information at the estimate) is at
  most ``precision``; mean over studies
  with its Monte Carlo standard error, and the ratio adaptive / uniform;
* mean standard error after all participants (Firth fit);
* for both fits of the final answers, the maximum-likelihood one and Firth's bias-reduced one (the one
  an adaptive study reports, survey.participants.bradley_terry_firth): Wald 95 % coverage of the true
  centred log-strengths (each condition of each study one interval; Wilson interval of the rate),
  the coverage of the least and the most extreme condition alone, and the bias: mean estimate minus
  truth per condition with its Monte Carlo standard error;
* with ``--boot-studies N``: on the first N studies, coverage of the participant-bootstrap percentile
  interval of the maximum-likelihood fit, the one a uniform study's report uses (``--boot``
  resamples; :func:`survey.analysis.bradley_terry.bradley_terry`).

One process; prints one JSON object last.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import emit
from survey.analysis.adaptive_simulation import judgements_to_reach, simulate_collection
from survey.analysis.bradley_terry import bradley_terry
from survey.analysis.power import wilson

SCENARIOS = {
    "four_conditions": (np.array([0.0, 0.5, 1.0, 2.0]), 0.20),
    "eight_conditions": (np.linspace(0.0, 3.0, 8), 0.30),
}


def _boot_covered(per_participant: np.ndarray, truth: np.ndarray, n_boot: int, rng) -> np.ndarray:
    people = len(per_participant)
    boots = np.array([bradley_terry(per_participant[rng.integers(0, people, people)].sum(0)) for _ in range(n_boot)])
    lo, hi = np.quantile(boots, [0.025, 0.975], axis=0)
    return (lo <= truth) & (truth <= hi)


def _rate(hits: list[bool]) -> dict:
    k, n = int(np.sum(hits)), len(hits)
    lo, hi = wilson(k, n)
    return {"rate": k / n, "ci_low": lo, "ci_high": hi, "intervals": n}


def _fit_summary(estimates: list[np.ndarray], std_errors: list[np.ndarray], truth: np.ndarray) -> dict:
    est, se = np.array(estimates), np.array(std_errors)
    covered = np.abs(est - truth) <= 1.959964 * se
    err = est - truth
    ends = [int(np.argmin(truth)), int(np.argmax(truth))]
    return {
        "wald_coverage": _rate(covered.ravel().tolist()),
        "wald_coverage_extremes": _rate(covered[:, ends].ravel().tolist()),
        "bias": {
            "mean": err.mean(axis=0).round(4).tolist(),
            "mcse": (err.std(axis=0, ddof=1) / np.sqrt(len(err))).round(4).tolist(),
        },
        "rmse": float(np.sqrt((err**2).mean())),
    }


def run_design(strengths, precision, adaptive: bool, args) -> dict:
    truth = strengths - strengths.mean()
    reach, final_se, boot_covered = [], [], []
    fits: dict[str, tuple[list, list]] = {"mle": ([], []), "firth": ([], [])}
    for r in range(args.studies):
        rng = np.random.default_rng([args.seed, r, int(adaptive)])
        c = simulate_collection(strengths, participants=args.participants, adaptive=adaptive, rng=rng, floor=args.floor)
        reach.append(judgements_to_reach(c, precision))
        final_se.append(float(c.firth.std_error.mean()))
        for name, (est, se) in (("mle", (c.estimate, c.std_error)), ("firth", (c.firth.strength, c.firth.std_error))):
            fits[name][0].append(est)
            fits[name][1].append(se)
        if r < args.boot_studies:
            boot_covered.extend(_boot_covered(c.per_participant, truth, args.boot, rng))
    reached = [x for x in reach if x is not None]
    return {
        "judgements_to_reach": {
            "mean": float(np.mean(reached)) if reached else None,
            "mcse": float(np.std(reached, ddof=1) / np.sqrt(len(reached))) if len(reached) > 1 else None,
            "median": float(np.median(reached)) if reached else None,
            "not_reached": len(reach) - len(reached),
        },
        "final_mean_se": float(np.mean(final_se)),
        **{name: _fit_summary(*fits[name], truth) for name in fits},
        "bootstrap_coverage": _rate(boot_covered) if boot_covered else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=200)
    ap.add_argument("--participants", type=int, default=80)
    ap.add_argument("--floor", type=int, default=4)
    ap.add_argument("--boot-studies", type=int, default=0)
    ap.add_argument("--boot", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenario", choices=list(SCENARIOS), action="append")
    args = ap.parse_args()
    out: dict = {"studies": args.studies, "participants": args.participants, "floor": args.floor, "scenarios": {}}
    for name in args.scenario or list(SCENARIOS):
        strengths, precision = SCENARIOS[name]
        t = time.perf_counter()
        res = {"strengths": strengths.tolist(), "precision": precision}
        for design in ("uniform", "adaptive"):
            res[design] = run_design(strengths, precision, design == "adaptive", args)
        u, a = res["uniform"]["judgements_to_reach"]["mean"], res["adaptive"]["judgements_to_reach"]["mean"]
        res["ratio_adaptive_to_uniform"] = a / u if a and u else None
        res["seconds"] = round(time.perf_counter() - t, 1)
        out["scenarios"][name] = res
        print(name, res["ratio_adaptive_to_uniform"], res["seconds"], file=sys.stderr)
    emit(out)


if __name__ == "__main__":
    main()
