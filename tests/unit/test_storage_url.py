"""Repository URLs and keys (aris3nb.storage.url), and the chain head's judgement
(aris3nb.storage.head.head_problems) over histories made up here: no network."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

import aris3nb.storage as storage
from aris3nb.core.errors import UsageError
from aris3nb.storage import HeadVersion, InvalidStorageUrl, Location, head_document, head_problems, parse_url
from aris3nb.storage.url import key_problem

RUN_A = "20250101T120000Z-aaaaaa"
RUN_B = "20250102T120000Z-bbbbbb"
RUN_C = "20250103T120000Z-cccccc"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def test_all_lists_every_public_name() -> None:
    # Submodules are attributes once imported (``artifacts`` by the backup commands' tests): not names.
    submodules = {"annotations", "artifacts", "errors", "head", "lock", "runs", "s3", "url"}
    public = {n for n in dir(storage) if not n.startswith("_")} - submodules
    assert sorted(storage.__all__) == sorted(public)
    assert storage.__all__ == sorted(storage.__all__)


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://aris3-backups", "aris3-backups", ""),
        ("s3://aris3-backups/", "aris3-backups", ""),
        ("s3://aris3-backups/prod", "aris3-backups", "prod"),
        ("s3://aris3-backups/prod/eu-1/", "aris3-backups", "prod/eu-1"),
        ("S3://my.bucket.example/x", "my.bucket.example", "x"),
    ],
)
def test_parse_url_accepts_bucket_and_prefix(url: str, bucket: str, prefix: str) -> None:
    assert parse_url(url) == Location(bucket=bucket, prefix=prefix)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("https://bucket/x", "is not s3://BUCKET[/PREFIX]"),
        ("bucket/x", "is not s3://BUCKET[/PREFIX]"),
        ("s3://", "names no bucket"),
        ("s3:///prefix", "names no bucket"),
        ("s3://bucket:9000/x", "names a port"),
        ("s3://bucket/x?versionId=1", "query or fragment"),
        ("s3://bucket/x#top", "query or fragment"),
        ("s3://Bucket_Upper", "is not valid"),
        ("s3://ab", "is not valid"),
        ("s3://-bucket", "is not valid"),
        ("s3://a..b", "is not valid"),
        ("s3://192.168.1.10", "is not valid"),
        ("s3://bucket//x", "prefix is not a safe relative path"),
        ("s3://bucket/a/../b", "contains '..'"),
        ("s3://bucket/a/./b", "not normalised"),
        ("s3://bucket/a\\b", "backslash"),
        ("s3://bucket/a\x01b", "control character"),
        ("s3://bucket/" + "p" * 600, "longer than 512 bytes"),
    ],
)
def test_parse_url_refuses_in_one_line(url: str, fragment: str) -> None:
    with pytest.raises(InvalidStorageUrl) as caught:
        parse_url(url)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 2 and isinstance(caught.value, UsageError)


def test_a_url_with_credentials_is_refused_without_echoing_them() -> None:
    with pytest.raises(InvalidStorageUrl) as caught:
        parse_url("s3://AKIDEXAMPLE:wJalrXUtnFEMI-secret@bucket/prefix")
    assert "must not carry credentials" in str(caught.value)
    assert "wJalrXUtnFEMI" not in str(caught.value) and "AKIDEXAMPLE" not in str(caught.value)


def test_location_maps_keys_both_ways() -> None:
    rooted, nested = Location("bucket"), Location("bucket", "prod/eu")
    assert rooted.key("runs/HEAD.json") == "runs/HEAD.json"
    assert nested.key("runs/HEAD.json") == "prod/eu/runs/HEAD.json"
    assert nested.relative("prod/eu/runs/HEAD.json") == "runs/HEAD.json"
    assert nested.url("backups/b1/manifest.json") == "s3://bucket/prod/eu/backups/b1/manifest.json"
    assert str(nested) == "s3://bucket/prod/eu" and str(rooted) == "s3://bucket"
    with pytest.raises(ValueError):
        nested.relative("prod/other/x")


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a", "a\\b", "a\x00b", "a\nb", "k" * 1100])
def test_unsafe_keys_are_named(key: str) -> None:
    assert key_problem(key) is not None


def test_safe_keys_pass() -> None:
    assert key_problem("backups/b1/tables/0001.csv.gz") is None


# -- the chain head ---------------------------------------------------------------------------


def _version(n: int, data: bytes, *, deleted: bool = False) -> HeadVersion:
    when = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=n)
    return HeadVersion(version_id=f"v{n}", last_modified=when, data=data, deleted=deleted)


def test_head_document_is_canonical_json_that_reads_back() -> None:
    raw = head_document(RUN_A, DIGEST_A, now=datetime(2025, 1, 1, 12, 0, 5, tzinfo=UTC))
    assert json.loads(raw) == {
        "format": "aris3nb.storage.head",
        "version": 1,
        "run_id": RUN_A,
        "digest": DIGEST_A,
        "written_at": "2025-01-01T12:00:05Z",
    }
    assert _version(1, raw).document() is not None
    with pytest.raises(ValueError):
        head_document(RUN_A, "md5:abc")


def test_an_intact_chain_has_no_findings() -> None:
    history = [_version(2, head_document(RUN_B, DIGEST_B)), _version(1, head_document(RUN_A, DIGEST_A))]
    assert head_problems(history, {RUN_A: DIGEST_A, RUN_B: DIGEST_B}) == []
    assert head_problems(history, [RUN_A, RUN_B]) == []
    assert head_problems(history, [RUN_B]) == []  # older runs may be forgotten by retention
    assert head_problems([], []) == []


def test_a_deleted_newest_run_is_found() -> None:
    history = [_version(2, head_document(RUN_B, DIGEST_B)), _version(1, head_document(RUN_A, DIGEST_A))]
    problems = head_problems(history, [RUN_A])
    assert len(problems) == 1 and f"run {RUN_B} is missing" in problems[0]


def test_a_rewritten_head_does_not_hide_the_deletion() -> None:
    history = [
        _version(3, head_document(RUN_A, DIGEST_A)),
        _version(2, head_document(RUN_B, DIGEST_B)),
        _version(1, head_document(RUN_A, DIGEST_A)),
    ]
    problems = head_problems(history, [RUN_A])
    assert any(f"names run {RUN_B}, later than every run that remains" in p for p in problems)
    assert any("the head was rewound" in p for p in problems)


def test_a_replaced_run_a_deleted_head_and_an_unrecorded_run_are_found() -> None:
    history = [_version(1, head_document(RUN_A, DIGEST_A))]
    assert "was replaced" in head_problems(history, {RUN_A: DIGEST_B})[0]
    assert f"run {RUN_C} is later than the head's run {RUN_A}" in head_problems(history, [RUN_A, RUN_C])[0]
    deleted = [_version(2, b"", deleted=True), *history]
    assert "was deleted" in head_problems(deleted, [RUN_A])[0]
    assert "never written" in head_problems([], [RUN_A])[0]
    assert "is not an aris3nb.storage.head" in head_problems([_version(1, b"{}")], [RUN_A])[0]


def test_a_run_replaced_and_the_head_rewritten_to_match_is_found_by_the_earlier_version() -> None:
    """A NO-GO run's evidence.json replaced by a GO one, and a new head version recording the
    forged digest: the newest head agrees with the run, the first version naming it does not."""
    forged = "sha256:" + "f" * 64
    history = [_version(2, head_document(RUN_A, forged)), _version(1, head_document(RUN_A, DIGEST_A))]
    problems = head_problems(history, {RUN_A: forged})
    assert len(problems) == 1 and "first version naming it, v1" in problems[0], problems
    assert f"run {RUN_A} was replaced and the head rewritten" in problems[0]
    # An older run, once the head, replaced after later runs were sealed: its first record stands.
    later = [_version(3, head_document(RUN_B, DIGEST_B)), *history[1:]]
    problems = head_problems(later, {RUN_A: forged, RUN_B: DIGEST_B})
    assert problems == [
        f"run {RUN_A}'s evidence.json has digest {forged}, the head recorded {DIGEST_A} when it was written "
        f"(version v1, 2025-01-01T01:00:00Z): run {RUN_A} was replaced"
    ]
    assert head_problems(later, [RUN_A, RUN_B]) == []  # digests unknown: nothing to compare


@pytest.mark.parametrize(
    ("url", "repository", "run_id"),
    [
        ("s3://aris3-evidence", "s3://aris3-evidence", None),
        ("s3://aris3-evidence/runs", "s3://aris3-evidence", None),
        ("s3://aris3-evidence/prod/runs/", "s3://aris3-evidence/prod", None),
        (f"s3://aris3-evidence/prod/runs/{RUN_A}", "s3://aris3-evidence/prod", RUN_A),
        (f"s3://aris3-evidence/runs/{RUN_A}/evidence.json", "s3://aris3-evidence", RUN_A),
        ("s3://aris3-evidence/prod/eu-1", "s3://aris3-evidence/prod/eu-1", None),
        # a folder below runs/ that is not named like a run is no run: the prefix as given
        ("s3://aris3-evidence/runs/latest", "s3://aris3-evidence/runs/latest", None),
    ],
)
def test_split_runs_url_finds_the_repository_and_the_run(url: str, repository: str, run_id: str | None) -> None:
    from aris3nb.storage.runs import split_runs_url

    assert split_runs_url(url) == (repository, run_id)


def test_split_runs_url_refuses_what_parse_url_refuses() -> None:
    from aris3nb.storage.runs import split_runs_url

    with pytest.raises(InvalidStorageUrl, match="credentials"):
        split_runs_url("s3://key:secret@bucket/runs")
