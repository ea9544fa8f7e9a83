"""registry: named components looked up by kind ("activation", "model", ...).

A new technique is one decorated function; nothing else needs an edit. Names that
Keras already knows are resolved through Keras by the modules that own those kinds;
this registry only holds what the suite adds.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_REGISTRY: dict[str, dict[str, Callable]] = {}
# Parametric names such as "normal_0.01": (kind, compiled pattern, factory(match)).
_PATTERNS: list[tuple[str, re.Pattern, Callable, str]] = []


class UnknownNameError(KeyError):
    """A name that no registry (and not Keras) knows; carries the known names."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, known
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(known)}")

    def __str__(self) -> str:  # KeyError would print the repr with quotes
        return self.args[0]


def register(kind: str, name: str | None = None):
    """Decorator: register `fn` under `kind` as `name` (default: the function's name)."""

    def decorate(fn: Callable) -> Callable:
        entries = _REGISTRY.setdefault(kind, {})
        key = name or fn.__name__
        if key in entries:
            raise ValueError(f"{kind} {key!r} registered twice")
        entries[key] = fn
        return fn

    return decorate


def add(kind: str, name: str, value) -> None:
    """Register a plain value (not a function), e.g. a study setting's check or a metric."""
    entries = _REGISTRY.setdefault(kind, {})
    if name in entries:
        raise ValueError(f"{kind} {name!r} registered twice")
    entries[name] = value


def entries(kind: str) -> dict:
    """Every registered name of one kind with its value (patterns excluded)."""
    return dict(_REGISTRY.get(kind, {}))


def register_pattern(kind: str, pattern: str, example: str):
    """Decorator: register a factory for names matching `pattern` (a full-match regex).

    The factory receives the `re.Match`; `example` is shown in lists of known names.
    """

    def decorate(fn: Callable) -> Callable:
        _PATTERNS.append((kind, re.compile(pattern), fn, example))
        return fn

    return decorate


def lookup(kind: str, name: str) -> Callable | None:
    """The registered callable for `name`, or None. Patterns return a bound factory."""
    fn = _REGISTRY.get(kind, {}).get(name)
    if fn is not None:
        return fn
    for pkind, pattern, factory, _ in _PATTERNS:
        match = pattern.fullmatch(name) if pkind == kind else None
        if match:
            return lambda *args, _m=match, **kw: factory(_m, *args, **kw)
    return None


def get(kind: str, name: str) -> Callable:
    """Like `lookup`, but an unknown name raises UnknownNameError listing known names."""
    fn = lookup(kind, name)
    if fn is None:
        raise UnknownNameError(kind, name, list_names(kind))
    return fn


def list_names(kind: str) -> list[str]:
    """Registered names of one kind, with one example per parametric pattern."""
    names = sorted(_REGISTRY.get(kind, {}))
    return names + [example for pkind, _, _, example in _PATTERNS if pkind == kind]

