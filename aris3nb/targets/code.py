"""The target's code, driven: its Alembic history and heads, upgrades and downgrades, the
revision a database is at, and Alembic's comparison of a database with the target's models.

``target_code(loaded)`` gives one interface for every target:

- the reference double (a profile without ``target.python``, or no profile): in-process, through
  ``aris3nb.migrate`` and ``aris3nb.schema``, as before profiles existed (no subprocess);
- any other target: in the target's OWN interpreter (``target.python``), where aris3nb is not
  installed, through ``probe.py`` beside this file (standard library, Alembic and SQLAlchemy
  only), run in the target's root. The database URL reaches it through the environment (the
  profile's ``target.database_url_env``), never on a command line; every call has a timeout,
  and a failure is a ``MigrationError`` with a one-line reason, password masked.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from aris3nb.core.errors import MigrationError, UsageError
from aris3nb.core.redact import redact_text, redact_url, url_password
from aris3nb.targets import warm
from aris3nb.targets.profile import LoadedProfile

PROBE = warm.PROBE
#: Reading the scripts (history, heads, the models' tables): imports the target's migrations.
READ_CODE_TIMEOUT_SEC = 120.0
#: An upgrade or downgrade of the whole history.
MIGRATE_TIMEOUT_SEC = 900.0
#: Reading a database (its revision, the comparison with the models).
READ_DATABASE_TIMEOUT_SEC = 180.0
#: Server-side bounds the probe's PostgreSQL sessions get (through PGOPTIONS).
STATEMENT_TIMEOUT_SEC = 30.0
LOCK_TIMEOUT_SEC = 15.0
CONNECT_TIMEOUT_SEC = 5


@dataclass(frozen=True)
class Revision:
    """One revision of a history: its id and the revisions it follows (two or more: a merge)."""

    revision: str
    down_revisions: tuple[str, ...] = ()


class TargetCode(ABC):
    """A target's migrations and models, whichever way they are reached."""

    name: str = "target"
    #: Patterns of model differences the profile accepts (``migrations.accepted_drift``).
    accepted_drift: tuple[str, ...] = ()

    @abstractmethod
    def history(self) -> list[Revision]:
        """Every revision, oldest (base) first, each after the revisions it follows."""

    @abstractmethod
    def heads(self) -> list[str]:
        """The revisions nothing follows, sorted."""

    @abstractmethod
    def upgrade(self, url: str | URL, revision: str = "head") -> None: ...

    @abstractmethod
    def downgrade(self, url: str | URL, revision: str = "base") -> None: ...

    @abstractmethod
    def current(self, url: str | URL) -> str | None:
        """The revision the database is at; None when it has never been migrated."""

    @abstractmethod
    def compare(self, url: str | URL) -> list[str]:
        """Alembic's comparison of the database with the models, one readable line per
        difference (``add_*``: in the models only; ``remove_*``: in the database only)."""

    @abstractmethod
    def tables(self) -> list[str]:
        """The models' table names."""

    @property
    def has_models(self) -> bool:
        """Whether there are models to compare with (a profile may name none)."""
        return True

    def head_revision(self) -> str:
        """The one head of the history; MigrationError when there is not exactly one."""
        found = self.heads()
        if len(found) != 1:
            raise MigrationError(f"expected one migration head, found {len(found)}: {', '.join(found)}")
        return found[0]

    def revisions_between(self, current: str | None, head: str | None = None) -> list[str]:
        """The revisions an ``upgrade head`` applies to a database at ``current``, oldest
        first; empty when it is at the head, or when ``current`` is not on this history (or
        not behind ``head``)."""
        history = self.history()
        follows = {rev.revision: rev.down_revisions for rev in history}
        head = head or self.head_revision()
        if head not in follows or (current is not None and current not in follows):
            return []

        def lineage(start: str) -> set[str]:
            seen: set[str] = set()
            todo = [start]
            while todo:
                rev = todo.pop()
                if rev not in seen and rev in follows:
                    seen.add(rev)
                    todo.extend(follows[rev])
            return seen

        applied = lineage(current) if current is not None else set()
        wanted = lineage(head)
        if current is not None and current not in wanted:
            return []
        return [rev.revision for rev in history if rev.revision in wanted - applied]

    def longest_revision(self) -> str | None:
        """The longest revision id of the history (the width ``alembic_version`` needs)."""
        return max((rev.revision for rev in self.history()), key=len, default=None)


class ReferenceCode(TargetCode):
    """The bundled ARIS3 contract's migrations and models (``aris3nb.contract``, which the
    reference double serves; or another script directory and models, as the gate's tests use),
    in aris3nb's own process."""

    name = "reference"

    def __init__(self, script_location: Path | None = None, metadata: sa.MetaData | None = None) -> None:
        self.script_location = script_location
        self._metadata = metadata

    @property
    def metadata(self) -> sa.MetaData:
        if self._metadata is not None:
            return self._metadata
        from aris3nb.contract.models import Base

        return Base.metadata

    def _script(self) -> Any:
        from alembic.script import ScriptDirectory

        from aris3nb import migrate

        return ScriptDirectory.from_config(migrate.alembic_config(script_location=self.script_location))

    def history(self) -> list[Revision]:
        revisions = reversed(list(self._script().walk_revisions("base", "heads")))
        return [Revision(rev.revision, _as_tuple(rev.down_revision)) for rev in revisions]

    def heads(self) -> list[str]:
        return sorted(self._script().get_heads())

    def upgrade(self, url: str | URL, revision: str = "head") -> None:
        from aris3nb import migrate

        migrate.upgrade(url, revision, self.script_location)

    def downgrade(self, url: str | URL, revision: str = "base") -> None:
        from aris3nb import migrate

        migrate.downgrade(url, revision, self.script_location)

    def current(self, url: str | URL) -> str | None:
        from aris3nb import migrate

        return migrate.current_revision(url)

    def compare(self, url: str | URL) -> list[str]:
        from aris3nb.schema import describe_difference, model_differences

        return [describe_difference(d) for d in model_differences(url, self.metadata)]

    def tables(self) -> list[str]:
        return sorted(self.metadata.tables)


class ProbedCode(TargetCode):
    """A target's code in its own interpreter, through ``probe.py`` (one process per call)."""

    def __init__(self, loaded: LoadedProfile) -> None:
        self.loaded = loaded
        self.target = loaded.profile.target
        self.name = loaded.profile.name
        self.accepted_drift = tuple(loaded.profile.migrations.accepted_drift)
        self.root = loaded.root
        self.python = _interpreter(loaded)
        self._history: tuple[list[Revision], list[str]] | None = None
        # Its warm probe gets ready (imports Alembic and SQLAlchemy) while the caller goes on.
        warm.start(self.python, self.root, self._environment("history", None), self.target.database_url_env)

    @property
    def has_models(self) -> bool:
        return bool(self.target.metadata)

    def probe(
        self,
        command: str,
        *,
        url: str | URL | None = None,
        revision: str | None = None,
        timeout: float = READ_CODE_TIMEOUT_SEC,
        compare: bool = False,
    ) -> dict[str, Any]:
        """One probe call; its answer, or MigrationError with the one-line reason."""
        request: dict[str, Any] = {
            "command": command,
            "alembic_ini": str(self.target.alembic_ini),
            "metadata": self.target.metadata,
            "url_env": self.target.database_url_env,
            "alembic_x_url": self.target.alembic_x_url,
            "revision": revision,
            "read_only": command in ("current", "compare"),
            "compare": compare,
        }
        secret = url_password(url) if url is not None else None
        what = _what(command, revision, url)
        env = self._environment(command, url)
        try:
            reply = warm.ask(self.python, self.root, request, env, self.target.database_url_env, timeout)
        except warm.ProbeTimeout as exc:
            raise MigrationError(f"{what} did not finish within {timeout:g} s; stopped") from exc
        stdout, stderr, returncode = reply if reply is not None else self._one_off(request, env, what, timeout)
        answer = _answer(stdout)
        if answer is None:
            tail = [line.strip() for line in stderr.splitlines() if line.strip()]
            reason = tail[-1] if tail else f"the probe exited {returncode} without an answer"
            raise MigrationError(redact_text(f"{what} failed: {reason}", [secret]))
        if "error" in answer:
            raise MigrationError(redact_text(f"{what} failed: {answer['error']}", [secret]))
        return answer

    def _one_off(self, request: dict[str, Any], env: dict[str, str], what: str, timeout: float) -> tuple[str, str, int]:
        """The probe as a process of its own, for one request: its stdout, stderr and exit status."""
        try:
            process = subprocess.Popen(
                [str(self.python), str(PROBE)],
                cwd=self.root,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                start_new_session=True,
            )
        except OSError as exc:
            raise UsageError(
                f"cannot run the target's interpreter {self.python} (profile key target.python of "
                f"{self.loaded.path or self.name}): {exc.strerror or exc}"
            ) from exc
        try:
            stdout, stderr = process.communicate(json.dumps(request), timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            warm.kill_group(process)
            raise MigrationError(f"{what} did not finish within {timeout:g} s; stopped") from exc
        finally:
            warm.kill_group(process)
        return stdout, stderr, process.returncode

    def _environment(self, command: str, url: str | URL | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__")}
        env["PYTHONIOENCODING"] = "utf-8"
        if url is None:
            return env
        env[self.target.database_url_env] = env["DATABASE_URL"] = _rendered(url)  # DATABASE_URL as well: the
        # conventional name, which aris3nb's own runner sets to the judged target, is never left naming another
        # database than the one this command is for (a scratch copy, say) to an env.py that falls back to it
        env.setdefault("PGCONNECT_TIMEOUT", str(CONNECT_TIMEOUT_SEC))
        options = [env["PGOPTIONS"]] if env.get("PGOPTIONS") else []
        if command in ("current", "compare"):
            options += [
                "-c default_transaction_read_only=on",
                f"-c statement_timeout={int(STATEMENT_TIMEOUT_SEC * 1000)}",
            ]
        else:  # an ALTER waiting on a lock queues every query behind it: bounded
            options += [f"-c lock_timeout={int(LOCK_TIMEOUT_SEC * 1000)}"]
        env["PGOPTIONS"] = " ".join(options)
        return env

    def _read_history(self) -> tuple[list[Revision], list[str]]:
        if self._history is None:
            key = (str(self.python), str(self.root), str(self.target.alembic_ini))
            kept = _HISTORIES.get(key)
            if kept is not None and _fingerprint(kept.sources, self.root / self.target.alembic_ini) == kept.fingerprint:
                self._history = kept.history
                return self._history
            asked = time.time_ns()
            answer = self.probe("history")
            revisions = [Revision(r["revision"], tuple(r.get("down_revisions") or ())) for r in answer["revisions"]]
            self._history = (revisions, sorted(answer["heads"]))
            sources = tuple(str(source) for source in answer.get("sources") or ())
            fingerprint = _fingerprint(sources, self.root / self.target.alembic_ini) if sources else None
            # Kept only if nothing it was read from changed since shortly before it was asked for:
            # a file written while the probe read it could otherwise pair old history with new times.
            if fingerprint is not None and all(mtime < asked - RECENT_NS for _, _, mtime, _ in fingerprint):
                _HISTORIES[key] = _KeptHistory(sources, fingerprint, self._history)
        return self._history

    def history(self) -> list[Revision]:
        return list(self._read_history()[0])

    def heads(self) -> list[str]:
        return list(self._read_history()[1])

    def upgrade(self, url: str | URL, revision: str = "head", *, timeout: float = MIGRATE_TIMEOUT_SEC) -> None:
        self.probe("upgrade", url=url, revision=revision, timeout=timeout)

    def downgrade(self, url: str | URL, revision: str = "base", *, timeout: float = MIGRATE_TIMEOUT_SEC) -> None:
        self.probe("downgrade", url=url, revision=revision, timeout=timeout)

    def current(self, url: str | URL, *, timeout: float = READ_DATABASE_TIMEOUT_SEC) -> str | None:
        return _one_revision(url, self.probe("current", url=url, timeout=timeout)["revisions"])

    def compare(self, url: str | URL, *, timeout: float = READ_DATABASE_TIMEOUT_SEC) -> list[str]:
        if not self.has_models:
            return []
        return list(self.probe("compare", url=url, timeout=timeout)["differences"])

    def current_and_compare(
        self, url: str | URL, *, timeout: float = READ_DATABASE_TIMEOUT_SEC
    ) -> tuple[str | None, Callable[[], list[str]]]:
        """``current`` and ``compare`` read in one probe process: the revision, and a function
        giving the differences (raising the comparison's ``MigrationError`` only when called, so
        a database behind head is still judged by its revision)."""
        if not self.has_models:
            return self.current(url, timeout=timeout), lambda: []
        answer = self.probe("current", url=url, timeout=timeout, compare=True)
        current = _one_revision(url, answer["revisions"])

        def differences() -> list[str]:
            if "compare_error" in answer:
                what = _what("compare", None, url)
                raise MigrationError(redact_text(f"{what} failed: {answer['compare_error']}", [url_password(url)]))
            return list(answer["differences"])

        return current, differences

    def tables(self) -> list[str]:
        return list(self.probe("tables")["tables"]) if self.has_models else []


def _one_revision(url: str | URL, revisions: list[str]) -> str | None:
    """The revision a database is at (None: none); ``MigrationError`` when it is at several."""
    if len(revisions) > 1:
        raise MigrationError(f"{redact_url(url)} is at {len(revisions)} revisions: {', '.join(sorted(revisions))}")
    return revisions[0] if revisions else None


@dataclass(frozen=True)
class _KeptHistory:
    sources: tuple[str, ...]
    fingerprint: tuple[tuple[str, int, int, int], ...]
    history: tuple[list[Revision], list[str]]


#: Files changed this shortly before a history was read are not trusted to be what it read
#: (file times are coarser than the clock on some file systems): it is not kept.
RECENT_NS = 2_000_000_000

#: A target's history as its probe last read it, by (interpreter, root, alembic.ini): reused in
#: this process while the files and folders it was read from (and alembic.ini) are unchanged,
#: so a gate's checks do not each start the target's interpreter only to read it again.
_HISTORIES: dict[tuple[str, str, str], _KeptHistory] = {}


def _fingerprint(sources: tuple[str, ...], alembic_ini: Path) -> tuple[tuple[str, int, int, int], ...] | None:
    """Size and times of each source (a new, edited, renamed or removed migration changes a
    file's or its folder's), or None when one cannot be read (then nothing is reused)."""
    facts = []
    for source in (*sources, str(alembic_ini)):
        try:
            stat = os.stat(source)
        except OSError:
            return None
        facts.append((source, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns))
    return tuple(facts)


def target_code(
    loaded: LoadedProfile | None, *, script_location: Path | None = None, metadata: sa.MetaData | None = None
) -> TargetCode:
    """The code of the target ``loaded`` describes: in-process for the reference double (no
    profile, or one without ``target.python``), else through the target's own interpreter."""
    if loaded is None or loaded.profile.target.python is None:
        return ReferenceCode(script_location, metadata)
    return ProbedCode(loaded)


def head_revision(loaded: LoadedProfile | None) -> str:
    """The single head revision of the target's migrations (MigrationError when there is not
    exactly one)."""
    return target_code(loaded).head_revision()


def _interpreter(loaded: LoadedProfile) -> Path:
    """``target.python`` as a path: absolute as given, relative to the target's root, or a bare
    name looked up on PATH. Missing or not executable: UsageError (exit 2)."""
    given = loaded.profile.target.python or ""
    where = f"profile key target.python of {loaded.path or loaded.profile.name}"
    if os.sep not in given and "/" not in given:
        found = shutil.which(given)
        if found is None:
            raise UsageError(f"the target's interpreter {given!r} ({where}) is not on PATH")
        return Path(found)
    path = Path(given).expanduser()
    path = path if path.is_absolute() else loaded.root / path
    if not path.is_file():
        raise UsageError(f"the target's interpreter {path} ({where}) does not exist")
    if not os.access(path, os.X_OK):
        raise UsageError(f"the target's interpreter {path} ({where}) is not executable")
    return path


def _rendered(url: str | URL) -> str:
    from aris3nb.core.db import parse_database_url

    return parse_database_url(url).render_as_string(hide_password=False)


def _what(command: str, revision: str | None, url: str | URL | None) -> str:
    if command in ("upgrade", "downgrade"):
        return f"{command} to {revision} on {redact_url(url or '')}"
    if command in ("current", "compare"):
        return (
            f"{'read the schema revision of' if command == 'current' else 'compare with the models'} "
            f"{redact_url(url or '')}"
        )
    return f"read the target's {'migration history' if command == 'history' else 'models'}"


def _answer(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.strip():
            with contextlib.suppress(ValueError):
                answer = json.loads(line)
                return answer if isinstance(answer, dict) else None
            return None
    return None


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)
