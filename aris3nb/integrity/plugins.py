"""Invariants from other packages: entry points of the group ``aris3nb.invariants``.

A distribution declares, e.g. in its ``pyproject.toml``::

    [project.entry-points."aris3nb.invariants"]
    "shop.no_negative_stock" = "shop_checks:no_negative_stock"

and a profile selects it by name (``plugins = ["shop.no_negative_stock"]``). Only selected
entry points are loaded. The object may be an ``Invariant``, a ``SqlCheck`` or ``FileCheck``,
anything with ``function`` and ``requires`` attributes, or a callable taking the
``IntegrityContext`` and returning an ``Outcome`` (its ``requires`` attribute, when it has
one, declares what it needs). The check is named after the entry point. A plug-in that is not
installed, fails to import, or is not of one of these shapes is a FAIL of a check with its
name and the reason — never a traceback, never silently dropped.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable
from typing import Any

from aris3nb.core.checks import Outcome, failed
from aris3nb.integrity.declarative import FileCheck, SqlCheck, file_invariant, sql_invariant
from aris3nb.integrity.invariants import IntegrityContext, Invariant

ENTRY_POINT_GROUP = "aris3nb.invariants"


def plugin_invariant(name: str) -> Invariant:
    """The invariant the entry point ``name`` provides; one that cannot be had becomes an
    invariant that FAILs with the reason."""
    found = {
        entry.value: entry for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if entry.name == name
    }
    if not found:
        installed = sorted({entry.name for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)})
        return _unusable(
            name,
            f"no entry point named {name!r} in group {ENTRY_POINT_GROUP} is installed "
            f"(installed: {', '.join(installed) or 'none'})",
            None,
        )
    if len(found) > 1:
        return _unusable(
            name, f"entry point {name!r} is declared by several distributions ({', '.join(sorted(found))})", None
        )
    [entry] = found.values()
    try:
        provided = entry.load()
    except Exception as exc:  # noqa: BLE001 -- whatever a plug-in raises on import is its failure, named
        return _unusable(
            name,
            f"failed to load {entry.value}: {type(exc).__name__}: {_first_line(exc)}",
            entry.value,
            error=type(exc).__name__,
        )
    try:
        return _as_invariant(name, provided)
    except (TypeError, ValueError) as exc:
        return _unusable(name, f"{entry.value} is not an invariant: {exc}", entry.value, error=type(exc).__name__)


def _as_invariant(name: str, provided: Any) -> Invariant:
    if isinstance(provided, FileCheck):
        return file_invariant(provided, name)
    if isinstance(provided, SqlCheck):
        return sql_invariant(provided, name)
    if isinstance(provided, Invariant) or (hasattr(provided, "function") and hasattr(provided, "requires")):
        return Invariant(name, provided.function, _names(provided.requires), getattr(provided, "description", "") or "")
    if callable(provided):
        return Invariant(name, provided, _names(getattr(provided, "requires", ())))
    raise TypeError(f"a {type(provided).__name__}, not a callable, Invariant, SqlCheck or FileCheck")


def _names(requires: Any) -> tuple[str, ...]:
    if (
        isinstance(requires, str)
        or not isinstance(requires, Iterable)
        or not all(isinstance(item, str) for item in requires)
    ):
        raise TypeError("its requires is not a list of 'table' / 'table.column' names")
    return tuple(requires)


def _unusable(name: str, reason: str, value: str | None, **evidence: Any) -> Invariant:
    def fail(ctx: IntegrityContext) -> Outcome:
        return failed(f"plug-in {name}: {reason}", plugin=name, entry_point=value, group=ENTRY_POINT_GROUP, **evidence)

    return Invariant(name, fail, (), f"The plug-in {name} could not be used.")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
