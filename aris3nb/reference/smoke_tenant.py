"""The smoke tenant the reference seed makes, and the smoke suite writes to: its slug, its
administrator and its two stores. Constants only, so that the smoke suite, which reads them
at its start in both of its modes, starts without importing the seed (and SQLAlchemy)."""

from __future__ import annotations

SMOKE_TENANT_SLUG = "smoke"
SMOKE_USERNAME = "smoke.admin"
SMOKE_STORE_CODES = ("SMOKE-A", "SMOKE-B")
