"""What a phase notebook is given, turned into what it uses: the smoke target (its default
the playbook's own suite, by absolute path, for the reference; the profile's own suite
otherwise) and the PostgreSQL server the migrations' round trip runs on."""

from __future__ import annotations

from aris3nb.resources import SMOKE_SUITE
from aris3nb.targets.profile import LoadedProfile

#: The playbook's smoke suite — the package's copy when installed, the checkout's otherwise:
#: what a phase notebook runs when it is given none.
DEFAULT_SMOKE_TARGET = SMOKE_SUITE


def smoke_target(given: str | None, profile: LoadedProfile | None = None) -> str | None:
    """The smoke target a phase notebook runs: the one given, else the playbook's own suite
    (an absolute path, so the notebook runs the same from any folder) for the reference,
    else None: the gate runs the profile's ``[smoke]`` suite (or says it has none)."""
    if given or (profile is not None and not profile.is_reference):
        return given
    return str(DEFAULT_SMOKE_TARGET)


def round_trip_server(database_url: str | None) -> str | None:
    """The server the migrations' PostgreSQL round trip runs on in a playbook run: the target's
    own when it is PostgreSQL (a scratch database there, always dropped), else None."""
    from aris3nb.core.db import parse_database_url

    if not database_url:
        return None
    return database_url if parse_database_url(database_url).get_backend_name() == "postgresql" else None
