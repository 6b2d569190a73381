"""Analysing a built study: ``report``, ``export``, ``simulate`` and ``power``.

Each needs a built study, so a ``--db`` file that does not exist is refused, never created.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from survey.cli.common import Subparsers, add_db_flag, open_db
from survey.settings import Settings

if TYPE_CHECKING:
    from survey.analysis.power import PowerResult

DEFAULT_REPORT = "report.html"


def register(sub: Subparsers) -> None:
    add_report(sub)
    add_export(sub)
    add_simulate(sub)
    add_power(sub)


# --- report -------------------------------------------------------------------------------


def add_report(sub: Subparsers) -> None:
    r = sub.add_parser("report", help="write an HTML report of the ratings")
    add_db_flag(r)
    r.add_argument("--study")
    r.add_argument("--out", help=f"the HTML report (default: {DEFAULT_REPORT}; with --json: none unless given)")
    r.add_argument("--n-boot", type=int, default=2000)
    r.add_argument("--json", action="store_true", help="print the statistics as one JSON object on stdout")
    r.add_argument("--max-failed-checks", type=int, default=0, help="exclude participants failing more checks")
    r.add_argument("--keep-failed-checks", action="store_true", help="do not exclude for failed checks")
    r.add_argument("--max-too-fast", type=int, default=None, help="exclude participants with more too-fast answers")
    r.add_argument("--keep-incomplete", action="store_true", help="analyse participants who did not finish")
    r.add_argument(
        "--min-consistency",
        type=float,
        default=None,
        help="exclude participants agreeing with themselves on a smaller share of repeat trials",
    )
    r.add_argument("--seed", type=int, default=0)
    r.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from survey.analysis.exclusions import ExclusionRules
    from survey.analysis.formatting import CI_NEEDS_TWO_PARTICIPANTS, format_ci
    from survey.analysis.report import render_html
    from survey.analysis.results import compute_results
    from survey.participants.service import current_study

    make_session = open_db(settings, must_exist=True)
    study = current_study(make_session, args.study)
    rules = ExclusionRules(
        failed_checks_max=None if args.keep_failed_checks else args.max_failed_checks,
        too_fast_max=args.max_too_fast,
        require_complete=not args.keep_incomplete,
        consistency_min=args.min_consistency,
    )
    results = compute_results(make_session, study.id, rules=rules, n_boot=args.n_boot, seed=args.seed)
    out = args.out or (None if args.json else DEFAULT_REPORT)  # --json alone: stdout only, no file
    if out is not None:
        Path(out).write_text(render_html(results), encoding="utf-8")
    if args.json:
        print(json.dumps(results.to_json(), default=str))
        return 0
    print(f"{'condition':<28}{'n':>6}{'mean':>7}  95% CI")
    for r in sorted(results.conditions, key=lambda r: -r.mean):
        print(f"{r.condition:<28}{r.n_ratings:>6}{r.mean:>7.2f}  {format_ci(r, missing=CI_NEEDS_TWO_PARTICIPANTS)}")
    print(f"report written to {out}")
    return 0


# --- export -------------------------------------------------------------------------------


def add_export(sub: Subparsers) -> None:
    x = sub.add_parser("export", help="tidy tables of a study's answers, for R or pandas, with a data dictionary")
    add_db_flag(x)
    x.add_argument("--study")
    x.add_argument("--out", required=True, help="output folder")
    x.add_argument("--format", choices=["csv", "parquet"], default="csv")
    x.add_argument(
        "--spreadsheet-safe",
        action="store_true",
        help="prefix ' to text cells starting with = + - @ (free text opened in Excel cannot run formulas)",
    )
    x.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from survey.participants.service import current_study
    from survey.study.export import export

    make_session = open_db(settings, must_exist=True)
    study = current_study(make_session, args.study)
    for path in export(make_session, study.id, args.out, fmt=args.format, for_spreadsheets=args.spreadsheet_safe):
        print(path)
    return 0


# --- simulate -----------------------------------------------------------------------------


def add_simulate(sub: Subparsers) -> None:
    sm = sub.add_parser("simulate", help="answer a built study with simulated participants (tests, power analysis)")
    add_db_flag(sm)
    sm.add_argument("--study")
    sm.add_argument("--participants", type=int, required=True)
    sm.add_argument("--seed", type=int, default=0)
    sm.add_argument(
        "--effects",
        default="",
        metavar="METHOD/SEGMENTER=VALUE,...",
        help="true condition effects on a standard-normal scale (unnamed: 0)",
    )
    sm.add_argument("--noise-sd", type=float, default=1.0)
    sm.add_argument("--bias-sd", type=float, default=0.5, help="per-rater rating bias")
    sm.add_argument("--inattentive", type=float, default=0.0, help="share of raters answering at random")
    sm.add_argument(
        "--dropout", type=float, default=0.0, help="share of participants who stop part-way (then time out)"
    )
    sm.add_argument(
        "--fail-comprehension",
        type=float,
        default=0.0,
        help="share of participants failing the comprehension phase twice (screened out)",
    )
    sm.add_argument(
        "--inconsistent", type=float, default=0.0, help="share of participants answering repeat trials at random"
    )
    sm.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from survey.analysis.simulate import ResponseModel, parse_effects, simulate
    from survey.participants.service import current_study

    make_session = open_db(settings, must_exist=True)  # answers go into a built study
    study = current_study(make_session, args.study)
    model = ResponseModel(
        effects=parse_effects(args.effects), noise_sd=args.noise_sd, bias_sd=args.bias_sd, inattentive=args.inattentive
    )
    sim = simulate(
        make_session,
        study.id,
        args.participants,
        seed=args.seed,
        model=model,
        dropout=args.dropout,
        fail_comprehension=args.fail_comprehension,
        inconsistent=args.inconsistent,
    )
    print(
        f"study '{study.name}': {args.participants} simulated participants stored {sim.stored} answers"
        f" ({len(sim.inattentive)} of them answering at random"
        + (f", {len(sim.dropped)} stopping part-way, then timed out" if args.dropout else "")
        + (f", {len(sim.screened_out)} screened out" if args.fail_comprehension else "")
        + (f", {len(sim.inconsistent)} answering repeats at random" if args.inconsistent else "")
        + ")"
    )
    return 0


# --- power --------------------------------------------------------------------------------


def add_power(sub: Subparsers) -> None:
    pw = sub.add_parser(
        "power",
        help="participants needed to detect given condition differences (simulated "
        "rating studies on the study's design)",
    )
    add_db_flag(pw)
    pw.add_argument("--study")
    pw.add_argument(
        "--effects",
        default="",
        metavar="METHOD/SEGMENTER=VALUE,...",
        help="true condition effects on a standard-normal scale (unnamed: 0), as for simulate",
    )
    pw.add_argument(
        "--protocol",
        choices=["rating", "swipe"],
        default="rating",
        help="the analysis to power: rating (Friedman, Wilcoxon pairs) or swipe (like model, Wilcoxon pairs of "
        "like rates; --effects are then log-odds shifts of a condition's recommended products)",
    )
    pw.add_argument("--participants", default="10,20,40", metavar="N,N,...", help="study sizes to try")
    pw.add_argument("--reps", type=int, default=50, help="simulated studies per size")
    pw.add_argument("--alpha", type=float, default=0.05)
    pw.add_argument("--target", type=float, default=0.8, help="power to reach")
    pw.add_argument(
        "--pair",
        metavar="A,B",
        help="the pair of conditions to detect (default: the largest true effect vs the smallest)",
    )
    pw.add_argument("--noise-sd", type=float, default=1.0)
    pw.add_argument("--bias-sd", type=float, default=0.5, help="per-rater rating bias")
    pw.add_argument("--seed", type=int, default=0)
    pw.add_argument("--dropout", type=float, default=0.0, help="share of recruited participants who stop part-way")
    pw.add_argument("--json", action="store_true", help="print the result as one JSON object")
    pw.set_defaults(func=cmd_power)


def cmd_power(args: argparse.Namespace, settings: Settings) -> int:
    """``lookalike power``: simulate the study's rating analysis at each size and print the power."""
    from survey.analysis.power import power_curve
    from survey.analysis.simulate import ResponseModel, parse_effects, study_design
    from survey.participants.service import current_study

    sizes = _participant_counts(args.participants)
    pair = _pair(args.pair)
    make_session = open_db(settings, must_exist=True)
    study = current_study(make_session, args.study)
    if args.protocol == "swipe":
        return _swipe_power(args, make_session, study, sizes, pair)
    design = study_design(make_session, study.id)
    model = ResponseModel(effects=parse_effects(args.effects), noise_sd=args.noise_sd, bias_sd=args.bias_sd)
    res = power_curve(
        design,
        sizes,
        model=model,
        pair=pair,
        reps=args.reps,
        alpha=args.alpha,
        target=args.target,
        seed=args.seed,
        dropout=args.dropout,
    )
    if args.json:
        print(json.dumps({"study": study.name, **res.to_json()}))
    else:
        _print_power(study.name, res, sizes)
    return 0


def _swipe_power(args: argparse.Namespace, make_session, study, sizes: list[int], pair) -> int:
    """``lookalike power --protocol swipe``: the swipe analysis's power at each size."""
    from survey.analysis.simulate import parse_effects
    from survey.analysis.swipe_power import swipe_design, swipe_power_curve

    design = swipe_design(make_session, study.id)
    res = swipe_power_curve(
        design,
        sizes,
        shifts=parse_effects(args.effects),
        pair=pair,
        reps=args.reps,
        alpha=args.alpha,
        target=args.target,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps({"study": study.name, "protocol": "swipe", **res.to_json()}))
        return 0
    print(
        f"study '{study.name}', swipe rounds: {len(design.conditions)} conditions, {len(design.categories)} rounds, "
        f"k={design.k}; shifts {res.shifts or 'none'}; pair {res.pair[0]} vs {res.pair[1]}; {res.reps} studies per size"
    )
    print(f"{'participants':>12}  {'model power [95% CI]':<26}pair power [95% CI]")
    for pt in res.points:
        model = f"{pt.model_power:.2f} [{pt.model_ci_low:.2f}, {pt.model_ci_high:.2f}]"
        print(f"{pt.participants:>12}  {model:<26}{pt.pair_power:.2f} [{pt.pair_ci_low:.2f}, {pt.pair_ci_high:.2f}]")
    for what, n in (("the like model", res.needed_for_model), ("the pair", res.needed_for_pair)):
        print(f"{what}: power >= {res.target:g} " + (f"from {n} participants" if n else "at none of the sizes tried"))
    return 0


def _participant_counts(text: str) -> list[int]:
    """``--participants``: the study sizes, numbers separated by commas."""
    from survey.analysis.simulate import SimulationError

    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SimulationError(
            f"--participants takes numbers separated by commas, e.g. 10,20,40; got {text!r}"
        ) from None


def _pair(text: str | None) -> tuple[str, str] | None:
    """``--pair``: two conditions separated by a comma (None: not given)."""
    from survey.analysis.simulate import SimulationError

    if not text:
        return None
    a, comma, b = text.partition(",")
    if not comma:
        raise SimulationError("--pair takes two conditions separated by a comma, e.g. efficientnet/u2netp,ssim/none")
    return (a.strip(), b.strip())


def _print_power(study: str, res: PowerResult, sizes: list[int]) -> None:
    """The power curve as text: the design, each size's power with intervals, and the sizes needed."""
    effects = ", ".join(f"{k}={v:g}" for k, v in res.effects.items()) or "none (every condition alike)"
    print(
        f"study '{study}': {res.conditions} conditions, {res.references} references, "
        f"{res.trials_per_participant} rating trials per participant; effects: {effects}"
        + (f"; {res.dropout:.0%} of participants stop part-way" if res.dropout else "")
    )
    print(
        f"{res.reps} simulated studies per size, alpha = {res.alpha:g}; pair: {res.pair[0]} vs {res.pair[1]} "
        "(Holm-corrected Wilcoxon, true direction)"
    )
    print(f"{'participants':>12}  {'Friedman power [95% CI]':<26}pair power [95% CI]")
    for pt in res.points:
        omnibus = f"{pt.friedman_power:.2f} [{pt.friedman_ci_low:.2f}, {pt.friedman_ci_high:.2f}]"
        print(f"{pt.participants:>12}  {omnibus:<26}{pt.pair_power:.2f} [{pt.pair_ci_low:.2f}, {pt.pair_ci_high:.2f}]")
    for what, n in (("Friedman test", res.friedman_needed), ("pair", res.pair_needed)):
        print(
            f"{what}: "
            + (
                f"power >= {res.target:g} from {n} participants (of those tried)"
                if n
                else f"power {res.target:g} not reached with up to {max(sizes)} participants"
            )
        )
    print("participants are those analysed, after exclusions: recruit extra to cover them")
