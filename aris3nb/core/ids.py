"""Run ids and timestamps: one spelling of each, everywhere aris3nb writes one."""

from __future__ import annotations

import datetime as dt
import re
import secrets

#: A run id as ``new_run_id`` makes it: nothing that could name another folder.
RUN_ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}\Z")


def new_run_id(now: dt.datetime | None = None) -> str:
    """``YYYYMMDDTHHMMSSZ-xxxxxx``: sorts by time, unique across concurrent runs."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
