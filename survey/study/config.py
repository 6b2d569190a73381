"""Study configuration: what to build and how participants are served.

One frozen :class:`StudyConfig`, validated on construction; every error names the key
and the fix. It is written as a TOML file (``lookalike build --config study.toml``; see
``survey/example_study.toml``; read by :mod:`survey.study.config_file`) or assembled from
command-line flags.

Construction checks only what needs no similarity code, so serving a study never imports
the method registry (and torch). Component names and options are checked against the
registries by :func:`check_components`, which the build calls before any work.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from similarity.errors import UserError
from survey import protocols as protocol_registry
from survey.study import texts as text_catalog
from survey.study.stopping import PrimaryComparison, StoppingRule, check_against_study, from_dicts


class ConfigError(UserError, ValueError):
    """An invalid study configuration; the message names the key and the fix."""


@dataclass(frozen=True)
class Component:
    """A method or segmenter by registry name, with options passed to its factory."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str) -> Component:
        """``name`` or ``name:key=value,key=value`` (values parsed as int/float/bool/None when possible)."""
        name, _, rest = spec.partition(":")
        opts: dict[str, Any] = {}
        for part in filter(None, rest.split(",")):
            key, eq, value = part.partition("=")
            if not eq:
                raise ConfigError(f"'{spec}': option '{part}' needs the form key=value")
            opts[key.strip()] = _parse_value(value.strip())
        return cls(name.strip(), opts)


def _parse_value(v: str) -> Any:
    lowered = v.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return v


@dataclass(frozen=True)
class Question:
    """An optional demographic question with fixed answer options."""

    key: str
    label: str
    options: tuple[str, ...]


@dataclass(frozen=True)
class Texts:
    """Participant-facing Markdown. Empty fields use the built-in texts (survey/study/texts.py); any
    other text is overridden by its catalog key (``StudyConfig.text_overrides``)."""

    consent: str = ""
    instructions: str = ""
    thank_you: str = ""


@dataclass(frozen=True)
class StudyConfig:
    name: str
    catalog: str
    methods: tuple[Component, ...] = (Component("ssim"), Component("efficientnet"))
    segmenters: tuple[Component, ...] = (Component("none"), Component("u2netp"))
    references_per_category: int = 3
    reference_filter: dict[str, str] = field(default_factory=dict)  # e.g. {"view": "packshot"}
    # grouped items per category, drawn with the seed, that query the build's retrieval metrics
    # (0: no metrics); bounds the search at catalog scale: all-pairs would grow with the square
    metric_queries_per_category: int = 1000
    k: int = 5
    seed: int = 0
    protocols: tuple[str, ...] = ("rating",)
    trials_per_participant: int = 12  # per protocol, attention checks not included
    rating_item_ticks: bool = False  # per grid item "similar / not similar" ticks
    # "uniform": least-judged pairwise units; "adaptive": after pairwise_adaptive_floor judgements of every
    # pair of conditions, the units where the Bradley-Terry fit is least certain (survey.participants.adaptive_pairs)
    pairwise_assignment: str = "uniform"
    pairwise_adaptive_floor: int = 4  # with 2, the extreme conditions of eight covered 0.931 (README "Adaptive pairs")
    # swipe (the [swipe] table): products per category that a round can show and make its reference
    # (drawn with the seed, filtered like references; the build computes the top-k of each)
    swipe_pool_per_category: int = 12
    swipe_max_swipes: int = 10  # products shown without a like before the round ends without a reference
    swipe_reference: str = "first_like"  # or "pick": the participant picks among the products liked
    swipe_pick_after: int = 3  # with "pick": likes before the pick (or max_swipes with at least one)
    swipe_rate_similarity: bool = False  # one similarity rating of the judged set, on the study's scale
    attention_check_rate: float = 0.0  # extra catch trials per real trial
    min_response_ms: int = 0  # faster answers flag the participant (0: no rule)
    max_participants: int = 0  # 0: unlimited; counts active and completed participants
    time_limit_minutes: int = 60  # no answer for this long: timed out, place and units freed
    judgements_per_unit: int = 0  # 0: no target; else progress toward it, and the study closes when reached
    comprehension: int = 0  # practice screens per attempt before the trials (two attempts); 0: none
    repeat_rate: float = 0.0  # share of each block's trials shown again later, positions changed (test-retest)
    allow_mobile: bool = True  # False: phones and tablets get a polite "please use a computer" page
    texts: Texts = Texts()
    demographics: tuple[Question, ...] = ()
    ask_comment: bool = True
    completion_code: str | None = None  # None: a random code is drawn at build time
    redirect_url: str | None = None  # e.g. Prolific's completion URL
    screened_out_code: str | None = None  # shown to those who fail the comprehension phase
    screened_out_url: str | None = None
    failed_check_code: str | None = None  # None: failing attention checks ends with the completion code
    failed_check_url: str | None = None
    failed_checks_limit: int = 1  # failed attention checks that make the outcome "failed checks"
    redirect_seconds: int = 5  # countdown before the redirect (a link redirects at once)
    language: str = "en"  # the participant texts' language (survey/study/texts.py)
    text_overrides: dict[str, str] = field(default_factory=dict)  # catalog key -> Markdown
    primary: PrimaryComparison | None = None  # [primary]: the comparison a stopping rule and preregistration test
    stopping: StoppingRule | None = None  # [stopping]: group-sequential looks or an anytime-valid rule
    # the study's id on Prolific (the [prolific] table): what `lookalike prolific sync / review` read;
    # the API token is never part of a study (only $PROLIFIC_TOKEN)
    prolific_study_id: str | None = None

    def __post_init__(self) -> None:
        self._validate_conditions()
        self._validate_counts()
        self._validate_protocols()
        self._validate_pairwise_assignment()
        self._validate_swipe()
        self._validate_completion()
        self._validate_texts_and_questions()
        check_against_study(self.primary, self.stopping, self)
        self._validate_prolific()

    def _validate_conditions(self) -> None:
        """A name, and at least one method and segmenter, each named once."""
        if not self.name.strip():
            raise ConfigError("name: give the study a non-empty name")
        if not self.methods:
            raise ConfigError("methods: list at least one method")
        if not self.segmenters:
            raise ConfigError("segmenters: list at least one segmenter")
        for key, comps in (("methods", self.methods), ("segmenters", self.segmenters)):
            names = [c.name for c in comps]
            if len(set(names)) != len(names):
                raise ConfigError(f"{key}: '{names}' lists a name twice; each may appear once")

    def _validate_counts(self) -> None:
        """Counts, shares and limits in their ranges."""
        for key in ("references_per_category", "k", "trials_per_participant", "time_limit_minutes"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be at least 1, got {getattr(self, key)}")
        if not 0 <= self.attention_check_rate <= 0.5:
            raise ConfigError(f"attention_check_rate: must be between 0 and 0.5, got {self.attention_check_rate}")
        if not 0 <= self.repeat_rate <= 0.5:
            raise ConfigError(f"participants.repeat_rate: must be between 0 and 0.5, got {self.repeat_rate}")
        if not 0 <= self.comprehension <= 10:
            raise ConfigError(f"participants.comprehension: 0 (none) to 10 practice screens, got {self.comprehension}")
        for key in ("min_response_ms", "max_participants", "judgements_per_unit", "metric_queries_per_category"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key}: must be 0 or more, got {getattr(self, key)}")

    def _validate_pairwise_assignment(self) -> None:
        """``uniform`` or ``adaptive``; adaptive only with the pairwise protocol, a floor of 1 to 50, and
        no per-unit target (adaptive judges units unevenly on purpose)."""
        key = "protocols.pairwise_assignment"
        if self.pairwise_assignment not in ("uniform", "adaptive"):
            raise ConfigError(f'{key}: "uniform" or "adaptive", got {self.pairwise_assignment!r}')
        if not 1 <= self.pairwise_adaptive_floor <= 50:
            raise ConfigError(
                "protocols.pairwise_adaptive_floor: 1 to 50 judgements of every pair of conditions before the "
                f"adaptive choice starts, got {self.pairwise_adaptive_floor}"
            )
        if self.pairwise_assignment == "uniform":
            return
        if "pairwise" not in self.protocols:
            raise ConfigError(
                f'{key}: "adaptive" chooses the units of the pairwise protocol, which this study does not use '
                f'(protocols {list(self.protocols)}); add "pairwise" to protocols.use or remove the key '
                "(rating, ranking and swipe units are always assigned least-judged first)"
            )
        if self.judgements_per_unit:
            raise ConfigError(
                f'{key}: "adaptive" judges units unevenly on purpose, so participants.judgements_per_unit '
                f"({self.judgements_per_unit}) would never be reached by every unit; remove it and bound the "
                "study with participants.max_participants"
            )

    def _validate_swipe(self) -> None:
        """The ``[swipe]`` keys in their ranges (checked whether or not the study uses swipe)."""
        if not 2 <= self.swipe_pool_per_category <= 500:
            raise ConfigError(f"swipe.pool_per_category: 2 to 500 products, got {self.swipe_pool_per_category}")
        if not 1 <= self.swipe_max_swipes <= 100:
            raise ConfigError(f"swipe.max_swipes: 1 to 100 swipes, got {self.swipe_max_swipes}")
        if self.swipe_reference not in ("first_like", "pick"):
            raise ConfigError(f'swipe.reference: "first_like" or "pick", got {self.swipe_reference!r}')
        if not 2 <= self.swipe_pick_after <= self.swipe_max_swipes and self.swipe_reference == "pick":
            raise ConfigError(
                f"swipe.pick_after: 2 to max_swipes ({self.swipe_max_swipes}) likes before the pick, "
                f"got {self.swipe_pick_after}"
            )

    def _validate_completion(self) -> None:
        """Redirect URLs on http(s), a failed-check limit of at least 1, a countdown of 0 to 60 s."""
        for key in ("redirect_url", "screened_out_url", "failed_check_url"):
            url = getattr(self, key)
            if url is not None and not url.startswith(("https://", "http://")):
                raise ConfigError(f"completion.{key}: '{url}' must start with https://")
        if self.failed_checks_limit < 1:
            raise ConfigError(f"completion.failed_checks_limit: must be at least 1, got {self.failed_checks_limit}")
        if not 0 <= self.redirect_seconds <= 60:
            raise ConfigError(f"completion.redirect_seconds: must be 0 to 60, got {self.redirect_seconds}")

    def _validate_texts_and_questions(self) -> None:
        """A known language, valid text overrides, distinct question keys with two options or more."""
        if self.language not in text_catalog.LANGUAGES:
            raise ConfigError(f"study.language: '{self.language}' is not one of {', '.join(text_catalog.LANGUAGES)}")
        problems = text_catalog.check_overrides(self.text_overrides)
        if problems:
            raise ConfigError("; ".join(problems))
        keys = [q.key for q in self.demographics]
        if len(set(keys)) != len(keys):
            raise ConfigError(f"demographics: question keys {keys} must be distinct")
        for q in self.demographics:
            if len(q.options) < 2:
                raise ConfigError(f"demographics.{q.key}: give at least two options")

    def _validate_prolific(self) -> None:
        """A Prolific study id is letters and digits (Prolific's own are 24 hexadecimal digits)."""
        sid = self.prolific_study_id
        if sid is not None and not re.fullmatch(r"[A-Za-z0-9]{1,64}", sid):
            raise ConfigError(
                f"prolific.study_id: {sid!r} is not a Prolific study id; copy the id from the study's page "
                "on Prolific (24 letters and digits, e.g. 60aca280709ee40ec37d4885)"
            )

    def _validate_protocols(self) -> None:
        """Distinct known protocols, each with a number of conditions it can compare."""
        if (
            not self.protocols
            or any(p not in protocol_registry.NAMES for p in self.protocols)
            or len(set(self.protocols)) != len(self.protocols)
        ):
            raise ConfigError(
                f"protocols: {list(self.protocols)} is not a non-empty list of distinct names "
                f"from {', '.join(protocol_registry.NAMES)}"
            )
        conditions = len(self.methods) * len(self.segmenters)
        for protocol in map(protocol_registry.get_protocol, self.protocols):
            if conditions < protocol.min_conditions:
                raise ConfigError(
                    f"protocols: {protocol.name} compares conditions and needs at least "
                    f"{protocol.min_conditions} (methods x segmenters), the study has {conditions}; "
                    f"add a method or segmenter, or use another protocol"
                )
            if protocol.max_conditions is not None and conditions > protocol.max_conditions:
                raise ConfigError(
                    f"protocols: {protocol.name} shows every distinct grid of a reference, at most "
                    f"{protocol.max_conditions}; {conditions} conditions may produce more. Use fewer "
                    "methods or segmenters, or another protocol"
                )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def texts_catalog(self) -> text_catalog.Catalog:
        """The participant texts of this study: its language, its overrides on top."""
        extra = {"consent": self.texts.consent, "done": self.texts.thank_you}
        return text_catalog.Catalog(self.language, {**{k: v for k, v in extra.items() if v}, **self.text_overrides})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyConfig:
        """Rebuild from :meth:`to_dict` output (as stored with a study)."""
        d = dict(data)
        d["methods"] = tuple(Component(**c) for c in d.get("methods", ()))
        d["segmenters"] = tuple(Component(**c) for c in d.get("segmenters", ()))
        d["protocols"] = tuple(d.get("protocols", ("rating",)))
        d["texts"] = Texts(**d.get("texts", {}))
        d["demographics"] = tuple(
            Question(q["key"], q["label"], tuple(q["options"])) for q in d.get("demographics", ())
        )
        d["primary"], d["stopping"] = from_dicts(d.get("primary"), d.get("stopping"))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def check_components(
    methods: tuple[Component, ...] | list[Component], segmenters: tuple[Component, ...] | list[Component]
) -> None:
    """Every component's name and options against the method and segmenter registries, without
    constructing any: raises :class:`ConfigError` naming the component, the bad name or option
    and the valid ones. Imports the registries (and with them torch), so only the build and
    ``lookalike evaluate`` call it, never the served app."""
    from similarity.methods import METHODS
    from similarity.registry import UnknownOption
    from similarity.segmenters import SEGMENTERS

    for key, comps, registry in (("methods", methods, METHODS), ("segmenters", segmenters, SEGMENTERS)):
        valid = registry.names()
        for c in comps:
            if c.name not in valid:
                raise ConfigError(f"{key}: unknown name '{c.name}'; valid: {', '.join(valid)}")
            try:
                registry.check_options(c.name, c.options)
            except UnknownOption as exc:
                raise ConfigError(f"{key}: {exc}") from None
