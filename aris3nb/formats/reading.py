"""How a reader judges a document with its model: ``validate`` checks a parsed document (a
version 1 written as ``format_version`` taken where the format allows it), and
``problems_of`` turns pydantic's ``ValidationError`` into the lines a person reads, one per field:

    manifest.json: tables.stock_items.rows: Input should be a valid integer

Each line names the file and the field's path (a list's element by its ``name`` or ``phase``
when it has a plain one, else by its position) and what is wrong, never the value found: a
field could hold a secret. Format and version are the readers' to check first (their refusal
of another version is their own line); what no model can say (digests, paths, links) too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

#: The older spelling of the version field (``aris3nb.core.files.OLD_VERSION_FIELD``): manifests
#: and drill reports written before 2026-11-30.
OLD_VERSION_FIELD = "format_version"
#: The fields that name an element of a list in a field path (``tables.stock_items.rows``).
NAMING_FIELDS = ("name", "phase")
#: A name shown in a path: plain ASCII, no dot (a dot separates the path's steps).
_PLAIN = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
#: How many problems a one-line summary names before it counts the rest.
SHOWN = 3

M = TypeVar("M", bound=BaseModel)


class DocumentInvalid(ValueError):
    """A document its model refuses: ``problems``, one line each; ``str()`` is one line too."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(one_line(self.problems))


def one_line(problems: Sequence[str]) -> str:
    """The first problems and how many more, in one line."""
    shown = "; ".join(problems[:SHOWN])
    rest = len(problems) - SHOWN
    return shown + (f" (and {rest} more)" if rest > 0 else "")


def validate(model: type[M], document: Any, where: str) -> M:
    """``document`` as ``model``, or ``DocumentInvalid`` naming each field that is wrong;
    ``where`` names the file in each line (``manifest.json``). A model whose documents once
    spelled their version ``format_version`` (its class attribute ``reads_format_version``)
    takes that spelling when ``version`` is absent (the reader has refused both at once)."""
    if (
        getattr(model, "reads_format_version", False)
        and isinstance(document, dict)
        and "version" not in document
        and OLD_VERSION_FIELD in document
    ):
        document = {("version" if k == OLD_VERSION_FIELD else k): v for k, v in document.items()}
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise DocumentInvalid(problems_of(exc, where, document)) from None


def problems_of(error: ValidationError, where: str, document: Any) -> list[str]:
    """One line per field ``error`` names: ``<where>: <field path>: <what is wrong>``. The
    alternatives of one field (a value that is neither a list nor null) make one line."""
    by_path: dict[str, list[str]] = {}
    for item in error.errors(include_input=False, include_url=False, include_context=False):
        message = _plain_words(str(item["msg"]).splitlines()[0] if item["msg"] else str(item["type"]))
        path = field_path(item["loc"], document, missing=item["type"] == "missing")
        messages = by_path.setdefault(path, [])
        if message not in messages:
            messages.append(message)
    for path, messages in by_path.items():  # a field that may be null, wrong inside: what is wrong inside
        if NOT_NULL in messages and any(p.startswith(f"{path}.") for p in by_path if path):
            messages.remove(NOT_NULL)
    return [
        f"{where}: {path or '(the document)'}: {_either(messages)}" for path, messages in by_path.items() if messages
    ]


#: pydantic's words for the ``None`` alternative of a field that may be null (or absent).
NOT_NULL = "Input should be None"


def _plain_words(message: str) -> str:
    """pydantic's message in the words of a JSON document (an object, not a dictionary)."""
    message = message.removeprefix("Value error, ")
    return re.sub(r"a valid dictionary( or instance of \w+)?", "an object", message)


def _either(messages: list[str]) -> str:
    prefix = "Input should be "
    if len(messages) > 1 and all(m.startswith(prefix) for m in messages):
        return prefix + " or ".join(m.removeprefix(prefix) for m in messages)
    return "; or ".join(messages)


def field_path(loc: Sequence[int | str], document: Any, *, missing: bool = False) -> str:
    """The dotted path of ``loc`` in ``document``: a list's element named by its plain
    ``name`` (or ``phase``) when it has one, a key that is not plain escaped (one line), and
    the labels pydantic gives a union's alternatives (``str``, ``list[...]``) left out: a step
    the document does not hold is one only when it is the field found ``missing``."""
    steps: list[str] = []
    node: Any = document
    for number, step in enumerate(loc):
        if isinstance(node, dict) and isinstance(step, str) and step in node:
            steps.append(_key(step))
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
            steps.append(_element_name(node) or str(step))
        elif missing and number == len(loc) - 1:
            steps.append(_key(str(step)))
    return ".".join(steps)


def _key(step: str) -> str:
    return step if _PLAIN.match(step) else ascii(step)[:42]


def _element_name(element: Any) -> str | None:
    if isinstance(element, dict):
        for key in NAMING_FIELDS:
            value = element.get(key)
            if isinstance(value, str) and _PLAIN.match(value):
                return value
    return None
