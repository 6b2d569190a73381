"""A study's answers so far as a pilot: each protocol's estimates (:mod:`survey.analysis.pilot_fits`) and
the power of its analyses at each size (:mod:`survey.analysis.pilot_power`), on the study's own design.

The pilot is the participants the report keeps (its exclusion rules, :mod:`survey.analysis.exclusions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from survey.analysis.exclusions import DEFAULT_RULES, ExclusionRules, apply_exclusions
from survey.analysis.pilot_fits import PilotFit, pairwise_pilot, ranking_pilot, rating_pilot, swipe_pilot
from survey.analysis.pilot_power import ProtocolPower, grid_simulator, pilot_power, swipe_simulator
from survey.analysis.response_model import SimulationError

FITTERS = {"rating": rating_pilot, "pairwise": pairwise_pilot, "ranking": ranking_pilot, "swipe": swipe_pilot}


@dataclass(frozen=True)
class Pilot:
    """The kept answers of a study, per protocol, and its design."""

    protocols: tuple[str, ...]
    fits: dict[str, PilotFit]
    participants: int  # kept participants


def read_pilot(
    make_session: sessionmaker[Session],
    study_id: int,
    *,
    protocols: Sequence[str] | None = None,
    rules: ExclusionRules = DEFAULT_RULES,
) -> Pilot:
    """Fit every protocol of the study (or those named) to the answers of the participants ``rules`` keep."""
    from survey.participants.service import study_config
    from survey.study.export import tables

    config = study_config(make_session, study_id)
    wanted = tuple(protocols or config.protocols)
    unknown = set(wanted) - set(config.protocols)
    if unknown:
        raise SimulationError(
            f"the study has no {', '.join(sorted(unknown))} answers (its protocols: {', '.join(config.protocols)})"
        )
    tidy = tables(make_session, study_id)
    kept = apply_exclusions(tidy["participants"], rules).kept_ids
    if len(kept) < 2:
        raise SimulationError(
            f"a pilot needs at least 2 participants kept by the report's exclusion rules (has {len(kept)}); "
            "collect more answers first"
        )
    judgements = tidy["judgements"][tidy["judgements"]["participant"].isin(kept)]
    swipes = tidy["swipes"][tidy["swipes"]["participant"].isin(kept)]
    fits = {p: FITTERS[p](swipes if p == "swipe" else judgements) for p in wanted}
    return Pilot(wanted, fits, len(kept))


def power_from_pilot(
    make_session: sessionmaker[Session],
    study_id: int,
    pilot: Pilot,
    participants: Sequence[int],
    *,
    pair: tuple[str, str] | None = None,
    reps: int = 50,
    alpha: float = 0.05,
    target: float = 0.8,
    seed: int = 0,
    n_boot: int = 200,
) -> list[ProtocolPower]:
    """The power of every fitted protocol's analyses at each size, on the study's design."""
    from survey.analysis.simulate_tables import study_design
    from survey.analysis.swipe_power import swipe_design

    out = []
    for protocol in pilot.protocols:
        fit = pilot.fits[protocol]
        if protocol == "swipe":
            simulate = swipe_simulator(swipe_design(make_session, study_id), seed=seed)
        else:
            simulate = grid_simulator(study_design(make_session, study_id), fit)
        out.append(
            pilot_power(
                fit, simulate, participants, pair=pair, reps=reps, alpha=alpha, target=target, seed=seed, n_boot=n_boot
            )
        )
    return out
