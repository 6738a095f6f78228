"""What the documents of docs/FORMAT.md share: digests, timestamps, run ids, the statuses and
verdicts of section 6.1, a check's result, the target profile as reports name it, and the two
bases every model derives from.

Readers keep fields they do not know (``Document``): FORMAT.md asks them to refuse an unknown
*version*, never an unknown field, and version 1 of the manifest, the drill report and
``evidence.json`` grew fields without a new version (``digest_method``, ``index``, ``profile``,
``warnings``, ``triggers``). A record whose fields FORMAT.md lists exhaustively (a file entry, a
chunk, a signature block) is a ``Record``: an unknown field there is a mistake, refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

#: ``sha256:`` and 64 lowercase hex digits (``aris3nb.core.files.DIGEST_PATTERN``, written for
#: JSON Schema's regular expressions: ``$`` there, as in pydantic's, is the end of the text).
DIGEST = r"^sha256:[0-9a-f]{64}$"
HEX64 = r"^[0-9a-f]{64}$"
#: ``aris3nb.core.ids.utc_text``: UTC, ISO 8601, milliseconds, ``Z``.
UTC_MILLIS = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
#: ``aris3nb.core.ids.RUN_ID_PATTERN``: UTC start time, then 6 random hex digits.
RUN_ID = r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$"

Digest = Annotated[str, StringConstraints(pattern=DIGEST)]
Hex64 = Annotated[str, StringConstraints(pattern=HEX64)]
UtcMillis = Annotated[str, StringConstraints(pattern=UTC_MILLIS)]
RunId = Annotated[str, StringConstraints(pattern=RUN_ID)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Seconds = Annotated[float, Field(ge=0)]
Text = Annotated[str, StringConstraints(min_length=1)]


def _an_integer(value: Any) -> Any:
    # JSON's true and 1.0 are not the version 1 (Python's True == 1.0 == 1 would let them through).
    if type(value) is not int:
        raise ValueError("a version is an integer")
    return value


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # "absent" is not a value a document can hold


T = TypeVar("T")
#: A field a writer leaves out or writes with a value, never ``null`` (``= None`` in a model
#: means absent): the fields version 1 grew, and those written only in some cases. pydantic
#: sees the value's type alone (an absent field takes its default unvalidated; ``null`` is
#: refused as the wrong type, without a Python call per value: a manifest has thousands of
#: chunks); type checkers see ``T | None``, what the attribute holds.
if TYPE_CHECKING:
    Omittable = Annotated[T | None, "absent or a value, never null"]
else:
    Omittable = Annotated[T, Field(json_schema_extra=_no_default)]

#: The version field of every format here: ``1``, the only one this code reads.
Version1 = Annotated[Literal[1], BeforeValidator(_an_integer)]

#: Section 6.1: the status of one check.
CheckStatus = Literal["PASS", "WARN", "FAIL", "SKIP"]
#: Section 6.1: the verdict over a list of checks.
Verdict = Literal["PASS", "PASS_WITH_WARNINGS", "FAIL"]
#: A run's or a phase's verdict (section 7.5): a verdict, or ``INTERRUPTED`` (stopped, not judged).
RunVerdict = Literal["PASS", "PASS_WITH_WARNINGS", "FAIL", "INTERRUPTED"]
Engine = Literal["sqlite", "postgresql"]


class Document(BaseModel):
    """A JSON document (or an open part of one): fields it does not declare are kept."""

    model_config = ConfigDict(strict=True, extra="allow", use_attribute_docstrings=True)


class Record(BaseModel):
    """A part of a document whose fields FORMAT.md lists exhaustively: no other field."""

    model_config = ConfigDict(strict=True, extra="forbid", use_attribute_docstrings=True)


class CheckResult(Record):
    """One check's result (section 6.1): the five fields every check report lists its checks with."""

    name: Text
    status: CheckStatus
    detail: str
    """One line: what a person reads first."""
    duration_sec: Seconds
    evidence: dict[str, Any]
    """Its keys depend on the check (section 6.2, 6.3 and 5.2 list them)."""


class StatusCounts(Record):
    """Checks per status; all four statuses always present."""

    PASS: NonNegativeInt
    WARN: NonNegativeInt
    FAIL: NonNegativeInt
    SKIP: NonNegativeInt


class ProfileExtends(Record):
    """The built-in profile a target profile builds on."""

    name: Text
    sha256: Digest


class ProfileRef(Document):
    """The target profile a document was made with (section 8), as ``LoadedProfile.as_evidence()``
    names it; ``{"name": "reference", "path": null, "sha256": null}`` for the bundled double.
    Run-level documents add ``code_revision`` (section 7.5)."""

    name: Text
    path: str | None
    """The profile's file; ``null`` for a built-in profile."""
    sha256: Digest | None
    """The digest of the profile's file; ``null`` for a built-in profile."""
    extends: Omittable[ProfileExtends] = None
    """Present only when the profile builds on a built-in one."""
    code_revision: Omittable[dict[str, Any]] = None
    """The target's code: ``git_commit``, ``git_dirty``, ``alembic_head`` (and
    ``alembic_head_error``); only in the integrity report's inputs and ``evidence.json``."""
