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
from lienthong.streams.app import app, partitions_of, settings, topic
from lienthong.streams.failures import (
    dead_letter_parts,
    is_infrastructure,
    processing_failed,
    stop_process,
)
from lienthong.streams.gaps import GapGuard

log = get_logger(__name__)

CONSUMER = "streams.documents"

documents_topic = topic("documents")
verified_topic = topic("documents-verified")
quarantine_topic = topic("documents-quarantine")
alerts_topic = topic("monitoring-alerts")
chain_topic = topic("audit-chain")
dead_letters = FaustDeadLetterPublisher(topic("dead-letters"), CONSUMER)

dossiers = app.Table("document-dossiers", default=dict, partitions=partitions_of("documents"))

_doc_settings = settings.documents
_trust = TrustCache(_doc_settings.trust_dir)
_store: DocumentStore | None = None
_bus: Signer | None = None
_bus_loaded = False
_validator: Validator | None = None


def document_store() -> DocumentStore:
    global _store
    if _store is None:
        uri = _doc_settings.store or str(settings.run_dir / "documents")
        _store = open_store(uri)
    return _store


def bus_signer() -> Signer | None:
    """The bus credential for checkpoints; without one the chain is kept but not signed."""
    global _bus, _bus_loaded
    if not _bus_loaded:
        _bus_loaded = True
        if _doc_settings.bus_cert and _doc_settings.bus_key:
            try:
                _bus = load_signer(
                    _doc_settings.bus_cert, _doc_settings.bus_key, _doc_settings.bus_chain
                )
            except PKIError as exc:
                log.error("bus_signer_unavailable", error=str(exc))
        else:
            log.warning("bus_signer_not_configured", effect="chain checkpoints are not signed")
    return _bus


def validator() -> Validator:
    global _validator
    if _validator is None:
        _validator = Validator(default_codec())
    return _validator


def _headers(raw: Any) -> dict[str, bytes]:
    items = raw.items() if isinstance(raw, dict) else (raw or [])
    return {str(k): (v if isinstance(v, bytes) else str(v or "").encode()) for k, v in items}


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True).encode("utf-8")


async def _publish_verdict(
    verdict: Verdict, key: bytes, partition: int, offset: int, state: dict[str, Any]
) -> list[Any]:
    """Send the verdict's records; returns their delivery futures (awaited by the caller).

    Every value is built before the first send, so an exception building one leaves nothing
    half-published for the dead-lettered event.
    """
    now = dt.datetime.now(dt.UTC)
    bound = get_logger(
        __name__, dossier_id=verdict.dossier_id, event_id=verdict.event_id, agency=verdict.agency
    )
    if not verdict.ok:
        apply_verdict(state, verdict, now)
        quarantined = _json(verdict.quarantine_value(partition=partition, offset=offset, now=now))
        alert = _json(verdict.alert_value(partition=partition, offset=offset, now=now))
        sent = [
            await quarantine_topic.send(key=key, value=quarantined),
            await alerts_topic.send(key=f"documents:{partition}:{offset}".encode(), value=alert),
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
        await verified_topic.send(key=key, value=verified),
        await chain_topic.send(key=key, value=chained),
    ]
    bus = bus_signer()
    if bus is not None and (index + 1) % _doc_settings.checkpoint_every == 0:
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
            sent.append(await chain_topic.send(key=key, value=checkpoint))
    bound.info(
        "document_verified" if verdict.kind == "document" else "receipt_accepted",
        document_id=verdict.document_id,
        chain_index=index,
    )
    return sent


# key: source partition -> offset of the last documents record handled (gap guard).
documents_progress = app.Table(
    "documents-progress", default=lambda: -1, partitions=partitions_of("documents")
)
gap_guard = GapGuard(
    app,
    documents_topic.get_topic_name(),
    lambda partition: documents_progress[str(partition)],
    skip_redelivered=False,  # the per-dossier state recognises repeats itself
)


@app.timer(interval=2.0)
async def repair_document_tail_gaps() -> None:
    await gap_guard.check_idle_partitions()


@app.agent(documents_topic)
async def verify_documents(stream: faust.StreamT) -> None:
    """Verify events one by one; a failing event is dead-lettered, a failing bus stops us.

    Faust acknowledges an event when the next one is taken, also after an exception, and then
    restarts the agent in the same process: an escaping exception would be a poison record
    (the gap guard reads it again, it raises again) or, for a failed send, a lost output.
    """
    async for event in stream.events():
        message = event.message
        try:
            if not await gap_guard.admit(message):
                continue
            try:
                await _handle(event)
            except Exception as exc:
                if is_infrastructure(exc):
                    raise
                await (await _reject(event, exc))  # the dead letter acknowledged
        except Exception as exc:
            stop_process(
                log,
                "documents_event_failed",
                exc,
                partition=message.partition,
                offset=message.offset,
            )
        if message.offset > documents_progress[str(message.partition)]:
            documents_progress[str(message.partition)] = message.offset


async def _reject(event: Any, exc: Exception) -> Any:
    """Dead-letter the event whose handling raised ``exc`` (not the bus's fault)."""
    message = event.message
    dossier_id = (message.key or b"").decode("utf-8", "replace") or None
    where = {"dossier_id": dossier_id, "partition": message.partition, "offset": message.offset}
    log.exception("document_event_failed", error_type=type(exc).__name__, **where)
    return await _dead_letter(message, processing_failed(exc, **where))


async def _dead_letter(message: Any, error: BaseException) -> Any:
    message, error = dead_letter_parts(message, error, app.conf.producer_max_request_size)
    return await dead_letters.publish(message, error)


async def _handle(event: Any) -> None:
    """Verify one documents record and publish its verdict (or dead-letter it).

    The verdict's records are acknowledged by the broker before the state notes the event as
    applied: a state saved ahead of a lost output would skip the event when it is read again.
    """
    loop = asyncio.get_running_loop()
    message = event.message
    decoded = validator().decode_or_reason(message.value)
    if isinstance(decoded, DecodeError):
        await (await _dead_letter(message, decoded))
        return
    dossier_id = decoded.envelope.dossier_id
    if not dossier_id or not isinstance(
        decoded, DocumentPublished | DocumentSigned | DocumentReceipt
    ):
        return
    state = dict(dossiers[dossier_id]) or new_state()
    if message.offset <= state.get("applied", -1):
        log.info("document_event_redelivered_skipped", dossier_id=dossier_id)
        return
    state = json.loads(json.dumps(state))  # deep copy: the table value is replaced whole
    key = message.key or dossier_id.encode()
    if isinstance(decoded, DocumentPublished):
        record_published(state, decoded)
    else:
        trust = await loop.run_in_executor(None, _trust.get)
        if isinstance(decoded, DocumentSigned):
            check = partial(
                check_signed,
                state,
                decoded,
                document_store(),
                trust,
                require_crl=_doc_settings.require_crl,
            )
        else:
            check = partial(
                check_receipt,
                state,
                decoded,
                _headers(message.headers),
                document_store(),
                trust,
                require_crl=_doc_settings.require_crl,
            )
        verdict = await loop.run_in_executor(None, check)
        sent = await _publish_verdict(verdict, key, message.partition, message.offset, state)
        for delivery in sent:
            await delivery
    state["applied"] = message.offset
    dossiers[dossier_id] = state


@app.page("/documents/")
class DossierDocuments(View):
    """One dossier's documents, verification results, receipts and flags (sender's view)."""

    @app.table_route(table=dossiers, query_param="dossier")
    async def get(self, request: Request) -> Response:
        dossier_id = request.query.get("dossier", "")
        return self.json(dossier_view(dossier_id, dossiers.get(dossier_id)))
