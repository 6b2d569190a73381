"""``lookalike preregister``: the pre-registration sheet of a built study (survey.analysis.preregister),
with a power run of its primary comparison's protocol."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from survey.cli.common import Subparsers, add_db_flag, open_db
from survey.settings import Settings


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "preregister",
        help="write a pre-registration sheet (Markdown): design, hypotheses, analyses, exclusions, sample size "
        "with power, stopping rule",
    )
    add_db_flag(p)
    p.add_argument("--study", help="study name (default: $LOOKALIKE_STUDY, else the most recently built)")
    p.add_argument(
        "--effects",
        default="",
        metavar="METHOD/SEGMENTER=VALUE,...",
        help="the condition differences to power the study for, as for `lookalike power` (rating: latent scale; "
        "swipe: log-odds shifts); without them the sheet has no power table",
    )
    p.add_argument(
        "--from-pilot",
        action="store_true",
        help="power from the answers the study has so far (as `lookalike power --from-pilot`) instead of --effects",
    )
    p.add_argument("--participants", default="10,20,40", metavar="N,N,...", help="study sizes to simulate")
    p.add_argument("--reps", type=int, default=50, help="simulated studies per size")
    p.add_argument("--target", type=float, default=0.8, help="power to reach")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--boot", type=int, default=200, help="--from-pilot: bootstrap resamples per simulated study")
    p.add_argument(
        "--minutes", type=float, help="minutes per participant (default: the median of the study's completed ones)"
    )
    p.add_argument("--pay-per-hour", type=float, help="pay per hour of a participant's time: the cost of each size")
    p.add_argument("--arrivals-per-hour", type=float, help="participants arriving per hour: days of collection")
    p.add_argument("--out", type=Path, help="write the sheet here (default: print it)")
    p.set_defaults(func=cmd_preregister)


def cmd_preregister(args: argparse.Namespace, settings: Settings) -> int:
    from survey.analysis.exclusions import DEFAULT_RULES
    from survey.analysis.preregister import preregistration
    from survey.analysis.sequential_data import study_config
    from survey.analysis.simulate import SimulationError
    from survey.participants.service import current_study

    make_session = open_db(settings, must_exist=True)
    study = current_study(make_session, args.study)
    config = study_config(make_session, study.id)
    power = None
    if args.effects and args.from_pilot:
        raise SimulationError("give --effects or --from-pilot, not both: the power run takes its effects from one")
    if args.effects or args.from_pilot:
        power = _power_run(make_session, study.id, config, args, _sizes(args.participants))
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sheet = preregistration(config, _facts(make_session, study.id), power, DEFAULT_RULES, generated=generated)
    if args.out is None:
        print(sheet, end="")
    else:
        args.out.write_text(sheet, encoding="utf-8")
        print(f"pre-registration sheet of study '{study.name}' written to {args.out}")
    return 0


def _sizes(text: str) -> list[int]:
    """``--participants``: study sizes separated by commas."""
    from survey.analysis.simulate import SimulationError

    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SimulationError(f"--participants takes numbers separated by commas (20,40,60), got {text!r}") from None


def _facts(make_session, study_id: int):
    from sqlalchemy import func, select

    from db.models import CatalogItem, Condition
    from survey.analysis.preregister import StudyFacts

    with make_session() as s:
        labels = tuple(
            s.scalars(select(Condition.label).where(Condition.study_id == study_id).order_by(Condition.label))
        )
        refs, cats = s.execute(
            select(func.count(CatalogItem.id), func.count(func.distinct(CatalogItem.category))).where(
                CatalogItem.study_id == study_id, CatalogItem.is_reference
            )
        ).one()
    return StudyFacts(labels, int(refs), int(cats))


def _power_run(make_session, study_id: int, config, args: argparse.Namespace, sizes: list[int]):
    """The power of the primary comparison's protocol (else the study's rating or swipe protocol), its pair the
    primary comparison (else the largest effect against the smallest), from --effects or the pilot, with the
    cost of each size (and of the stopping rule's maximum) when timings or pay are known."""
    import dataclasses

    from survey.analysis.costs import size_costs, study_timing
    from survey.analysis.simulate import SimulationError

    primary = config.primary
    protocol = primary.protocol if primary else next((p for p in config.protocols if p in ("rating", "swipe")), None)
    if protocol is None:
        raise SimulationError(
            f"no power run for protocols {list(config.protocols)} without a [primary] comparison: name one, or "
            "leave out --effects / --from-pilot for a sheet without a power table"
        )
    pair = (primary.a, primary.b) if primary else None
    alpha = config.stopping.alpha if config.stopping else 0.05
    common = {"pair": pair, "reps": args.reps, "alpha": alpha, "target": args.target, "seed": args.seed}
    run = _pilot_table if args.from_pilot else _effects_table
    table = run(make_session, study_id, protocol, sizes, common, args)
    if not (args.from_pilot or args.minutes or args.pay_per_hour or args.arrivals_per_hour):
        return table
    timing = study_timing(make_session, study_id, args.minutes)
    most = [config.stopping.max_participants] if config.stopping else []
    costs = size_costs(
        sorted({*sizes, *most}), timing, pay_per_hour=args.pay_per_hour, arrivals_per_hour=args.arrivals_per_hour
    )
    return dataclasses.replace(table, costs=tuple(costs), timing=timing)


def _effects_table(make_session, study_id: int, protocol: str, sizes: list[int], common: dict, args):
    """Power from the given --effects (`lookalike power`'s simulation)."""
    from survey.analysis.power import power_curve
    from survey.analysis.preregister import PowerTable
    from survey.analysis.simulate import ResponseModel, parse_effects, study_design
    from survey.analysis.swipe_power import swipe_design, swipe_power_curve

    effects = parse_effects(args.effects)
    settings = f"given effects {effects}, {args.reps} simulated studies per size, seed {args.seed}"
    if protocol == "rating":
        res = power_curve(study_design(make_session, study_id), sizes, model=ResponseModel(effects=effects), **common)
        names = ("Friedman test over conditions (omnibus)", "the pair's Holm-corrected Wilcoxon signed-rank test")
        prefixes, needed, pair = ("friedman", "pair"), (res.friedman_needed, res.pair_needed), res.pair
        points: list = list(res.points)
    else:
        sw = swipe_power_curve(swipe_design(make_session, study_id), sizes, shifts=effects, **common)
        names = ("the like model's joint test (omnibus)", "the pair's Holm-corrected Wilcoxon test of like rates")
        prefixes, needed, pair = ("model", "pair"), (sw.needed_for_model, sw.needed_for_pair), sw.pair
        points = list(sw.points)
    power = tuple(
        tuple((getattr(p, f"{k}_power"), getattr(p, f"{k}_ci_low"), getattr(p, f"{k}_ci_high")) for p in points)
        for k in prefixes
    )
    return PowerTable(
        protocol, names, pair, settings, tuple(p.participants for p in points), power, needed,
        common["alpha"], common["target"],
    )  # fmt: skip


def _pilot_table(make_session, study_id: int, protocol: str, sizes: list[int], common: dict, args):
    """Power from the answers so far (`lookalike power --from-pilot`), every analysis of the protocol."""
    from survey.analysis.pilot import power_from_pilot, read_pilot
    from survey.analysis.preregister import PowerTable

    pilot = read_pilot(make_session, study_id, protocols=[protocol])
    (res,) = power_from_pilot(make_session, study_id, pilot, sizes, n_boot=args.boot, **common)
    settings = (
        f"effects and variance components estimated from the {pilot.participants} analysed participants so far, "
        f"drawn from their sampling distribution in each of {args.reps} simulated studies per size, seed {args.seed}"
    )
    return PowerTable(
        protocol,
        tuple(a.tests for a in res.analyses),
        res.pair,
        settings,
        tuple(p.participants for p in res.analyses[0].points),
        tuple(tuple((p.power, p.ci_low, p.ci_high) for p in a.points) for a in res.analyses),
        tuple(a.needed for a in res.analyses),
        common["alpha"],
        common["target"],
    )
