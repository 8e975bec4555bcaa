"""Typed producer API for a department system that speaks Kafka (issue 8, producer SDK).

Why a client on top of :class:`BusProducer`: a department system should not have to know the
envelope rules (its own agency as producer, aware timestamps, trace/causation ids), the topic of
each event or how a citizen's identifier is hashed. One method per lifecycle step builds the
event, lets the pydantic model reject anything wrong *before* it reaches the bus (the error
names the field), publishes it keyed by dossier id and, by default, waits for the broker's ack
so a returned event is durable.

    from lienthong.connectors.sdk import BusClient
    with BusClient(settings, agency="000.01.11.H10") as bus:
        received = bus.publish_received("H10-1", procedure_code="1.004227",
                                        subject_id="001234567890", channel="counter")
        bus.hand_off("H10-1", handoff_id="H10-1/1", to_agency="000.00.60.H10", step=1,
                     step_due_at=due, caused_by=received)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from lienthong.config import Settings
from lienthong.connectors.sdk.producer import BusProducer, PublishError
from lienthong.logs import get_logger
from lienthong.schemas.models import (
    AGENCY_CODE_RE,
    DocumentPublished,
    DocumentSigned,
    DossierReceived,
    DossierSubmitted,
    DossierWithdrawn,
    Event,
    FeePaid,
    FeeRequested,
    HandoffAccepted,
    HandoffReturned,
    HandoffSent,
    IntakeRefused,
    PostalOrderRequested,
    ProcessingFinished,
    ProcessingStopped,
    ResultReturned,
    SupplementReceived,
    SupplementRequested,
    hash_identifier,
)

log = get_logger(__name__)

E = TypeVar("E", bound=Event)
Cause = Event | uuid.UUID | None


@dataclass(frozen=True)
class PendingEvent:
    """What ``wait=False`` returns: the built event and kafka-python's future for its ack."""

    event: Event
    future: Any

    def get(self, timeout: float = 30.0) -> Event:
        """Wait for the broker's acknowledgement; the event once it is durable."""
        try:
            self.future.get(timeout=timeout)
        except Exception as exc:
            raise PublishError(
                f"{self.event.EVENT_TYPE} {self.event.envelope.event_id}: not acknowledged: {exc}"
            ) from exc
        return self.event

    def is_done(self) -> bool:
        return bool(self.future.is_done)


class BusClient:
    """One department system's typed view of the bus; ``agency`` is its mã định danh."""

    def __init__(
        self,
        target: Settings | BusProducer,
        *,
        agency: str,
        salt: str | bytes | None = None,
        store: Any = None,
        signer: Any = None,
        ack_timeout_s: float = 30.0,
    ) -> None:
        if not isinstance(agency, str) or not AGENCY_CODE_RE.match(agency):
            raise ValueError(f"agency: {agency!r} is not an agency code such as 000.00.01.H10")
        if isinstance(target, Settings):
            from lienthong.schemas import AvroCodec, registry_from_settings

            # encode with the registry of *these* settings, not whatever the process default is
            codec = AvroCodec(registry_from_settings(target))
            self.producer: BusProducer = BusProducer(target, codec=codec)
            self._owns_producer = True
        else:  # a BusProducer shared with the rest of the process
            self.producer = target
            self._owns_producer = False
        settings = self.producer.settings
        if salt is None and settings.identifier_salt is not None:
            salt = settings.identifier_salt.get_secret_value()
        self.agency = agency
        self._salt = salt
        self._store = store
        self._signer = signer
        self.ack_timeout_s = ack_timeout_s

    # --- plumbing ------------------------------------------------------------------------------

    def hash_subject(self, identifier: str) -> str:
        """The salted hash the bus carries instead of a CCCD / mã số thuế."""
        if self._salt is None:
            raise ValueError(
                "subject_id: no identifier salt configured (LIENTHONG_IDENTIFIER_SALT or salt=)"
            )
        return hash_identifier(identifier, self._salt)

    def build(
        self,
        model: type[E],
        dossier_id: str,
        *,
        occurred_at: datetime | None = None,
        caused_by: Cause = None,
        trace_id: str | None = None,
        event_id: uuid.UUID | None = None,
        **fields: Any,
    ) -> E:
        """Envelope + fields, validated; a wrong field raises pydantic's ValidationError."""
        causation_id: uuid.UUID | None = None
        if isinstance(caused_by, Event):
            causation_id = caused_by.envelope.event_id
            trace_id = trace_id or caused_by.envelope.trace_id
        elif caused_by is not None:
            causation_id = caused_by
        return model.create(
            dossier_id=dossier_id,
            producer_agency=self.agency,
            occurred_at=occurred_at or datetime.now(UTC),
            trace_id=trace_id,
            causation_id=causation_id,
            event_id=event_id,
            **fields,
        )

    def emit(self, event: E, *, wait: bool = True) -> E | PendingEvent:
        """Publish a built event; with ``wait`` block until the broker acknowledged it."""
        future = self.producer.send(event)
        pending = PendingEvent(event, future)
        if not wait:
            return pending
        pending.get(self.ack_timeout_s)
        log.info(
            "sdk_published",
            event_type=event.EVENT_TYPE,
            event_id=str(event.envelope.event_id),
            dossier_id=event.envelope.dossier_id,
            agency=self.agency,
        )
        return event

    def _publish(self, model: type[E], dossier_id: str, meta: dict[str, Any], **fields: Any) -> Any:
        wait = meta.pop("wait", True)
        return self.emit(self.build(model, dossier_id, **meta, **fields), wait=wait)

    def _subject(
        self, subject_id: str | None, identifier_hash: str | None, kind: str
    ) -> dict[str, str]:
        if (subject_id is None) == (identifier_hash is None):
            raise ValueError("subject_id: give exactly one of subject_id or identifier_hash")
        digest = identifier_hash if subject_id is None else self.hash_subject(subject_id)
        return {"kind": kind, "identifier_hash": digest}  # type: ignore[dict-item]

    # --- intake (tiếp nhận) --------------------------------------------------------------------

    def submit(
        self,
        dossier_id: str,
        *,
        procedure_code: str,
        subject_id: str | None = None,
        identifier_hash: str | None = None,
        subject_kind: str = "citizen",
        receiving_agency: str | None = None,
        **meta: Any,
    ) -> Any:
        """Online submission not yet received (TrangThaiHoSo 1)."""
        return self._publish(
            DossierSubmitted,
            dossier_id,
            meta,
            procedure_code=procedure_code,
            receiving_agency=receiving_agency or self.agency,
            subject=self._subject(subject_id, identifier_hash, subject_kind),
        )

    def publish_received(
        self,
        dossier_id: str,
        *,
        procedure_code: str,
        channel: str,
        subject_id: str | None = None,
        identifier_hash: str | None = None,
        subject_kind: str = "citizen",
        received_at: datetime | None = None,
        appointment_at: datetime | None = None,
        receiving_agency: str | None = None,
        **meta: Any,
    ) -> Any:
        """Tiếp nhận hồ sơ: starts the dossier's clock (received_at defaults to occurred_at)."""
        occurred = meta.get("occurred_at") or received_at or datetime.now(UTC)
        meta["occurred_at"] = occurred
        return self._publish(
            DossierReceived,
            dossier_id,
            meta,
            channel=channel,
            procedure_code=procedure_code,
            receiving_agency=receiving_agency or self.agency,
            subject=self._subject(subject_id, identifier_hash, subject_kind),
            received_at=received_at or occurred,
            appointment_at=appointment_at,
        )

    def refuse_intake(self, dossier_id: str, *, reason: str, **meta: Any) -> Any:
        return self._publish(IntakeRefused, dossier_id, meta, agency=self.agency, reason=reason)

    def withdraw(self, dossier_id: str, *, reason: str | None = None, **meta: Any) -> Any:
        return self._publish(DossierWithdrawn, dossier_id, meta, agency=self.agency, reason=reason)

    # --- inter-agency steps (liên thông) -------------------------------------------------------

    def hand_off(
        self,
        dossier_id: str,
        *,
        handoff_id: str,
        to_agency: str,
        step: int,
        step_due_at: datetime,
        **meta: Any,
    ) -> Any:
        """This agency sends the dossier to ``to_agency`` for step ``step``."""
        return self._publish(
            HandoffSent,
            dossier_id,
            meta,
            handoff_id=handoff_id,
            from_agency=self.agency,
            to_agency=to_agency,
            step=step,
            step_due_at=step_due_at,
        )

    def accept_handoff(
        self, dossier_id: str, *, handoff_id: str, from_agency: str, step: int, **meta: Any
    ) -> Any:
        """This agency (the receiver) accepts a handoff sent to it."""
        return self._publish(
            HandoffAccepted,
            dossier_id,
            meta,
            handoff_id=handoff_id,
            from_agency=from_agency,
            to_agency=self.agency,
            step=step,
        )

    def return_handoff(
        self,
        dossier_id: str,
        *,
        handoff_id: str,
        from_agency: str,
        step: int,
        outcome: str,
        note: str | None = None,
        **meta: Any,
    ) -> Any:
        """This agency hands its step back: completed, rejected or supplement_needed."""
        return self._publish(
            HandoffReturned,
            dossier_id,
            meta,
            handoff_id=handoff_id,
            from_agency=from_agency,
            to_agency=self.agency,
            step=step,
            outcome=outcome,
            note=note,
        )

    # --- supplements and fees ------------------------------------------------------------------

    def request_supplement(
        self,
        dossier_id: str,
        *,
        reason: str,
        documents: list[str],
        supplement_due_at: datetime | None = None,
        **meta: Any,
    ) -> Any:
        return self._publish(
            SupplementRequested,
            dossier_id,
            meta,
            requesting_agency=self.agency,
            reason=reason,
            documents=documents,
            supplement_due_at=supplement_due_at,
        )

    def receive_supplement(self, dossier_id: str, *, documents: list[str], **meta: Any) -> Any:
        return self._publish(
            SupplementReceived,
            dossier_id,
            meta,
            receiving_agency=self.agency,
            documents=documents,
        )

    def request_fee(
        self,
        dossier_id: str,
        *,
        obligation: str,
        amount_vnd: int,
        description: str,
        **meta: Any,
    ) -> Any:
        return self._publish(
            FeeRequested,
            dossier_id,
            meta,
            agency=self.agency,
            obligation=obligation,
            amount_vnd=amount_vnd,
            description=description,
        )

    def fee_paid(
        self,
        dossier_id: str,
        *,
        obligation: str,
        amount_vnd: int,
        payment_ref: str,
        **meta: Any,
    ) -> Any:
        return self._publish(
            FeePaid,
            dossier_id,
            meta,
            agency=self.agency,
            obligation=obligation,
            amount_vnd=amount_vnd,
            payment_ref=payment_ref,
        )

    # --- processing and result -----------------------------------------------------------------

    def stop_processing(self, dossier_id: str, *, reason: str, **meta: Any) -> Any:
        return self._publish(ProcessingStopped, dossier_id, meta, agency=self.agency, reason=reason)

    def finish_processing(
        self,
        dossier_id: str,
        *,
        outcome: str,
        result_document_id: str | None = None,
        **meta: Any,
    ) -> Any:
        return self._publish(
            ProcessingFinished,
            dossier_id,
            meta,
            agency=self.agency,
            outcome=outcome,
            result_document_id=result_document_id,
        )

    def return_result(
        self,
        dossier_id: str,
        *,
        method: str,
        postal_tracking_code: str | None = None,
        **meta: Any,
    ) -> Any:
        return self._publish(
            ResultReturned,
            dossier_id,
            meta,
            agency=self.agency,
            method=method,
            postal_tracking_code=postal_tracking_code,
        )

    # --- postal orders (thu gom / chuyển phát) -------------------------------------------------

    def _postal(
        self,
        kind: str,
        dossier_id: str,
        order_id: str | None,
        recipient_name: str,
        address: str,
        phone: str | None,
        deliver_by: datetime | None,
        meta: dict[str, Any],
    ) -> Any:
        return self._publish(
            PostalOrderRequested,
            dossier_id,
            meta,
            order_id=order_id or f"{dossier_id}/{kind}",
            kind=kind,
            requesting_agency=self.agency,
            recipient_name=recipient_name,
            address=address,
            phone=phone,
            deliver_by=deliver_by,
        )

    def order_postal_pickup(
        self,
        dossier_id: str,
        *,
        recipient_name: str,
        address: str,
        phone: str | None = None,
        order_id: str | None = None,
        deliver_by: datetime | None = None,
        **meta: Any,
    ) -> Any:
        """Ask the post to collect the dossier at the citizen's address (default order id is
        deterministic, so a retried call is recognisable downstream)."""
        return self._postal(
            "pickup", dossier_id, order_id, recipient_name, address, phone, deliver_by, meta
        )

    def order_postal_delivery(
        self,
        dossier_id: str,
        *,
        recipient_name: str,
        address: str,
        phone: str | None = None,
        order_id: str | None = None,
        deliver_by: datetime | None = None,
        **meta: Any,
    ) -> Any:
        """Ask the post to deliver the result (chuyển phát kết quả)."""
        return self._postal(
            "delivery", dossier_id, order_id, recipient_name, address, phone, deliver_by, meta
        )

    # --- documents -----------------------------------------------------------------------------

    def _require_store(self) -> Any:
        if self._store is None:
            raise ValueError("store: BusClient(store=...) is needed to publish documents")
        return self._store

    def publish_document(
        self,
        dossier_id: str,
        *,
        document_id: str,
        content: bytes | str | os.PathLike[str] | Iterable[bytes],
        media_type: str,
        title: str | None = None,
        **meta: Any,
    ) -> Any:
        """Put the bytes into the content-addressed store and announce them (DocumentPublished)."""
        store = self._require_store()
        if isinstance(content, bytes):
            stored = store.put_bytes(content)
        elif isinstance(content, str | os.PathLike):
            stored = store.put_file(content)
        else:
            stored = store.put_chunks(content)
        return self._publish(
            DocumentPublished,
            dossier_id,
            meta,
            document_id=document_id,
            content_sha256=stored.digest,
            size_bytes=stored.size,
            media_type=media_type,
            storage_ref=stored.ref,
            title=title,
        )

    def sign_document(
        self,
        dossier_id: str,
        *,
        document_id: str,
        content_sha256: str,
        signed_at: datetime | None = None,
        **meta: Any,
    ) -> Any:
        """Sign a stored document with this agency's key (detached CAdES-BES) → DocumentSigned.

        The document is read back from the store (which checks its digest) before signing, so
        the agency never signs bytes it does not actually hold.
        """
        from lienthong.documents.pki import fingerprint
        from lienthong.documents.sign import sign_chunks

        store = self._require_store()
        if self._signer is None:
            raise ValueError("signer: BusClient(signer=...) is needed to sign documents")
        if self._signer.agency not in (None, self.agency):
            raise ValueError(
                f"signer: certificate is for {self._signer.agency}, client agency is {self.agency}"
            )
        when = (signed_at or datetime.now(UTC)).replace(microsecond=0)
        signature = store.put_bytes(
            sign_chunks(store.iter_chunks(content_sha256), self._signer, signing_time=when)
        )
        return self._publish(
            DocumentSigned,
            dossier_id,
            meta,
            document_id=document_id,
            content_sha256=content_sha256,
            signature_ref=signature.ref,
            signer_cert_sha256=fingerprint(self._signer.certificate),
            signed_at=when,
        )

    # --- lifetime ------------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        self.producer.flush(timeout)

    def close(self) -> None:
        """Flush; close the producer only if this client created it."""
        self.producer.flush()
        if self._owns_producer:
            self.producer.close()

    def __enter__(self) -> BusClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
