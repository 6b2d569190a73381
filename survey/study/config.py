"""Study configuration: what to build and how participants are served.

One frozen :class:`StudyConfig`, validated on construction; every error names the key
and the fix. It is written as a TOML file (``lookalike build --config study.toml``; see
``survey/example_study.toml``) or assembled from command-line flags.

Construction checks only what needs no similarity code, so serving a study never imports
the method registry (and torch). Component names and options are checked against the
registries by :func:`check_components`, which the build calls before any work.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from similarity.errors import UserError
from survey import protocols as protocol_registry
from survey.study import texts as text_catalog


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

    def __post_init__(self) -> None:
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
        for key in ("references_per_category", "k", "trials_per_participant", "time_limit_minutes"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be at least 1, got {getattr(self, key)}")
        self._validate_protocols()
        if not 0 <= self.attention_check_rate <= 0.5:
            raise ConfigError(f"attention_check_rate: must be between 0 and 0.5, got {self.attention_check_rate}")
        if not 0 <= self.repeat_rate <= 0.5:
            raise ConfigError(f"participants.repeat_rate: must be between 0 and 0.5, got {self.repeat_rate}")
        if not 0 <= self.comprehension <= 10:
            raise ConfigError(f"participants.comprehension: 0 (none) to 10 practice screens, got {self.comprehension}")
        for key in ("min_response_ms", "max_participants", "judgements_per_unit", "metric_queries_per_category"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key}: must be 0 or more, got {getattr(self, key)}")
        for key in ("redirect_url", "screened_out_url", "failed_check_url"):
            url = getattr(self, key)
            if url is not None and not url.startswith(("https://", "http://")):
                raise ConfigError(f"completion.{key}: '{url}' must start with https://")
        if self.failed_checks_limit < 1:
            raise ConfigError(f"completion.failed_checks_limit: must be at least 1, got {self.failed_checks_limit}")
        if not 0 <= self.redirect_seconds <= 60:
            raise ConfigError(f"completion.redirect_seconds: must be 0 to 60, got {self.redirect_seconds}")
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


# --- TOML ---------------------------------------------------------------------------------

_SECTIONS: dict[str, set[str]] = {
    "study": {"name", "catalog", "seed", "k", "language"},
    "references": {"per_category", "filter", "metric_queries"},
    "protocols": {
        "use",
        "trials_per_participant",
        *(o for p in protocol_registry.PROTOCOLS.values() for o in p.options),
    },
    "participants": {
        "attention_check_rate",
        "min_response_ms",
        "max_participants",
        "time_limit_minutes",
        "judgements_per_unit",
        "comprehension",
        "repeat_rate",
        "allow_mobile",
    },
    "texts": {"consent", "instructions", "thank_you", *text_catalog.KEYS},
    "completion": {
        "code",
        "redirect_url",
        "screened_out_code",
        "screened_out_url",
        "failed_check_code",
        "failed_check_url",
        "failed_checks_limit",
        "redirect_seconds",
    },
    "demographics": {"questions", "ask_comment"},
}


def _expect(value: Any, typ: type | tuple[type, ...], key: str, fix: str) -> Any:
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise ConfigError(f"{key}: {fix}, got {value!r}")
    return value


def _components(raw: Any, key: str) -> tuple[Component, ...]:
    _expect(raw, list, key, f"write one [[{key}]] table per entry with at least a name")
    out = []
    for i, entry in enumerate(raw):
        where = f"{key}[{i}]"
        _expect(entry, dict, where, "must be a table with a name")
        if "name" not in entry:
            raise ConfigError(f"{where}: missing 'name'; e.g. name = \"efficientnet\"")
        opts = {k: v for k, v in entry.items() if k != "name"}
        out.append(Component(_expect(entry["name"], str, f"{where}.name", "must be a string"), opts))
    return tuple(out)


#: The TOML keys that set one StudyConfig field each: (section, key, field, type, what a valid value is).
_SCALARS: tuple[tuple[str, str, str, type | tuple[type, ...], str], ...] = (
    ("study", "seed", "seed", int, "must be an integer"),
    ("study", "k", "k", int, "must be an integer"),
    ("study", "language", "language", str, f"must be one of {', '.join(text_catalog.LANGUAGES)}"),
    ("references", "per_category", "references_per_category", int, "must be an integer"),
    ("references", "metric_queries", "metric_queries_per_category", int, "must be an integer (0: no metrics)"),
    ("protocols", "trials_per_participant", "trials_per_participant", int, "must be an integer"),
    ("protocols", "rating_item_ticks", "rating_item_ticks", bool, "must be true or false"),
    ("participants", "attention_check_rate", "attention_check_rate", (int, float), "must be a number"),
    ("participants", "min_response_ms", "min_response_ms", int, "must be an integer (milliseconds)"),
    ("participants", "max_participants", "max_participants", int, "must be an integer (0: unlimited)"),
    ("participants", "time_limit_minutes", "time_limit_minutes", int, "must be an integer (minutes)"),
    ("participants", "judgements_per_unit", "judgements_per_unit", int, "must be an integer (0: no target)"),
    ("participants", "comprehension", "comprehension", int, "must be an integer (practice screens, 0: none)"),
    ("participants", "repeat_rate", "repeat_rate", (int, float), "must be a number (share of trials)"),
    ("participants", "allow_mobile", "allow_mobile", bool, "must be true or false"),
    ("completion", "code", "completion_code", str, "must be a string"),
    ("completion", "redirect_url", "redirect_url", str, "must be a URL string"),
    ("completion", "screened_out_code", "screened_out_code", str, "must be a string"),
    ("completion", "screened_out_url", "screened_out_url", str, "must be a URL string"),
    ("completion", "failed_check_code", "failed_check_code", str, "must be a string"),
    ("completion", "failed_check_url", "failed_check_url", str, "must be a URL string"),
    ("completion", "failed_checks_limit", "failed_checks_limit", int, "must be an integer"),
    ("completion", "redirect_seconds", "redirect_seconds", int, "must be an integer (seconds)"),
    ("demographics", "ask_comment", "ask_comment", bool, "must be true or false"),
)


def load_config(path: str | Path) -> StudyConfig:
    """Read and validate a study TOML file; relative catalog paths are relative to the file."""
    path = Path(path)
    raw = _read_toml(path)
    _check_sections(raw)
    kw: dict[str, Any] = {
        **_study_and_catalog(raw, path),
        **_scalars(raw),
        **_references_and_protocols(raw),
        **_conditions(raw),
        **_texts(raw),
        "demographics": _questions(raw),
    }
    try:
        return StudyConfig(**kw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    """The file's TOML tables, or a :class:`ConfigError` naming the file."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such study config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def _check_sections(raw: dict[str, Any]) -> None:
    """Refuse unknown sections and unknown keys, listing the valid ones."""
    for section, value in raw.items():
        if section in ("methods", "segmenters"):
            continue
        if section not in _SECTIONS:
            valid = ", ".join(sorted([*_SECTIONS, "methods", "segmenters"]))
            raise ConfigError(f"[{section}]: unknown section; valid: {valid}")
        _expect(value, dict, f"[{section}]", "must be a table")
        for key in value:
            if key not in _SECTIONS[section]:
                raise ConfigError(
                    f"{section}.{key}: unknown key; valid in [{section}]: {', '.join(sorted(_SECTIONS[section]))}"
                )


def _get(raw: dict[str, Any], section: str, key: str, default: Any = None) -> Any:
    return raw.get(section, {}).get(key, default)


def _study_and_catalog(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    """The required name and catalog (a relative catalog path is relative to the TOML file)."""
    name, catalog = _get(raw, "study", "name"), _get(raw, "study", "catalog")
    if not name or not catalog:
        raise ConfigError('study.name and study.catalog are required: [study] name = "..." catalog = "manifest.csv"')
    catalog_path = Path(_expect(catalog, str, "study.catalog", "must be a path string"))
    if not catalog_path.is_absolute():
        catalog_path = (path.parent / catalog_path).resolve()
    return {"name": _expect(name, str, "study.name", "must be a string"), "catalog": str(catalog_path)}


def _scalars(raw: dict[str, Any]) -> dict[str, Any]:
    """The fields of :data:`_SCALARS` the file sets, type-checked."""
    out = {}
    for section, key, field_name, typ, fix in _SCALARS:
        value = _get(raw, section, key)
        if value is not None:
            out[field_name] = _expect(value, typ, f"{section}.{key}", fix)
    return out


def _references_and_protocols(raw: dict[str, Any]) -> dict[str, Any]:
    """``[references] filter`` and ``[protocols] use``, when given."""
    out: dict[str, Any] = {}
    flt = _get(raw, "references", "filter")
    if flt is not None:
        _expect(flt, dict, "references.filter", 'must be a table like { view = "packshot" }')
        out["reference_filter"] = {str(k): str(v) for k, v in flt.items()}
    use = _get(raw, "protocols", "use")
    if use is not None:
        valid = list(protocol_registry.NAMES)
        out["protocols"] = tuple(_expect(use, list, "protocols.use", f"must be a list from {valid}"))
    return out


def _conditions(raw: dict[str, Any]) -> dict[str, Any]:
    """The ``[[methods]]`` and ``[[segmenters]]`` given."""
    return {key: _components(raw[key], key) for key in ("methods", "segmenters") if key in raw}


def _texts(raw: dict[str, Any]) -> dict[str, Any]:
    """``[texts]``: the study's own texts (consent, instructions, thank-you) and catalog overrides."""
    if "texts" not in raw:
        return {}
    given = {k: _expect(v, str, f"texts.{k}", "must be a (Markdown) string") for k, v in raw["texts"].items()}
    own = {f.name for f in fields(Texts)}
    return {
        "texts": Texts(**{k: v for k, v in given.items() if k in own}),
        "text_overrides": {k: v for k, v in given.items() if k not in own},
    }


def _questions(raw: dict[str, Any]) -> tuple[Question, ...]:
    """``[demographics] questions``: each a table { key, label, options }."""
    questions = _get(raw, "demographics", "questions", [])
    _expect(questions, list, "demographics.questions", "must be a list of { key, label, options } tables")
    out = []
    for i, q in enumerate(questions):
        where = f"demographics.questions[{i}]"
        _expect(q, dict, where, "must be a table { key, label, options }")
        missing = {"key", "label", "options"} - set(q)
        if missing:
            raise ConfigError(f"{where}: missing {', '.join(sorted(missing))}")
        out.append(
            Question(
                _expect(q["key"], str, f"{where}.key", "must be a string"),
                _expect(q["label"], str, f"{where}.label", "must be a string"),
                tuple(str(o) for o in _expect(q["options"], list, f"{where}.options", "must be a list")),
            )
        )
    return tuple(out)
