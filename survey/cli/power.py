"""``lookalike power``: participants needed, from hand-set effects (rating, swipe) or from the answers a
study has so far (``--from-pilot``, every protocol), with the cost and days of collection of each size."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from survey.cli.common import Subparsers, add_db_flag, open_db
from survey.protocols import NAMES as PROTOCOL_NAMES
from survey.settings import Settings

if TYPE_CHECKING:
    from survey.analysis.pilot_power import ProtocolPower
    from survey.analysis.power import PowerResult

DEFAULT_SIZES = "10,20,40"
DEFAULT_PILOT_SIZES = "10,20,40,80"


def register(sub: Subparsers) -> None:
    pw = sub.add_parser(
        "power",
        help="participants needed to detect condition differences (simulated studies on the study's design), "
        "from given effects or from the answers so far (--from-pilot), with costs",
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
        "--from-pilot",
        action="store_true",
        help="estimate the effects (with their uncertainty) from the answers the study has so far, for every "
        "protocol it uses (or --protocol), instead of --effects",
    )
    pw.add_argument(
        "--protocol",
        choices=list(PROTOCOL_NAMES),
        default=None,
        help="the protocol to power; given effects: rating (default) or swipe (--effects are then log-odds "
        "shifts); --from-pilot: any (default: every protocol of the study)",
    )
    pw.add_argument(
        "--participants",
        metavar="N,N,...",
        help=f"study sizes to try (default {DEFAULT_SIZES}; --from-pilot: {DEFAULT_PILOT_SIZES})",
    )
    pw.add_argument("--reps", type=int, default=50, help="simulated studies per size")
    pw.add_argument("--alpha", type=float, default=0.05)
    pw.add_argument("--target", type=float, default=0.8, help="power to reach")
    pw.add_argument(
        "--pair",
        metavar="A,B",
        help="the pair of conditions to detect (default: the largest true or estimated effect vs the smallest)",
    )
    pw.add_argument("--noise-sd", type=float, default=1.0)
    pw.add_argument("--bias-sd", type=float, default=0.5, help="per-rater rating bias")
    pw.add_argument("--seed", type=int, default=0)
    pw.add_argument("--dropout", type=float, default=0.0, help="share of recruited participants who stop part-way")
    pw.add_argument("--boot", type=int, default=200, help="--from-pilot: bootstrap resamples per simulated study")
    pw.add_argument(
        "--minutes", type=float, help="minutes per participant (default: the median of the study's completed ones)"
    )
    pw.add_argument("--pay-per-hour", type=float, help="pay per hour of a participant's time: the cost of each size")
    pw.add_argument("--arrivals-per-hour", type=float, help="participants arriving per hour: days of collection")
    pw.add_argument("--json", action="store_true", help="print the result as one JSON object")
    pw.set_defaults(func=cmd_power)


def cmd_power(args: argparse.Namespace, settings: Settings) -> int:
    """``lookalike power``: simulate the study's analyses at each size and print the power and costs."""
    from survey.participants.service import current_study

    sizes = _participant_counts(args.participants or (DEFAULT_PILOT_SIZES if args.from_pilot else DEFAULT_SIZES))
    pair = _pair(args.pair)
    make_session = open_db(settings, must_exist=True)
    study = current_study(make_session, args.study)
    if args.from_pilot:
        return _pilot_power(args, make_session, study, sizes, pair)
    costs = _costs(args, make_session, study.id, sizes)
    if args.protocol == "swipe":
        return _swipe_power(args, make_session, study, sizes, pair, costs)
    if args.protocol not in (None, "rating"):
        from survey.analysis.simulate import SimulationError

        raise SimulationError(
            f"power from given effects covers rating and swipe; for {args.protocol}, use --from-pilot"
        )
    return _rating_power(args, make_session, study, sizes, pair, costs)


def _costs(args: argparse.Namespace, make_session, study_id: int, sizes: list[int]) -> dict | None:
    """The cost table's JSON: with --from-pilot always (the pilot's own timings), else when asked for."""
    from survey.analysis.costs import costs_json, size_costs, study_timing

    if not (args.from_pilot or args.minutes or args.pay_per_hour or args.arrivals_per_hour):
        return None
    timing = study_timing(make_session, study_id, args.minutes)
    table = size_costs(sizes, timing, pay_per_hour=args.pay_per_hour, arrivals_per_hour=args.arrivals_per_hour)
    return costs_json(timing, table, args.pay_per_hour, args.arrivals_per_hour)


def _rating_power(args: argparse.Namespace, make_session, study, sizes: list[int], pair, costs) -> int:
    from survey.analysis.power import power_curve
    from survey.analysis.simulate import ResponseModel, parse_effects, study_design

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
        print(json.dumps({"study": study.name, **res.to_json(), **({"costs": costs} if costs else {})}))
    else:
        _print_power(study.name, res, sizes)
        _print_costs(costs)
    return 0


def _swipe_power(args: argparse.Namespace, make_session, study, sizes: list[int], pair, costs) -> int:
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
        extra = {"costs": costs} if costs else {}
        print(json.dumps({"study": study.name, "protocol": "swipe", **res.to_json(), **extra}))
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
    _print_costs(costs)
    return 0


def _pilot_power(args: argparse.Namespace, make_session, study, sizes: list[int], pair) -> int:
    """``lookalike power --from-pilot``: every protocol's estimates from the answers so far, and its power."""
    from survey.analysis.pilot import power_from_pilot, read_pilot

    pilot = read_pilot(make_session, study.id, protocols=[args.protocol] if args.protocol else None)
    costs = _costs(args, make_session, study.id, sizes)
    results = power_from_pilot(
        make_session,
        study.id,
        pilot,
        sizes,
        pair=pair,
        reps=args.reps,
        alpha=args.alpha,
        target=args.target,
        seed=args.seed,
        n_boot=args.boot,
    )
    per_size = {c["participants"]: c for c in costs["sizes"]} if costs else {}
    out = {
        "study": study.name,
        "from_pilot": True,
        "pilot_participants": pilot.participants,
        "participants_tried": sizes,
        "reps": args.reps,
        "alpha": args.alpha,
        "target": args.target,
        "seed": args.seed,
        "costs": costs,
        "protocols": {r.protocol: {**r.to_json(), "needed": _needed(r, per_size)} for r in results},
    }
    if args.json:
        print(json.dumps(out))
    else:
        _print_pilot(study.name, pilot.participants, results, out)
        _print_costs(costs)
    return 0


def _needed(res: ProtocolPower, per_size: dict[int, dict]) -> dict[str, dict]:
    """Per analysis: the participants needed (None: not reached at the sizes tried) and their cost."""
    return {
        a.analysis: {
            "participants": a.needed,
            "cost": per_size.get(a.needed, {}).get("cost") if a.needed else None,
            "collection_days": per_size.get(a.needed, {}).get("collection_days") if a.needed else None,
        }
        for a in res.analyses
    }


def _print_pilot(study: str, kept: int, results: list[ProtocolPower], out: dict) -> None:
    print(
        f"study '{study}': power from the answers of {kept} kept participants ({out['reps']} simulated studies "
        f"per size, effects drawn from their sampling distribution, alpha = {out['alpha']:g})"
    )
    for r in results:
        print(f"\n{r.protocol}: estimated effects ({r.pilot['scale']}), against {r.pilot['reference']}:")
        for c in r.pilot["contrasts"]:
            print(f"  {c['condition']:<28}{c['estimate']:+.2f} [{c['ci_low']:+.2f}, {c['ci_high']:+.2f}]")
        print(f"  pair: {r.pair[0]} vs {r.pair[1]}")
        print(f"  {'participants':>12}  " + "".join(f"{a.analysis:<24}" for a in r.analyses))
        for i, n in enumerate(out["participants_tried"]):
            cells = "".join(
                f"{a.points[i].power:.2f} [{a.points[i].ci_low:.2f}, {a.points[i].ci_high:.2f}]".ljust(24)
                for a in r.analyses
            )
            print(f"  {n:>12}  {cells}")
        for a in r.analyses:
            need = f"{a.needed} participants" if a.needed else "not reached at the sizes tried"
            print(f"  {a.analysis} ({a.tests}): power >= {out['target']:g} with {need}")


def _print_costs(costs: dict | None) -> None:
    from survey.analysis.costs import SizeCost

    if not costs:
        return
    t = costs["timing"]
    print(f"\ncosts: {t['minutes_per_participant']:.1f} minutes per participant ({t['source']})")
    print(f"{'participants':>12}  {'hours':>8}  {'cost':>10}  {'days':>7}")
    for row in costs["sizes"]:
        c = SizeCost(**row)
        cost = "" if c.cost is None else f"{c.cost:,.2f}"
        days = "" if c.collection_days is None else f"{c.collection_days:.1f}"
        print(f"{c.participants:>12}  {c.hours_of_participant_time:>8.1f}  {cost:>10}  {days:>7}")


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
