"""Study configuration: what to build and how participants are served.

One frozen object, validated on construction; every error names the field and the fix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class ConfigError(ValueError):
    """An invalid study configuration; the message names the field and the fix."""


@dataclass(frozen=True)
class Component:
    """A method or segmenter by registry name, with options passed to its factory."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str) -> "Component":
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
class StudyConfig:
    name: str
    catalog: str
    methods: tuple[Component, ...] = (Component("ssim"), Component("efficientnet"))
    segmenters: tuple[Component, ...] = (Component("none"), Component("u2netp"))
    references_per_category: int = 3
    reference_filter: dict[str, str] = field(default_factory=dict)  # e.g. {"view": "packshot"}
    k: int = 5
    seed: int = 0
    trials_per_participant: int = 12
    completion_code: str | None = None

    def __post_init__(self) -> None:
        from similarity.methods import list_methods
        from similarity.segmenters import list_segmenters

        if not self.name.strip():
            raise ConfigError("name: give the study a non-empty name")
        if not self.methods:
            raise ConfigError("methods: list at least one method")
        if not self.segmenters:
            raise ConfigError("segmenters: list at least one segmenter")
        for key, comps, valid in (("methods", self.methods, list_methods()),
                                  ("segmenters", self.segmenters, list_segmenters())):
            names = [c.name for c in comps]
            for n in names:
                if n not in valid:
                    raise ConfigError(f"{key}: unknown name '{n}'; valid: {', '.join(valid)}")
            if len(set(names)) != len(names):
                raise ConfigError(f"{key}: '{names}' lists a name twice; each may appear once")
        for key in ("references_per_category", "k", "trials_per_participant"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be at least 1, got {getattr(self, key)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
