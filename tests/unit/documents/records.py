"""Builds the record stream of a small inter-agency dossier with real signatures and receipts."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

from lienthong.documents.pki import DevPKI
from lienthong.documents.receipts import Receipt, format_time, sign_receipt
from lienthong.documents.sign import store_and_sign
from lienthong.documents.store import FilesystemStore
from tests.unit.documents.helpers import AGENCY_A, AGENCY_B

DOSSIER = "H10.22-241122-0001"


def dossier_records(pki: DevPKI, store: FilesystemStore, tmp: Path) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    records: list[dict[str, Any]] = [
        {
            "type": "dossier.received",
            "event_id": str(uuid.uuid4()),
            "dossier_id": DOSSIER,
            "agency": "000.00.01.H10",
            "occurred_at": format_time(now),
            "status": 2,
            "channel": 1,
            "note": "Tiếp nhận hồ sơ đăng ký đất đai",
        },
    ]
    for n, (agency, receiver) in enumerate([(AGENCY_A, AGENCY_B), (AGENCY_B, AGENCY_A)]):
        doc = tmp / f"doc-{n}.pdf"
        doc.write_bytes(b"%PDF-1.7 " + f"văn bản {n}".encode() + uuid.uuid4().bytes * 500)
        signed = store_and_sign(store, doc, pki.signer(agency), signing_time=now)
        event_id = str(uuid.uuid4())
        records.append(
            {
                "type": "document.published",
                "event_id": event_id,
                "dossier_id": DOSSIER,
                "agency": agency,
                "occurred_at": format_time(now),
                "document": signed.event_fields(),
            }
        )
        receipt = Receipt(
            DOSSIER, signed.document.digest, signed.document.size, receiver, now, event_id
        )
        signed_receipt = sign_receipt(receipt, pki.signer(receiver), store)
        records.append(
            {
                "type": "document.received",
                "event_id": str(uuid.uuid4()),
                "dossier_id": DOSSIER,
                "agency": receiver,
                "occurred_at": format_time(now),
                "receipt": signed_receipt.event_fields(),
            }
        )
    records.append(
        {
            "type": "dossier.step_done",
            "event_id": str(uuid.uuid4()),
            "dossier_id": DOSSIER,
            "agency": AGENCY_B,
            "occurred_at": format_time(now),
            "status": 4,
        }
    )
    return records
