"""Document verification, signed receipts and the tamper-evident trail in the stream (issue 7).

Reads ``documents`` (key: dossier id). For each event:

* ``document_published`` — remembered (hash, size, publisher); nothing is forwarded yet, an
  unsigned document is not a valid document.
* ``document_signed`` — the stored bytes, the detached signature, the chain to the trusted
  roots, validity at signing/event time, revocation and the signer are checked
  (:func:`lienthong.documents.pipeline.check_signed`). Valid: one record on
  ``documents-verified`` (the receiving agencies' view) and a chain link on ``audit-chain``.
  Invalid: a record on ``documents-quarantine`` with the failed check, a
  ``monitoring-alerts`` alert, and the dossier is flagged; nothing reaches the verified view.
* ``document_receipt`` — checked against the verified document's digest and the receiving
  agency's signed receipt; valid receipts are recorded and chained, others quarantined.

Hashing and signature checks run in the default executor so a 50 MB document does not stall
the event loop (heartbeats, other partitions).

Exactness under at-least-once delivery: each dossier's table value (``document-dossiers``)
holds its state *and* the highest source offset applied (a dossier lives in one partition), so
a redelivered event is skipped. Outputs are sent before the table write; a crash in between
re-sends the same outputs (same event id, same chain index and link), which readers de-dup.

Failures (see :mod:`lienthong.streams.failures`): an event whose handling raises is
dead-lettered (``ProcessingFailed``) and the stream carries on; nothing of it was sent, because
every output value is built before the first send, and a failing checkpoint signature (after
the link is sent) is logged and skipped, not allowed to undo the link. Every send is awaited
until the broker acknowledges it before the state notes the event; a send failing after the
producer's retries stops the process before the event is acknowledged, so it is read again.

HTTP: ``GET /documents/?dossier=ID`` — documents, verification status and reasons,
acknowledgements, quarantine flags and chain head of one dossier.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from functools import partial
from typing import Any

import faust
from faust.web import Request, Response, View

from lienthong.connectors.deadletter import FaustDeadLetterPublisher
from lienthong.documents.canonical import canonical_json
from lienthong.documents.chain import ChainEntry, sign_checkpoint
from lienthong.documents.pipeline import (
    TrustCache,
    Verdict,
    apply_verdict,
    check_receipt,
    check_signed,
    dossier_view,
    new_state,
    record_published,
)
from lienthong.documents.pki import PKIError, Signer, load_signer
from lienthong.documents.store import DocumentStore, open_store
from lienthong.documents.trail import checkpoint_value, link_value
from lienthong.logs import get_logger
from lienthong.schemas import DocumentPublished, DocumentReceipt, DocumentSigned, default_codec
from lienthong.schemas.errors import DecodeError
from lienthong.schemas.validate import Validator
from lienthong.streams.app import StreamsApp
from lienthong.streams.failures import (
    dead_letter_parts,
    is_infrastructure,
    processing_failed,
    stop_process,
)
from lienthong.streams.gaps import GapGuard

log = get_logger(__name__)

CONSUMER = "streams.documents"


class DocumentsStage:
    """Document verification of one app: its topics, tables, trust roots, store and signer.

    The store, the bus signer and the validator are opened on first use (a worker that never
    sees a document never opens them)."""

    def __init__(self, streams: StreamsApp) -> None:
        self.app = app = streams.app
        self.settings = streams.settings
        self.documents_topic = streams.topic("documents")
        self.verified_topic = streams.topic("documents-verified")
        self.quarantine_topic = streams.topic("documents-quarantine")
        self.alerts_topic = streams.topic("monitoring-alerts")
        self.chain_topic = streams.topic("audit-chain")
        self.dead_letters = FaustDeadLetterPublisher(streams.topic("dead-letters"), CONSUMER)
        partitions = streams.partitions_of("documents")
        self.dossiers = app.Table("document-dossiers", default=dict, partitions=partitions)
        # key: source partition -> offset of the last documents record handled (gap guard).
        self.documents_progress = app.Table(
            "documents-progress", default=lambda: -1, partitions=partitions
        )
        self.gap_guard = GapGuard(
            app,
            self.documents_topic.get_topic_name(),
            lambda partition: self.documents_progress[str(partition)],
            skip_redelivered=False,  # the per-dossier state recognises repeats itself
        )
        self.doc_settings = self.settings.documents
        self.trust = TrustCache(self.doc_settings.trust_dir)
        self._store: DocumentStore | None = None
        self._bus: Signer | None = None
        self._bus_loaded = False
        self._validator: Validator | None = None

    def register(self) -> None:
        """The agent, the tail-gap timer and the ``/documents/`` page, on this app."""
        app, stage = self.app, self

        @app.timer(interval=2.0, name="lienthong.streams.documents.repair_document_tail_gaps")
        async def repair_document_tail_gaps() -> None:
            await stage.gap_guard.check_idle_partitions()

        @app.agent(self.documents_topic, name="lienthong.streams.documents.verify_documents")
        async def verify_documents(stream: faust.StreamT) -> None:
            await stage.verify_documents(stream)

        @app.page("/documents/")
        class DossierDocuments(View):
            """One dossier's documents, verification results, receipts and flags."""

            @app.table_route(table=stage.dossiers, query_param="dossier")
            async def get(self, request: Request) -> Response:
                dossier_id = request.query.get("dossier", "")
                return self.json(dossier_view(dossier_id, stage.dossiers.get(dossier_id)))

    def document_store(self) -> DocumentStore:
        if self._store is None:
            uri = self.doc_settings.store or str(self.settings.run_dir / "documents")
            self._store = open_store(uri)
        return self._store

    def bus_signer(self) -> Signer | None:
        """The bus credential for checkpoints; without one the chain is kept but not signed."""
        if not self._bus_loaded:
            self._bus_loaded = True
            doc = self.doc_settings
            if doc.bus_cert and doc.bus_key:
                try:
                    self._bus = load_signer(doc.bus_cert, doc.bus_key, doc.bus_chain)
                except PKIError as exc:
                    log.error("bus_signer_unavailable", error=str(exc))
            else:
                log.warning("bus_signer_not_configured", effect="chain checkpoints are not signed")
        return self._bus

    def validator(self) -> Validator:
        if self._validator is None:
            self._validator = Validator(default_codec())
        return self._validator

    async def _publish_verdict(
        self, verdict: Verdict, key: bytes, partition: int, offset: int, state: dict[str, Any]
    ) -> list[Any]:
        """Send the verdict's records; returns their delivery futures (awaited by the caller).

        Every value is built before the first send, so an exception building one leaves nothing
        half-published for the dead-lettered event.
        """
        now = dt.datetime.now(dt.UTC)
        bound = get_logger(
            __name__,
            dossier_id=verdict.dossier_id,
            event_id=verdict.event_id,
            agency=verdict.agency,
        )
        if not verdict.ok:
            apply_verdict(state, verdict, now)
            quarantined = _json(
                verdict.quarantine_value(partition=partition, offset=offset, now=now)
            )
            alert = _json(verdict.alert_value(partition=partition, offset=offset, now=now))
            sent = [
                await self.quarantine_topic.send(key=key, value=quarantined),
                await self.alerts_topic.send(
                    key=f"documents:{partition}:{offset}".encode(), value=alert
                ),
            ]
            bound.warning(
                "document_quarantined" if verdict.kind == "document" else "receipt_rejected",
                document_id=verdict.document_id,
                reason=verdict.reason,
                detail=verdict.detail,
            )
            return sent
        appended = apply_verdict(state, verdict, now)
        assert appended is not None and verdict.chain_record is not None
        index, link = appended
        record = canonical_json(verdict.chain_record)
        verified = _json({**verdict.verified, "chain_index": index})
        chained = link_value(verdict.dossier_id, index, link, record)
        sent = [
            await self.verified_topic.send(key=key, value=verified),
            await self.chain_topic.send(key=key, value=chained),
        ]
        bus = self.bus_signer()
        if bus is not None and (index + 1) % self.doc_settings.checkpoint_every == 0:
            try:
                loop = asyncio.get_running_loop()
                entry = ChainEntry(index, record, link)
                signed = await loop.run_in_executor(
                    None, partial(sign_checkpoint, verdict.dossier_id, entry, bus)
                )
                checkpoint = checkpoint_value(signed)
            except Exception:
                # The link is already sent, so the state must keep it: a missing checkpoint only
                # delays the signed proof to the next one, which covers this link too.
                bound.exception("chain_checkpoint_failed", chain_index=index)
            else:
                sent.append(await self.chain_topic.send(key=key, value=checkpoint))
        bound.info(
            "document_verified" if verdict.kind == "document" else "receipt_accepted",
            document_id=verdict.document_id,
            chain_index=index,
        )
        return sent

    async def verify_documents(self, stream: faust.StreamT) -> None:
        """Verify events one by one; a failing event is dead-lettered, a failing bus stops us.

        Faust acknowledges an event when the next one is taken, also after an exception, and
        then restarts the agent in the same process: an escaping exception would be a poison
        record (the gap guard reads it again, it raises again) or, for a failed send, a lost
        output.
        """
        async for event in stream.events():
            message = event.message
            try:
                if not await self.gap_guard.admit(message):
                    continue
                try:
                    await self._handle(event)
                except Exception as exc:
                    if is_infrastructure(exc):
                        raise
                    await (await self._reject(event, exc))  # the dead letter acknowledged
            except Exception as exc:
                stop_process(
                    log,
                    "documents_event_failed",
                    exc,
                    partition=message.partition,
                    offset=message.offset,
                )
            if message.offset > self.documents_progress[str(message.partition)]:
                self.documents_progress[str(message.partition)] = message.offset
            # Working through what it was given: no partition is idle (see GapGuard.busy).
            self.gap_guard.busy()

    async def _reject(self, event: Any, exc: Exception) -> Any:
        """Dead-letter the event whose handling raised ``exc`` (not the bus's fault)."""
        message = event.message
        dossier_id = (message.key or b"").decode("utf-8", "replace") or None
        where = {"dossier_id": dossier_id, "partition": message.partition, "offset": message.offset}
        log.exception("document_event_failed", error_type=type(exc).__name__, **where)
        return await self._dead_letter(message, processing_failed(exc, **where))

    async def _dead_letter(self, message: Any, error: BaseException) -> Any:
        message, error = dead_letter_parts(message, error, self.app.conf.producer_max_request_size)
        return await self.dead_letters.publish(message, error)

    async def _handle(self, event: Any) -> None:
        """Verify one documents record and publish its verdict (or dead-letter it).

        The verdict's records are acknowledged by the broker before the state notes the event as
        applied: a state saved ahead of a lost output would skip the event when it is read again.
        """
        loop = asyncio.get_running_loop()
        message = event.message
        decoded = self.validator().decode_or_reason(message.value)
        if isinstance(decoded, DecodeError):
            await (await self._dead_letter(message, decoded))
            return
        dossier_id = decoded.envelope.dossier_id
        if not dossier_id or not isinstance(
            decoded, DocumentPublished | DocumentSigned | DocumentReceipt
        ):
            return
        state = dict(self.dossiers[dossier_id]) or new_state()
        if message.offset <= state.get("applied", -1):
            log.info("document_event_redelivered_skipped", dossier_id=dossier_id)
            return
        state = json.loads(json.dumps(state))  # deep copy: the table value is replaced whole
        key = message.key or dossier_id.encode()
        if isinstance(decoded, DocumentPublished):
            record_published(state, decoded)
        else:
            trust = await loop.run_in_executor(None, self.trust.get)
            if isinstance(decoded, DocumentSigned):
                check = partial(
                    check_signed,
                    state,
                    decoded,
                    self.document_store(),
                    trust,
                    require_crl=self.doc_settings.require_crl,
                )
            else:
                check = partial(
                    check_receipt,
                    state,
                    decoded,
                    _headers(message.headers),
                    self.document_store(),
                    trust,
                    require_crl=self.doc_settings.require_crl,
                )
            verdict = await loop.run_in_executor(None, check)
            sent = await self._publish_verdict(
                verdict, key, message.partition, message.offset, state
            )
            for delivery in sent:
                await delivery
        state["applied"] = message.offset
        self.dossiers[dossier_id] = state


def _headers(raw: Any) -> dict[str, bytes]:
    items = raw.items() if isinstance(raw, dict) else (raw or [])
    return {str(k): (v if isinstance(v, bytes) else str(v or "").encode()) for k, v in items}


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True).encode("utf-8")
