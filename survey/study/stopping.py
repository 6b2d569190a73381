"""A study's primary comparison and stopping rule: the TOML tables ``[primary]`` and ``[stopping]``
(documented in ``survey/example_study.toml``), validated on construction; every error names the key and
the fix. What they mean statistically is in :mod:`survey.analysis.sequential`."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from similarity.errors import UserError

#: protocols whose primary statistic is a per-participant difference between two conditions
PRIMARY_PROTOCOLS = {
    "rating": "each participant's mean rating of condition a minus their mean rating of condition b",
    "swipe": "each participant's like rate of the products condition a recommended minus that of condition b",
}
RULES = ("group-sequential", "anytime")
SPENDING = ("obrien-fleming", "pocock")
SPENDING_NAMES = {"obrien-fleming": "O'Brien-Fleming", "pocock": "Pocock"}
MAX_LOOKS = 20


class StoppingConfigError(UserError, ValueError):
    """An invalid [primary] or [stopping] table; the message names the key and the fix."""


@dataclass(frozen=True)
class PrimaryComparison:
    """Condition ``a`` against condition ``b`` (``method/segmenter`` labels) on ``protocol``'s primary
    statistic (:data:`PRIMARY_PROTOCOLS`), tested two-sided."""

    protocol: str
    a: str
    b: str

    def __post_init__(self) -> None:
        if self.protocol not in PRIMARY_PROTOCOLS:
            raise StoppingConfigError(
                f"primary.protocol: {self.protocol!r} has no per-participant primary statistic; "
                f"use one of {', '.join(PRIMARY_PROTOCOLS)}"
            )
        for key in ("a", "b"):
            label = getattr(self, key)
            if not isinstance(label, str) or label.count("/") != 1 or "" in label.split("/"):
                raise StoppingConfigError(f'primary.{key}: a condition as "method/segmenter", got {label!r}')
        if self.a == self.b:
            raise StoppingConfigError(f"primary.a and primary.b: compare two different conditions, both are {self.a!r}")

    @property
    def statistic(self) -> str:
        return PRIMARY_PROTOCOLS[self.protocol]


@dataclass(frozen=True)
class StoppingRule:
    """``group-sequential``: the comparison is tested at ``looks`` (numbers of analysed participants) against
    two-sided Lan-DeMets boundaries spending ``alpha`` by ``spending``; with ``futility_z``, an interim look
    with |z| below it advises stopping for futility (non-binding). ``anytime``: a confidence sequence for the
    mean difference, valid at every participant, tightest near ``planned_participants``."""

    rule: str
    alpha: float = 0.05
    looks: tuple[int, ...] = ()
    spending: str = "obrien-fleming"
    futility_z: float | None = None
    planned_participants: int | None = None

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise StoppingConfigError(f"stopping.rule: {self.rule!r} is not one of {', '.join(RULES)}")
        if not 0 < self.alpha <= 0.2:
            raise StoppingConfigError(f"stopping.alpha: a two-sided level above 0 and at most 0.2, got {self.alpha}")
        if self.rule == "group-sequential":
            self._check_looks()
        else:
            self._check_anytime()

    def _check_looks(self) -> None:
        looks = list(self.looks)
        if not 1 <= len(looks) <= MAX_LOOKS or any(not isinstance(n, int) or n < 3 for n in looks):
            raise StoppingConfigError(
                f"stopping.looks: 1 to {MAX_LOOKS} numbers of analysed participants (each at least 3), "
                f"e.g. looks = [20, 40, 60]; got {looks}"
            )
        if any(b <= a for a, b in itertools.pairwise(looks)):
            raise StoppingConfigError(f"stopping.looks: must increase, got {looks}")
        if self.spending not in SPENDING:
            raise StoppingConfigError(f"stopping.spending: {self.spending!r} is not one of {', '.join(SPENDING)}")
        if self.futility_z is not None and not 0 < self.futility_z < 3:
            raise StoppingConfigError(
                f"stopping.futility_z: a z value between 0 and 3 (e.g. 0.5), or leave it out; got {self.futility_z}"
            )
        if self.planned_participants is not None:
            raise StoppingConfigError('stopping.planned_participants: only for rule = "anytime"; looks set the size')

    def _check_anytime(self) -> None:
        if self.looks or self.futility_z is not None:
            raise StoppingConfigError(
                'stopping.looks / stopping.futility_z: only for rule = "group-sequential"; an anytime rule looks '
                "after every participant"
            )
        n = self.planned_participants
        if not isinstance(n, int) or n < 3:
            raise StoppingConfigError(
                'stopping.planned_participants: rule = "anytime" needs the number of participants the confidence '
                f"sequence should be tightest at (at least 3), got {n!r}"
            )

    @property
    def max_participants(self) -> int:
        return self.looks[-1] if self.rule == "group-sequential" else int(self.planned_participants or 0)

    def describe(self) -> str:
        """One sentence that states the rule."""
        if self.rule == "anytime":
            return (
                f"anytime-valid: a {1 - self.alpha:.0%} normal-mixture confidence sequence for the mean difference, "
                f"checked after every participant, tuned to be tightest at {self.planned_participants} participants; "
                "stop for efficacy when it excludes 0"
            )
        futility = (
            f"; at an interim look with |z| < {self.futility_z:g}, stopping for futility is advised (non-binding: "
            "the efficacy boundaries do not count on it)"
            if self.futility_z is not None
            else ""
        )
        return (
            f"group-sequential: looks at {', '.join(map(str, self.looks))} analysed participants, two-sided "
            f"alpha = {self.alpha:g} spent by the Lan-DeMets {SPENDING_NAMES[self.spending]}-type "
            f"function; stop for efficacy when |z| reaches the look's boundary{futility}"
        )


def check_against_study(primary: PrimaryComparison | None, stopping: StoppingRule | None, study: Any) -> None:
    """The comparison's protocol and conditions exist in ``study`` (a StudyConfig); a rule needs a comparison."""
    if stopping is not None and primary is None:
        raise StoppingConfigError(
            "[stopping] needs a [primary] table: protocol, a and b name the comparison the rule tests"
        )
    if primary is None:
        return
    if primary.protocol not in study.protocols:
        raise StoppingConfigError(
            f"primary.protocol: {primary.protocol!r} is not among the study's protocols {list(study.protocols)}"
        )
    methods, segmenters = {c.name for c in study.methods}, {c.name for c in study.segmenters}
    for key in ("a", "b"):
        method, segmenter = getattr(primary, key).split("/")
        if method not in methods or segmenter not in segmenters:
            raise StoppingConfigError(
                f"primary.{key}: {getattr(primary, key)!r} is not a condition of this study; methods "
                f"{sorted(methods)}, segmenters {sorted(segmenters)}"
            )


def from_dicts(primary: dict[str, Any] | None, stopping: dict[str, Any] | None) -> tuple[Any, Any]:
    """Rebuild both from their ``asdict`` form (as stored with a study)."""
    p = PrimaryComparison(**primary) if primary else None
    s = None
    if stopping:
        s = StoppingRule(**{**stopping, "looks": tuple(stopping.get("looks", ()))})
    return p, s
