"""Analysing a built study: ``report``, ``export`` and ``simulate`` (``power``: :mod:`survey.cli.power`).

Each needs a built study, so a ``--db`` file that does not exist is refused, never created.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from survey.cli.common import Subparsers, add_db_flag, open_db
from survey.settings import Settings

DEFAULT_REPORT = "report.html"


def register(sub: Subparsers) -> None:
    add_report(sub)
    add_export(sub)
    add_simulate(sub)


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
    r.add_argument(
        "--exclude-suspected-bots",
        action="store_true",
        help="exclude participants with any signal of automation (export column bot_signals; README "
        "'Automated participants'); off by default: the report says how many there are either way",
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
        exclude_suspected_bots=args.exclude_suspected_bots,
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
