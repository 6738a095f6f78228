"""in-toto Statement v1 in a DSSE envelope: signed here, verified here and by securesystemslib."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from aris3nb.evidence import attest

EVIDENCE = {
    "run_id": "20261129T100000Z-abc123",
    "started_at": "2026-11-29T10:00:00.000Z",
    "finished_at": "2026-11-29T10:01:00.000Z",
    "verdict": "PASS",
    "decision": "GO",
    "exit_code": 0,
    "target": {"mode": "embedded"},
    "phases": [{"phase": "drill", "status": "completed", "verdict": "PASS", "duration_sec": 3.2}],
    "profile": {"name": "reference"},
    "code": {"commit": "0" * 40},
    "files": [{"path": "04-drill.ipynb", "size": 3, "sha256": "sha256:" + "a" * 64}],
}
DIGEST = "sha256:" + "b" * 64


def signed(key: Ed25519PrivateKey) -> dict:
    return attest.envelope(attest.statement(EVIDENCE, DIGEST), key)


def independent_key(key: Ed25519PrivateKey) -> SSlibKey:
    public = key.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return SSlibKey.from_crypto(public, keyid=hashlib.sha256(raw).hexdigest())


def test_the_statement_names_every_file_and_the_runs_result() -> None:
    statement = attest.statement(EVIDENCE, DIGEST)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [
        {"name": "evidence.json", "digest": {"sha256": "b" * 64}},
        {"name": "04-drill.ipynb", "digest": {"sha256": "a" * 64}},
    ]
    predicate = statement["predicate"]
    assert predicate["decision"] == "GO" and predicate["phases"] == [
        {"phase": "drill", "status": "completed", "verdict": "PASS"}
    ]
    assert predicate["profile"] == {"name": "reference"} and predicate["code"] == {"commit": "0" * 40}


def test_a_trusted_key_verifies_and_is_named() -> None:
    key = Ed25519PrivateKey.generate()
    inner, signer = attest.verify_envelope(signed(key), {"release-ci": key.public_key()})
    assert signer == "release-ci" and inner["predicate"]["run_id"] == EVIDENCE["run_id"]
    assert attest.statement_problems(inner, EVIDENCE, DIGEST) == []


def test_another_key_is_refused() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    with pytest.raises(attest.AttestationProblem, match="no signature in it verifies under a trusted key"):
        attest.verify_envelope(signed(key), {"someone": other.public_key()})


def test_a_changed_payload_is_refused() -> None:
    key = Ed25519PrivateKey.generate()
    envelope = signed(key)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["decision"] = "NO-GO"
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(attest.AttestationProblem):
        attest.verify_envelope(envelope, {"release-ci": key.public_key()})


def test_a_statement_that_disagrees_with_the_run_is_named() -> None:
    key = Ed25519PrivateKey.generate()
    inner, _ = attest.verify_envelope(signed(key), {"k": key.public_key()})
    changed = {**EVIDENCE, "decision": "NO-GO", "files": [{"path": "04-drill.ipynb", "sha256": "sha256:" + "c" * 64}]}
    problems = attest.statement_problems(inner, changed, DIGEST)
    assert "the attestation's SHA-256 of '04-drill.ipynb' is not the file's" in problems
    assert "the attestation's decision is not evidence.json's" in problems


def test_securesystemslib_verifies_it_and_refuses_another_key() -> None:
    """An independent DSSE implementation accepts the envelope: the format is the standard one."""
    key = Ed25519PrivateKey.generate()
    envelope = Envelope.from_dict(json.loads(attest.render(signed(key))))
    assert list(envelope.verify([independent_key(key)], 1)) == [independent_key(key).keyid]
    assert json.loads(envelope.payload)["predicateType"] == attest.PREDICATE_TYPE
    other = Ed25519PrivateKey.generate()
    with pytest.raises(VerificationError):
        Envelope.from_dict(json.loads(attest.render(signed(key)))).verify([_renamed(other, key)], 1)


def _renamed(other: Ed25519PrivateKey, key: Ed25519PrivateKey) -> SSlibKey:
    """``other``'s public key under ``key``'s id: the signature must still not verify."""
    return SSlibKey.from_crypto(other.public_key(), keyid=independent_key(key).keyid)
