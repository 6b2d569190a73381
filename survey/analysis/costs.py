"""What a study of a given size costs and how long its collection takes (``lookalike power
--pay-per-hour --arrivals-per-hour``).

Minutes per participant come from the study's own timings: the median, over participants who
completed, of the time from consent to completion (``consented_at`` to ``completed_at``), or from
``--minutes`` before any participant completed. Cost = participants x minutes / 60 x pay per hour
(what a platform like Prolific pays per participant, its service fee not included). Days of
collection = participants / arrivals per hour / 24: arrivals around the clock, as platforms
recruit; divide the hours by a working day's instead when recruiting only by day.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Participant
from survey.analysis.response_model import SimulationError


@dataclass(frozen=True)
class Timing:
    minutes_per_participant: float
    source: str  # where the minutes come from, in words
    completed: int  # participants whose timings gave the median (0: given as --minutes)


def study_timing(make_session: sessionmaker[Session], study_id: int, minutes: float | None = None) -> Timing:
    """The median minutes from consent to completion of the study's completed participants; ``minutes``
    (``--minutes``) instead when given. Raises when neither exists, saying what to give."""
    if minutes is not None:
        if not minutes > 0:
            raise SimulationError(f"--minutes must be a positive number of minutes per participant, got {minutes}")
        return Timing(float(minutes), "given (--minutes)", 0)
    with make_session() as s:
        rows = s.execute(
            select(Participant.consented_at, Participant.completed_at).where(
                Participant.study_id == study_id,
                Participant.completed_at.is_not(None),
                Participant.consented_at.is_not(None),
            )
        ).all()
    spans = [(done - start).total_seconds() / 60 for start, done in rows if start is not None and done is not None]
    if not spans:
        raise SimulationError(
            "no participant has completed the study yet, so it has no timings; give --minutes "
            "(the expected minutes per participant, e.g. from a preview run)"
        )
    return Timing(statistics.median(spans), f"median of {len(spans)} completed participants", len(spans))


@dataclass(frozen=True)
class SizeCost:
    participants: int
    hours_of_participant_time: float
    cost: float | None  # None without a pay per hour
    collection_hours: float | None  # None without arrivals per hour
    collection_days: float | None


def size_costs(
    sizes: list[int], timing: Timing, *, pay_per_hour: float | None, arrivals_per_hour: float | None
) -> list[SizeCost]:
    """Cost and collection time of each number of participants (see the module docstring)."""
    for name, value in (("--pay-per-hour", pay_per_hour), ("--arrivals-per-hour", arrivals_per_hour)):
        if value is not None and not value > 0:
            raise SimulationError(f"{name} must be a positive number, got {value}")
    out = []
    for n in sizes:
        hours = n * timing.minutes_per_participant / 60
        collect = None if arrivals_per_hour is None else n / arrivals_per_hour
        out.append(
            SizeCost(
                n,
                hours,
                None if pay_per_hour is None else round(hours * pay_per_hour, 2),
                collect,
                None if collect is None else collect / 24,
            )
        )
    return out


def costs_json(timing: Timing, costs: list[SizeCost], pay_per_hour: float | None, arrivals: float | None) -> dict:
    return {
        "timing": asdict(timing),
        "pay_per_hour": pay_per_hour,
        "arrivals_per_hour": arrivals,
        "sizes": [asdict(c) for c in costs],
    }
