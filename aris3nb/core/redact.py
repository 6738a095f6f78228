"""Keeps secrets out of everything aris3nb prints or writes.

Database URLs are shown with their password replaced by ``***``; free text (an error
message from a driver, say) has every known secret replaced before it is shown.

A password is masked from ``://user:`` to the *last* ``@`` before the host, not the first:
a password holding an unencoded ``@`` (``u:Sekr3t@tail@host``) loses every part of it, never
only the part before its own ``@``. ``userinfo_problem`` says when a URL's credentials cannot
be told apart from its host unambiguously; ``aris3nb.core.db.parse_database_url`` refuses those.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import string
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # SQLAlchemy loads on first use: the CLI starts without it
    from sqlalchemy.engine import URL

MASK = "***"

_SCHEME = r"[a-zA-Z][a-zA-Z0-9+.\-]*://"
# scheme://user:password@host — the password part of any URL-looking text, up to the LAST
# ``@`` after it. It may hold spaces, ``/``, ``#``, ``?`` and ``@``; it stops at a line break
# (also a JSON-escaped one, ``\n``), at an unescaped ``"`` (the end of a JSON string), at ``<``
# or ``>`` (HTML), and before another ``scheme://``, so that one URL's mask never swallows the
# next URL or breaks the JSON or HTML around it. A JSON escape (``\"``, ``\\``) is one unit.
_URL_PASSWORD = re.compile(
    rf"(?P<head>{_SCHEME}[^:/@\s\"<>]*:)"
    rf"(?P<secret>(?:\\[^nr\n\r]|(?!://)[^\n\r\"<>\\])*)"
    r"(?P<tail>@)"
)
_URL_START = re.compile(_SCHEME)
_PERCENT_ESCAPE = re.compile(r"%(?![0-9a-fA-F]{2})")
#: Characters a user name or password must not hold unencoded: they end the credentials,
#: or start the path, query or fragment, or cannot be masked reliably in free text.
_UNENCODED = re.compile(r"[@/#?\"<>\s\x00-\x1f\x7f]")


def userinfo_problem(url: str) -> str | None:
    """Why the credentials of ``url`` cannot be parsed unambiguously, or None.

    The answer never quotes the URL: it is for an error message, and the credentials are
    exactly what is in doubt. Credentials are everything between ``scheme://`` and the last
    ``@``; a URL without ``@`` after ``scheme://``, or whose part before the first ``@``
    starts with ``/`` (``sqlite:////path/with@sign.db``: no authority), has none.
    """
    start = _URL_START.match(url)
    if start is None:
        return None
    rest = url[start.end() :]
    if "@" not in rest or rest.startswith("/"):
        return None
    userinfo = rest[: rest.rindex("@")]
    if _UNENCODED.search(userinfo) or _PERCENT_ESCAPE.search(userinfo):
        return (
            'the password (or user name) holds an unencoded @ / # ? " < > or whitespace, or a % that is not '
            "a %XX escape, so it cannot be told apart from the host"
        )
    return None


def redact_url(url: str | URL) -> str:
    """The URL as text with its password masked; ambiguous or unparseable input is masked as text."""
    from sqlalchemy.engine import URL, make_url
    from sqlalchemy.exc import ArgumentError

    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    text = str(url)
    if userinfo_problem(text) is None:
        # An unparseable URL may still hold a password: it is masked as text below.
        with contextlib.suppress(ArgumentError, ValueError, TypeError):
            return make_url(text).render_as_string(hide_password=True)
    return redact_text(text)


# ``_SCHEME``'s two character classes, as sets: its first character, and the rest.
_SCHEME_FIRST = frozenset(string.ascii_letters)
_SCHEME_CHARS = _SCHEME_FIRST | frozenset(string.digits + "+.-")


def _mask_url_passwords(text: str) -> str:
    """``_URL_PASSWORD.sub`` masking each match's password, found from each ``://`` instead
    of tried at every position: the same matches, in time linear in the text. (Tried at every
    position, the scheme's pattern scans every run of letters and digits to its end: a page
    with charts as base64 took ~130 ms, almost all of it in runs that hold no ``://``.)

    Every match has its scheme just before a ``://``; the leftmost position the pattern could
    start from is the first letter of the run of scheme characters before it (not before the
    previous match's end), and if the pattern fails there it fails from every later letter of
    that run (each leads to the same ``://`` and the same text after it)."""
    found = text.find("://")
    if found < 0:
        return text
    pieces: list[str] = []
    done = 0  # the text before this is in ``pieces``; a match ends with ``@``, never in a run
    while found >= 0:
        start = found
        while start > done and text[start - 1] in _SCHEME_CHARS:
            start -= 1
        while start < found and text[start] not in _SCHEME_FIRST:
            start += 1
        match = _URL_PASSWORD.match(text, start) if start < found else None
        if match is None:
            found = text.find("://", found + 3)
            continue
        if match["secret"]:
            pieces += (text[done : match.start()], match["head"], MASK, match["tail"])
            done = match.end()
        found = text.find("://", match.end())
    pieces.append(text[done:])
    return "".join(pieces)


def redact_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with URL passwords and each of ``secrets`` replaced by ``***``."""
    text = _mask_url_passwords(text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def url_password(url: str | URL) -> str | None:
    """The password a URL carries, or None (used to scrub driver messages).

    For a URL whose credentials are ambiguous it is everything that may be password: from
    after ``user:`` to the last ``@``.
    """
    from sqlalchemy.engine import URL, make_url

    if not isinstance(url, URL) and userinfo_problem(str(url)) is not None:
        found = _URL_PASSWORD.search(str(url))
        return found["secret"] if found and found["secret"] else None
    try:
        parsed = url if isinstance(url, URL) else make_url(str(url))
    except Exception:
        return None
    return parsed.password if parsed.password else None


# An option or variable whose name says it holds a secret: --token=…, --password …, API_KEY=…
_SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?|token|secret|api[-_]?key|auth|credential|private[-_]?key", re.IGNORECASE
)


def command_secrets(command: str) -> list[str]:
    """The secret values a command line carries: option-style (``--token=X``, ``--password X``,
    ``API_KEY=X``) and URL passwords. Everything that records the command masks them."""
    try:
        args = shlex.split(command)
    except ValueError:  # unbalanced quotes: mask every word after a secret-looking name
        args = command.split()
    found: list[str] = []
    for index, arg in enumerate(args):
        name, sep, value = arg.partition("=")
        if sep and value and _SECRET_NAME.search(name):
            found.append(value)
        elif arg.startswith("-") and not sep and _SECRET_NAME.search(arg) and index + 1 < len(args):
            found.append(args[index + 1])
        url = _URL_PASSWORD.search(arg)
        if url is not None:
            found.append(url["secret"])
    return [value for value in found if value]


#: Stricter than ``_SECRET_NAME`` (no bare ``pass`` or ``auth``: ``passport_no``, ``author`` are
#: data, not secrets). A column whose name says it holds a secret (``hashed_password``, ``api_key``, ``refresh_token``,
#: ``client_secret``): its values are masked wherever aris3nb shows a row (a drill's diff); a
#: target profile names other columns (``[redact] columns``).
SECRET_COLUMN = re.compile(r"pass(word|wd|phrase)|secret|token|api[-_]?key|private[-_]?key|credential", re.IGNORECASE)


def mask_row(table: str, row: Mapping[str, Any], also: Collection[str] = ()) -> dict[str, Any]:
    """``row`` with the value of every secret column as ``MASK``: columns named like a secret,
    and ``table.column`` in ``also``. Only text (bytes are shown as hex text) is masked: NULL, a
    flag or a number holds no secret (``must_change_password`` stays readable)."""
    return {
        column: MASK
        if isinstance(value, str) and (SECRET_COLUMN.search(column) or f"{table}.{column}" in also)
        else value
        for column, value in row.items()
    }
