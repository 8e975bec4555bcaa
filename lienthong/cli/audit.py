"""``lienthong audit verify-bundle|export|verify``: evidence for a dossier's document trail.

``verify-bundle`` needs nothing but the bundle. ``verify`` and ``export`` read the dossier's
trail from the ``audit-chain`` topic (written by ``streams.documents``) and the documents from
the store; ``export --records F.jsonl`` keeps the file record source for records kept
elsewhere. Store, trust directory and bus credential default to the ``[documents]`` settings.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lienthong.logs import configure_logging


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("audit", help="evidence bundles and hash-chain checks")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    vb = actions.add_parser("verify-bundle", help="check an evidence bundle (directory or .zip)")
    vb.add_argument("path", type=Path)
    vb.add_argument(
        "--trust-roots",
        type=Path,
        help="PEM file of the roots you trust (default: the bundle's own, see README)",
    )
    vb.add_argument(
        "--no-require-crl",
        action="store_true",
        help="accept certificates whose issuer has no CRL in the bundle",
    )
    vb.set_defaults(func=cmd_verify_bundle)

    ex = actions.add_parser("export", help="write the evidence bundle of a dossier")
    ex.add_argument("dossier_id")
    ex.add_argument(
        "--records",
        type=Path,
        help="JSONL file of accepted records (default: the audit-chain topic)",
    )
    ex.add_argument("--chain-topic", help="catalogue topic of the trail (default audit-chain)")
    ex.add_argument("--store", help="document store: DIR or s3://bucket/prefix")
    ex.add_argument("--trust", type=Path, help="trust directory (roots.pem, ...)")
    ex.add_argument("--bus-cert", type=Path)
    ex.add_argument("--bus-key", type=Path)
    ex.add_argument("--bus-chain", type=Path)
    ex.add_argument("--out", type=Path, required=True)
    ex.add_argument("--zip", action="store_true", help="write a .zip instead of a directory")
    ex.add_argument("--checkpoint-every", type=int, default=100)
    ex.set_defaults(func=cmd_export)

    ve = actions.add_parser(
        "verify", help="recompute a dossier's hash chain from the topics and the store"
    )
    ve.add_argument("dossier_id")
    ve.add_argument("--chain-topic", help="catalogue topic of the trail (default audit-chain)")
    ve.add_argument("--store", help="document store: DIR or s3://bucket/prefix")
    ve.add_argument("--trust", type=Path, help="trust directory (roots.pem, ...)")
    ve.add_argument(
        "--no-require-crl",
        action="store_true",
        help="accept certificates whose issuer has no CRL in the trust directory",
    )
    ve.set_defaults(func=cmd_verify)


def _usage(message: str) -> Exception:
    from lienthong.cli.main import UsageError

    return UsageError(message)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """A record source: one JSON object per line."""
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise _usage(f"{path}:{number}: not JSON: {exc.msg}") from None
    except OSError as exc:
        raise _usage(f"{path}: {exc.strerror}") from None


def cmd_verify_bundle(args: argparse.Namespace) -> int:
    from lienthong.documents.bundle import verify_bundle
    from lienthong.documents.pki import PKIError, TrustAnchors

    configure_logging("cli", "WARNING")
    if not args.path.exists():
        raise _usage(f"{args.path}: no such bundle")
    trust = None
    if args.trust_roots:
        try:
            bundle_certs = args.path / "certs" if args.path.is_dir() else None
            inter = [bundle_certs / "intermediates.pem"] if bundle_certs else []
            crls = [bundle_certs / "crls.pem"] if bundle_certs else []
            trust = TrustAnchors.from_files([args.trust_roots], inter, crls)
        except PKIError as exc:
            raise _usage(str(exc)) from None
    report = verify_bundle(args.path, trust=trust, require_crl=not args.no_require_crl)
    for name, ok, detail in report.checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    verdict = "VALID" if report.ok else "INVALID"
    print(f"bundle for dossier {report.dossier_id!r}: {verdict}")
    return 0 if report.ok else 1


def _documents_defaults(args: argparse.Namespace) -> tuple[Any, str, Path | None]:
    """(settings, store uri, trust dir): command-line values win over ``[documents]``."""
    from lienthong.config import load_settings

    settings = load_settings()
    docs = settings.documents
    store = args.store or docs.store or str(settings.run_dir / "documents")
    trust = args.trust or docs.trust_dir
    return settings, store, trust


def _read_trail(settings: Any, dossier_id: str, chain_topic: str | None) -> Any:
    from lienthong.connectors.kafka import kafka_python_config
    from lienthong.documents.trail import collect_trail, read_json_values

    name = settings.topic(chain_topic or "audit-chain")
    values = read_json_values(kafka_python_config(settings), name, key=dossier_id)
    return collect_trail(dossier_id, values)


def cmd_export(args: argparse.Namespace) -> int:
    from lienthong.documents.bundle import export_bundle
    from lienthong.documents.chain import build_chain, sign_checkpoint
    from lienthong.documents.pki import PKIError, TrustAnchors, load_signer
    from lienthong.documents.store import StoreError, open_store

    configure_logging("cli", "WARNING")
    settings, store_uri, trust_dir = _documents_defaults(args)
    docs = settings.documents
    bus_cert = args.bus_cert or docs.bus_cert
    bus_key = args.bus_key or docs.bus_key
    bus_chain = args.bus_chain or docs.bus_chain
    if trust_dir is None:
        raise _usage("no trust directory: give --trust or set documents.trust_dir")
    try:
        trust = TrustAnchors.from_dir(trust_dir)
        bus = load_signer(bus_cert, bus_key, bus_chain) if bus_cert and bus_key else None
        if args.records is not None:
            if bus is None:
                raise _usage("--records needs the bus credential (--bus-cert, --bus-key)")
            path = export_bundle(
                args.dossier_id,
                read_jsonl(args.records),
                open_store(store_uri),
                trust,
                args.out,
                bus=bus,
                as_zip=args.zip,
                checkpoint_every=args.checkpoint_every,
            )
        else:
            trail = _read_trail(settings, args.dossier_id, args.chain_topic)
            if not trail.entries:
                raise _usage(f"no audit-chain records for dossier {args.dossier_id!r}")
            checkpoints = list(trail.checkpoints)
            head = len(trail.entries) - 1
            if bus is not None and not any(c.checkpoint.index == head for c in checkpoints):
                # The bus attests the head too, so the newest records are covered.
                entry = build_chain([data for data, _ in trail.entries])[head]
                checkpoints.append(sign_checkpoint(args.dossier_id, entry, bus))
            path = export_bundle(
                args.dossier_id,
                trail.records,
                open_store(store_uri),
                trust,
                args.out,
                checkpoints=checkpoints,
                as_zip=args.zip,
            )
    except (PKIError, StoreError, ValueError) as exc:
        raise _usage(str(exc)) from None
    print(f"evidence bundle for {args.dossier_id}: {path}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Exit 0 when the chain, its checkpoints and every stored document check out, else 1."""
    from lienthong.documents.chain import verify_chain
    from lienthong.documents.pki import PKIError, TrustAnchors
    from lienthong.documents.receipts import DOCUMENT_PUBLISHED, parse_time
    from lienthong.documents.store import StoreError, open_store
    from lienthong.documents.verify import DocumentClaim, verify_document

    configure_logging("cli", "WARNING")
    settings, store_uri, trust_dir = _documents_defaults(args)
    require_crl = not args.no_require_crl
    try:
        trust = TrustAnchors.from_dir(trust_dir) if trust_dir else None
        store = open_store(store_uri)
    except (PKIError, StoreError, ValueError) as exc:
        raise _usage(str(exc)) from None
    trail = _read_trail(settings, args.dossier_id, args.chain_topic)
    if not trail.entries:
        print(f"no audit-chain records for dossier {args.dossier_id!r}")
        return 1
    failures = 0
    chain = verify_chain(
        args.dossier_id, trail.entries, trail.checkpoint_pairs, trust, require_crl=require_crl
    )
    if chain.ok:
        print(f"ok   chain: {chain.length} records, {chain.checkpoints_verified} bus checkpoints")
    else:
        failures += 1
        print(
            f"FAIL chain: first broken link at index {chain.broken_index}: "
            f"{chain.problem}: {chain.detail}"
        )
    if trust is None:
        print("skip documents: no trust directory (--trust or documents.trust_dir)")
    else:
        for index, record in enumerate(trail.records):
            if record.get("type") != DOCUMENT_PUBLISHED:
                continue
            doc = record.get("document") or {}
            when = parse_time(record["occurred_at"]) if record.get("occurred_at") else None
            claim = DocumentClaim(doc["sha256"], doc.get("size"), str(record.get("agency")), when)
            try:
                signature = store.get_bytes(doc["signature_sha256"])
            except StoreError as exc:
                failures += 1
                print(f"FAIL document {doc['sha256'][:12]} (index {index}): signature: {exc}")
                continue
            result = verify_document(claim, store, signature, trust, require_crl=require_crl)
            if result.ok:
                print(f"ok   document {doc['sha256'][:12]} (index {index})")
            else:
                failures += 1
                print(
                    f"FAIL document {doc['sha256'][:12]} (index {index}): "
                    f"{result.reason}: {result.detail}"
                )
    verdict = "INTACT" if failures == 0 else "BROKEN"
    print(f"trail of dossier {args.dossier_id!r}: {verdict}")
    return 0 if failures == 0 else 1
