"""A small typed registry, filled by a decorator (one per kind: methods, segmenters)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from similarity.errors import UserError, WeightsUnavailable

T = TypeVar("T")


class UnknownName(UserError, KeyError):
    """A name no entry of the registry has; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


class UnknownOption(UserError, TypeError):
    """An option an entry does not take; the message lists the options it does take."""


class InvalidOption(UserError, ValueError):
    """An option value an entry cannot use; the message names the valid values."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered component. ``factory`` is called as ``factory(offline=..., **options)``:
    ``offline`` forbids weight downloads. ``check(offline=...)`` returns the weights status of the
    defaults ('present' or 'downloads on first use') and raises :class:`WeightsUnavailable` when they
    cannot run."""

    name: str
    factory: Callable[..., T]
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)
    weights: str = ""  # human-readable weights source
    preprocessing: str = ""  # input size and normalisation, in words
    check: Callable[..., str] | None = None


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self,
        name: str,
        *,
        description: str,
        defaults: dict[str, Any] | None = None,
        weights: str = "",
        preprocessing: str = "",
        check: Callable[..., str] | None = None,
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = Entry(name, factory, description, dict(defaults or {}), weights, preprocessing, check)
            return factory

        return deco

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownName(f"unknown {self.kind} '{name}'; valid: {', '.join(self.names())}") from None

    def check_options(self, name: str, options: Mapping[str, Any]) -> None:
        """Raise :class:`UnknownName` or :class:`UnknownOption` unless ``name`` exists and takes
        every key of ``options``; constructs nothing (cheap, for validating a study up front)."""
        e = self.entry(name)
        unknown = set(options) - set(e.defaults)
        if unknown:
            raise UnknownOption(
                f"{self.kind} '{name}' has no option(s) {', '.join(sorted(unknown))}; "
                f"options: {', '.join(sorted(e.defaults)) or 'none'}"
            )

    def status(self, name: str, *, offline: bool = True) -> str:
        """Whether ``name`` can run here with its default options: 'ready', 'ready (weights
        download on first use)', or 'UNAVAILABLE: <why and how to fix>'."""
        e = self.entry(name)
        if e.check is None:
            return "ready"
        try:
            weights = e.check(offline=offline)
        except WeightsUnavailable as exc:  # missing weights are a status; any other error is a bug and raises
            return f"UNAVAILABLE: {exc}"
        return "ready" if weights == "present" else "ready (weights download on first use)"

    def create(self, name: str, *, offline: bool = True, **overrides: Any) -> T:
        """The component ``name`` with ``overrides`` over its defaults. Weights that are not on
        this machine are downloaded (announced) only with ``offline=False``."""
        self.check_options(name, overrides)
        return self._entries[name].factory(offline=offline, **{**self._entries[name].defaults, **overrides})
