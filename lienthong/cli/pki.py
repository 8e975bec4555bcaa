"""``lienthong pki init|issue|revoke``: a development PKI for agencies and the bus.

Production deployments load the certificates issued by the real CA (see docs/documents.md);
this command exists so a province can run the whole signed exchange on one laptop, and so tests
can make expired, revoked and untrusted certificates on demand.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from lienthong.logs import configure_logging


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("pki", help="development PKI: root, province CA, agency certs")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    init = actions.add_parser("init", help="create a development PKI in an empty directory")
    init.add_argument("--out", required=True, type=Path, help="directory to create")
    init.add_argument("--province", required=True, help='province name, e.g. "Bến Tre"')
    init.add_argument(
        "--agencies-file",
        type=Path,
        help="JSON [{code,name}] or TOML [[agency]] list (default: 5 sample agencies)",
    )
    init.add_argument(
        "--key-type", choices=("ec", "rsa"), default="ec", help="ECDSA P-256 (default) or RSA-3072"
    )
    init.set_defaults(func=cmd_init)

    issue = actions.add_parser("issue", help="issue or re-issue one agency certificate")
    issue.add_argument("--pki", required=True, type=Path)
    issue.add_argument("--agency", required=True, help="agency code, e.g. 000.00.12.H10")
    issue.add_argument("--name", help="agency name (default: the code)")
    issue.add_argument("--days", type=int, default=730, help="validity in days from now")
    issue.add_argument(
        "--expired",
        action="store_true",
        help="make a certificate that expired yesterday (for tests)",
    )
    issue.add_argument(
        "--not-yet-valid",
        action="store_true",
        help="make a certificate valid only from tomorrow (for tests)",
    )
    issue.set_defaults(func=cmd_issue)

    revoke = actions.add_parser("revoke", help="revoke an agency certificate and re-sign the CRL")
    revoke.add_argument("--pki", required=True, type=Path)
    revoke.add_argument("--agency", required=True)
    revoke.set_defaults(func=cmd_revoke)


def _usage(exc: Exception) -> Exception:
    from lienthong.cli.main import UsageError

    return UsageError(str(exc))


def cmd_init(args: argparse.Namespace) -> int:
    from lienthong.documents.pki import DEFAULT_AGENCIES, PKIError, init_dev_pki, read_agencies_file

    configure_logging("cli", "WARNING")
    try:
        agencies = (
            read_agencies_file(args.agencies_file) if args.agencies_file else DEFAULT_AGENCIES
        )
        pki = init_dev_pki(args.out, args.province, agencies, key_type=args.key_type)
    except PKIError as exc:
        raise _usage(exc) from None
    print(f"development PKI for {pki.province} in {pki.dir}")
    print(f"  trust anchors: {pki.dir / 'trust'} (roots.pem, intermediates.pem, crls.pem)")
    for agency in pki.agencies():
        print(f"  {agency['code']}  {agency['name']}  -> {pki.agency_dir(agency['code'])}")
    print(f"  bus: {pki.dir / 'bus'}")
    return 0


def cmd_issue(args: argparse.Namespace) -> int:
    from lienthong.documents.pki import DevPKI, PKIError

    configure_logging("cli", "WARNING")
    now = dt.datetime.now(dt.UTC)
    not_before = None
    not_after = now + dt.timedelta(days=args.days)
    if args.expired:
        not_before, not_after = now - dt.timedelta(days=30), now - dt.timedelta(days=1)
    elif args.not_yet_valid:
        not_before = now + dt.timedelta(days=1)
    try:
        pki = DevPKI(args.pki)
        path = pki.issue_agency(
            args.agency, args.name or args.agency, not_before=not_before, not_after=not_after
        )
    except PKIError as exc:
        raise _usage(exc) from None
    print(f"issued {args.agency} -> {path}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from lienthong.documents.pki import DevPKI, PKIError

    configure_logging("cli", "WARNING")
    try:
        serial = DevPKI(args.pki).revoke(args.agency)
    except PKIError as exc:
        raise _usage(exc) from None
    print(f"revoked {args.agency} serial {serial:x}; CRL re-signed")
    return 0
