"""Keeps secrets out of everything aris3nb prints or writes.

Database URLs are shown with their password replaced by ``***``; free text (an error
message from a driver, say) has every known secret replaced before it is shown.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

from sqlalchemy.engine import URL, make_url

MASK = "***"

# scheme://user:password@host — the password part of any URL-looking text.
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<secret>[^@\s]*)(?P<tail>@)")


def redact_url(url: str | URL) -> str:
    """The URL as text with its password masked; unparseable input is masked wholesale."""
    try:
        parsed = url if isinstance(url, URL) else make_url(str(url))
    except Exception:  # an unparseable URL may still hold a password: mask it as text
        return redact_text(str(url))
    return parsed.render_as_string(hide_password=True)


def redact_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with URL passwords and each of ``secrets`` replaced by ``***``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['tail']}" if m["secret"] else m[0], text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def url_password(url: str | URL) -> str | None:
    """The password a URL carries, or None (used to scrub driver messages)."""
    try:
        parsed = url if isinstance(url, URL) else make_url(str(url))
    except Exception:
        return None
    return parsed.password if parsed.password else None


# An option or variable whose name says it holds a secret: --token=…, --password …, API_KEY=…
_SECRET_NAME = re.compile(r"pass(word|wd|phrase)?|token|secret|api[-_]?key|auth|credential|private[-_]?key", re.IGNORECASE)


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
