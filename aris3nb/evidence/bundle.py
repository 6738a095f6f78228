"""The evidence bundle of a playbook run: sealing a run folder into ``evidence.json`` (a
digest of every file, a link to the previous run, an optional Ed25519 signature), reading
it back, and verifying one run or the whole chain of runs (format: docs/FORMAT.md §7).

A sealed run is tamper-evident. Changing, removing or adding a file breaks its digests;
editing ``evidence.json`` breaks its signature (when signed) and the link the next run holds
to it; deleting or reordering runs breaks the chain. Verification trusts nothing in the
folder: it never follows a symbolic link, never reads outside the run folder, and reports
every problem it finds, each naming the file, field or run, rather than stopping at the first.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aris3nb.core.errors import Aris3nbError, EvidenceInvalid, EvidenceSealRefused, EvidenceUnreadable, SigningKeyError
from aris3nb.core.files import crosses_link, sha256_file, unsafe_path_reason, write_text_evidence
from aris3nb.core.words import recorded
from aris3nb.evidence import attest
from aris3nb.formats.evidence import EvidenceFile, SealedRun, Signature
from aris3nb.formats.reading import DocumentInvalid, validate

EVIDENCE_NAME = "evidence.json"
SIGNATURE_NAME = "evidence.json.sig"
FORMAT = "aris3nb.evidence"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
MAX_EVIDENCE_BYTES = 64 * 1024 * 1024
MAX_SIGNATURE_BYTES = 1024
MAX_KEY_BYTES = 64 * 1024
#: A run id as ``aris3nb.gate.report.new_run_id`` makes it; the chain orders runs by it. ASCII
#: digits only, and nothing after (``\d`` would take look-alike digits, ``$`` a trailing newline):
#: a folder that merely looks like a run must not take a place in the chain.
RUN_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}\Z")

#: The fields of the runner's body: opaque to the bundle, but they must all be there.
RUNNER_FIELDS = (
    "run_id",
    "started_at",
    "finished_at",
    "duration_sec",
    "verdict",
    "decision",
    "exit_code",
    "target",
    "parameters",
    "phases",
    "metrics",
    "code",
    "tools",
)
#: The fields the bundle writes itself; a body carrying one of them is refused.
BUNDLE_FIELDS = ("format", "version", "previous", "signature", "files")


# -- digests and keys ---------------------------------------------------------------------


def digest_of_file(path: Path) -> str:
    """``sha256:<hex>`` of a file's bytes, streamed (the form every digest of the bundle takes)."""
    return "sha256:" + sha256_file(path)[1]


def _digest_of_bytes(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """``sha256:<hex>`` of the raw 32-byte public key: what a person compares to trust a key."""
    return _digest_of_bytes(_raw_public_key(key))


def _read_key_file(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_KEY_BYTES:
            raise SigningKeyError(f"{path} is too large to be a PEM key file")
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise SigningKeyError(f"no key file at {path}") from exc
    except OSError as exc:
        raise SigningKeyError(f"cannot read key file {path}: {exc.strerror or exc}") from exc


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 signing key of a PEM PKCS8 file (unencrypted, as ``generate_signing_key`` writes it)."""
    data = _read_key_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:  # cryptography's way of saying the key is encrypted
        raise SigningKeyError(
            f"{path} is an encrypted key; aris3nb signs with an unencrypted PEM PKCS8 "
            "Ed25519 key (make one with `aris3nb evidence keygen`)"
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(f"{path} is not a PEM private key; make one with `aris3nb evidence keygen`") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(
            f"{path} holds a {type(key).__name__.removeprefix('_')} key, not Ed25519; "
            "make one with `aris3nb evidence keygen`"
        )
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 key of a PEM SubjectPublicKeyInfo file (the ``.pub`` beside a signing key)."""
    data = _read_key_file(path)
    if b"PRIVATE KEY" in data:
        raise SigningKeyError(f"{path} is a private key; give the public key ({path.name}.pub), which is safe to share")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(f"{path} is not a PEM public key (-----BEGIN PUBLIC KEY-----)") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path} holds a {type(key).__name__.removeprefix('_')} key, not Ed25519")
    return key


def generate_signing_key(private_path: Path) -> Path:
    """Write a new Ed25519 key pair: ``private_path`` (PEM PKCS8, 0600) and ``<private_path>.pub``
    (PEM SubjectPublicKeyInfo, to share with verifiers); return the public key's path.

    Neither file is ever overwritten: replacing a signing key silently would make every run
    signed with the old one look foreign.
    """
    public_path = private_path.with_name(private_path.name + ".pub")
    for path in (private_path, public_path):
        if os.path.lexists(path):
            raise SigningKeyError(
                f"{path} already exists; keys are never overwritten (choose another path, "
                "or move the old key away deliberately)"
            )
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        private_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_new_file(private_path, private_pem, 0o600)
        try:
            _write_new_file(public_path, public_pem, 0o644)
        except BaseException:
            private_path.unlink(missing_ok=True)
            raise
    except FileExistsError as exc:
        raise SigningKeyError(f"{exc.filename} already exists; keys are never overwritten") from exc
    except OSError as exc:
        raise SigningKeyError(f"cannot write key file {exc.filename or private_path}: {exc.strerror or exc}") from exc
    return public_path


def _write_new_file(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start (O_EXCL: never over an existing file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(path, mode)  # the umask may have narrowed it


# -- walking a folder without following links ---------------------------------------------


def _tree(
    root: Path, on_error: Callable[[str, OSError], None], relative: str = ""
) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry under ``root``, as (relative POSIX path, lstat), depth first; a symbolic
    link is reported as itself and never followed, so nothing outside ``root`` is read."""
    try:
        with os.scandir(root / relative if relative else root) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        on_error(relative or ".", exc)
        return
    for entry in entries:
        path = f"{relative}/{entry.name}" if relative else entry.name
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError as exc:
            on_error(path, exc)
            continue
        yield path, info
        if stat.S_ISDIR(info.st_mode):
            yield from _tree(root, on_error, path)


def _unsafe_path_reason(relative: str) -> str | None:
    """Why a path cannot name a file inside the run folder faithfully, or None: the manifest
    rules (docs/FORMAT.md §5), and text that UTF-8 JSON cannot hold (a lone surrogate, which
    is what a file name that is not valid UTF-8 becomes)."""
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid UTF-8 text"
    return unsafe_path_reason(relative)


def _is_own_file(relative: str) -> bool:
    """evidence.json, its signature and its attestation at the top of the run: the files no
    digest of evidence.json can cover (the attestation covers evidence.json's digest instead)."""
    return relative in (EVIDENCE_NAME, SIGNATURE_NAME, attest.ATTESTATION_NAME)


def _run_entries(runs_dir: Path) -> list[tuple[str, os.stat_result]]:
    """The entries of a runs folder named like run ids, in run id (time) order; other names
    (an index page, a temporary folder) are not runs."""
    found = []
    with os.scandir(runs_dir) as listing:
        for entry in listing:
            if RUN_ID.match(entry.name):
                found.append((entry.name, entry.stat(follow_symlinks=False)))
    return sorted(found, key=lambda item: item[0])


def _has_regular_evidence(run_dir: Path) -> bool:
    try:
        return stat.S_ISREG((run_dir / EVIDENCE_NAME).lstat().st_mode)
    except OSError:
        return False


# -- sealing ------------------------------------------------------------------------------


def seal_run(run_dir: Path, document: dict[str, Any], *, signing_key: Path | None = None) -> Path:
    """Seal a finished run: write ``run_dir/evidence.json`` holding the runner's ``document``
    plus the size and SHA-256 of every file in the folder, the digest of the previous run's
    evidence.json, and (with ``signing_key``) an Ed25519 signature in ``evidence.json.sig``.

    The signature is written first and evidence.json last, each atomically and owner-only, so
    a run with an evidence.json is completely sealed. A sealed run is never sealed again: the
    next run's link holds the digest of its evidence.json.
    """
    run_dir = _absolute(run_dir)
    run_id = _sealable_run_id(run_dir, document)
    private = load_private_key(signing_key) if signing_key is not None else None
    try:
        sealed = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            **document,
            "previous": _previous_link(run_dir.parent, run_id),
            "signature": _signature_block(private.public_key()) if private else None,
            "files": _list_files(run_dir, run_id),
        }
        text = _render(sealed, run_id)
        raw = text.encode("utf-8")
        if problems := check_structure(json.loads(text)):
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise EvidenceSealRefused(f"cannot seal run {run_id}: {problems[0]}{more}")
        _write_signature(run_dir, run_id, private, raw)
        _write_attestation(run_dir, run_id, private, sealed, raw)
        path = _write_own_file(run_dir, run_id, EVIDENCE_NAME, text)
    except EvidenceSealRefused:
        if private is not None:  # nothing refers to a signature without its evidence.json
            for name in (SIGNATURE_NAME, attest.ATTESTATION_NAME):
                with contextlib.suppress(OSError):
                    (run_dir / name).unlink()
        raise
    except OSError as exc:
        raise EvidenceSealRefused(
            f"cannot seal run {run_id}: {exc.filename or run_dir}: {exc.strerror or exc}"
        ) from exc
    if digest_of_file(path) != _digest_of_bytes(raw):  # the signed bytes must be the bytes on disk
        raise EvidenceSealRefused(f"cannot seal run {run_id}: {path} does not hold the bytes that were signed")
    return path


def _sealable_run_id(run_dir: Path, document: dict[str, Any]) -> str:
    """The run id, once the folder and the body are known to be sealable."""
    if not isinstance(document, dict):
        raise EvidenceSealRefused(
            f"cannot seal {run_dir}: the document is a {type(document).__name__}, not a JSON object"
        )
    run_id = document.get("run_id")
    if not isinstance(run_id, str) or run_id != run_dir.name:
        raise EvidenceSealRefused(f"cannot seal {run_dir}: the document's run_id {run_id!r} does not name its folder")
    if not RUN_ID.match(run_id):
        raise EvidenceSealRefused(
            f"cannot seal run {run_id!r}: a run id must look like 20261128T094500Z-a1b2c3 "
            "(aris3nb.gate.report.new_run_id), the order the chain follows"
        )
    if taken := [name for name in BUNDLE_FIELDS if name in document]:
        raise EvidenceSealRefused(
            f"cannot seal run {run_id}: the document carries {', '.join(taken)}, which the bundle writes itself"
        )
    if missing := [name for name in RUNNER_FIELDS if name not in document]:
        raise EvidenceSealRefused(
            f"cannot seal run {run_id}: the document has no {', '.join(missing)} "
            "(every run records them, even a failed one)"
        )
    try:
        info = run_dir.lstat()
    except OSError as exc:
        raise EvidenceSealRefused(f"cannot seal run {run_id}: no run folder at {run_dir}") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise EvidenceSealRefused(f"cannot seal run {run_id}: {run_dir} is not a folder (a symbolic link?)")
    if os.path.lexists(run_dir / EVIDENCE_NAME):
        raise EvidenceSealRefused(
            f"run {run_id} is sealed already ({run_dir / EVIDENCE_NAME}); a sealed run is "
            "never sealed again, the next run's link depends on it"
        )
    return run_id


def _list_files(run_dir: Path, run_id: str) -> list[dict[str, Any]]:
    """Size and digest of every regular file of the run; a link or a special file is refused,
    because a bundle that depends on something outside it cannot be verified."""

    def refuse(relative: str, exc: OSError) -> None:
        raise EvidenceSealRefused(f"cannot seal run {run_id}: cannot read {relative!r}: {exc.strerror or exc}")

    files = []
    for relative, info in _tree(run_dir, refuse):
        if stat.S_ISLNK(info.st_mode):
            raise EvidenceSealRefused(
                f"cannot seal run {run_id}: {relative!r} is a symbolic link; a run folder "
                "holds regular files and folders only (copy the file in instead)"
            )
        if stat.S_ISDIR(info.st_mode) or _is_own_file(relative):
            continue
        if not stat.S_ISREG(info.st_mode):
            raise EvidenceSealRefused(f"cannot seal run {run_id}: {relative!r} is not a regular file or folder")
        if reason := _unsafe_path_reason(relative):
            raise EvidenceSealRefused(
                f"cannot seal run {run_id}: the name {relative!r} cannot be recorded safely ({reason})"
            )
        size, hexdigest = sha256_file(run_dir / relative)
        files.append({"path": relative, "size": size, "sha256": f"sha256:{hexdigest}"})
    return sorted(files, key=lambda entry: entry["path"])


def _previous_link(runs_dir: Path, run_id: str) -> dict[str, str] | None:
    """The newest sealed run before this one, with the digest of its evidence.json's bytes."""
    earlier = [
        name
        for name, info in _run_entries(runs_dir)
        if name < run_id and stat.S_ISDIR(info.st_mode) and _has_regular_evidence(runs_dir / name)
    ]
    if not earlier:
        return None
    return {"run_id": earlier[-1], "digest": digest_of_file(runs_dir / earlier[-1] / EVIDENCE_NAME)}


def _signature_block(public: Ed25519PublicKey) -> dict[str, str]:
    return {
        "algorithm": "ed25519",
        "public_key": base64.b64encode(_raw_public_key(public)).decode("ascii"),
        "key_id": key_id(public),
        "file": SIGNATURE_NAME,
    }


def _render(document: dict[str, Any], run_id: str) -> str:
    """The stable text of evidence.json: the bytes its digest and signature cover."""
    try:
        return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n"
    except ValueError as exc:
        raise EvidenceSealRefused(f"cannot seal run {run_id}: the document is not plain JSON ({exc})") from exc


def _write_own_file(run_dir: Path, run_id: str, name: str, text: str) -> Path:
    """Write one of the bundle's own files, saying which one could not be written (a full
    disk fails here, after every digest was computed): the run is then left unsealed."""
    try:
        return write_text_evidence(run_dir, name, text)
    except OSError as exc:
        raise EvidenceSealRefused(
            f"cannot seal run {run_id}: cannot write {name} in {run_dir}: {exc.strerror or exc}; "
            "the run is left unsealed (no evidence.json)"
        ) from exc


def _write_attestation(
    run_dir: Path, run_id: str, private: Ed25519PrivateKey | None, sealed: dict[str, Any], raw: bytes
) -> None:
    """With a signing key, the run's in-toto attestation (``attest``): a DSSE envelope whose
    Statement names every file of the bundle, evidence.json by the digest of ``raw``."""
    if private is not None:
        envelope = attest.envelope(attest.statement(sealed, _digest_of_bytes(raw)), private)
        _write_own_file(run_dir, run_id, attest.ATTESTATION_NAME, attest.render(envelope))
    elif os.path.lexists(run_dir / attest.ATTESTATION_NAME):
        (run_dir / attest.ATTESTATION_NAME).unlink()  # left by a signed seal that crashed


def _write_signature(run_dir: Path, run_id: str, private: Ed25519PrivateKey | None, raw: bytes) -> None:
    if private is not None:
        signature = base64.b64encode(private.sign(raw)).decode("ascii")
        _write_own_file(run_dir, run_id, SIGNATURE_NAME, signature + "\n")
    elif os.path.lexists(run_dir / SIGNATURE_NAME):
        # left by a signed seal that crashed before writing evidence.json: nothing refers to it
        (run_dir / SIGNATURE_NAME).unlink()


# -- reading ------------------------------------------------------------------------------


def read_evidence(path: Path) -> dict[str, Any]:
    """The evidence.json of a run (``path`` is the file or its run folder).

    ``EvidenceUnreadable`` (exit 2) when it cannot be read, is not JSON, not this format, or of
    an unknown version; ``EvidenceInvalid`` (exit 1, ``problems``) when its structure is wrong.
    Only the document is judged here; ``verify_run`` checks the files against it.
    """
    with contextlib.suppress(OSError):  # a name too long: _read_evidence_bytes says so
        if path.is_dir():
            path = path / EVIDENCE_NAME
    document = _parse(_read_evidence_bytes(path), path)
    if problems := check_structure(document):
        raise EvidenceInvalid(path, problems)
    return document


def _read_evidence_bytes(path: Path) -> bytes:
    try:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            raise EvidenceUnreadable(f"{path} is a symbolic link; evidence.json must be a regular file")
        if not stat.S_ISREG(info.st_mode):
            raise EvidenceUnreadable(f"{path} is not a regular file")
        if info.st_size > MAX_EVIDENCE_BYTES:
            raise EvidenceUnreadable(f"{path} is {info.st_size} bytes, more than an evidence.json can be")
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise EvidenceUnreadable(f"no evidence.json at {path}") from exc
    except OSError as exc:
        raise EvidenceUnreadable(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # a NUL in the path, or a name the filesystem cannot encode
        raise EvidenceUnreadable(f"cannot read {path!r}: {exc}") from exc


def _parse(raw: bytes, path: Path) -> dict[str, Any]:
    """The document in ``raw``, refusing what ``aris3nb.gate.report.read_json_evidence``
    refuses, in its words. It parses bytes rather than re-reading the path so that the
    bytes whose digest and signature are checked are the bytes that are judged."""
    try:
        document = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise EvidenceUnreadable(f"{path} is not valid JSON ({first}); it may be truncated or edited") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise EvidenceUnreadable(f"{path} is not an {FORMAT} document")
    version = document.get("version")
    if version not in SUPPORTED_VERSIONS or isinstance(version, bool):
        raise EvidenceUnreadable(
            f"{path} has {FORMAT} version {version!r}; this aris3nb reads "
            f"{'version' if len(SUPPORTED_VERSIONS) == 1 else 'versions'} "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}"
        )
    return document


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in evidence")


#: The run outcomes the runner writes (docs/FORMAT.md 7.5): decision -> (verdicts, exit code).
OUTCOMES = {
    "GO": (("PASS", "PASS_WITH_WARNINGS"), 0),
    "NO-GO": (("PASS", "PASS_WITH_WARNINGS", "FAIL"), 1),
    "INTERRUPTED": (("INTERRUPTED",), 130),
}


def check_structure(document: dict[str, Any]) -> list[str]:
    """Every field against the model of docs/FORMAT.md §7.2 and §7.5 (``aris3nb.formats.Evidence``:
    presence, types, run ids, digests, statuses); then what no model can say: the run's verdict,
    decision and exit code one of the outcomes the runner writes, the listed paths safe and
    listed once, ``previous`` earlier than this run, the signature block's key and its id."""
    try:
        model = validate(SealedRun, document, EVIDENCE_NAME)
    except DocumentInvalid as exc:
        return exc.problems
    problems = _outcome_problems(model)
    problems += _file_entry_problems(model.files)
    if model.previous is not None and model.previous.run_id >= model.run_id:
        problems.append(f"previous.run_id {model.previous.run_id} is not earlier than run {model.run_id}")
    if model.signature is not None:
        problems += _signature_problems(model.signature)
    return problems


def _outcome_problems(model: SealedRun) -> list[str]:
    verdicts, code = OUTCOMES[model.decision]
    if model.verdict not in verdicts or model.exit_code != code:
        return [
            f"verdict {model.verdict}, decision {model.decision} and exit code {model.exit_code} do not go together "
            f"(a {model.decision} run is {' or '.join(verdicts)}, exit {code})"
        ]
    return []


def _file_entry_problems(files: list[EvidenceFile]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for entry in files:
        where = f"file {entry.path!r}"
        if reason := _unsafe_path_reason(entry.path):
            problems.append(f"{where}: unsafe path ({reason})")
        elif _is_own_file(entry.path):
            problems.append(f"{where}: the bundle's own file cannot be listed")
        elif entry.path in seen:
            problems.append(f"{where}: listed twice")
        else:
            seen.add(entry.path)
    return problems


def _signature_problems(block: Signature) -> list[str]:
    public = _embedded_public_key(block.model_dump())
    if public is None:
        return ["signature.public_key is not the base64 of a raw 32-byte Ed25519 key"]
    if block.key_id != key_id(public):
        return ["signature.key_id is not the digest of signature.public_key"]
    return []


def _embedded_public_key(block: dict[str, Any]) -> Ed25519PublicKey | None:
    text = block.get("public_key")
    if not isinstance(text, str):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        return None


# -- verifying one run --------------------------------------------------------------------


@dataclass
class Verification:
    """What verifying one run found: every problem, each naming a file or field, and the facts
    a reader may want to record (how much was checked, the signing key, this run's digest)."""

    run_dir: Path
    run_id: str | None = None
    problems: list[str] = field(default_factory=list)
    files_checked: int = 0
    bytes_checked: int = 0
    #: ``sha256:`` of evidence.json's bytes: what the next run's link holds.
    digest: str | None = None
    previous: dict[str, Any] | None = None
    signed: bool = False
    key_id: str | None = None
    #: The signature was checked against a public key the caller gave (authorship), not only
    #: against the key embedded in evidence.json (integrity).
    key_trusted: bool = False
    #: The name of the trusted key whose signature on the run's attestation verified, or None.
    attested_by: str | None = None
    #: What became of the attestation, for people: verified by whom, absent, or not checked.
    attestation: str | None = None
    document: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    def passes(self, *, strict: bool = False) -> bool:
        """The same as ``ok``: a single run has no warnings (``strict`` is for chains)."""
        return self.ok

    def raise_if_invalid(self) -> None:
        if self.problems:
            raise EvidenceInvalid(self.run_dir, self.problems)

    def as_document(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "run_id": self.run_id,
            "valid": self.ok,
            "problems": self.problems,
            "files_checked": self.files_checked,
            "bytes_checked": self.bytes_checked,
            "digest": self.digest,
            "previous": self.previous,
            "signed": self.signed,
            "key_id": self.key_id,
            "key_trusted": self.key_trusted,
            "attested_by": self.attested_by,
            "attestation": self.attestation,
        }


def verify_run(run_dir: Path, *, public_key: Path | None = None, trusted_keys: Path | None = None) -> Verification:
    """Check a sealed run against its evidence.json: every listed file present, of its size
    and SHA-256, at a safe path; nothing else in the folder; run_id naming the folder; the
    signature matching. With ``public_key``, the run must be signed by that key.

    Without ``public_key``, a signed run is checked against the key embedded in its own
    evidence.json: that proves the bundle is unchanged since it was signed (integrity), not who
    signed it; compare ``key_id`` with the key you trust, or pass ``public_key``.

    The run's attestation (``attest``) is verified only under keys the caller trusts, never one
    from the bundle: ``public_key`` and every ``*.pub`` of the ``trusted_keys`` folder, each
    named by its file; ``attested_by`` names the one that verified.
    """
    trusted = load_public_key(public_key) if public_key is not None else None
    return _verify_run(_absolute(run_dir), trusted, trusted_public_keys(public_key, trusted_keys))


def trusted_public_keys(public_key: Path | None, folder: Path | None) -> dict[str, Ed25519PublicKey]:
    """The keys an attestation may be signed by, by name: the ``public_key`` file, and every
    ``*.pub`` file of ``folder`` (a folder of trusted keys, named by their file names)."""
    keys = {public_key.name: load_public_key(public_key)} if public_key is not None else {}
    if folder is not None:
        if not folder.is_dir():
            raise SigningKeyError(f"--trusted-keys {folder} is not a folder of PEM public keys (*.pub)")
        found = sorted(folder.glob("*.pub"))
        if not found:
            raise SigningKeyError(f"--trusted-keys {folder} holds no PEM public key (*.pub)")
        keys.update({path.name: load_public_key(path) for path in found})
    return keys


def _absolute(path: Path) -> Path:
    """``path`` made absolute without resolving links, so ``.`` still has the folder's name."""
    return Path(os.path.abspath(path))


def _require_folder(path: Path, what: str) -> None:
    if not path.exists():
        raise EvidenceUnreadable(f"no {what} at {path}")
    if not path.is_dir():
        raise EvidenceUnreadable(f"{path} is not a folder; expected a {what}")


def _verify_run(
    run_dir: Path, trusted: Ed25519PublicKey | None, attestors: dict[str, Ed25519PublicKey] | None = None
) -> Verification:
    _require_folder(run_dir, "run folder")
    evidence = run_dir / EVIDENCE_NAME
    if not os.path.lexists(evidence):
        raise EvidenceUnreadable(
            f"run folder {run_dir} has no evidence.json: the run was never sealed (still running, or it crashed)"
        )
    raw = _read_evidence_bytes(evidence)
    document = _parse(raw, evidence)
    run_id = document.get("run_id")
    previous = document.get("previous")
    result = Verification(
        run_dir=run_dir,
        run_id=run_id if isinstance(run_id, str) and RUN_ID.match(run_id) else None,  # a run id, or none
        digest=_digest_of_bytes(raw),
        previous=previous if isinstance(previous, dict) else None,
        document=document,
    )
    result.problems += check_structure(document)
    if isinstance(run_id, str) and run_id != run_dir.name:
        result.problems.append(
            f"field 'run_id' is {run_id!r}, but the run folder is {run_dir.name!r}: evidence.json was moved or edited"
        )
    listed = _check_listed_files(run_dir, document.get("files"), result)
    result.problems += _unlisted_entries(run_dir, listed)
    signature_problems = _signature_check(run_dir, document.get("signature"), raw, trusted, result)
    result.problems += signature_problems
    if signature_problems:  # evidence.json is not the signed one, or not by the key given: said above
        result.attestation = "not checked: the run's signature does not verify"
    else:
        result.problems += _attestation_check(run_dir, document, result, attestors or {})
    return result


def _attestation_check(
    run_dir: Path, document: dict[str, Any], result: Verification, attestors: dict[str, Ed25519PublicKey]
) -> list[str]:
    """The attestation of a signed run, under the caller's trusted keys only."""
    path = run_dir / attest.ATTESTATION_NAME
    present = os.path.lexists(path)
    unproven = "trusted keys were given, but who sealed the run cannot be checked under them"
    if document.get("signature") is None:
        if present:
            return [f"{attest.ATTESTATION_NAME} is present but the run is unsigned: it was added after sealing"]
        return [f"the run is unsigned: {unproven}"] if attestors else []
    if not present:
        result.attestation = "none (a run sealed before aris3nb wrote attestations)"
        # --public-key alone proves the signer by the signature; --trusted-keys only by the attestation.
        return [f"the run has no {attest.ATTESTATION_NAME}: {unproven}"] if attestors and not result.key_trusted else []
    if not attestors:
        result.attestation = "present, not checked: give --public-key or --trusted-keys (never a key from the run)"
        return []
    try:
        inner, signer = attest.verify_envelope(attest.read_envelope(path), attestors)
    except attest.AttestationProblem as exc:
        result.attestation = "does not verify"
        return [f"attestation {attest.ATTESTATION_NAME}: {exc}"]
    problems = attest.statement_problems(inner, document, result.digest or "")
    result.attested_by = signer
    result.attestation = f"verified, signed by the trusted key {signer}" + (
        " (its statement differs)" if problems else ""
    )
    return [f"attestation {attest.ATTESTATION_NAME}: {problem}" for problem in problems]


def _check_listed_files(run_dir: Path, files: Any, result: Verification) -> set[str]:
    """Check each listed file; return the listed paths (malformed entries are left to
    ``check_structure``, and an unsafe path is never opened)."""
    listed: set[str] = set()
    for entry in files if isinstance(files, list) else []:
        relative = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(relative, str) or _unsafe_path_reason(relative) or _is_own_file(relative):
            continue
        listed.add(relative)
        if problem := _listed_file_problem(run_dir, relative, entry, result):
            result.problems.append(problem)
    return listed


def _listed_file_problem(run_dir: Path, relative: str, entry: dict[str, Any], result: Verification) -> str | None:
    if crosses_link(run_dir, relative):
        return f"file {relative!r} lies under a symbolic link; a run folder holds regular folders only"
    path = run_dir / relative
    try:
        info = path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return f"file {relative!r} is missing (removed after the run was sealed)"
    except OSError as exc:
        return f"file {relative!r} cannot be read: {exc.strerror or exc}"
    if stat.S_ISLNK(info.st_mode):
        return f"file {relative!r} is a symbolic link; a run folder holds regular files only"
    if not stat.S_ISREG(info.st_mode):
        return f"file {relative!r} is not a regular file"
    if info.st_size != entry.get("size"):
        said = recorded(entry.get("size"))
        return f"file {relative!r} has changed: it is {info.st_size} bytes, evidence.json says {said}"
    try:
        size, hexdigest = sha256_file(path)
    except OSError as exc:
        return f"file {relative!r} cannot be read: {exc.strerror or exc}"
    result.files_checked += 1
    result.bytes_checked += size
    if f"sha256:{hexdigest}" != entry.get("sha256"):
        return (
            f"file {relative!r} has changed: its SHA-256 is sha256:{hexdigest}, "
            f"evidence.json says {recorded(entry.get('sha256'))}"
        )
    return None


def _unlisted_entries(run_dir: Path, listed: set[str]) -> list[str]:
    """Anything in the folder evidence.json does not list (hidden files included), and every
    symbolic link: a file added after sealing is as much tampering as a file changed."""
    problems: list[str] = []

    def unreadable(relative: str, exc: OSError) -> None:
        problems.append(f"folder {relative!r} of the run cannot be read: {exc.strerror or exc}")

    for relative, info in _tree(run_dir, unreadable):
        if _is_own_file(relative) or relative in listed or stat.S_ISDIR(info.st_mode):
            continue
        if stat.S_ISLNK(info.st_mode):
            problems.append(
                f"symbolic link {relative!r} in the run folder (not followed); a run holds regular files only"
            )
        elif stat.S_ISREG(info.st_mode):
            problems.append(f"unlisted file {relative!r}: added after the run was sealed")
        else:
            problems.append(f"unlisted {relative!r} in the run folder is not a regular file")
    return problems


def _signature_check(
    run_dir: Path, block: Any, raw: bytes, trusted: Ed25519PublicKey | None, result: Verification
) -> list[str]:
    """The signature over evidence.json's exact bytes, and, with a trusted key, its author."""
    signature_path = run_dir / SIGNATURE_NAME
    if block is None:
        problems = []
        if os.path.lexists(signature_path):
            problems.append(
                f"{SIGNATURE_NAME} is present but evidence.json records no signature: the signature "
                "block was removed from evidence.json, or the file was added"
            )
        if trusted is not None:
            problems.append(
                f"the run is not signed, but a public key ({key_id(trusted)}) was given: "
                "who sealed it cannot be checked"
            )
        return problems
    embedded = _embedded_public_key(block) if isinstance(block, dict) else None
    if embedded is None:  # check_structure says why
        return ["the signature cannot be checked: its block in evidence.json is malformed"] if trusted else []
    result.signed, result.key_id = True, key_id(embedded)
    signature = _read_signature(signature_path)
    if isinstance(signature, str):
        return [signature]
    if trusted is not None and _raw_public_key(trusted) != _raw_public_key(embedded):
        return [f"the run is signed by key {result.key_id}, not by the given public key {key_id(trusted)}"]
    try:
        embedded.verify(signature, raw)
    except InvalidSignature:
        return [
            (
                f"bad signature: {SIGNATURE_NAME} does not match evidence.json under key {result.key_id}: "
                "evidence.json or its signature was changed after signing"
            )
        ]
    result.key_trusted = trusted is not None
    return []


def _read_signature(path: Path) -> bytes | str:
    """The 64 signature bytes, or a problem naming why they cannot be had."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return f"signature file {SIGNATURE_NAME} is missing, but evidence.json says the run is signed"
    except OSError as exc:
        return f"signature file {SIGNATURE_NAME} cannot be read: {exc.strerror or exc}"
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
        return f"signature file {SIGNATURE_NAME} is not a regular file (a symbolic link?)"
    if info.st_size > MAX_SIGNATURE_BYTES:
        return f"signature file {SIGNATURE_NAME} is {info.st_size} bytes, too large to be a signature"
    try:
        signature = base64.b64decode(path.read_bytes().strip(), validate=True)
    except OSError as exc:
        return f"signature file {SIGNATURE_NAME} cannot be read: {exc.strerror or exc}"
    except (binascii.Error, ValueError):
        return f"signature file {SIGNATURE_NAME} is not base64 text"
    if len(signature) != 64:
        return f"signature file {SIGNATURE_NAME} holds {len(signature)} bytes, not a 64-byte Ed25519 signature"
    return signature


# -- verifying the chain of runs ----------------------------------------------------------


@dataclass
class ChainVerification:
    """What verifying a runs folder found: each sealed run's verification, the problems of
    all of them (prefixed by run id) and of the links between them, and warnings.

    A warning (a run folder without evidence.json: still running, or crashed) does not fail
    the chain: such a folder makes no claim to check, and no sealed run's link depends on it
    (if one did, that is a problem). ``--strict`` makes warnings fail.
    """

    runs_dir: Path
    runs: list[Verification] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def passes(self, *, strict: bool = False) -> bool:
        return self.ok and not (strict and self.warnings)

    @property
    def head(self) -> Verification | None:
        """The newest sealed run: record its digest elsewhere to anchor the chain (a chain
        cannot tell that its newest runs were removed)."""
        return self.runs[-1] if self.runs else None

    def raise_if_invalid(self) -> None:
        if self.problems:
            raise EvidenceInvalid(self.runs_dir, self.problems)

    def as_document(self) -> dict[str, Any]:
        head = self.head
        return {
            "runs_dir": str(self.runs_dir),
            "valid": self.ok,
            "problems": self.problems,
            "warnings": self.warnings,
            "length": len(self.runs),
            "incomplete": self.incomplete,
            "head": {"run_id": head.run_id or head.run_dir.name, "digest": head.digest} if head else None,
            "runs": [run.as_document() for run in self.runs],
        }


def verify_chain(
    runs_dir: Path, *, public_key: Path | None = None, trusted_keys: Path | None = None
) -> ChainVerification:
    """Verify every run of a runs folder and every link between them: each run's ``previous``
    must name the sealed run just before it (run id order) and hold the digest of that run's
    evidence.json bytes. A deleted, edited or reordered run is named with its neighbour."""
    trusted = load_public_key(public_key) if public_key is not None else None
    attestors = trusted_public_keys(public_key, trusted_keys)
    runs_dir = _absolute(runs_dir)
    _require_folder(runs_dir, "runs folder")
    try:
        entries = _run_entries(runs_dir)
    except OSError as exc:
        raise EvidenceUnreadable(f"cannot list {runs_dir}: {exc.strerror or exc}") from exc
    if not entries:
        raise EvidenceUnreadable(f"{runs_dir} holds no run folders (named like 20261128T094500Z-a1b2c3)")
    chain = ChainVerification(runs_dir=runs_dir)
    sealed: list[Verification] = []
    for name, info in entries:
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            chain.problems.append(f"run {name}: not a folder (a symbolic link or a file); a run is a regular folder")
        elif not os.path.lexists(runs_dir / name / EVIDENCE_NAME):
            chain.incomplete.append(name)
            chain.warnings.append(
                f"run {name} has no evidence.json (incomplete run: still running, or it "
                "crashed); its files are covered by no digest"
            )
        else:
            run = _verify_in_chain(runs_dir / name, trusted, attestors)
            sealed.append(run)
            chain.problems += [f"run {name}: {problem}" for problem in run.problems]
    chain.runs = sealed
    chain.problems += _link_problems(sealed, present={name for name, _ in entries})
    if sealed and not sealed[-1].signed:
        chain.warnings.append(unprotected_newest(sealed[-1].run_dir.name))
    return chain


def unprotected_newest(name: str) -> str:
    """The chain's warning about its newest run, unsigned, which no later run links."""
    return (
        f"the newest run {name} is unsigned and no later run links it: its evidence.json (verdicts, "
        "parameters) is protected by nothing yet; sign runs (--signing-key) or record the head's digest elsewhere"
    )


def next_link(run_dir: Path) -> dict[str, Any] | None:
    """The link the next sealed run of ``run_dir``'s runs folder holds to it (its ``previous``:
    ``run_id`` and the ``digest`` of this run's evidence.json, and ``by``, that run's id), or None
    when no later run links it (it is the newest, or the next one links elsewhere)."""
    run_dir = _absolute(run_dir)
    try:
        later = sorted(
            name
            for name, info in _run_entries(run_dir.parent)
            if name > run_dir.name and stat.S_ISDIR(info.st_mode) and _has_regular_evidence(run_dir.parent / name)
        )
    except OSError:
        return None
    for name in later[:1]:
        try:
            previous = read_evidence(run_dir.parent / name / EVIDENCE_NAME).get("previous")
        except Aris3nbError:
            return None
        if isinstance(previous, dict) and previous.get("run_id") == run_dir.name:
            return {**previous, "by": name}
        return None
    return None


def _verify_in_chain(
    run_dir: Path, trusted: Ed25519PublicKey | None, attestors: dict[str, Ed25519PublicKey]
) -> Verification:
    """One run of a chain: an unreadable evidence.json is that run's problem, not the end of
    the verification (the other runs and links are still worth checking)."""
    try:
        return _verify_run(run_dir, trusted, attestors)
    except EvidenceUnreadable as exc:
        digest = digest_of_file(run_dir / EVIDENCE_NAME) if _has_regular_evidence(run_dir) else None
        return Verification(run_dir=run_dir, problems=[str(exc)], digest=digest)


def _link_problems(sealed: list[Verification], present: set[str]) -> list[str]:
    """Each sealed run must link to the sealed run just before it, by the digest of its bytes."""
    sealed_names = {run.run_dir.name for run in sealed}
    problems = []
    for index, run in enumerate(sealed):
        if run.document is None or "previous" not in run.document or not _link_is_readable(run.document["previous"]):
            continue  # its own problems say why (a missing or malformed field)
        name = run.run_dir.name
        expected = sealed[index - 1] if index else None
        link = run.document["previous"]
        named = link["run_id"] if link else None
        if named != (expected.run_dir.name if expected else None):
            problems.append(
                _wrong_link(name, named, expected.run_dir.name if expected else None, present, sealed_names)
            )
        elif expected is not None and expected.digest is not None and link.get("digest") != expected.digest:
            problems.append(
                f"run {name}: its link to run {named} does not match: run {named}'s evidence.json has "
                f"digest {expected.digest}, run {name} recorded {link.get('digest')}: run {named}'s "
                f"evidence.json was changed after run {name} was sealed"
            )
    return problems


def _link_is_readable(link: Any) -> bool:
    return link is None or isinstance(link, dict) and isinstance(link.get("run_id"), str)


def _wrong_link(name: str, named: str | None, expected: str | None, present: set[str], sealed: set[str]) -> str:
    """Why run ``name``'s link names ``named`` when the sealed run before it is ``expected``."""
    before = f"run {expected}" if expected else "no sealed run"
    if named is None:
        return (
            f"run {name}: records no previous run, but run {expected} comes before it: the link was removed, "
            f"or run {expected} was put in afterwards"
        )
    if named not in present:
        return (
            f"run {name}: names run {named} as its previous run, but run {named} is missing (deleted?); "
            f"before it is {before}"
        )
    if named not in sealed:
        return (
            f"run {name}: names run {named} as its previous run, but run {named} has no evidence.json "
            f"(removed after run {name} was sealed?); before it is {before}"
        )
    return (
        f"run {name}: names run {named} as its previous run, but the sealed run just before it is {before}: "
        "runs were reordered, or one was put in afterwards"
    )


# -- one entry point for the command line -------------------------------------------------


def verify_path(
    path: Path, *, public_key: Path | None = None, trusted_keys: Path | None = None
) -> Verification | ChainVerification:
    """Verify what ``path`` is: an evidence.json file or a run folder (that run), or a runs
    folder (the whole chain). ``EvidenceUnreadable`` (exit 2) when it is none of these."""
    path = _absolute(path)
    if not os.path.lexists(path):
        raise EvidenceUnreadable(f"no such file or folder: {path}")
    if not path.is_dir():
        if path.name != EVIDENCE_NAME:
            raise EvidenceUnreadable(f"{path} is not an evidence.json, a run folder or a runs folder")
        return verify_run(path.parent, public_key=public_key, trusted_keys=trusted_keys)
    if os.path.lexists(path / EVIDENCE_NAME) or RUN_ID.match(path.name):
        return verify_run(path, public_key=public_key, trusted_keys=trusted_keys)
    return verify_chain(path, public_key=public_key, trusted_keys=trusted_keys)
