"""``lienthong audit verify-bundle|export|verify``: evidence for a dossier's document trail.

``verify-bundle`` needs nothing but the bundle. ``export`` and ``verify`` take the dossier's
records from a JSONL file today (``--records``); reading them from the topics is a record
source that the stream-processor work will plug in (see lienthong.documents.bundle).
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
        required=True,
        help="JSONL file of accepted records (topic reader: later)",
    )
    ex.add_argument("--store", required=True, help="document store: DIR or s3://bucket/prefix")
    ex.add_argument("--trust", type=Path, required=True, help="trust directory (roots.pem, ...)")
    ex.add_argument("--bus-cert", type=Path, required=True)
    ex.add_argument("--bus-key", type=Path, required=True)
    ex.add_argument("--bus-chain", type=Path)
    ex.add_argument("--out", type=Path, required=True)
    ex.add_argument("--zip", action="store_true", help="write a .zip instead of a directory")
    ex.add_argument("--checkpoint-every", type=int, default=100)
    ex.set_defaults(func=cmd_export)


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


def cmd_export(args: argparse.Namespace) -> int:
    from lienthong.documents.bundle import export_bundle
    from lienthong.documents.pki import PKIError, TrustAnchors, load_signer
    from lienthong.documents.store import StoreError, open_store

    configure_logging("cli", "WARNING")
    try:
        trust = TrustAnchors.from_dir(args.trust)
        bus = load_signer(args.bus_cert, args.bus_key, args.bus_chain)
        path = export_bundle(
            args.dossier_id,
            read_jsonl(args.records),
            open_store(args.store),
            trust,
            args.out,
            bus=bus,
            as_zip=args.zip,
            checkpoint_every=args.checkpoint_every,
        )
    except (PKIError, StoreError, ValueError) as exc:
        raise _usage(str(exc)) from None
    print(f"evidence bundle for {args.dossier_id}: {path}")
    return 0
