"""Verify a sealed aris3nb run's attestation without aris3nb: an auditor's check.

    pip install 'securesystemslib[crypto]'
    python verify_attestation.py RUN_DIR SIGNER.pub

RUN_DIR holds ``evidence.intoto.jsonl`` (a DSSE envelope) and the run's files; SIGNER.pub
is the PEM public key you trust for the team that runs the playbook, obtained from them
(never from the run folder). The script checks, with securesystemslib's DSSE implementation:
the envelope's signature under that key; that its payload is an in-toto Statement v1 of
predicate type ``urn:aris3nb:playbook-run:v1``; and the SHA-256 of every subject against the
file on disk. It prints the run's verdict and decision as the signed Statement states them.
Exit 0 verified; 1 not. It imports nothing from aris3nb.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey


def main(run_dir: Path, public_key_file: Path) -> int:
    public = serialization.load_pem_public_key(public_key_file.read_bytes())
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key = SSlibKey.from_crypto(public, keyid=hashlib.sha256(raw).hexdigest())
    envelope = Envelope.from_dict(json.loads((run_dir / "evidence.intoto.jsonl").read_text()))
    try:
        envelope.verify([key], 1)
    except Exception as exc:  # securesystemslib raises VerificationError (and others) for a bad signature
        print(f"NOT VERIFIED: the signature does not verify under {public_key_file}: {exc}")
        return 1
    statement = json.loads(envelope.payload)
    if statement.get("_type") != "https://in-toto.io/Statement/v1":
        print("NOT VERIFIED: the payload is not an in-toto Statement v1")
        return 1
    if statement.get("predicateType") != "urn:aris3nb:playbook-run:v1":
        print(f"NOT VERIFIED: unexpected predicate type {statement.get('predicateType')!r}")
        return 1
    bad = []
    for subject in statement["subject"]:
        path = run_dir / subject["name"]
        actual = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        if actual != subject["digest"]["sha256"]:
            bad.append(subject["name"])
    if bad:
        print(f"NOT VERIFIED: {len(bad)} file(s) differ from the attestation: {', '.join(bad[:5])}")
        return 1
    predicate = statement["predicate"]
    print(
        f"VERIFIED: run {predicate['run_id']}: {len(statement['subject'])} files match; "
        f"verdict {predicate['verdict']}, decision {predicate['decision']}"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[0] + "\nusage: python verify_attestation.py RUN_DIR SIGNER.pub")
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
