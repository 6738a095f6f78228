"""in-toto attestations of sealed runs: a Statement v1 in a DSSE envelope, signed with Ed25519.

A signed run also writes ``evidence.intoto.jsonl`` (one DSSE envelope, one line): its payload
is an in-toto Statement v1 whose subjects are every file of the bundle with its SHA-256,
``evidence.json`` included, and whose predicate (type ``PREDICATE_TYPE``, docs/FORMAT.md §7.6)
states the run's phases, verdict, decision, target profile and code revision. Anyone with the
signer's public key verifies it with a standard DSSE/in-toto library, without aris3nb
(scripts/verify_attestation.py is such a check, using securesystemslib).

The verifying key never comes from the bundle: ``verify_envelope`` is given the trusted keys
(``evidence verify --public-key`` or ``--trusted-keys``), and "signed by whom" is answered by
the name of the trusted key whose signature verified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ATTESTATION_NAME = "evidence.intoto.jsonl"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "urn:aris3nb:playbook-run:v1"
MAX_ATTESTATION_BYTES = 64 * 1024 * 1024
_PHASE_FIELDS = ("phase", "status", "verdict")
_RUN_FIELDS = ("run_id", "started_at", "finished_at", "verdict", "decision", "exit_code")


def _hex(digest: str) -> str:
    return digest.removeprefix("sha256:")


def statement(evidence: dict[str, Any], evidence_digest: str) -> dict[str, Any]:
    """The Statement of a sealed run: its files (the digests ``evidence`` lists, and
    evidence.json's own ``evidence_digest``) and what the run found."""
    subjects = [{"name": "evidence.json", "digest": {"sha256": _hex(evidence_digest)}}]
    for entry in evidence.get("files") or []:
        subjects.append({"name": str(entry["path"]), "digest": {"sha256": _hex(str(entry["sha256"]))}})
    predicate: dict[str, Any] = {name: evidence.get(name) for name in _RUN_FIELDS}
    predicate["phases"] = [
        {name: phase.get(name) for name in _PHASE_FIELDS}
        for phase in evidence.get("phases") or []
        if isinstance(phase, dict)
    ]
    predicate["target_mode"] = (evidence.get("target") or {}).get("mode")
    predicate["profile"] = evidence.get("profile")
    predicate["code"] = evidence.get("code")
    return {"_type": STATEMENT_TYPE, "subject": subjects, "predicateType": PREDICATE_TYPE, "predicate": predicate}


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is signed."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def key_id(key: Ed25519PublicKey) -> str:
    """The key's id in the envelope: hex SHA-256 of its raw 32 bytes (a hint, never trusted)."""
    from cryptography.hazmat.primitives import serialization

    return hashlib.sha256(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).hexdigest()


def envelope(document: dict[str, Any], private: Ed25519PrivateKey) -> dict[str, Any]:
    """The signed DSSE envelope of a Statement."""
    payload = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    signature = private.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": key_id(private.public_key()), "sig": base64.b64encode(signature).decode("ascii")}],
    }


def render(signed: dict[str, Any]) -> str:
    """The attestation file's text: the envelope as one JSON line (the .jsonl convention)."""
    return json.dumps(signed, separators=(",", ":")) + "\n"


class AttestationProblem(ValueError):
    """The attestation does not verify: the message says why."""


def read_envelope(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_ATTESTATION_BYTES:
            raise AttestationProblem(f"{path.name} is too large to be an attestation")
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if len(lines) != 1:
            raise AttestationProblem(f"{path.name} holds {len(lines)} envelopes, not one")
        document = json.loads(lines[0])
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise AttestationProblem(f"{path.name} is not a readable DSSE envelope ({type(exc).__name__})") from exc
    if not isinstance(document, dict) or not isinstance(document.get("signatures"), list):
        raise AttestationProblem(f"{path.name} is not a DSSE envelope (no signatures list)")
    return document


def verify_envelope(document: dict[str, Any], trusted: dict[str, Ed25519PublicKey]) -> tuple[dict[str, Any], str]:
    """The Statement of a DSSE envelope and the name of the trusted key that signed it;
    ``AttestationProblem`` when no trusted key's signature verifies or it is not a Statement."""
    if document.get("payloadType") != PAYLOAD_TYPE:
        raise AttestationProblem(f"its payloadType is {str(document.get('payloadType'))[:60]!r}, not {PAYLOAD_TYPE}")
    try:
        payload = base64.b64decode(str(document.get("payload")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AttestationProblem("its payload is not base64") from exc
    signed = pae(PAYLOAD_TYPE, payload)
    signer = None
    for entry in document["signatures"]:
        try:
            signature = base64.b64decode(str(entry.get("sig") if isinstance(entry, dict) else ""), validate=True)
        except (binascii.Error, ValueError):
            continue
        for name, key in trusted.items():
            try:
                key.verify(signature, signed)
            except InvalidSignature:
                continue
            signer = name
            break
        if signer:
            break
    if signer is None:
        raise AttestationProblem("no signature in it verifies under a trusted key")
    try:
        inner = json.loads(payload)
    except ValueError as exc:
        raise AttestationProblem("its payload is not JSON") from exc
    if not isinstance(inner, dict) or inner.get("_type") != STATEMENT_TYPE:
        raise AttestationProblem(f"its payload is not an in-toto Statement v1 ({STATEMENT_TYPE})")
    if inner.get("predicateType") != PREDICATE_TYPE:
        raise AttestationProblem(f"its predicateType is {str(inner.get('predicateType'))[:80]!r}")
    return inner, signer


def statement_problems(inner: dict[str, Any], evidence: dict[str, Any], evidence_digest: str) -> list[str]:
    """How a verified Statement differs from the run as evidence.json and its files say."""
    expected = statement(evidence, evidence_digest)
    problems = []
    said = {s.get("name"): (s.get("digest") or {}).get("sha256") for s in inner.get("subject") or []}
    wanted = {s["name"]: s["digest"]["sha256"] for s in expected["subject"]}
    for name in sorted(set(said) | set(wanted)):
        if name not in wanted:
            problems.append(f"the attestation names {name!r}, which the run does not list")
        elif name not in said:
            problems.append(f"the attestation does not name {name!r}")
        elif said[name] != wanted[name]:
            problems.append(f"the attestation's SHA-256 of {name!r} is not the file's")
    for field, value in expected["predicate"].items():
        if (inner.get("predicate") or {}).get(field) != value:
            problems.append(f"the attestation's {field} is not evidence.json's")
    return problems
