from aris3nb.redact import redact_text, redact_url, url_password


def test_url_password_is_masked() -> None:
    assert redact_url("postgresql://app:hunter2@db.internal:5432/aris3") == "postgresql://app:***@db.internal:5432/aris3"
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
