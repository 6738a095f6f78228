"""restic's forget policy, as `aris3nb backup forget` applies it to each target's backups."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from aris3nb.backup.retention import Entry, Policy, apply_policy
from aris3nb.core.errors import UsageError


def entries(*times: str, group: str = "sqlite /db") -> list[Entry]:
    made = []
    for number, text in enumerate(times):
        moment = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
        made.append(Entry(f"b{number}", Path(f"/x/b{number}"), moment.isoformat(), group, moment=moment))
    return made


def kept(made: list[Entry]) -> dict[str, list[str]]:
    return {e.created_at[:16]: e.reasons for e in made if e.keep}


DAYS = ("2026-03-05T10:00", "2026-03-05T08:00", "2026-03-04T12:00", "2026-03-03T09:00")


@pytest.mark.parametrize(
    ("policy", "times", "expected"),
    [
        (Policy(last=3), DAYS, {"2026-03-05T10:00", "2026-03-05T08:00", "2026-03-04T12:00"}),
        # One per day, newest of the day, for the 2 newest days that have one.
        (Policy(daily=2), DAYS, {"2026-03-05T10:00", "2026-03-04T12:00"}),
        # More days asked than there are: every day, and the oldest kept as the rule's oldest.
        (Policy(daily=5), DAYS, {"2026-03-05T10:00", "2026-03-04T12:00", "2026-03-03T09:00"}),
        (Policy(daily=-1), DAYS, {"2026-03-05T10:00", "2026-03-04T12:00", "2026-03-03T09:00"}),
        # Four in one month, --keep-monthly 4: the newest, and the oldest (counts were left).
        (
            Policy(monthly=4),
            ("2024-01-04T20:20", "2024-01-04T20:09", "2024-01-03T01:04", "2024-01-02T13:42"),
            {"2024-01-04T20:20", "2024-01-02T13:42"},
        ),
        # 2026-12-31 and 2027-01-01 are in one ISO week (2026-W53): one weekly backup.
        (Policy(weekly=1), ("2027-01-01T09:00", "2026-12-31T09:00"), {"2027-01-01T09:00"}),
        (
            Policy(hourly=2),
            ("2026-03-05T10:50", "2026-03-05T10:10", "2026-03-05T09:30"),
            {"2026-03-05T10:50", "2026-03-05T09:30"},
        ),
        (Policy(yearly=1), ("2026-03-05T10:00", "2025-12-31T23:00"), {"2026-03-05T10:00"}),
    ],
)
def test_policies_keep_what_restic_keeps(policy: Policy, times: tuple[str, ...], expected: set[str]) -> None:
    made = entries(*times)
    apply_policy(made, policy)
    assert set(kept(made)) == expected


def test_a_backup_kept_by_several_rules_names_them_all() -> None:
    made = entries(*DAYS)
    apply_policy(made, Policy(last=1, daily=2))
    reasons = kept(made)
    assert reasons["2026-03-05T10:00"] == ["last backup", "daily backup"]
    assert reasons["2026-03-04T12:00"] == ["daily backup"]


def test_the_oldest_kept_for_counts_left_says_so() -> None:
    made = entries("2024-01-04T20:20", "2024-01-02T13:42")
    apply_policy(made, Policy(monthly=4))
    assert kept(made)["2024-01-02T13:42"] == ["oldest monthly backup"]


def test_each_target_is_judged_apart() -> None:
    made = entries("2026-03-05T10:00", "2026-03-04T10:00", group="sqlite /a") + entries(
        "2026-03-05T09:00", "2026-03-04T09:00", group="postgresql db:5432/b"
    )
    apply_policy(made, Policy(last=1))
    assert sorted(e.group for e in made if e.keep) == ["postgresql db:5432/b", "sqlite /a"]


@pytest.mark.parametrize("policy", [dict(last=-2), dict(daily=-5)])
def test_a_count_below_minus_one_is_refused(policy: dict[str, int]) -> None:
    with pytest.raises(UsageError, match="0 or more, or -1"):
        Policy(**policy)


def test_an_empty_policy_is_empty() -> None:
    assert Policy().empty() and not Policy(weekly=1).empty()
    assert Policy(last=2, monthly=-1).describe() == "2 last, all monthly"
