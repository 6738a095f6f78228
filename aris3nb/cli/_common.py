"""What every ``aris3nb`` subcommand shares: the consoles, the common options, the settings,
and how a failure that escaped the library becomes one line and an exit code.

Each command group is a module of this package with a ``register(app)``; each command only
parses, calls one library function, prints, and lets ``Aris3nbError`` reach ``main``.
"""

from __future__ import annotations

import errno
import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from aris3nb.core.errors import Aris3nbError, UsageError
from aris3nb.core.redact import redact_text
from aris3nb.core.settings import Settings, load_settings

if TYPE_CHECKING:
    from aris3nb.targets.profile import LoadedProfile

out = Console()
err = Console(stderr=True)
#: The width of a table written to a log (not a terminal): rich's 80 columns would wrap a
#: reason over dozens of lines of a CI log.
LOG_WIDTH = 160


def table_console() -> Console:
    """Standard output for a table; in a log (not a terminal) wider than the usual 80 columns."""
    return out if out.is_terminal else Console(width=LOG_WIDTH)


DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL of the ARIS3 database (sqlite:///PATH or postgresql://USER@HOST/DB). "
        "Default: DATABASE_URL, else the embedded default's SQLite file under OPS_ARTIFACTS_DIR.",
        show_default=False,
        metavar="URL",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON result instead of text.")]
TargetOption = Annotated[
    Path | None,
    typer.Option(
        "--target",
        help="The target profile (aris3nb.toml, or a folder holding it, or a pyproject.toml with [tool.aris3nb]). "
        "Default: the one found from the current folder upward; none: the bundled reference. Inside another ARIS3 "
        "repository without a profile the command refuses (see `aris3nb init`).",
        show_default=False,
        metavar="PATH",
    ),
]
RetainDaysOption = Annotated[
    int | None,
    typer.Option(
        "--retain-days",
        min=1,
        help="On an s3:// place: lock every object written for N days (Object Lock; the bucket must have it, "
        "exit 2 otherwise). Default OPS_RETAIN_DAYS, else none.",
        show_default=False,
        metavar="N",
    ),
]
RetentionModeOption = Annotated[
    str | None,
    typer.Option(
        "--retention-mode",
        help="GOVERNANCE (deletable with s3:BypassGovernanceRetention) or COMPLIANCE (by nobody until the date). "
        "Default OPS_RETENTION_MODE, else GOVERNANCE.",
        show_default=False,
        metavar="MODE",
    ),
]
EmbeddedOption = Annotated[
    bool,
    typer.Option(
        "--embedded",
        help="Judge the embedded default (the bundled reference) on purpose, also inside another ARIS3 repository.",
    ),
]


def target_profile(target: Path | None, embedded: bool) -> LoadedProfile:
    """The profile the command judges its target with (refusing a false green: see
    ``aris3nb.targets.profile.resolve_profile``); ``--embedded`` with a profile other than the
    built-in reference is contradictory (the embedded default is the reference)."""
    from aris3nb.targets.profile import load_target_profile, resolve_profile

    if embedded and target is None:  # on purpose, whatever profile the folder holds
        return load_target_profile(None)
    loaded = resolve_profile(target, embedded=embedded)
    if embedded and not loaded.is_reference:
        raise UsageError(
            f"--embedded judges the bundled reference; the target profile {loaded.label} describes "
            "another target: give one or the other"
        )
    return loaded


def say(text: str) -> None:
    """One line for people on standard output, printed as is (no markup, no wrapping)."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)


@functools.cache
def settings() -> Settings:
    return load_settings()


def database_url(option: str | None) -> str:
    return option or settings().default_database_url()


#: An ``OSError`` with one of these says the place itself is unusable (unwritable, a file
#: where a folder must be, a symbolic link in the way, missing): input the command could not
#: act on, exit 2. Any other (a full disk, an I/O error) happened while the work ran: exit 1.
UNUSABLE_PLACE_ERRNOS = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EEXIST,
        errno.ELOOP,
        errno.ENOENT,
        errno.ENAMETOOLONG,
    }
)
#: Of those, the ones that cannot mean "a file of the input is missing" (which a command may
#: rightly judge as a failed check, exit 1): only these promote a library error to exit 2.
_UNWRITABLE_ERRNOS = UNUSABLE_PLACE_ERRNOS - {errno.ENOENT, errno.ENAMETOOLONG}


def os_error_failure(exc: OSError) -> Aris3nbError:
    """The one-line failure for an ``OSError`` that escaped the library (``main`` prints it):
    ``cannot write <path>: <reason>``, exit 2 for an unusable place, 1 otherwise (a full disk
    mid-operation: it ran and failed); masked like everything else printed."""
    path = exc.filename if exc.filename is not None else exc.filename2
    where = f" {os.fsdecode(path)}" if path is not None else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    message = redact_text(f"cannot write{where}: {reason}")
    if exc.errno in UNUSABLE_PLACE_ERRNOS:
        return UsageError(message)
    return Aris3nbError(message)


def failure_exit_code(exc: Aris3nbError) -> int:
    """The exit code of a failure: its own, except that a failure the library raised from an
    unwritable or wrong-typed place (``raise ... from`` a permission error, a file where a
    folder must be, a symbolic link) is exit 2 in every command, whichever layer noticed it."""
    cause = exc.__cause__
    if exc.exit_code == 1 and isinstance(cause, OSError) and cause.errno in _UNWRITABLE_ERRNOS:
        return 2
    return exc.exit_code


def run_outcome(decision: str, verdict: str) -> str:
    """A run's outcome in one phrase: ``NO-GO (FAIL)``; an interrupted run is only INTERRUPTED
    (it was stopped, not judged: its internal FAIL is not a verdict)."""
    return decision if decision == "INTERRUPTED" else f"{decision} ({verdict})"
