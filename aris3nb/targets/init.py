"""``aris3nb init``: describe the ARIS3 repository in a folder as a target profile.

It looks for what a profile needs — the Alembic configuration and its migrations, the models'
metadata that ``env.py`` compares against, the FastAPI application, the target's own Python
environment (``.venv/``, ``venv/`` or ``--python``) — recognises the upstream ARIS3 backend
(its ``app/aris3`` package or its revision ``0037_s12_reports_cost_snapshot``) and writes
``aris3nb.toml`` with what it found and a comment per setting. It never overwrites a file.
"""

from __future__ import annotations

import ast
import configparser
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aris3nb.core.errors import UsageError
from aris3nb.targets.profile import PROFILE_FILE, SmokeAccount, parse_profile

#: A revision of the upstream ARIS3 backend's history (its head at the time of writing).
UPSTREAM_REVISION = "0037_s12_reports_cost_snapshot"
_SKIP = {".git", ".venv", "venv", "node_modules", "__pycache__", ".tox", "build", "dist"}


@dataclass
class Findings:
    """What ``init`` found in a repository, and what it could not find (said in the file)."""

    root: Path
    alembic_ini: Path | None = None
    migrations: Path | None = None
    metadata: str | None = None
    #: How ``env.py`` is given its database URL: an ``alembic -x`` name, an environment variable.
    x_url: str | None = None
    url_env: str | None = None
    app: str | None = None
    python: Path | None = None
    upstream: bool = False
    notes: list[str] = field(default_factory=list)


def _python_files(root: Path, depth: int = 4) -> list[Path]:
    found = []
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).parts
        if len(parts) <= depth and not (_SKIP & set(parts)):
            found.append(path)
    return sorted(found)


def _metadata_of(env_py: Path) -> str | None:
    """``module:attribute`` of the MetaData env.py hands Alembic (``target_metadata = X.metadata``)."""
    try:
        text = env_py.read_text(encoding="utf-8")
    except OSError:
        return None
    assigned = re.search(r"^target_metadata\s*=\s*([A-Za-z_][\w.]*)", text, re.M)
    if not assigned:
        return None
    head, _, tail = assigned.group(1).partition(".")
    imported = re.search(rf"^from\s+([\w.]+)\s+import\s+(?:[^\n]*\b)?{re.escape(head)}\b", text, re.M)
    if not imported:
        return None
    return f"{imported.group(1)}:{head}{'.' + tail if tail else ''}"


#: Names that speak of a database: an ``alembic -x`` argument or an environment variable is
#: taken for env.py's database URL only when its name says so.
_X_NAME = re.compile(r"url|db|database", re.IGNORECASE)
_ENV_NAME = re.compile(r"(?=.*(?:URL|URI|DSN))(?=.*(?:DB|DATABASE|SQL))", re.IGNORECASE)


def _key(node: ast.AST, holder: Callable[[ast.AST], bool]) -> str | None:
    """The literal string key of ``holder(...).get("key")`` or ``holder(...)["key"]``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        target, args = node.func.value, node.args
    elif isinstance(node, ast.Subscript):
        target, args = node.value, [node.slice]
    else:
        return None
    if holder(target) and args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
        return args[0].value
    return None


def _is_x_arguments(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get_x_argument"


def _is_os(node: ast.AST, attribute: str) -> bool:
    """Whether ``node`` is ``os.<attribute>``."""
    return (
        isinstance(node, ast.Attribute)
        and node.attr == attribute
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def _env_name(node: ast.AST) -> str | None:
    """The variable ``os.environ["X"]``, ``os.environ.get("X")`` or ``os.getenv("X")`` reads."""
    if isinstance(node, ast.Call) and _is_os(node.func, "getenv"):
        first = node.args[0] if node.args else None
        return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
    return _key(node, lambda target: _is_os(target, "environ"))


def _url_sources_of(env_py: Path) -> tuple[str | None, str | None, list[str]]:
    """The ``-x`` name and the environment variable through which ``env.py`` takes its database
    URL, read from its code (never its comments or strings): each only when env.py names exactly
    one that speaks of a database, since a wrong one would point the target's own migrations at
    another database than the one aris3nb means. Also the names seen when there were several."""
    try:
        tree = ast.parse(env_py.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None, None, []
    x_names: set[str] = set()
    env_names: set[str] = set()
    for node in ast.walk(tree):
        x_name = _key(node, _is_x_arguments)
        if x_name and _X_NAME.search(x_name):
            x_names.add(x_name)
        env_name = _env_name(node)
        if env_name and _ENV_NAME.match(env_name):
            env_names.add(env_name)
    several = sorted(name for group in (x_names, env_names) if len(group) > 1 for name in group)
    return (
        next(iter(x_names)) if len(x_names) == 1 else None,
        next(iter(env_names)) if len(env_names) == 1 else None,
        several,
    )


def discover(root: Path, python: Path | None = None) -> Findings:
    """What a profile of the repository at ``root`` would say."""
    root = root.resolve()
    found = Findings(root)
    ini = root / "alembic.ini"
    if ini.is_file():
        found.alembic_ini = ini
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(ini, encoding="utf-8")
            location = parser.get("alembic", "script_location", fallback="migrations")
        except configparser.Error:
            location = "migrations"
        location = location.replace("%(here)s", str(root))
        found.migrations = (root / location).resolve()
    elif (root / "migrations").is_dir():
        found.migrations = root / "migrations"
        found.notes.append("no alembic.ini at the root: migrations/ found, but how they are run is not known")
    else:
        raise UsageError(
            f"{root} holds no alembic.ini and no migrations/: run `aris3nb init` in the target repository's root"
        )
    several: list[str] = []
    if found.migrations is not None:
        found.metadata = _metadata_of(found.migrations / "env.py")
        found.x_url, found.url_env, several = _url_sources_of(found.migrations / "env.py")
        if several and not found.upstream:
            found.notes.append(
                f"env.py reads several names that may hold its database URL ({', '.join(several)}): none was "
                "written; set target.database_url_env (or target.alembic_x_url) to the one it uses"
            )
        versions = found.migrations / "versions"
        if versions.is_dir() and any(UPSTREAM_REVISION in p.name for p in versions.glob("*.py")):
            found.upstream = True
    if (root / "app" / "aris3").is_dir():
        found.upstream = True
    if not found.upstream and found.x_url is None and found.url_env is None and not several:
        found.notes.append(
            "env.py names no `-x` argument and no environment variable for its database URL: "
            "target.database_url_env stays DATABASE_URL; set it (or target.alembic_x_url) to what env.py reads"
        )
    for path in _python_files(root):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        match = re.search(r"^(\w+)\s*=\s*FastAPI\(", text, re.M)
        if match:
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            found.app = f"{module}:{match.group(1)}"
            break
    candidates = [python] if python else [root / ".venv" / "bin" / "python", root / "venv" / "bin" / "python"]
    found.python = next((c for c in candidates if c and c.exists()), None)
    if python and found.python is None:
        raise UsageError(f"no interpreter at {python}")
    if found.python is None:
        found.notes.append(
            "no .venv/ or venv/ found: set target.python to the interpreter of the target's own "
            "environment (or give --python)"
        )
    return found


def _toml(value: object) -> str:
    return json.dumps(value) if not isinstance(value, bool) else ("true" if value else "false")


def render(found: Findings) -> str:
    """The profile text, one comment per setting."""

    def rel(path: Path | None) -> str | None:
        return (
            None
            if path is None
            else (path.relative_to(found.root).as_posix() if path.is_relative_to(found.root) else str(path))
        )

    lines = [
        "# aris3nb target profile, written by `aris3nb init`. Review every setting: what could not be",
        "# found is said in a comment. Paths are relative to this file's folder.",
        *(f"# NOTE: {note}" for note in found.notes),
        "",
        "# The profile's format version; aris3nb refuses a version it does not know.",
        "profile_version = 1",
        "# Named in every report, evidence.json and page banner (with this file's SHA-256).",
        f"name = {_toml('aris3' if found.upstream else found.root.name)}",
        "",
        "[target]",
        "# The target repository's root: where its commands run.",
        'root = "."',
        "# The interpreter of the target's own environment: smoke, migrations and models run there.",
        (f"python = {_toml(rel(found.python))}" if found.python else '# python = ".venv/bin/python"'),
        "# The target's Alembic configuration.",
        (f"alembic_ini = {_toml(rel(found.alembic_ini))}" if found.alembic_ini else '# alembic_ini = "alembic.ini"'),
        "# The models' metadata (module:attribute) the schema drift is judged against, as env.py uses it.",
        (f"metadata = {_toml(found.metadata)}" if found.metadata else '# metadata = "app.models:Base.metadata"'),
    ]
    if not found.upstream:  # the built-in aris3 profile says how upstream takes its URL
        lines += [
            "# The environment variable through which the target's own commands (env.py, seed, service)",
            "# take the database URL.",
            (f"database_url_env = {_toml(found.url_env)}" if found.url_env else '# database_url_env = "DATABASE_URL"'),
        ]
        if found.x_url:
            lines += [
                "# The `alembic -x <name>=<url>` argument env.py reads first.",
                f"alembic_x_url = {_toml(found.x_url)}",
            ]
    if found.app:
        lines += [f"# The service's application, found at {found.app} (for reference: aris3nb probes it over HTTP)."]
    if found.upstream:
        lines[lines.index("profile_version = 1") + 1 : lines.index("profile_version = 1") + 1] = [
            "# The upstream ARIS3 backend was recognised: this profile builds on the built-in `aris3`",
            "# contract (service, smoke, backup, RPO sources, integrity invariants; see `aris3nb/targets/",
            "# builtin/aris3.toml`). A table given here is merged into it key by key; any other value replaces it.",
            'extends = "aris3"',
        ]
        lines += [
            "",
            "[migrations]",
            "# Width of alembic_version.version_num. Upstream revision ids reach 45 characters: on PostgreSQL",
            "# widen the column (the gate's round trip FAILs naming the revision until then) and set it here.",
            "version_num_width = 32",
        ]
    return "\n".join(line for line in lines if line is not None) + "\n"


def next_steps(found: Findings, account: SmokeAccount | None) -> list[str]:
    """What is left to do after ``init``, in the order a team does it: the gate judges the
    freshness of the target's backup and drill, so they come before it. ``account``: the
    written profile's ``[service.smoke_account]``."""
    steps = ["review aris3nb.toml (every setting: section 8 of aris3nb's docs/FORMAT.md)"]
    if found.python is None:
        steps.append("set target.python to the target's own interpreter")
    if not found.upstream:
        steps.append(
            "declare the service contract init cannot read from the code: [service.health], [service.ready], "
            "[service.login], [service.smoke_account] and [[service.endpoints]] (latency), [smoke] (the smoke "
            "suite) and [integrity] (business invariants); without them the gate expects /health and /ready to "
            "answer as the reference does, and WARNs that no latency was measured, no smoke ran and no invariant "
            "was checked"
        )
    account_names = "the variables [service.smoke_account] names"
    if account is not None:
        account_names = f"{account.username_env} and {account.password_env}"
    steps += [
        "commit aris3nb.toml to the repository (the gate WARNs on a tree with uncommitted changes)",
        f"export {account_names} (an account of the service that may read what the latency checks read) "
        "and OPS_ENABLE_BACKUP_DRILL=true",
        "aris3nb backup create --name NAME --database-url URL, then aris3nb backup restore-verify MANIFEST "
        "--database-url URL (the drill; the gate judges how fresh both are)",
        "aris3nb gate --base-url URL --database-url URL (the live service and its database)",
        "aris3nb run --base-url URL --database-url URL (the whole playbook, sealed as evidence)",
    ]
    return steps


def init_profile(root: Path, *, python: Path | None = None) -> tuple[Path, Findings]:
    """Write ``root/aris3nb.toml`` describing the repository; never overwrite one."""
    target = root / PROFILE_FILE
    if target.exists() or target.is_symlink():
        raise UsageError(f"{target} exists; aris3nb init never overwrites a profile (edit it, or move it away)")
    found = discover(root, python)
    text = render(found)
    parse_profile(text, str(target))  # what init writes must be a valid profile
    with target.open("x", encoding="utf-8") as handle:
        handle.write(text)
    return target, found
