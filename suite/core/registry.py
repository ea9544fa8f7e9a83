"""registry: named components looked up by kind ("activation", "model", "procedure", ...).

A new technique is one decorated function; nothing else needs an edit. Names that Keras
already knows are resolved through Keras by the technique that owns the kind; this registry
only holds what the suite adds. An entry may carry metadata (`register(kind, settings=...)`),
e.g. the study settings a procedure reads or the metrics a probe records.

Kinds in use: dataset, data_view, model, activation, initializer, optimizer, augmentation,
probe, procedure, executor, setting, metric, report_section.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable

_REGISTRY: dict[str, dict[str, Callable]] = {}
_META: dict[tuple[str, str], dict] = {}
# Parametric names such as "normal_0.01": (kind, compiled pattern, factory(match), example).
_PATTERNS: list[tuple[str, re.Pattern, Callable, str]] = []


class UnknownNameError(KeyError):
    """A name that no registry (and not Keras) knows; carries the known names."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, known
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(known)}")

    def __str__(self) -> str:  # KeyError would print the repr with quotes
        return self.args[0]


@contextlib.contextmanager
def scoped():
    """Whatever is registered inside is forgotten at the end: a test registers freely and leaves
    the registry as every other test expects it."""
    saved = {kind: dict(names) for kind, names in _REGISTRY.items()}, dict(_META), list(_PATTERNS)
    try:
        yield
    finally:
        _REGISTRY.clear()
        _REGISTRY.update(saved[0])
        _META.clear()
        _META.update(saved[1])
        _PATTERNS[:] = saved[2]


def register(kind: str, name: str | None = None, **meta):
    """Decorator: register `fn` under `kind` as `name` (default: the function's name), with
    optional metadata (read back with `metadata`)."""

    def decorate(fn: Callable) -> Callable:
        add(kind, name or fn.__name__, fn, **meta)
        return fn

    return decorate


def add(kind: str, name: str, value, **meta) -> None:
    """Register a plain value (not a function), e.g. a study setting or a metric."""
    entries = _REGISTRY.setdefault(kind, {})
    if name in entries:
        raise ValueError(f"{kind} {name!r} registered twice")
    entries[name] = value
    _META[(kind, name)] = meta


def metadata(kind: str, name: str) -> dict:
    """The metadata an entry was registered with ({} for none, or for a pattern's name)."""
    return dict(_META.get((kind, name), {}))


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


def list_patterns(kind: str) -> list[str]:
    """The regular expressions of a kind's parametric names (for the JSON Schema)."""
    return [pattern.pattern for pkind, pattern, _, _ in _PATTERNS if pkind == kind]


def lookup(kind: str, name: str) -> Callable | None:
    """The registered callable for `name`, or None. Patterns return a bound factory."""
    fn = _REGISTRY.get(kind, {}).get(name)
    if fn is not None:
        return fn
    for pkind, pattern, factory, _ in _PATTERNS:
        match = pattern.fullmatch(name) if pkind == kind and isinstance(name, str) else None
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
