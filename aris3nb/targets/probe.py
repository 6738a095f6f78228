"""aris3nb's probe into a target's own environment: its Alembic history, upgrades, downgrades,
the revision a database is at, and Alembic's comparison of a database with the target's models.

Run by aris3nb (``aris3nb/targets/code.py``) as ``<target python> probe.py`` with the target's
root as the current folder. It reads one JSON request on stdin and writes one JSON answer on
stdout, and imports nothing but the standard library, Alembic and SQLAlchemy (aris3nb is not
installed in the target's environment). The request::

    {"command": "history" | "upgrade" | "downgrade" | "current" | "compare" | "tables",
     "alembic_ini": "alembic.ini", "metadata": "module:attribute" | null,
     "url_env": "DATABASE_URL", "alembic_x_url": "database_url" | null,
     "revision": "head", "read_only": true, "compare": false}

The database URL is never in the request nor on a command line: it is in the environment
variable ``url_env`` (the one the target's env.py reads), and reaches env.py also as
``-x <alembic_x_url>=<url>`` (``Config.cmd_opts``) and as ``sqlalchemy.url``.

Whatever the target's code prints goes to stderr; stdout carries the answer only. A failure
is the answer ``{"error": "<ExceptionClass>: <first line of its message>"}``, exit status 0.

Warm mode, ``probe.py --serve`` (``aris3nb/targets/warm.py`` drives it): Alembic and SQLAlchemy
are imported once (never the target's own code), ``{"ready": true}`` is written, and then each
line on stdin, ``{"request": {...}, "env": {...}}``, is answered by a child forked for it: the
child takes ``env`` as its whole environment and answers exactly as a one-off probe would, its
stdout and stderr captured; the reply line is ``{"stdout": ..., "stderr": <its last 64 KiB>,
"returncode": ...}``. Nothing of one request is left for the next (each child imports the
target's code afresh and exits); end of input ends the server.
"""

import os
import sys

# Run as a script, this file's folder (aris3nb/targets: code.py, profile.py ...) would come first
# on sys.path and shadow the standard library's `code` and `profile`; the target's root (the
# current folder) takes its place, as it would for `python -m alembic` run there.
if sys.path and sys.path[0] and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path[0] = os.getcwd()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import selectors  # noqa: E402


def _first_line(exc):
    text = str(exc).strip()
    line = text.splitlines()[0].strip() if text else ""
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def _reason(exc):
    """The one-line reason: the driver's error where SQLAlchemy wraps one, else the exception."""
    orig = getattr(exc, "orig", None)
    return _first_line(orig) if orig is not None else _first_line(exc)


def _url(request):
    name = request.get("url_env") or "DATABASE_URL"
    url = os.environ.get(name)
    if not url:
        raise LookupError(f"no database URL in the environment variable {name}")
    return url


def _config(request, url=None):
    from alembic.config import Config

    ini = request.get("alembic_ini") or "alembic.ini"
    if not os.path.isfile(ini):
        raise FileNotFoundError(f"no Alembic configuration {ini} in {os.getcwd()}")
    x_arguments = []
    if url is not None and request.get("alembic_x_url"):
        x_arguments.append(f"{request['alembic_x_url']}={url}")
    cfg = Config(ini, cmd_opts=argparse.Namespace(x=x_arguments))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _script(request):
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config(request))


def _metadata(request):
    target = request.get("metadata")
    if not target or ":" not in target:
        raise ValueError(f"target.metadata must be module:attribute, not {target!r}")
    module_name, _, attribute = target.partition(":")
    value = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    import sqlalchemy as sa

    if not isinstance(value, sa.MetaData):
        raise TypeError(f"{target} is a {type(value).__name__}, not a SQLAlchemy MetaData")
    return value


def _engine(url, read_only):
    """An engine on ``url``. Read-only for a SQLite file: opened with mode=ro, never created
    (on PostgreSQL the caller makes the session read-only through PGOPTIONS)."""
    import sqlalchemy as sa

    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and read_only:
        import pathlib
        import sqlite3

        path = pathlib.Path(parsed.database or "").absolute()
        if not path.is_file():
            raise FileNotFoundError(f"SQLite database {path} does not exist")
        return sa.create_engine(
            "sqlite://",
            poolclass=sa.pool.NullPool,
            creator=lambda: sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True),
        )
    if parsed.get_backend_name() == "postgresql" and parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return sa.create_engine(parsed, poolclass=sa.pool.NullPool)


def _as_list(value):
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def history(request):
    script = _script(request)
    scripts = list(script.walk_revisions("base", "heads"))
    revisions = [{"revision": rev.revision, "down_revisions": _as_list(rev.down_revision)} for rev in reversed(scripts)]
    # What the history was read from (each revision's file, and the folders a new one would be
    # added to): aris3nb reuses this answer while none of them has changed.
    try:
        folders = [str(folder) for folder in script._version_locations]
    except Exception:  # noqa: BLE001 -- an Alembic without it: the revisions' own folders only
        folders = []
    files = [rev.path for rev in scripts]
    sources = sorted({os.path.abspath(p) for p in files + folders + [os.path.dirname(f) for f in files]})
    return {"revisions": revisions, "heads": sorted(script.get_heads()), "sources": sources}


def migrate(request):
    from alembic import command

    url = _url(request)
    action = request["command"]
    revision = request.get("revision") or ("head" if action == "upgrade" else "base")
    getattr(command, action)(_config(request, url), revision)
    return {"done": action, "revision": revision}


def current(request):
    """The revisions the database is at; with ``"compare": true`` also the comparison with the
    models (one process for both), or why it could not be made (``compare_error``: the
    revision is still answered)."""
    from alembic.runtime.migration import MigrationContext

    engine = _engine(_url(request), request.get("read_only", True))
    try:
        with engine.connect() as conn:
            answer = {"revisions": list(MigrationContext.configure(conn).get_current_heads())}
            if request.get("compare"):
                try:
                    answer["differences"] = _differences(conn, _metadata(request))
                except Exception as exc:  # noqa: BLE001 -- said, and judged by aris3nb when it needs it
                    answer["compare_error"] = _reason(exc)
    finally:
        engine.dispose()
    return answer


def describe(diff):
    """One readable line for an entry of Alembic's compare_metadata (``add_*``: the models have
    something the database lacks; ``remove_*``: the reverse)."""
    if isinstance(diff, list):
        return "; ".join(describe(d) for d in diff)
    op, *args = diff
    if op.startswith("modify_"):
        _schema, table, column, _existing, database_value, model_value = args
        return f"{op} {table}.{column}: database has {database_value!r}, models want {model_value!r}"
    where = "in the models, not in the database" if op.startswith("add_") else "in the database, not in the models"
    if op in ("add_column", "remove_column"):
        _schema, table, column = args
        return f"{op} {table}.{column.name} ({column.type}): {where}"
    obj = args[0]
    table = getattr(getattr(obj, "table", None), "name", None)
    name = getattr(obj, "name", None) or _unnamed(obj)
    return f"{op} {table + '.' if table else ''}{name}: {where}"


def _unnamed(obj):
    """An unnamed constraint or index by what it holds (its repr carries memory addresses)."""
    elements = getattr(obj, "elements", None)
    if elements:  # a foreign key: (columns) -> table(columns)
        return f"({', '.join(e.parent.name for e in elements)}) -> {', '.join(e.target_fullname for e in elements)}"
    columns = getattr(obj, "columns", None)
    if columns is not None:
        return f"({', '.join(c.name for c in columns)})"
    return str(obj)


def _differences(conn, metadata):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return [describe(d) for d in compare_metadata(context, metadata)]


def compare(request):
    metadata = _metadata(request)
    engine = _engine(_url(request), request.get("read_only", True))
    try:
        with engine.connect() as conn:
            differences = _differences(conn, metadata)
    finally:
        engine.dispose()
    return {"differences": differences}


def tables(request):
    return {"tables": sorted(_metadata(request).tables)}


COMMANDS = {
    "history": history,
    "upgrade": migrate,
    "downgrade": migrate,
    "current": current,
    "compare": compare,
    "tables": tables,
}


def main(text=None):
    answer_fd = os.dup(1)
    # Everything the target's code prints (env.py, a migration, a logging handler on stdout)
    # goes to stderr: stdout is the answer's.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        request = json.loads((sys.stdin.read() if text is None else text) or "{}")
        command = request.get("command")
        if command not in COMMANDS:
            raise ValueError(f"unknown probe command {command!r}")
        answer = COMMANDS[command](request)
    except BaseException as exc:  # noqa: BLE001 -- every failure is a one-line answer, never a traceback
        if isinstance(exc, KeyboardInterrupt):
            raise
        answer = {"error": _reason(exc)}
    with os.fdopen(answer_fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(answer))
        out.write("\n")


#: What every request imports, imported once by the warm server: the target's libraries, never its code.
PRELOAD = (
    "sqlalchemy",
    "alembic.config",
    "alembic.command",
    "alembic.script",
    "alembic.runtime.migration",
    "alembic.autogenerate",
)
#: How much of a request's stderr the warm server sends back (aris3nb reads its last line).
STDERR_TAIL = 65536


def serve():
    for name in PRELOAD:
        with contextlib.suppress(Exception):  # the child reports what is missing, as a one-off probe would
            importlib.import_module(name)
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # whatever the server itself prints stays off the replies
    sys.stdout = sys.stderr
    replies.write(json.dumps({"ready": True}) + "\n")
    replies.flush()
    for line in sys.stdin:
        if line.strip():
            job = json.loads(line)
            replies.write(json.dumps(_forked(job, [replies.fileno()])) + "\n")
            replies.flush()


def _forked(job, keep_closed):
    """Answer one request in a child of this process; its output and exit status."""
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            for fd in (out_read, err_read, *keep_closed):
                os.close(fd)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(out_write, 1)
            os.dup2(err_write, 2)
            for fd in (devnull, out_write, err_write):
                os.close(fd)
            os.environ.clear()
            os.environ.update(job.get("env") or {})
            main(json.dumps(job.get("request") or {}))
            code = 0
        finally:
            with contextlib.suppress(BaseException):
                import atexit

                atexit._run_exitfuncs()  # what the target's code registered, as a one-off probe's exit runs it
                sys.stderr.flush()
            os._exit(code)
    os.close(out_write)
    os.close(err_write)
    out, err = bytearray(), bytearray()
    selector = selectors.DefaultSelector()
    selector.register(out_read, selectors.EVENT_READ, out)
    selector.register(err_read, selectors.EVENT_READ, err)
    while selector.get_map():
        for key, _ in selector.select():
            block = os.read(key.fd, 65536)
            if not block:
                selector.unregister(key.fd)
                os.close(key.fd)
            else:
                key.data.extend(block)
                if key.data is err and len(err) > 2 * STDERR_TAIL:
                    del err[:-STDERR_TAIL]
    _, status = os.waitpid(pid, 0)
    return {
        "stdout": out.decode("utf-8", "replace"),
        "stderr": bytes(err[-STDERR_TAIL:]).decode("utf-8", "replace"),
        "returncode": os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status,
    }


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        main()
