"""``opsgate log``: verify the decision log (against signed checkpoints too), prove one decision, and
check a proof offline; ``opsgate keys signing`` makes the key that signs checkpoints."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from service import bootstrap
from service.adapters.attest.files import CheckpointFiles
from service.adapters.attest.signing import generate, load_public, load_signer, signature_problem
from service.adapters.store import verify_log
from service.adapters.store.attest import attest_log
from service.cli.flags import db_flag
from service.domain.attest import Named
from service.domain.checkpoint import Checkpoint, Proof, consistency_problem, proof_problem
from service.errors import InvalidSettings
from service.settings import Settings, checkpoints_path
from service.usecases.checkpoints import prove

_PROOF = msgspec.json.Decoder(Proof)
_CHECKPOINT = msgspec.json.Decoder(Checkpoint)
_CHECKPOINTS = "checkpoint directory (default: checkpoints/ beside the --db file)"
_KEY = "the signer's public key, PEM"


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = commands.add_parser(
        "verify", help="walk every hash chain, and hold it against the signed checkpoints; non-zero exit on a problem"
    )
    db_flag(verify)
    _checkpoint_flags(verify)
    prove_parser = commands.add_parser("prove", help="print a decision's inclusion proof (JSON)")
    prove_parser.add_argument("decision_id", metavar="DECISION_ID")
    db_flag(prove_parser)
    prove_parser.add_argument("--checkpoints", dest="checkpoints_dir", metavar="DIR", help=_CHECKPOINTS)
    prove_parser.add_argument(
        "--from-size", dest="from_size", metavar="N", type=int,
        help="also prove that the checkpoint extends the tree of the first N records (an earlier checkpoint's size)",
    )  # fmt: skip
    check = commands.add_parser("check-proof", help="check an inclusion proof offline, without the database")
    check.add_argument("proof", metavar="PROOF.json", type=Path)
    check.add_argument("--public-key", dest="public_key", metavar="FILE", type=Path, required=True, help=_KEY)
    check.add_argument(
        "--earlier", metavar="CHECKPOINT.json", type=Path,
        help="a checkpoint kept from earlier: the proof's checkpoint must extend it (log prove --from-size)",
    )  # fmt: skip


def _checkpoint_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoints", dest="checkpoints_dir", metavar="DIR", help=_CHECKPOINTS)
    parser.add_argument(
        "--public-key", dest="public_key", metavar="FILE", type=Path,
        help="the signer's public key (PEM); default: the one of the configured signing key",
    )  # fmt: skip


def _public_key(settings: Settings, path: Path | None) -> Ed25519PublicKey:
    if path is not None:
        return load_public(path)
    signer = load_signer(settings.signing_key_file, settings.signing_key)
    if signer is None:
        raise InvalidSettings(
            "checking the checkpoints needs the signer's public key: --public-key FILE (make run's is "
            "var/signing.key.pub), or OPSGATE_SIGNING_KEY_FILE"
        )
    return signer.public


def verify(settings: Settings, public_key: Path | None) -> int:
    """``opsgate log verify``: the chains, then (with checkpoints) truncation, rewrites and the tables."""
    report = verify_log(settings.db)
    print(report, file=sys.stdout if report.intact else sys.stderr)
    named, problems = CheckpointFiles(checkpoints_path(settings)).read()
    if not named and not problems:
        print(
            f"no checkpoints in {checkpoints_path(settings)}: truncation of the newest records cannot be detected",
            file=sys.stderr,
        )
        return 0 if report.intact else 1
    key = _public_key(settings, public_key)
    good: list[Named] = []
    for item in named:
        problem = signature_problem(key, item.checkpoint)
        if problem is None:
            good.append(item)
        else:
            problems.append(f"checkpoint {item.name}: {problem}")
    attested = attest_log(settings.db, good)
    print(attested, file=sys.stdout if not attested.problems else sys.stderr)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 0 if report.intact and not attested.problems and not problems else 1


def print_proof(settings: Settings, decision_id: str, from_size: int | None = None) -> int:
    """``opsgate log prove``: the decision's proof, as JSON, from the log read-only."""
    log_store = bootstrap.open_log(settings, read_only=True)
    try:
        files = CheckpointFiles(checkpoints_path(settings))
        proof = asyncio.run(prove(decision_id, log_store.records, log_store.chains, files, from_size))
    finally:
        log_store.close()
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(proof), indent=2).decode() + "\n")
    return 0


def check_proof(proof_file: Path, public_key: Path, earlier_file: Path | None = None) -> int:
    """``opsgate log check-proof``: the proof's record, path and checkpoint signature, offline; with
    ``earlier_file``, that its checkpoint extends that earlier one (signed by the same key)."""
    try:
        proof = _PROOF.decode(proof_file.read_bytes())
        earlier = _CHECKPOINT.decode(earlier_file.read_bytes()) if earlier_file else None
    except msgspec.DecodeError as error:
        print(f"FAILED: not a proof or not a checkpoint: {error}", file=sys.stderr)
        return 1
    key = load_public(public_key)
    problem = signature_problem(key, proof.checkpoint) or proof_problem(proof)
    if problem is None and earlier is not None:
        problem = signature_problem(key, earlier) or consistency_problem(proof, earlier)
    if problem is not None:
        print(f"FAILED: {problem}", file=sys.stderr)
        return 1
    point = proof.checkpoint
    print(f"ok: record {proof.leaf_index + 1} of writer {point.writer} is in the tree of {point.tree_size} records "
          f"signed at {point.time} by key {point.key_id}")  # fmt: skip
    if earlier is not None:
        print(f"ok: that tree extends the earlier checkpoint of {earlier.tree_size} records signed at {earlier.time}")
    return 0


def new_signing_key(out: Path) -> int:
    """``opsgate keys signing``: a new Ed25519 key at ``out`` and its public key beside it."""
    if out.exists():
        raise InvalidSettings(f"{out} exists: a signing key is never overwritten")
    public = generate(out)
    print(f"generated a checkpoint signing key at {out} (keep it apart from the database) and its public key at "
          f"{public}: give the public key to your auditors")  # fmt: skip
    return 0
