"""The evidence bundle commands: ``aris3nb evidence verify|keygen|seal``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from aris3nb.cli._common import JsonOption, out, run_outcome, say
from aris3nb.cli.present import first_reasons
from aris3nb.core.errors import UsageError
from aris3nb.core.settings import is_repository_url

if TYPE_CHECKING:
    from aris3nb.evidence.bundle import ChainVerification, Verification

if TYPE_CHECKING:
    from aris3nb.storage.runs import RemoteVerification

evidence_app = typer.Typer(help="Verify (and sign) the evidence bundles of playbook runs.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the evidence commands to the ``aris3nb`` application."""
    app.add_typer(evidence_app, name="evidence")


@evidence_app.command("verify")
def verify(
    path: Annotated[
        str,
        typer.Argument(
            help="A run folder or its evidence.json (that run), or a runs folder such as OPS_ARTIFACTS_DIR/runs "
            "(every run, and the chain linking them); or on object storage s3://BUCKET[/PREFIX]/runs/RUN_ID (that "
            "run) or s3://BUCKET[/PREFIX][/runs] (every run, the chain, and the head runs/HEAD.json's history).",
            show_default=False,
            metavar="PATH|URL",
        ),
    ],
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="PEM Ed25519 public key (the .pub written by `aris3nb evidence keygen`): every run "
            "must be signed by it. Without it a signature only proves the run is unchanged since signing, not who "
            "signed it.",
            show_default=False,
            metavar="PATH",
        ),
    ] = None,
    trusted_keys: Annotated[
        Path | None,
        typer.Option(
            "--trusted-keys",
            help="A folder of PEM Ed25519 public keys (*.pub) you trust: a signed run's attestation "
            "(evidence.intoto.jsonl) must verify under one of them, which is named as its signer. The key is never "
            "taken from the run.",
            show_default=False,
            metavar="DIR",
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Warnings fail too: incomplete runs (a run folder without evidence.json), and a run whose "
            "evidence.json is protected by nothing (unsigned, and no later run links it).",
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Check every file, digest, signature and chain link of sealed playbook runs.

    On object storage the objects are pulled into a temporary folder, each one's SHA-256
    compared with evidence.json on the way in (a changed object is named), and verified there;
    for the runs folder every version of runs/HEAD.json is checked against the runs that remain
    (the newest runs deleted, a run replaced, the head rewound). AWS_ENDPOINT_URL,
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or AWS_PROFILE say where and who.

    Environment: OPS_ARTIFACTS_DIR (where runs are looked for). Exit 0 valid (an unsigned,
    unchained evidence.json is said in the headline); 1 invalid, each problem named (and with
    --strict, an unprotected evidence.json), or the store failed; 2 bad input (a missing bucket,
    refused credentials)."""
    from aris3nb.evidence.bundle import ChainVerification, Verification, next_link, verify_path

    remote: RemoteVerification | None = None
    if is_repository_url(path):
        from aris3nb.storage.runs import verify_remote

        remote = verify_remote(path, public_key=public_key, trusted_keys=trusted_keys)
        result = remote.result
        for warning in remote.warnings:
            say(f"WARN  {warning}")
    elif re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path):
        scheme = path.split("://", 1)[0]
        raise UsageError(f"{scheme}:// is not a place evidence is kept: give a folder, a file, or s3://BUCKET[/PREFIX]")
    else:
        result = verify_path(Path(path), public_key=public_key, trusted_keys=trusted_keys)
    passed = result.passes(strict=strict)
    unprotected = None
    if isinstance(result, Verification) and result.ok and not result.signed:
        link = remote.next_link if remote is not None else next_link(result.run_dir)
        if link is None and remote is not None and remote.anchors(result.run_id, result.digest):
            pass  # the store's locked head holds its digest
        elif link is None:
            unprotected = (
                f"evidence.json itself is protected only by a signature or by the next run's link, and run "
                f"{result.run_id} has neither: its verdicts and parameters could have been changed unseen"
            )
            passed = passed and not strict
        elif link.get("digest") != result.digest:
            # Detected, not merely unprotected: the next run's link holds another digest.
            result.problems.append(
                f"evidence.json differs from the digest the next run {link.get('by')!r} holds: it was changed "
                "after that run was sealed"
            )
            passed = False
    if (
        isinstance(result, ChainVerification)
        and result.ok
        and result.head is not None
        and not result.head.signed
        and not (remote is not None and remote.anchors(result.head.run_dir.name, result.head.digest))
    ):
        unprotected = (
            f"the newest run's evidence.json ({result.head.run_dir.name}) is protected by nothing: unsigned, and no "
            "later run links it, so its verdicts could have been changed unseen"
        )
    if json_output:
        kind = "chain" if isinstance(result, ChainVerification) else "run"
        document = {"kind": kind, "passed": passed, "unprotected": unprotected, **result.as_document()}
        if remote is not None:
            document["store_head"] = remote.head  # runs/HEAD.json; "head" is the chain's newest run
            document["head_versions_checked"] = remote.head_versions
        # ASCII: evidence.json may hold escapes of lone surrogates, which no UTF-8 output can carry
        text = json.dumps(document)
        out.print_json(remote.shown(text) if remote is not None else text, ensure_ascii=True)
    elif isinstance(result, ChainVerification):
        _say_chain(result, unprotected, strict=strict, where=remote.url if remote else None, kept=_kept(remote))
        if remote is not None:
            _say_head(remote)
    else:
        _say_run(result, unprotected)
    if not passed:
        raise typer.Exit(1)


def _say_head(remote: RemoteVerification) -> None:
    head = remote.head
    named = f"run {head['run_id']} {head['digest']}" if head else "no run (no head written yet)"
    _say(f"  store head: {remote.runs_url}/HEAD.json names {named}; {_count(remote.head_versions, 'version')} checked")


def _say(text: str) -> None:
    """One line of the verification for people. A name that is not valid UTF-8 (a file or folder
    of the run, a value of a hostile evidence.json) is shown as an escape: printing it as is
    would fail the command instead of reporting the problem."""
    say(text.encode("utf-8", "backslashreplace").decode("utf-8"))


def _say_run(run: Verification, unprotected: str | None = None) -> None:
    name = run.run_id or run.run_dir.name
    if run.ok and unprotected:
        _say(
            f"VALID FILES, UNPROTECTED evidence.json: run {name}: {run.files_checked} files match evidence.json, but "
            f"{unprotected}"
        )
        return
    if not run.ok:
        _say(f"INVALID: run {name} ({_count(len(run.problems), 'problem')})")
        for problem in run.problems:
            _say(f"  - {problem}")
        return
    _say(f"VALID: run {name}: {run.files_checked} files, {run.bytes_checked:,} bytes match evidence.json")
    _say(f"  signature: {_signature_text(run)}")
    if run.attestation:
        _say(f"  attestation: {run.attestation}")
    previous = f"run {run.previous['run_id']}" if run.previous else "none (first run)"
    _say(f"  digest: {run.digest}; previous: {previous} (verify the runs folder to check the link)")


def _kept(remote: RemoteVerification | None) -> str:
    """What anchors the end of the chain, said after its head."""
    if remote is None:
        return "record it elsewhere: a chain cannot show that its newest runs were removed"
    return {
        "locked": "the store's head below anchors it: its newest version is locked",
        "unlocked": "the store's head below records it, but its newest version carries no retention (runs pushed "
        "without --retain-days or OPS_RETAIN_DAYS), so its versions can be removed",
        "versioned": "the store's head below records it, but without Object Lock its versions can be removed",
    }.get(remote.head_kept, "the bucket keeps no versions of its head: record it elsewhere")


def _say_chain(
    chain: ChainVerification, unprotected: str | None, *, strict: bool, where: str | None = None, kept: str = ""
) -> None:
    failing = chain.problems + (chain.warnings if strict else [])
    if failing:
        _say(
            f"INVALID: chain of {_count(len(chain.runs), 'run')} in {where or chain.runs_dir} "
            f"({_count(len(failing), 'problem')})"
        )
        for problem in failing:
            _say(f"  - {problem}")
    else:
        files = sum(run.files_checked for run in chain.runs)
        _say(
            f"{'VALID FILES, UNPROTECTED HEAD' if unprotected else 'VALID'}: chain of "
            f"{_count(len(chain.runs), 'run')} in {where or chain.runs_dir}: {files} files match, every link holds"
            + (f"; but {unprotected}" if unprotected else "")
        )
        for run in chain.runs:
            attested = f"  attested by {run.attested_by}" if run.attested_by else ""
            _say(
                f"  {run.run_dir.name}  {run.files_checked:>4} files  signature: {_signature_text(run, short=True)}"
                + attested
            )
        if chain.head:
            _say(f"  head: {chain.head.run_dir.name} {chain.head.digest} ({kept})")
    for warning in [] if strict else chain.warnings:
        _say(f"  warning: {warning}")


def _signature_text(run: Verification, *, short: bool = False) -> str:
    if not run.signed:
        return "none (unsigned run)"
    if run.key_trusted:
        return f"good, by the given public key {run.key_id}"
    if short:
        return f"good under its embedded key {run.key_id}"
    return (
        f"good under the key embedded in evidence.json, {run.key_id}: this proves the run is unchanged since "
        "it was signed, not who signed it (compare the key id, or pass --public-key)"
    )


@evidence_app.command("keygen")
def keygen(
    private_key_path: Annotated[
        Path,
        typer.Argument(
            help="Where to write the new Ed25519 signing key (PEM PKCS8, owner-only); its public key goes beside it "
            "as PATH.pub. Existing files are never overwritten (exit 2).",
            show_default=False,
            metavar="PRIVATE_KEY_PATH",
        ),
    ],
    json_output: JsonOption = False,
) -> None:
    """Create an Ed25519 key pair for signing evidence bundles. Exit 0 written; 2 a file there
    already (never overwritten) or an unwritable place."""
    from aris3nb.evidence.bundle import generate_signing_key, key_id, load_public_key

    public_path = generate_signing_key(private_key_path)
    identity = key_id(load_public_key(public_path))
    if json_output:
        out.print_json(
            json.dumps({"private_key": str(private_key_path), "public_key": str(public_path), "key_id": identity})
        )
    else:
        say(f"signing key {private_key_path} (keep it secret; owner-only)")
        say(f"public key {public_path} (give it to verifiers: aris3nb evidence verify --public-key)")
        say(f"key id {identity}")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


@evidence_app.command("seal")
def seal_command(
    run_dir: Annotated[
        Path,
        typer.Argument(
            help="The run folder the phase notebooks were executed into, named like a run id "
            "(e.g. artifacts/runs/20261129T120000Z-a1b2c3), each notebook under its phase's file name.",
            show_default=False,
            metavar="RUN_DIR",
        ),
    ],
    signing_key: Annotated[
        Path | None,
        typer.Option(
            "--signing-key",
            help="Sign evidence.json with this Ed25519 private key.",
            show_default=False,
            metavar="PATH",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Seal phase notebooks executed elsewhere (`papermill --engine aris3nb ...`, Airflow's
    PapermillOperator) into an evidence bundle, as `aris3nb run` seals its own: statuses,
    banners and marks, HTML pages, triggers, verdict, evidence.json in the chain.

    Exit 0 GO; 1 NO-GO (a phase failed, did not complete or did not run); 2 bad input (no such
    folder, not named like a run id, no phase notebook in it, sealed already).
    """
    from aris3nb.cli._common import settings
    from aris3nb.core.errors import RunFailed
    from aris3nb.evidence.seal import seal_notebooks

    result = seal_notebooks(run_dir, settings(), signing_key=signing_key)
    document = json.loads(result.evidence_path.read_text(encoding="utf-8"))
    if json_output:
        out.print_json(
            json.dumps(
                {key: document[key] for key in ("run_id", "verdict", "decision", "exit_code", "phases", "triggers")}
            )
        )
    else:
        for phase in document["phases"]:
            say(
                f"{phase['phase']:<12} {phase['status']:<12} {phase['verdict'] or '-':<20} "
                f"{'; '.join(first_reasons(phase['reasons'], 2))}"
            )
        say(f"{document['decision']} (verdict {document['verdict']}): sealed {result.evidence_path}")
    if result.exit_code:
        raise RunFailed(
            f"run {result.run_id}: {run_outcome(result.decision, result.verdict)}; bundle {result.run_dir}",
            result.run_dir,
            result.exit_code,
        )
