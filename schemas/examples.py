"""One fixed, realistic example per event type.

Used by the docs generator, the round-trip and golden tests and the benchmark, so the example
shown in ``docs/events.md`` is exactly what the tests prove decodes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from lienthong.schemas.models import (
    MODELS_BY_EVENT_TYPE,
    VN_TZ,
    Event,
    hash_identifier,
)

# Codes of the sample province in lienthong/domain/data/agencies.toml.
CENTER = "000.00.01.H10"  # Trung tâm Phục vụ hành chính công tỉnh
LAND_OFFICE = "000.01.11.H10"  # Văn phòng Đăng ký đất đai (Sở Tài nguyên và Môi trường)
TAX_OFFICE = "000.00.60.H10"  # Cục Thuế tỉnh
DOSSIER = "000.00.01.H10-240301-0001"
EXAMPLE_SALT = "example-salt-not-for-production"
FINGERPRINT = "3f2a" * 16
DIGEST = "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca7"


def _t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 3, day, hour, minute, tzinfo=VN_TZ)


_FIELDS: dict[str, dict[str, Any]] = {
    "dossier_submitted": {
        "procedure_code": "1.004227",
        "receiving_agency": CENTER,
        "subject": {
            "kind": "citizen",
            "identifier_hash": hash_identifier("001234567890", EXAMPLE_SALT),
        },
    },
    "dossier_received": {
        "channel": "postal",
        "procedure_code": "1.004227",
        "receiving_agency": CENTER,
        "subject": {
            "kind": "citizen",
            "identifier_hash": hash_identifier("001234567890", EXAMPLE_SALT),
        },
        "received_at": _t(1, 8, 30),
        "appointment_at": _t(15, 16, 0),
    },
    "handoff_sent": {
        "handoff_id": "HO-0001-1",
        "from_agency": CENTER,
        "to_agency": LAND_OFFICE,
        "step": 1,
        "step_due_at": _t(6, 17),
    },
    "handoff_accepted": {
        "handoff_id": "HO-0001-1",
        "from_agency": CENTER,
        "to_agency": LAND_OFFICE,
        "step": 1,
    },
    "handoff_returned": {
        "handoff_id": "HO-0001-1",
        "from_agency": LAND_OFFICE,
        "to_agency": CENTER,
        "step": 1,
        "outcome": "completed",
        "note": "Đủ điều kiện cấp giấy chứng nhận",
    },
    "supplement_requested": {
        "requesting_agency": LAND_OFFICE,
        "reason": "Thiếu bản vẽ sơ đồ thửa đất",
        "documents": ["Sơ đồ thửa đất", "Bản sao CCCD"],
        "supplement_due_at": _t(20, 17),
    },
    "supplement_received": {
        "receiving_agency": CENTER,
        "documents": ["Sơ đồ thửa đất", "Bản sao CCCD"],
    },
    "fee_requested": {
        "agency": TAX_OFFICE,
        "obligation": "tax",
        "amount_vnd": 12_500_000,
        "description": "Tiền sử dụng đất",
    },
    "fee_paid": {
        "agency": TAX_OFFICE,
        "obligation": "tax",
        "amount_vnd": 12_500_000,
        "payment_ref": "KBNN-2024-000123",
    },
    "intake_refused": {"agency": CENTER, "reason": "Thủ tục không thuộc thẩm quyền"},
    "dossier_withdrawn": {"agency": CENTER, "reason": "Công dân xin rút hồ sơ"},
    "processing_stopped": {"agency": LAND_OFFICE, "reason": "Đất đang có tranh chấp"},
    "processing_finished": {
        "agency": LAND_OFFICE,
        "outcome": "approved",
        "result_document_id": "GCN-0001",
    },
    "result_returned": {
        "agency": CENTER,
        "method": "post",
        "postal_tracking_code": "EL123456789VN",
    },
    "postal_tracking": {
        "tracking_code": "EL123456789VN",
        "kind": "delivered_to_center",
        "place": "Bưu cục Trung tâm Bến Tre",
        "scanned_at": _t(1, 8, 5),
        "note": None,
    },
    "postal_order_requested": {
        "order_id": "DELIVERY-000.00.01.H10-240301-0001",
        "kind": "delivery",
        "requesting_agency": CENTER,
        "recipient_name": "Nguyễn Văn C",
        "address": "12 Đồng Khởi, phường An Hội, TP Bến Tre",
        "phone": None,
        "deliver_by": _t(16, 16),
    },
    "document_published": {
        "document_id": "GCN-0001",
        "content_sha256": DIGEST,
        "size_bytes": 184_320,
        "media_type": "application/pdf",
        "storage_ref": f"cas://sha256/{DIGEST}",
        "title": "Giấy chứng nhận quyền sử dụng đất",
    },
    "document_signed": {
        "document_id": "GCN-0001",
        "content_sha256": DIGEST,
        "signature_ref": f"cas://sha256/{DIGEST}.p7s",
        "signer_cert_sha256": FINGERPRINT,
        "signed_at": _t(14, 10),
    },
    "document_receipt": {
        "document_id": "GCN-0001",
        "receiving_agency": CENTER,
        "received_sha256": DIGEST,
        "received_at": _t(14, 10, 2),
        "receipt_ref": "sha256:" + "5e" * 32,
        "receipt_signature_ref": "sha256:" + "a7" * 32,
    },
    "deadline_warning": {
        "scope": "step",
        "responsible_agency": LAND_OFFICE,
        "step": 1,
        "due_at": _t(6, 17),
        "remaining_working_minutes": 240,
    },
    "deadline_overdue": {
        "scope": "dossier",
        "responsible_agency": LAND_OFFICE,
        "step": None,
        "due_at": _t(15, 16),
        "overdue_working_minutes": 30,
    },
    "apology_issued": {
        "reason": "Chờ kết quả xác minh nguồn gốc đất",
        "responsible_agency": LAND_OFFICE,
        "previous_appointment_at": _t(15, 16),
        "new_appointment_at": _t(22, 16),
    },
    "handoff_escalated": {
        "handoff_id": "HO-0001-2",
        "from_agency": LAND_OFFICE,
        "to_agency": TAX_OFFICE,
        "step": 2,
        "sent_at": _t(6, 9),
        "accept_due_at": _t(7, 9),
    },
    "portal_status_record": {
        "MaHoSo": DOSSIER,
        "MaTTHC": "1.004227",
        "NgayTiepNhan": "20240301083000",
        "NgayHenTra": "20240315160000",
        "TrangThaiHoSo": 4,
        "KenhThucHien": 3,
        "NgayKetThucXuLy": None,
        "NgayTra": None,
        "DonViXuLy": LAND_OFFICE,
        "QuaTrinhXuLy": [
            {
                "NguoiXuLy": "Nguyễn Văn A",
                "DonViXuLy": CENTER,
                "ThoiDiemXuLy": "20240301083000",
                "NoiDungXuLy": "Tiếp nhận hồ sơ",
                "TrangThaiHoSo": 2,
            },
            {
                "NguoiXuLy": "Trần Thị B",
                "DonViXuLy": LAND_OFFICE,
                "ThoiDiemXuLy": "20240301140000",
                "NoiDungXuLy": "Nhận hồ sơ liên thông, thẩm định",
                "TrangThaiHoSo": 4,
            },
        ],
    },
    "live_stats_snapshot": {
        "agency": CENTER,
        "procedure_code": "*",
        "channel": None,
        "period_kind": "quarter",
        "period_key": "2024-Q1",
        "as_of": _t(31, 17),
        "received": 14_168,
        "carried_over": 0,
        "finished_early": 9_001,
        "finished_on_time": 3_200,
        "finished_late": 155,
        "in_progress_on_time": 1_700,
        "in_progress_overdue": 112,
        "waiting_supplement": 40,
        "refused": 12,
        "withdrawn": 3,
        "returned_by_post": 1_516,
        "on_time_rate": 0.9875,
        "online_rate": 0.0478,
        "postal_rate": 0.1382,
    },
}


# Example event ids are numbered by this order; types added later go at the end so the golden
# bytes of the existing examples never change.
_ADDED_LATER = ("postal_order_requested",)
_EXAMPLE_ORDER = sorted(set(MODELS_BY_EVENT_TYPE) - set(_ADDED_LATER)) + list(_ADDED_LATER)


def example_event(event_type: str, **envelope_overrides: Any) -> Event:
    """A fixed example of ``event_type`` (deterministic ids and times)."""
    model = MODELS_BY_EVENT_TYPE[event_type]
    number = _EXAMPLE_ORDER.index(event_type) + 1
    envelope: dict[str, Any] = {
        "dossier_id": None if not model.DOSSIER_SCOPED else DOSSIER,
        "producer_agency": CENTER,
        "occurred_at": _t(1, 8, 30),
        "recorded_at": _t(1, 8, 30),
        "trace_id": "7d1c2a40e5b24c0f9a1e3b5c6d7e8f90",
        "causation_id": None,
        "event_id": uuid.UUID(int=number),
    }
    envelope.update(envelope_overrides)
    return model.create(**envelope, **_FIELDS[event_type])


def example_events() -> dict[str, Event]:
    return {name: example_event(name) for name in MODELS_BY_EVENT_TYPE}
