"""The ``aris3nb`` command: one module per command group (``db``, ``serve``, ``backup``,
``gate``/``integrity``, ``evidence``, ``run``), each registered here the same way; every
command parses arguments, calls one library function, prints, exits.

Exit codes: 0 success; 1 the operation ran and failed; 2 bad usage or input the command
could not act on (unreadable file, bad URL, unreachable database). Expected failures print
one line, ``FAILED: <message>``, on standard error; never a traceback.
"""

from __future__ import annotations

import functools
import gc
import os
import re
import signal
import sys
import threading
import weakref
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand
from typer.main import get_command

from aris3nb.cli import backup, db, evidence, gate, init, run, serve
from aris3nb.cli._common import err, failure_exit_code, os_error_failure, say, settings
from aris3nb.core.errors import Aris3nbError, Terminated, UsageError

if TYPE_CHECKING:
    # The context click commands get: typer's own copy of click's Context (typer.Context subclasses it).
    from typer._click import Command, Context

HELP = """The ARIS3 Recovery Playbook, executable, with evidence an auditor can verify.

`aris3nb run` is the main job: the playbook's phases (release readiness gate, pre-deploy backup,
post-deploy checks, restore drill, and the rollback when a trigger fires) executed as notebooks,
sealed into an evidence bundle under OPS_ARTIFACTS_DIR/runs/<run_id>/ (executed notebooks,
self-contained HTML pages, JSON reports, evidence.json with every file's SHA-256); nothing
given, it runs on the embedded default. Check a bundle with `aris3nb evidence verify`.

Exit codes: 0 success (GO, PASS); 1 the check ran and failed (NO-GO, FAIL, a step that could
not run); 2 bad usage or input (nothing was done); 130 interrupted.
"""

app = typer.Typer(
    name="aris3nb",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
for group in (run, gate, backup, evidence, init, db, serve):
    group.register(app)


class _Command(TyperCommand):
    """Usage lines as click writes them: a required argument is ``MANIFEST``, not typer's
    ``{MANIFEST}`` (braces read as a set of choices); an argument's help names it, not its
    Python type (``MANIFEST``, not ``MANIFEST <path>``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperArgument):
                param.display_type_rich = _no_type  # type: ignore[method-assign]

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        return [re.sub(r"^\{(.+)\}", r"\1", piece) for piece in super().collect_usage_pieces(ctx)]


def _no_type(ctx: Context) -> None:
    return None


def _use_command_class(typer_app: typer.Typer) -> None:
    for command in typer_app.registered_commands:
        if command.cls in (None, TyperCommand):
            command.cls = _Command
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _use_command_class(group.typer_instance)


_use_command_class(app)


#: The commands that read and write an S3 repository (OPS_ARTIFACTS_DIR=s3://...); the evidence
#: commands name theirs as an argument.
_REPOSITORY_COMMANDS = frozenset({"backup", "run", "evidence"})


def _print_version(asked: bool) -> None:
    """``--version``: the version, then exit 0 — before the environment is read."""
    if asked:
        from aris3nb import __version__

        say(f"aris3nb {__version__}")
        raise typer.Exit()


@app.callback()
def _settings_first(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Read the environment once, before any command: a bad setting is a usage error. A
    command that cannot use an S3 repository refuses one rather than write elsewhere."""
    current = settings()
    asks_help = "--help" in sys.argv[1:]
    if current.artifacts.repository_url and ctx.invoked_subcommand not in _REPOSITORY_COMMANDS and not asks_help:
        raise UsageError(
            f"OPS_ARTIFACTS_DIR is an S3 repository; `aris3nb {ctx.invoked_subcommand}` cannot use one yet "
            "(the backup, run and evidence commands do): set OPS_ARTIFACTS_DIR to a local folder for it"
        )


@functools.cache
def _click_command() -> Command:
    """The command tree click runs, built from the Typer app once per process: ``app(...)``
    builds it again at every call (~0.07 s, every command's parameters read from its
    signature), which a program calling ``main`` many times pays each time."""
    return get_command(app)


#: How soon a stop that could not be raised where the signal found the program is asked again.
TERMINATE_RETRY_SEC = 0.05


def _swallows_exceptions(frame: FrameType | None) -> bool:
    """Whether an exception raised in ``frame`` would be lost: the frame, or one it was called
    from, is a callback the interpreter calls and whose exception it only prints ("Exception
    ignored in ..."): the import system's module lock callbacks, a ``__del__``, a
    ``weakref.finalize`` callback (a ``TemporaryDirectory`` collected, say)."""
    while frame is not None:
        code = frame.f_code
        if (code.co_filename.startswith("<frozen importlib") and code.co_name == "cb") or code.co_name == "__del__":
            return True
        if (
            code.co_name == "__call__"
            and code.co_filename == weakref.__file__
            and isinstance(frame.f_locals.get("self"), weakref.finalize)
        ):
            return True
        frame = frame.f_back
    return False


def _terminated(signum: int, frame: FrameType | None) -> None:
    """SIGTERM: raise ``Terminated``, the one road of a stop, Ctrl-C's (what was begun is ended,
    the evidence sealed). Where the signal found the program in code that would swallow it, the
    stop would be lost and the command would run on (seen: hung inside an import): the signal is
    sent again in a moment instead, to be raised at a safe point."""
    if _swallows_exceptions(frame):
        again = threading.Timer(TERMINATE_RETRY_SEC, os.kill, (os.getpid(), signum))
        again.daemon = True
        again.start()
        return
    raise Terminated


def main(argv: list[str] | None = None) -> None:
    """Run the command; an expected failure ends in one line, ``FAILED: <message>``.

    This is also the boundary where an ``OSError`` that escaped the library (an unwritable
    or wrong-typed place, a full disk) becomes that line: ``cannot write <path>: <reason>``.
    SIGTERM (a CI job cancelled, a container stopped) ends a command as Ctrl-C does: the run
    is sealed INTERRUPTED and what it started is stopped (exit 130), never left running.
    """
    in_main_thread = threading.current_thread() is threading.main_thread()  # where signals are handled
    previous = signal.signal(signal.SIGTERM, _terminated) if in_main_thread else None
    try:
        _click_command()(args=argv, prog_name="aris3nb")
    except (Aris3nbError, OSError) as exc:
        failure = exc if isinstance(exc, Aris3nbError) else os_error_failure(exc)
        notes = "".join(f"; {note}" for note in getattr(failure, "__notes__", ()))  # what went wrong after it
        err.print(f"FAILED: {failure}{notes}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(failure_exit_code(failure))
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        sys.exit(130)
    except SystemExit as exc:
        if exc.code == 130:  # Typer turns Ctrl-C and SIGTERM in a command into exit 130, without a word
            err.print("interrupted", markup=False)
        raise
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def console() -> None:
    """The ``aris3nb`` program (``[project.scripts]``): ``main``, then the process ends without
    the interpreter's last garbage collections over everything a command loaded (Jupyter,
    pandas, matplotlib, SQLAlchemy): ``gc.freeze`` leaves those objects to the process's end,
    where the system takes back its memory whole. Everything else of an interpreter's exit
    runs as ever (atexit handlers, destructors, flushed streams). Measured after ``aris3nb
    run``: 1.2–2.9 s from its last line to its exit, 0.14–0.17 s frozen. Not in ``main``,
    which tests and other programs call in-process."""
    try:
        main()
    finally:
        gc.freeze()


if __name__ == "__main__":
    console()
