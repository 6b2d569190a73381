"""Reading a study TOML file (``lookalike build --config study.toml``; the documented example
is ``survey/example_study.toml``) into a :class:`~survey.study.config.StudyConfig`.

Unknown sections and keys are refused with the valid ones listed; every error names the file
and the key (``study.k: must be an integer, got 'five'``).
"""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from survey import protocols as protocol_registry
from survey.study import texts as text_catalog
from survey.study.config import Component, ConfigError, Question, StudyConfig, Texts
from survey.study.stopping import PrimaryComparison, StoppingConfigError, StoppingRule

_SECTIONS: dict[str, set[str]] = {
    "study": {"name", "catalog", "seed", "k", "language"},
    "references": {"per_category", "filter", "metric_queries"},
    "protocols": {
        "use",
        "trials_per_participant",
        *(o for p in protocol_registry.PROTOCOLS.values() if p.table == "protocols" for o in p.options),
    },
    "swipe": set(protocol_registry.get_protocol("swipe").options),
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
    "primary": {"protocol", "a", "b"},
    "stopping": {"rule", "alpha", "looks", "spending", "futility_z", "planned_participants"},
    # the token is deliberately not a key: it comes from $PROLIFIC_TOKEN only
    "prolific": {"study_id"},
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
    ("protocols", "pairwise_assignment", "pairwise_assignment", str, 'must be "uniform" or "adaptive"'),
    ("protocols", "pairwise_adaptive_floor", "pairwise_adaptive_floor", int, "must be an integer (judgements)"),
    ("swipe", "pool_per_category", "swipe_pool_per_category", int, "must be an integer (products per category)"),
    ("swipe", "max_swipes", "swipe_max_swipes", int, "must be an integer (swipes without a like per round)"),
    ("swipe", "reference", "swipe_reference", str, 'must be "first_like" or "pick"'),
    ("swipe", "pick_after", "swipe_pick_after", int, "must be an integer (likes before the pick)"),
    ("swipe", "rate_similarity", "swipe_rate_similarity", bool, "must be true or false"),
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
    ("prolific", "study_id", "prolific_study_id", str, "must be the study's id on Prolific, a string"),
)


def load_config(path: str | Path) -> StudyConfig:
    """Read and validate a study TOML file; relative catalog paths are relative to the file."""
    path = Path(path)
    raw = _read_toml(path)
    try:
        _check_sections(raw)
        kw: dict[str, Any] = {
            **_study_and_catalog(raw, path),
            **_scalars(raw),
            **_references_and_protocols(raw),
            **_conditions(raw),
            **_texts(raw),
            "demographics": _questions(raw),
            **_primary_and_stopping(raw),
        }
        return StudyConfig(**kw)
    except (ConfigError, StoppingConfigError) as exc:
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
            if section == "prolific" and key in ("token", "api_token"):
                raise ConfigError(
                    f"prolific.{key}: the API token is never read from a file (a study file gets shared and "
                    "committed); remove it here and export PROLIFIC_TOKEN=... in the shell that runs lookalike"
                )
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


def _primary_and_stopping(raw: dict[str, Any]) -> dict[str, Any]:
    """``[primary]`` (protocol, a, b) and ``[stopping]``, type-checked; their ranges are checked by
    :mod:`survey.study.stopping`."""
    out: dict[str, Any] = {}
    if "primary" in raw:
        p = raw["primary"]
        missing = {"protocol", "a", "b"} - set(p)
        if missing:
            raise ConfigError(
                f'[primary]: missing {", ".join(sorted(missing))}; e.g. protocol = "rating" a = '
                '"efficientnet/u2netp" b = "ssim/none"'
            )
        out["primary"] = PrimaryComparison(
            *(_expect(p[k], str, f"primary.{k}", "must be a string") for k in ("protocol", "a", "b"))
        )
    if "stopping" in raw:
        s = raw["stopping"]
        if "rule" not in s:
            raise ConfigError('[stopping]: missing rule; rule = "group-sequential" or "anytime"')
        kw: dict[str, Any] = {"rule": _expect(s["rule"], str, "stopping.rule", "must be a string")}
        if "alpha" in s:
            kw["alpha"] = float(_expect(s["alpha"], (int, float), "stopping.alpha", "must be a number"))
        if "looks" in s:
            looks = _expect(s["looks"], list, "stopping.looks", "must be a list of participant numbers")
            kw["looks"] = tuple(_expect(n, int, "stopping.looks", "must hold integers") for n in looks)
        if "spending" in s:
            kw["spending"] = _expect(s["spending"], str, "stopping.spending", "must be a string")
        if "futility_z" in s:
            kw["futility_z"] = float(_expect(s["futility_z"], (int, float), "stopping.futility_z", "must be a number"))
        if "planned_participants" in s:
            kw["planned_participants"] = _expect(
                s["planned_participants"], int, "stopping.planned_participants", "must be an integer"
            )
        out["stopping"] = StoppingRule(**kw)
    return out
