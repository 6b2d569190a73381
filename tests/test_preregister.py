"""`lookalike preregister` (survey.analysis.preregister, survey.cli.preregister): the sheet's sections from the
study configuration, its boundary table against the group-sequential module, and the command on the demo
study after a simulated pilot."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from survey.analysis.costs import Timing, size_costs
from survey.analysis.exclusions import DEFAULT_RULES, ExclusionRules
from survey.analysis.group_sequential import efficacy_bounds, inflation_factor
from survey.analysis.preregister import PowerTable, StudyFacts, fingerprint, preregistration
from survey.study.config import StudyConfig
from survey.study.stopping import PrimaryComparison, StoppingRule

FACTS = StudyFacts(("efficientnet/none", "efficientnet/u2netp", "ssim/none", "ssim/u2netp"), 12, 4)
POWER = PowerTable(
    "rating", ("Friedman test", "the pair's Wilcoxon test"), ("efficientnet/u2netp", "ssim/none"),
    "effects {...}, 10 simulated studies per size", (10, 20),
    (((0.4, 0.17, 0.69), (0.9, 0.6, 0.98)), ((0.2, 0.06, 0.51), (0.8, 0.49, 0.94))), (20, 20), 0.05, 0.8,
)  # fmt: skip


def _config(**kw) -> StudyConfig:
    return StudyConfig(
        name="demo",
        catalog="/x/manifest.csv",
        protocols=("rating", "swipe"),
        primary=PrimaryComparison("rating", "efficientnet/u2netp", "ssim/none"),
        stopping=StoppingRule("group-sequential", 0.05, (20, 40, 60), "obrien-fleming", futility_z=0.5),
        **kw,
    )


def test_sheet_sections_and_boundary_table():
    config = _config()
    sheet = preregistration(config, FACTS, POWER, DEFAULT_RULES, generated="2026-12-07 08:00 UTC")
    heads = re.findall(r"^## (.+)$", sheet, flags=re.M)
    assert heads == [
        "1. Design", "2. Hypotheses", "3. Analyses", "4. Exclusions", "5. Sample size", "6. Stopping rule",
        "7. Deviations",
    ]  # fmt: skip
    assert f"SHA-256 `{fingerprint(config)}`" in sheet
    assert "condition `efficientnet/u2netp` differs from condition `ssim/none` on the `rating` protocol" in sheet
    assert "| 20 | 0.80 [0.49, 0.94] |" not in sheet and "| 20 | 0.90 [0.60, 0.98] | 0.80 [0.49, 0.94] |" in sheet
    assert "from **20 participants**" in sheet and "swipe" in sheet.split("## 3. Analyses")[1]
    bounds = efficacy_bounds([1 / 3, 2 / 3, 1], 0.05, "obrien-fleming")
    for k, (n, c) in enumerate(zip((20, 40, 60), bounds, strict=True)):
        row = f"| {k + 1} | {n} | {(k + 1) / 3:.3f} |"
        line = next(line for line in sheet.splitlines() if line.startswith(row))
        assert f"| {c:.3f} | {2 * stats.norm.sf(c):.5f} |" in line
    factor = inflation_factor([1 / 3, 2 / 3, 1], 0.05, "obrien-fleming", 0.8)
    assert f"equal power (80%): {factor:.3f}" in sheet
    assert "Futility (non-binding): at an interim look with |z| < 0.5" in sheet
    assert "1. more than 0 failed attention check(s)" in sheet
    assert "2. answers faster than a minimum: no rule (min_response_ms = 0)" in sheet
    timed = dataclasses.replace(config, min_response_ms=1500)
    assert "2. answers faster than 1500 ms are flagged, not excluded" in preregistration(
        timed, FACTS, POWER, DEFAULT_RULES, generated="now"
    )
    strict = preregistration(timed, FACTS, None, ExclusionRules(too_fast_max=2), generated="now")
    assert "2. more than 2 answers faster than 1500 ms" in strict and "No power run was given." in strict
    # another rule is another fingerprint; no rule and no comparison say so
    other = _config(seed=9)
    assert fingerprint(other) != fingerprint(config)
    bare = dataclasses.replace(config, primary=None, stopping=None)
    text = preregistration(bare, FACTS, POWER, DEFAULT_RULES, generated="now")
    assert "No primary comparison is declared" in text and "analysed once" in text


def test_anytime_rule_in_the_sheet():
    config = _config().__class__(
        name="a", catalog="/x/m.csv", primary=PrimaryComparison("rating", "ssim/u2netp", "ssim/none"),
        stopping=StoppingRule("anytime", 0.05, planned_participants=80),
    )  # fmt: skip
    sheet = preregistration(config, FACTS, None, DEFAULT_RULES, generated="now")
    assert "checked from 10 participants on, up to 80" in sheet and "| 80 |" in sheet


@pytest.mark.slow  # builds the demo study with its models (on the run's small catalog)
def test_preregister_on_the_demo_study_after_a_simulated_pilot(tmp_path, feature_cache):
    db = tmp_path / "demo.db"
    env = {**os.environ, "LOOKALIKE_HOME": str(feature_cache.parent), "LOOKALIKE_OFFLINE": "1"}
    env.pop("LOOKALIKE_DB", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "survey.cli", *args]
        return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)

    demo = run("demo", "--no-serve", "--quiet", "--db", str(db), "--seed", "3", "--per-category", "8")
    assert demo.returncode == 0, demo.stderr
    sim = run("simulate", "--db", str(db), "--participants", "15", "--effects", "efficientnet/u2netp=1.0")
    assert sim.returncode == 0, sim.stderr
    status = run("study", "status", "--db", str(db))
    assert "Primary comparison: efficientnet/u2netp - ssim/none" in status.stdout
    assert "next look at 20" in status.stdout
    out = tmp_path / "prereg.md"
    args = ["--db", str(db), "--effects", "efficientnet/u2netp=1.0", "--participants", "10,20", "--reps", "8"]
    args += ["--pay-per-hour", "12"]  # minutes per participant: the median of the 15 simulated ones
    done = run("preregister", *args, "--out", str(out))
    assert done.returncode == 0, done.stderr
    sheet = out.read_text()
    assert sheet.startswith("# Pre-registration: demo")
    assert "looks at 20, 40, 60 analysed participants" in sheet
    rows = [line for line in sheet.splitlines() if re.match(r"\| (10|20) \| \d\.\d\d \[", line)]
    assert len(rows) == 2
    powers = [float(r.split("|")[3].split()[0]) for r in rows]
    assert powers[1] >= powers[0] - 0.25 and np.all(np.array(powers) <= 1)
    assert "| participant hours | cost | days of collection |" in sheet
    assert "(median of 15 completed participants)" in sheet
    both = run("preregister", *args, "--from-pilot")
    assert both.returncode == 2 and "--effects or --from-pilot, not both" in both.stderr


def test_every_table_row_has_as_many_cells_as_its_header():
    """A '|' inside a cell (e.g. 'boundary |z|') is escaped, so Markdown keeps the columns."""
    sheet = preregistration(_config(), FACTS, POWER, DEFAULT_RULES, generated="now")
    tables = re.findall(r"((?:^\|.*\|\n)+)", sheet, flags=re.M)
    assert len(tables) == 2
    for table in tables:
        widths = {len(re.split(r"(?<!\\)\|", line)) for line in table.strip().splitlines()}
        assert len(widths) == 1, table


def test_costs_of_each_size_and_of_the_rules_maximum():
    """With timings and pay, each size's participant hours, cost and days, recomputed by hand here."""
    timing = Timing(12.0, "median of 15 completed participants", 15)
    costs = size_costs([10, 20, 60], timing, pay_per_hour=9.0, arrivals_per_hour=2.0)
    power = dataclasses.replace(POWER, costs=tuple(costs), timing=timing)
    sheet = preregistration(_config(), FACTS, power, DEFAULT_RULES, generated="now")
    for n in (10, 20):
        hours = n * 12 / 60
        row = next(line for line in sheet.splitlines() if line.startswith(f"| {n} | "))
        assert row.endswith(f"| {hours:.1f} | {hours * 9:,.2f} | {n / 2 / 24:.1f} |")
    assert "from **20 participants** (cost 36.00)" in sheet
    assert "12.0 minutes per participant (median of 15 completed participants)" in sheet
    assert "At most 60 analysed participants cost 108.00." in sheet


def test_an_adaptive_pairwise_study_registers_firths_fit_with_wald_intervals():
    def sheet(**kw) -> str:
        config = dataclasses.replace(_config(), protocols=("rating", "pairwise"), **kw)
        text = preregistration(config, FACTS, POWER, DEFAULT_RULES, generated="x")
        return text.split("- **`pairwise`**:")[1].split("- Every interval")[0]

    assert "participant-clustered bootstrap intervals" in sheet()
    pairwise = sheet(pairwise_assignment="adaptive", pairwise_adaptive_floor=3)
    assert "adaptive assignment (floor 3)" in pairwise and "Firth's bias-reduced Bradley-Terry" in pairwise
    assert "95% Wald intervals" in pairwise and "bootstrap" not in pairwise
