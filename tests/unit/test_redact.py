import html
import json
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aris3nb.core import redact
from aris3nb.core.redact import redact_text, redact_url, url_password, userinfo_problem


def test_url_password_is_masked() -> None:
    assert (
        redact_url("postgresql://app:hunter2@db.internal:5432/aris3") == "postgresql://app:***@db.internal:5432/aris3"
    )
    assert redact_url("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
    assert url_password("postgresql://app:hunter2@db/aris3") == "hunter2"
    assert url_password("postgresql://app@db/aris3") is None


def test_password_with_reserved_characters_is_masked() -> None:
    url = "postgresql://app:p%40ss%3Aword@db/aris3"
    assert "p%40ss" not in redact_url(url) and "p@ss" not in redact_url(url)
    assert url_password(url) == "p@ss:word"


def test_unparseable_url_is_still_scrubbed() -> None:
    assert "hunter2" not in redact_url("postgresql://app:hunter2@db:notaport/x")


def test_free_text_loses_url_passwords_and_known_secrets() -> None:
    text = "failed: postgresql://app:hunter2@db/aris3 said token abc123"
    cleaned = redact_text(text, ["abc123", None, ""])
    assert "hunter2" not in cleaned and "abc123" not in cleaned
    assert "postgresql://app:***@db/aris3" in cleaned
    assert redact_text("http://user@host/x") == "http://user@host/x"


# Passwords that hold unencoded URL delimiters: masked from ``://user:`` to the LAST ``@``.
HOSTILE = [
    ("postgresql://u:Sekr3t@ss:w/o%rd#x?y z@127.0.0.1:5432/db", ["Sekr3t", "ss:w", "o%rd", "x?y z"]),
    ("postgresql://u:Sekr3t@tail@127.0.0.1:5432/db", ["Sekr3t", "tail@", "@tail"]),
]


@pytest.mark.parametrize(("url", "fragments"), HOSTILE)
def test_a_password_is_masked_up_to_the_last_at(url: str, fragments: list[str]) -> None:
    assert redact_url(url) == "postgresql://u:***@127.0.0.1:5432/db"
    assert (
        redact_text(f"cannot connect to {url!r}: refused")
        == "cannot connect to 'postgresql://u:***@127.0.0.1:5432/db': refused"
    )
    for shown in (redact_url(url), redact_text(url), redact_text(f"x {url} y")):
        assert not [f for f in fragments if f in shown], shown


@pytest.mark.parametrize(("url", "fragments"), HOSTILE)
def test_masking_a_hostile_url_keeps_json_and_html_intact(url: str, fragments: list[str]) -> None:
    document = {"database": url, "owner": "ops@example.com", "log": f"line one\n{url} said no\nmail me@x"}
    cleaned = redact_text(json.dumps(document))
    assert json.loads(cleaned) == {
        "database": "postgresql://u:***@127.0.0.1:5432/db",
        "owner": "ops@example.com",
        "log": "line one\npostgresql://u:***@127.0.0.1:5432/db said no\nmail me@x",
    }
    page = redact_text(f"<td>{html.escape(url)}</td><td>ops@example.com</td>")
    assert page == "<td>postgresql://u:***@127.0.0.1:5432/db</td><td>ops@example.com</td>"
    assert not [f for f in fragments if f in cleaned + page]


def test_one_mask_never_swallows_the_next_url() -> None:
    text = "copy postgresql://a:pw1@h1/db to postgresql://b:pw2@h2/db"
    assert redact_text(text) == "copy postgresql://a:***@h1/db to postgresql://b:***@h2/db"


def test_ambiguous_credentials_are_named_without_quoting_them() -> None:
    for url, fragments in HOSTILE:
        problem = userinfo_problem(url)
        assert problem is not None and not [f for f in fragments if f in problem]
        assert url_password(url) is not None and "Sekr3t" in (url_password(url) or "")
    for fine in (
        "postgresql://app:p%40ss%3A%2F%23%3F%20@db:5432/aris3",
        "postgresql://u@h/db",
        "sqlite:///a.db",
        "sqlite:////srv/user@example/aris3.db",
        "postgresql://u:pw@[::1]:5432/db?application_name=x",
    ):
        assert userinfo_problem(fine) is None, fine
    for bad in (
        "postgresql://u:a/b@h/db",
        "postgresql://u:a#b@h/db",
        "postgresql://u:a?b@h/db",
        "postgresql://u:a b@h/db",
        "postgresql://u:50%off@h/db",
        'postgresql://u:a"b@h/db',
        "postgresql://u:pw@h/db?x=a@b",
    ):
        assert userinfo_problem(bad) is not None, bad


def test_a_percent_encoded_password_round_trips() -> None:
    password = "p@ss:w/o#r?d %"
    url = f"postgresql://app:{quote(password, safe='')}@db/aris3"
    assert url_password(url) == password
    assert redact_url(url) == "postgresql://app:***@db/aris3"


def test_secret_columns_are_masked_in_a_row() -> None:
    from aris3nb.core.redact import mask_row

    row = {
        "id": 7,
        "hashed_password": "$2b$12$abc",
        "API_KEY": "k",
        "refresh_token": "t",
        "client_secret": None,
        "passport_no": "P1",
        "response_body": '{"access_token": "x"}',
        "must_change_password": True,
        "password_attempts": 3,
    }
    assert mask_row("users", row) == {**row, "hashed_password": "***", "API_KEY": "***", "refresh_token": "***"}
    masked = mask_row("idempotency_records", row, {"idempotency_records.response_body"})
    assert masked["response_body"] == "***" and masked["client_secret"] is None, "NULL is no secret"
    assert masked["must_change_password"] is True and masked["password_attempts"] == 3, "nor a flag or a number"
    assert mask_row("other", row, {"idempotency_records.response_body"})["response_body"] == row["response_body"]


def test_a_profile_names_its_secret_columns_as_table_dot_column() -> None:
    from aris3nb.core.errors import UsageError
    from aris3nb.targets.profile import parse_profile

    base = 'profile_version = 1\nname = "t"\n[redact]\ncolumns = '
    assert parse_profile(base + '["sessions.cookie"]', "aris3nb.toml").redact.columns == ["sessions.cookie"]
    with pytest.raises(UsageError, match="redact.columns"):
        parse_profile(base + '["cookie"]', "aris3nb.toml")


def test_the_builtin_aris3_profile_masks_stored_responses() -> None:
    from aris3nb.targets.profile import builtin_profile_text, parse_profile

    profile = parse_profile('profile_version = 1\nname = "up"\nextends = "aris3"\n', "aris3nb.toml")
    assert "idempotency_records.response_body" in profile.redact.columns
    assert parse_profile(builtin_profile_text("aris3"), "aris3.toml").redact == profile.redact


# Pieces that make and break URL-looking text: schemes, credentials, ends of strings and lines;
# and URL-shaped runs of them (a scheme run that may start with a digit, ``://``, user, ``:``,
# password, ``@``), so that texts near a match are common, not rare.
_PIECES = st.sampled_from(
    [
        "://",
        ":",
        "@",
        "/",
        "postgresql",
        "http",
        "s3",
        "x1",
        "9",
        "+",
        ".",
        "-",
        "u",
        "pw",
        " ",
        "\n",
        "\\n",
        "\\",
        '"',
        '\\"',
        "<",
        ">",
        "#",
        "?",
        "é",
        "AZ09+/=",
    ]
)
_RUNS = st.lists(_PIECES, max_size=6).map("".join)
_URLISH = st.tuples(
    st.text("9+.-aZ", max_size=3),
    _RUNS,
    st.just("://"),
    _RUNS,
    st.sampled_from([":", ""]),
    _RUNS,
    st.sampled_from(["@", ""]),
).map("".join)


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.one_of(_RUNS, _URLISH), max_size=8).map("".join))
def test_masking_finds_exactly_what_the_pattern_finds_anywhere(text: str) -> None:
    """The scan from each ``://`` masks what ``_URL_PASSWORD.sub`` tried at every position masks."""
    expected = redact._URL_PASSWORD.sub(lambda m: f"{m['head']}***{m['tail']}" if m["secret"] else m[0], text)
    assert redact_text(text) == expected
