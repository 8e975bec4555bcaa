"""Pydantic v2 models of every bus event, one class per ``schemas/avro/<event_type>.avsc``.

Why pydantic next to Avro: Avro fixes the *shape* on the wire, the models enforce the *rules*
Avro cannot express (agency-code format, aware timestamps, hex digests, portal date strings,
status ranges). Every decoded record is validated by these models before a consumer sees it.

Field names equal the Avro field names so a model dumps straight into the Avro writer.
Timestamps are timezone-aware and normalised to Asia/Ho_Chi_Minh on validation; naive
datetimes are rejected because a time without a zone is ambiguous across agencies' systems.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
AVRO_DIR = Path(__file__).resolve().parent / "avro"

# Mã định danh điện tử of an agency, e.g. 000.00.12.H10: levels 4.3.2.1, level 1 = letter + 2
# digits (same shape as lienthong.domain.agencies.AGENCY_CODE_RE).
AGENCY_CODE_PATTERN = r"^[0-9A-Z]{3}\.[0-9A-Z]{2}\.[0-9A-Z]{2}\.[A-Z][0-9]{2}$"
AGENCY_CODE_RE = re.compile(AGENCY_CODE_PATTERN)
PORTAL_DATE_FORMAT = "%Y%m%d%H%M%S"  # the portal's yyyyMMddHHmmss
_PORTAL_DATE_RE = re.compile(r"^\d{14}$")


def _aware_in_vietnam(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            "naive datetime (no timezone): give an aware time such as 2024-03-01T08:30:00+07:00"
        )
    return value.astimezone(VN_TZ)


def _portal_date(value: str) -> str:
    if not _PORTAL_DATE_RE.match(value):
        raise ValueError(f"portal date must be yyyyMMddHHmmss, got {value!r}")
    try:
        datetime.strptime(value, PORTAL_DATE_FORMAT)
    except ValueError as exc:
        raise ValueError(f"portal date {value!r} is not a real date/time") from exc
    return value


Timestamp = Annotated[datetime, AfterValidator(_aware_in_vietnam)]
AgencyCode = Annotated[str, StringConstraints(pattern=AGENCY_CODE_PATTERN)]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]
PortalDate = Annotated[str, AfterValidator(_portal_date)]
Count = Annotated[int, Field(ge=0)]
Rate = Annotated[float, Field(ge=0.0, le=1.0)]


def to_portal_date(value: datetime) -> str:
    """Render an aware datetime as the portal's ``yyyyMMddHHmmss`` in Vietnam time."""
    return _aware_in_vietnam(value).strftime(PORTAL_DATE_FORMAT)


def from_portal_date(value: str) -> datetime:
    """Parse a portal date string (always Vietnam time) into an aware datetime."""
    return datetime.strptime(_portal_date(value), PORTAL_DATE_FORMAT).replace(tzinfo=VN_TZ)


def hash_identifier(identifier: str, salt: bytes | str) -> str:
    """Salted HMAC-SHA256 (hex) of a citizen/organisation identifier (CCCD, mã số thuế).

    Why a keyed hash and not the number: the bus is read by many agencies and kept for years;
    the identifier is personal data (Decree 13/2023). A keyed hash still lets the owner of the
    salt link one person's dossiers, but nobody can enumerate 12-digit CCCD numbers to reverse
    it without the salt. Whitespace and case are normalised so counter and portal agree.
    """
    key = salt.encode("utf-8") if isinstance(salt, str) else salt
    if len(key) < 16:
        raise ValueError("identifier salt must be at least 16 bytes")
    normalised = "".join(identifier.split()).upper()
    if not normalised:
        raise ValueError("identifier is empty")
    return hmac.new(key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- enums (symbols equal the Avro enum symbols) ---------------------------------------------


class Channel(StrEnum):
    """KenhThucHien."""

    COUNTER = "counter"  # 1 trực tiếp tại Bộ phận Một cửa
    ONLINE = "online"  # 2 trực tuyến
    POSTAL = "postal"  # 3 qua dịch vụ bưu chính công ích

    @property
    def portal_code(self) -> int:
        return _CHANNEL_CODES[self]

    @classmethod
    def from_portal_code(cls, code: int) -> Channel:
        for channel, value in _CHANNEL_CODES.items():
            if value == code:
                return channel
        raise ValueError(f"KenhThucHien must be 1, 2 or 3, got {code!r}")


_CHANNEL_CODES = {Channel.COUNTER: 1, Channel.ONLINE: 2, Channel.POSTAL: 3}


class PortalStatus:
    """TrangThaiHoSo codes of the national portal (BRIEF §3)."""

    SUBMITTED = 1  # mới đăng ký (trực tuyến, chưa tiếp nhận)
    RECEIVED = 2  # đã tiếp nhận
    REFUSED = 3  # không tiếp nhận
    PROCESSING = 4  # đang xử lý
    SUPPLEMENT = 5  # yêu cầu bổ sung
    FEE = 6  # thực hiện nghĩa vụ tài chính
    WITHDRAWN = 7  # công dân rút hồ sơ
    STOPPED = 8  # dừng xử lý
    FINISHED = 9  # đã xử lý xong
    RETURNED = 10  # đã trả kết quả


class SubjectKind(StrEnum):
    CITIZEN = "citizen"  # công dân
    ORGANISATION = "organisation"  # tổ chức, doanh nghiệp


class StepOutcome(StrEnum):
    COMPLETED = "completed"
    REJECTED = "rejected"
    SUPPLEMENT_NEEDED = "supplement_needed"


class ObligationKind(StrEnum):
    FEE = "fee"  # phí
    CHARGE = "charge"  # lệ phí
    TAX = "tax"  # thuế (e.g. tiền sử dụng đất)


class Decision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


class ReturnMethod(StrEnum):
    COUNTER = "counter"
    POST = "post"


class PostalKind(StrEnum):
    PICKUP_ORDERED = "pickup_ordered"
    COLLECTED = "collected"  # bưu điện đã nhận hồ sơ tại nhà
    DELIVERED_TO_CENTER = "delivered_to_center"
    RESULT_DISPATCHED = "result_dispatched"
    DELIVERED_TO_CITIZEN = "delivered_to_citizen"
    FAILED = "failed"
    RETURNED = "returned"


class PostalOrderKind(StrEnum):
    PICKUP = "pickup"  # thu gom hồ sơ tại nhà
    DELIVERY = "delivery"  # chuyển phát kết quả


class DeadlineScope(StrEnum):
    DOSSIER = "dossier"
    STEP = "step"


class PeriodKind(StrEnum):
    DAY = "day"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


# --- envelope and base --------------------------------------------------------------------------


class Envelope(_Strict):
    """Shared header embedded in every event (``envelope.avsc``)."""

    event_id: uuid.UUID
    event_type: NonEmpty
    schema_version: Annotated[int, Field(ge=1)]
    dossier_id: NonEmpty | None = None
    producer_agency: AgencyCode
    occurred_at: Timestamp
    recorded_at: Timestamp
    trace_id: NonEmpty
    causation_id: uuid.UUID | None = None


class Event(_Strict):
    """Base of every event. Subclasses set ``EVENT_TYPE`` (the .avsc file name) and ``TOPIC``."""

    EVENT_TYPE: ClassVar[str]
    RECORD_NAME: ClassVar[str]  # Avro full name, filled from the .avsc at import
    SCHEMA_VERSION: ClassVar[int]  # filled from the .avsc at import
    TOPIC: ClassVar[str]  # catalogue topic (deploy/topics.toml) that carries it
    DOSSIER_SCOPED: ClassVar[bool] = True

    envelope: Envelope

    @model_validator(mode="after")
    def _envelope_matches(self) -> Self:
        env = self.envelope
        if env.event_type != self.EVENT_TYPE:
            raise ValueError(
                f"envelope.event_type is {env.event_type!r} but the record is {self.EVENT_TYPE!r}"
            )
        if self.DOSSIER_SCOPED and env.dossier_id is None:
            raise ValueError(f"envelope.dossier_id is required for {self.EVENT_TYPE}")
        return self

    @classmethod
    def create(
        cls,
        *,
        dossier_id: str | None,
        producer_agency: str,
        occurred_at: datetime,
        trace_id: str | None = None,
        causation_id: uuid.UUID | None = None,
        recorded_at: datetime | None = None,
        event_id: uuid.UUID | None = None,
        **fields: Any,
    ) -> Self:
        """Build a validated event with a fresh envelope (new event id, current schema version)."""
        eid = event_id or uuid.uuid4()
        envelope = {
            "event_id": eid,
            "event_type": cls.EVENT_TYPE,
            "schema_version": cls.SCHEMA_VERSION,
            "dossier_id": dossier_id,
            "producer_agency": producer_agency,
            "occurred_at": occurred_at,
            "recorded_at": recorded_at or datetime.now(UTC),
            "trace_id": trace_id or eid.hex,
            "causation_id": causation_id,
        }
        return cls.model_validate({"envelope": envelope, **fields})


# --- dossier lifecycle (topic dossier-events) ---------------------------------------------------

DOSSIER_EVENTS = "dossier-events"


class Subject(_Strict):
    kind: SubjectKind
    identifier_hash: Sha256Hex


class DossierSubmitted(Event):
    EVENT_TYPE = "dossier_submitted"  # nộp trực tuyến, chưa tiếp nhận
    TOPIC = DOSSIER_EVENTS
    procedure_code: NonEmpty
    receiving_agency: AgencyCode
    subject: Subject


class DossierReceived(Event):
    EVENT_TYPE = "dossier_received"  # tiếp nhận hồ sơ
    TOPIC = DOSSIER_EVENTS
    channel: Channel
    procedure_code: NonEmpty
    receiving_agency: AgencyCode
    subject: Subject
    received_at: Timestamp
    appointment_at: Timestamp | None = None


class HandoffSent(Event):
    EVENT_TYPE = "handoff_sent"  # chuyển hồ sơ liên thông
    TOPIC = DOSSIER_EVENTS
    handoff_id: NonEmpty
    from_agency: AgencyCode
    to_agency: AgencyCode
    step: Annotated[int, Field(ge=1)]
    step_due_at: Timestamp


class HandoffAccepted(Event):
    EVENT_TYPE = "handoff_accepted"
    TOPIC = DOSSIER_EVENTS
    handoff_id: NonEmpty
    from_agency: AgencyCode
    to_agency: AgencyCode
    step: Annotated[int, Field(ge=1)]


class HandoffReturned(Event):
    EVENT_TYPE = "handoff_returned"
    TOPIC = DOSSIER_EVENTS
    handoff_id: NonEmpty
    from_agency: AgencyCode
    to_agency: AgencyCode
    step: Annotated[int, Field(ge=1)]
    outcome: StepOutcome
    note: str | None = None


class SupplementRequested(Event):
    EVENT_TYPE = "supplement_requested"  # yêu cầu bổ sung, hoàn thiện hồ sơ
    TOPIC = DOSSIER_EVENTS
    requesting_agency: AgencyCode
    reason: NonEmpty
    documents: list[NonEmpty]
    supplement_due_at: Timestamp | None = None


class SupplementReceived(Event):
    EVENT_TYPE = "supplement_received"  # nhận hồ sơ bổ sung
    TOPIC = DOSSIER_EVENTS
    receiving_agency: AgencyCode
    documents: list[NonEmpty]


class FeeRequested(Event):
    EVENT_TYPE = "fee_requested"  # yêu cầu thực hiện nghĩa vụ tài chính
    TOPIC = DOSSIER_EVENTS
    agency: AgencyCode
    obligation: ObligationKind
    amount_vnd: Annotated[int, Field(ge=0)]
    description: NonEmpty


class FeePaid(Event):
    EVENT_TYPE = "fee_paid"
    TOPIC = DOSSIER_EVENTS
    agency: AgencyCode
    obligation: ObligationKind
    amount_vnd: Annotated[int, Field(ge=0)]
    payment_ref: NonEmpty


class IntakeRefused(Event):
    EVENT_TYPE = "intake_refused"  # từ chối tiếp nhận
    TOPIC = DOSSIER_EVENTS
    agency: AgencyCode
    reason: NonEmpty


class DossierWithdrawn(Event):
    EVENT_TYPE = "dossier_withdrawn"  # công dân rút hồ sơ
    TOPIC = DOSSIER_EVENTS
    agency: AgencyCode
    reason: str | None = None


class ProcessingStopped(Event):
    EVENT_TYPE = "processing_stopped"  # dừng xử lý
    TOPIC = DOSSIER_EVENTS
    agency: AgencyCode
    reason: NonEmpty


class ProcessingFinished(Event):
    EVENT_TYPE = "processing_finished"  # đã xử lý xong
    TOPIC = DOSSIER_EVENTS
    agency: AgencyCode
    outcome: Decision
    result_document_id: str | None = None


class ResultReturned(Event):
    EVENT_TYPE = "result_returned"  # trả kết quả
    TOPIC = DOSSIER_EVENTS
    agency: AgencyCode
    method: ReturnMethod
    postal_tracking_code: str | None = None


# --- postal (topic postal-tracking) ---------------------------------------------------------------


class PostalTracking(Event):
    EVENT_TYPE = "postal_tracking"
    TOPIC = "postal-tracking"
    tracking_code: NonEmpty
    kind: PostalKind
    place: NonEmpty
    scanned_at: Timestamp
    note: str | None = None


class PostalOrderRequested(Event):
    """A command to the postal connector; personal data stays on the short-retention topic."""

    EVENT_TYPE = "postal_order_requested"  # yêu cầu thu gom / chuyển phát
    TOPIC = "postal-orders"
    order_id: NonEmpty
    kind: PostalOrderKind
    requesting_agency: AgencyCode
    recipient_name: NonEmpty
    address: NonEmpty
    phone: str | None = None
    deliver_by: Timestamp | None = None


# --- documents (topic documents) ------------------------------------------------------------------


class DocumentPublished(Event):
    EVENT_TYPE = "document_published"
    TOPIC = "documents"
    document_id: NonEmpty
    content_sha256: Sha256Hex
    size_bytes: Annotated[int, Field(ge=0)]
    media_type: Annotated[str, StringConstraints(pattern=r"^[\w.+-]+/[\w.+-]+$")]
    storage_ref: NonEmpty
    title: str | None = None


class DocumentSigned(Event):
    EVENT_TYPE = "document_signed"  # ký số
    TOPIC = "documents"
    document_id: NonEmpty
    content_sha256: Sha256Hex
    signature_ref: NonEmpty
    signer_cert_sha256: Sha256Hex
    signed_at: Timestamp


class DocumentReceipt(Event):
    EVENT_TYPE = "document_receipt"
    TOPIC = "documents"
    document_id: NonEmpty
    receiving_agency: AgencyCode
    received_sha256: Sha256Hex
    received_at: Timestamp
    # v2: the signed receipt itself (store references); v1 carried them in record headers.
    receipt_ref: str | None = None
    receipt_signature_ref: str | None = None


# --- bus-produced deadline events (topic deadline-alerts) ----------------------------------------

DEADLINE_ALERTS = "deadline-alerts"


class DeadlineWarning(Event):
    EVENT_TYPE = "deadline_warning"  # sắp đến hạn
    TOPIC = DEADLINE_ALERTS
    scope: DeadlineScope
    responsible_agency: AgencyCode
    step: Annotated[int, Field(ge=1)] | None = None
    due_at: Timestamp
    remaining_working_minutes: int


class DeadlineOverdue(Event):
    EVENT_TYPE = "deadline_overdue"  # quá hạn
    TOPIC = DEADLINE_ALERTS
    scope: DeadlineScope
    responsible_agency: AgencyCode
    step: Annotated[int, Field(ge=1)] | None = None
    due_at: Timestamp
    overdue_working_minutes: Annotated[int, Field(ge=0)]


class ApologyIssued(Event):
    EVENT_TYPE = "apology_issued"  # phiếu xin lỗi và hẹn lại ngày trả kết quả
    TOPIC = DEADLINE_ALERTS
    reason: NonEmpty
    responsible_agency: AgencyCode
    previous_appointment_at: Timestamp | None = None
    new_appointment_at: Timestamp


class HandoffEscalated(Event):
    EVENT_TYPE = "handoff_escalated"
    TOPIC = DEADLINE_ALERTS
    handoff_id: NonEmpty
    from_agency: AgencyCode
    to_agency: AgencyCode
    step: Annotated[int, Field(ge=1)]
    sent_at: Timestamp
    accept_due_at: Timestamp


# --- portal and statistics ------------------------------------------------------------------------

PortalStatusCode = Annotated[int, Field(ge=1, le=10)]


class ProgressEntry(_Strict):
    """One line of QuaTrinhXuLy; names are the portal's."""

    NguoiXuLy: NonEmpty
    DonViXuLy: AgencyCode
    ThoiDiemXuLy: PortalDate
    NoiDungXuLy: str
    TrangThaiHoSo: PortalStatusCode


class PortalStatusRecord(Event):
    """External contract with the national portal: the portal's Vietnamese field names are kept."""

    EVENT_TYPE = "portal_status_record"
    TOPIC = "portal-status"
    MaHoSo: NonEmpty
    MaTTHC: NonEmpty
    NgayTiepNhan: PortalDate
    NgayHenTra: PortalDate | None = None
    TrangThaiHoSo: PortalStatusCode
    KenhThucHien: Annotated[int, Field(ge=1, le=3)]
    NgayKetThucXuLy: PortalDate | None = None
    NgayTra: PortalDate | None = None
    DonViXuLy: AgencyCode
    QuaTrinhXuLy: list[ProgressEntry]


class LiveStatsSnapshot(Event):
    EVENT_TYPE = "live_stats_snapshot"
    TOPIC = "live-stats"
    DOSSIER_SCOPED = False
    agency: AgencyCode
    procedure_code: NonEmpty
    channel: Channel | None = None
    period_kind: PeriodKind
    period_key: Annotated[str, StringConstraints(pattern=r"^\d{4}(-Q[1-4]|-\d{2}(-\d{2})?)?$")]
    as_of: Timestamp
    received: Count
    carried_over: Count
    finished_early: Count
    finished_on_time: Count
    finished_late: Count
    in_progress_on_time: Count
    in_progress_overdue: Count
    waiting_supplement: Count
    refused: Count
    withdrawn: Count
    returned_by_post: Count
    on_time_rate: Rate | None = None
    online_rate: Rate | None = None
    postal_rate: Rate | None = None

    @property
    def key(self) -> str:
        """Compaction key on live-stats: agency|procedure|channel|period."""
        channel = self.channel.value if self.channel else "*"
        return f"{self.agency}|{self.procedure_code}|{channel}|{self.period_kind}:{self.period_key}"


# --- catalogue ------------------------------------------------------------------------------------

EVENT_CLASSES: tuple[type[Event], ...] = (
    DossierSubmitted,
    DossierReceived,
    HandoffSent,
    HandoffAccepted,
    HandoffReturned,
    SupplementRequested,
    SupplementReceived,
    FeeRequested,
    FeePaid,
    IntakeRefused,
    DossierWithdrawn,
    ProcessingStopped,
    ProcessingFinished,
    ResultReturned,
    PostalTracking,
    PostalOrderRequested,
    DocumentPublished,
    DocumentSigned,
    DocumentReceipt,
    DeadlineWarning,
    DeadlineOverdue,
    ApologyIssued,
    HandoffEscalated,
    PortalStatusRecord,
    LiveStatsSnapshot,
)

MODELS_BY_EVENT_TYPE: dict[str, type[Event]] = {cls.EVENT_TYPE: cls for cls in EVENT_CLASSES}


def _bind_schemas() -> dict[str, type[Event]]:
    """Read name and version from each .avsc so a model can never drift from its schema."""
    by_record: dict[str, type[Event]] = {}
    for cls in EVENT_CLASSES:
        raw = json.loads((AVRO_DIR / f"{cls.EVENT_TYPE}.avsc").read_text(encoding="utf-8"))
        cls.RECORD_NAME = f"{raw['namespace']}.{raw['name']}"
        cls.SCHEMA_VERSION = int(raw["schema_version"])
        by_record[cls.RECORD_NAME] = cls
    return by_record


MODELS_BY_RECORD_NAME: dict[str, type[Event]] = _bind_schemas()
