"""A small typed registry, filled by a decorator (one per kind: methods, segmenters)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class UnknownName(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    factory: Callable[..., T]
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)
    weights: str = ""  # human-readable weights source
    preprocessing: str = ""  # input size and normalisation, in words
    check: Callable[[], str] | None = None  # weights status of the defaults; raises when they cannot run


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, *, description: str, defaults: dict[str, Any] | None = None,
                 weights: str = "", preprocessing: str = "",
                 check: Callable[[], str] | None = None) -> Callable[[Callable[..., T]], Callable[..., T]]:
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

    def status(self, name: str) -> str:
        """Whether ``name`` can run here with its default options: 'ready', 'ready (weights
        download on first use)', or 'UNAVAILABLE: <why and how to fix>'."""
        e = self.entry(name)
        if e.check is None:
            return "ready"
        try:
            weights = e.check()
        except RuntimeError as exc:  # WeightsUnavailable and kin
            return f"UNAVAILABLE: {exc}"
        return "ready" if weights == "present" else "ready (weights download on first use)"

    def create(self, name: str, **overrides: Any) -> T:
        e = self.entry(name)
        unknown = set(overrides) - set(e.defaults)
        if unknown:
            raise TypeError(f"{self.kind} '{name}' has no option(s) {', '.join(sorted(unknown))}; "
                            f"options: {', '.join(sorted(e.defaults)) or 'none'}")
        return e.factory(**{**e.defaults, **overrides})
