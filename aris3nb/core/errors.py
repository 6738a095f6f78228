"""The error hierarchy of aris3nb.

Every expected failure is an ``Aris3nbError``; the CLI catches that one type, prints
``FAILED: <message>`` on one line and exits with the error's ``exit_code``.
Third-party errors (SQLAlchemy, OSError, subprocess, httpx) are translated into these
at one boundary, with ``raise ... from exc``, and their messages never carry a password.

    Aris3nbError                      base; exit code 1 unless a subclass says otherwise
    ├── UsageError                    exit 2: the command could not act on its input
    │   ├── InvalidDatabaseUrl        a --database-url / DATABASE_URL that cannot be parsed
    │   ├── InvalidSettings           an environment setting that does not validate
    │   ├── InvalidBaseUrl            a --base-url that is not http(s)://HOST[:PORT][/PREFIX]
    │   ├── ManifestUnreadable        a manifest that is missing, empty or not JSON
    │   ├── DrillDisabled             OPS_ENABLE_BACKUP_DRILL is not true
    │   ├── EvidenceUnreadable        an evidence.json (or the path to it) that cannot be read as one
    │   └── SigningKeyError           a key file that cannot be read, is not Ed25519, or is in the way
    ├── DatabaseUnavailable           exit 2: the database cannot be reached or refused us
    ├── MigrationError                exit 1: an Alembic operation failed
    ├── SeedError                     exit 1: seeding could not complete
    ├── ManifestInvalid               exit 1: a backup that does not match its manifest
    ├── BackupError                   exit 1: a backup could not be made or restored
    │   ├── BackupExists              exit 1: the backup name is taken (the old one is untouched)
    │   ├── NoBackup                  exit 1: no backup of the target to restore or drill (each one found, and why not)
    │   ├── SourceMismatch            exit 1: a backup named for a target it was not made from (needs a second flag)
    │   └── SessionsInTheWay          exit 1: other sessions on a restore's target hold locks or transactions
    ├── DeadlineExceeded              exit 1: a long operation ran past its deadline
    ├── DrillFailed                   exit 1: the restore drill ran and failed (report written)
    ├── ProbeFailed                   exit 1: an HTTP probe got no usable answer
    ├── GateFailed                    exit 1: the gate's verdict is FAIL (``checks`` names why)
    ├── IntegrityFailed               exit 1: an integrity invariant does not hold (``checks``)
    ├── PhaseFailed                   exit 1: a playbook phase's verdict is FAIL (``checks`` names why)
    ├── RunFailed                     exit 1: a playbook run ended NO-GO (its bundle is written)
    ├── EvidenceSealRefused           exit 1: a run folder that cannot be sealed as it stands
    └── EvidenceInvalid               exit 1: a run or chain of runs that does not verify (``problems``)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class Aris3nbError(Exception):
    """Base of every expected aris3nb failure."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(Aris3nbError):
    """Raised when input given to a command cannot be acted on (exit 2)."""

    exit_code = 2


class InvalidDatabaseUrl(UsageError):
    """Raised when a database URL cannot be parsed or names an unsupported engine."""


class InvalidSettings(UsageError):
    """Raised when an environment setting does not validate."""


class DatabaseUnavailable(Aris3nbError):
    """Raised when the database cannot be reached, or refuses the connection (exit 2)."""

    exit_code = 2


class MigrationError(Aris3nbError):
    """Raised when an Alembic upgrade or downgrade fails."""


class SeedError(Aris3nbError):
    """Raised when seed data cannot be written (for example into a non-empty database)."""


class ManifestUnreadable(UsageError):
    """Raised when a manifest cannot be read as a JSON object (missing, empty, truncated)."""


class ManifestInvalid(Aris3nbError):
    """Raised when a backup does not match its manifest; ``problems`` lists each finding."""

    def __init__(self, path: object, problems: list[str]) -> None:
        first = problems[0] if problems else "unknown problem"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"backup {path} is invalid: {first}{more}")
        self.problems = problems


class BackupError(Aris3nbError):
    """Raised when a backup cannot be created or restored; the message says what to do."""


class BackupExists(BackupError):
    """Raised when a backup of the same name exists; the existing one is left untouched."""


class NoBackup(BackupError):
    """Raised when no backup of the target can be restored or drilled; the message lists
    every backup found and why each was passed over."""


class SourceMismatch(BackupError):
    """Raised when a backup named for a restore was made from another database than the
    target; ``--allow-other-source`` confirms it on purpose (and the log records it)."""


class SessionsInTheWay(BackupError):
    """Raised before a restore when other sessions on the target hold locks or an open
    transaction; ``--terminate-sessions`` ends them (and the log records which)."""


class DrillDisabled(UsageError):
    """Raised when a drill is asked for while OPS_ENABLE_BACKUP_DRILL is not true."""


class DrillFailed(Aris3nbError):
    """Raised after a drill that ran and failed; its report has been written."""

    def __init__(self, message: str, report_path: Path | str, document: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        #: Where the report is: a local path, or the ``s3://`` address of one uploaded.
        self.report_path = report_path
        #: The report itself (where its file is not at hand: uploaded to a bucket).
        self.document = document


class DeadlineExceeded(Aris3nbError):
    """Raised when a long operation runs past its deadline (a drill's ``timeout`` reason)."""


class InvalidBaseUrl(UsageError):
    """Raised when a service base URL cannot be used (not http or https, no host, bad port)."""


class ProbeFailed(Aris3nbError):
    """Raised when an HTTP request to the service fails: refused, timed out, or an unexpected status."""


class VerdictFailed(Aris3nbError):
    """A FAIL verdict, raised after its evidence is written and shown: an expected outcome, not
    a fault. ``checks`` holds the names of the checks that failed (or warned, under strict)."""

    def __init__(self, message: str, checks: list[str]) -> None:
        super().__init__(message)
        self.checks = checks

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for it in a notebook (and so on its evidence page): the verdict and
        its reasons in one line; a traceback through aris3nb's own files would only hide them."""
        return [f"{type(self).__name__}: {self}"]


class GateFailed(VerdictFailed):
    """Raised (after the gate's report is written and shown) when its verdict is FAIL."""


class IntegrityFailed(VerdictFailed):
    """Raised (after the integrity report is written and shown) when an invariant does not hold."""


class EvidenceUnreadable(UsageError):
    """Raised when an evidence bundle cannot be read at all: no such path, no evidence.json,
    not JSON, not an ``aris3nb.evidence`` document, or a version this code does not know."""


class SigningKeyError(UsageError):
    """Raised when a signing or public key file cannot be read or is not an Ed25519 PEM key,
    and when ``evidence keygen`` would overwrite an existing file."""


class EvidenceSealRefused(Aris3nbError):
    """Raised when a run folder cannot be sealed: it holds a symbolic link or a special file,
    is sealed already, or its document does not have the bundle's structure."""


class EvidenceInvalid(Aris3nbError):
    """Raised for a run (or chain of runs) whose evidence does not verify; ``problems`` lists
    each finding, naming the file, field or run it is about."""

    def __init__(self, where: object, problems: list[str]) -> None:
        first = problems[0] if problems else "unknown problem"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"evidence {where} does not verify: {first}{more}")
        self.problems = problems


class PhaseFailed(VerdictFailed):
    """Raised by a phase notebook's last cell, after its evidence is displayed, when the
    phase's verdict is FAIL: the notebook run fails, so nobody can mistake it for green."""


class RunFailed(Aris3nbError):
    """Raised (after its evidence bundle is sealed) when a playbook run ends NO-GO."""

    def __init__(self, message: str, run_dir: object, exit_code: int = 1) -> None:
        super().__init__(message)
        self.run_dir = run_dir
        self.exit_code = exit_code


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt is (the CLI's handler): the same stop,
    except that only aris3nb's own process received it, never its kernels."""
