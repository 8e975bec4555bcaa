"""``lienthong documents list DOSSIER_ID``: every document of a dossier and who acknowledged it.

A sending agency needs proof of what it sent and who received it (like eDelivery's signed
receipts), without access to the worker's tables. So the listing is rebuilt from the topics:
accepted documents and receipts from ``audit-chain`` (the tamper-evident trail, the source of
truth), document ids from ``documents-verified``, rejections from ``documents-quarantine``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("documents", help="documents of a dossier and their receipts")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = actions.add_parser("list", help="documents, acknowledgements and rejections of a dossier")
    ls.add_argument("dossier_id")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=cmd_list)


def dossier_listing(
    dossier_id: str,
    chain_values: list[dict[str, Any]],
    verified_values: list[dict[str, Any]],
    quarantine_values: list[dict[str, Any]],
) -> dict[str, Any]:
    """Pure join of the three topics' values for one dossier."""
    from lienthong.documents.receipts import acknowledgements
    from lienthong.documents.trail import collect_trail

    trail = collect_trail(dossier_id, chain_values)
    ids = {
        v.get("sha256"): v.get("document_id")
        for v in verified_values
        if v.get("kind") == "document" and v.get("dossier_id") == dossier_id
    }
    documents = []
    for entry in acknowledgements(trail.records).get(dossier_id, []):
        documents.append(
            {
                "document_id": ids.get(entry.document_sha256),
                "sha256": entry.document_sha256,
                "size": entry.size,
                "published_by": entry.published_by,
                "published_at": entry.published_at,
                "acknowledged_by": [
                    {
                        "agency": ack.agency,
                        "received_at": ack.received_at,
                        "receipt_sha256": ack.receipt_sha256,
                    }
                    for ack in entry.acknowledgements
                ],
            }
        )
    rejected = [v for v in quarantine_values if v.get("dossier_id") == dossier_id]
    return {"dossier_id": dossier_id, "documents": documents, "rejected": rejected}


def cmd_list(args: argparse.Namespace) -> int:
    from lienthong.config import load_settings
    from lienthong.connectors.kafka import kafka_python_config
    from lienthong.documents.trail import read_json_values
    from lienthong.logs import configure_logging

    configure_logging("cli", "WARNING")
    settings = load_settings()
    config = kafka_python_config(settings)

    def values(name: str) -> list[dict[str, Any]]:
        return read_json_values(config, settings.topic(name), key=args.dossier_id)

    listing = dossier_listing(
        args.dossier_id,
        values("audit-chain"),
        values("documents-verified"),
        values("documents-quarantine"),
    )
    if args.json:
        print(json.dumps(listing, ensure_ascii=False, indent=2, sort_keys=True))
        return 0
    print(f"dossier {args.dossier_id}")
    if not listing["documents"]:
        print("  no verified documents")
    for doc in listing["documents"]:
        print(
            f"  {doc['document_id'] or '?'}  sha256:{doc['sha256'][:16]}…  "
            f"{doc['size']} bytes  from {doc['published_by']} at {doc['published_at']}"
        )
        if not doc["acknowledged_by"]:
            print("    not acknowledged yet")
        for ack in doc["acknowledged_by"]:
            print(f"    acknowledged by {ack['agency']} at {ack['received_at']}")
    for rej in listing["rejected"]:
        print(f"  REJECTED {rej.get('kind')} {rej.get('document_id')}: {rej.get('reason')}")
    return 0
