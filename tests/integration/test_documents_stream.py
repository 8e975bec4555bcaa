"""Documents end to end: real keys, a real broker, the real store, a real worker subprocess.

One worker for the module: the setup publishes every case under its own dossier id before the
worker starts, then each test asserts on ``documents-verified``, ``documents-quarantine``,
``monitoring-alerts``, the worker's ``/documents/`` view and the CLI that reads the topics.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from lienthong.documents.pki import DevPKI, Signer, init_dev_pki
from lienthong.documents.receipts import Receipt, sign_receipt
from lienthong.documents.sign import SignedDocument, store_and_sign
from lienthong.documents.store import FilesystemStore
from lienthong.documents.trail import read_json_values
from lienthong.schemas import DocumentPublished, DocumentReceipt, DocumentSigned
from lienthong.schemas.codec import AvroCodec
from lienthong.schemas.registry import FileSchemaRegistry
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.integration

CENTER = "000.00.01.H10"  # Trung tâm Phục vụ hành chính công tỉnh (sender)
LAND = "000.01.11.H10"  # Văn phòng Đăng ký đất đai (receiver)
TAX = "000.00.60.H10"  # Cục Thuế tỉnh (another agency)
EXPIRED = "000.00.12.H10"
REVOKED = "000.00.13.H10"
AGENCIES = (
    (CENTER, "Trung tâm Phục vụ hành chính công tỉnh"),
    (LAND, "Văn phòng Đăng ký đất đai"),
    (TAX, "Cục Thuế tỉnh"),
    (EXPIRED, "Sở Tài nguyên và Môi trường"),
    (REVOKED, "Sở Xây dựng"),
)

# dossier suffix -> expected quarantine reason of its document
DOCUMENT_CASES = {
    "TAMPERED": "hash_mismatch",
    "OTHERKEY": "signer_mismatch",
    "EXPIRED": "certificate_expired",
    "REVOKED": "certificate_revoked",
    "UNTRUSTED": "untrusted_chain",
}


@dataclass
class Bus:
    bootstrap: str
    env: dict[str, str]
    topics: dict[str, str]
    run: str
    worker: WorkerProcess
    store: FilesystemStore
    pki: DevPKI
    dossiers: dict[str, str]
    docs: dict[str, SignedDocument] = field(default_factory=dict)
    cache: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def values(self, name: str, expected: int = 0, timeout: float = 60.0) -> list[dict[str, Any]]:
        """All JSON values of a catalogue topic, waiting until at least ``expected`` arrived."""
        deadline = time.monotonic() + timeout
        while True:
            values = read_json_values(
                {"bootstrap_servers": self.bootstrap}, self.topics[name], timeout_s=2.0
            )
            if len(values) >= expected or time.monotonic() > deadline:
                return values
            time.sleep(0.5)

    def view(self, dossier: str) -> dict[str, Any]:
        return self.worker.get_json("/documents/?" + urllib.parse.urlencode({"dossier": dossier}))

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lienthong", *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _published(dossier: str, doc_id: str, signed: SignedDocument, agency: str) -> DocumentPublished:
    return DocumentPublished.create(
        dossier_id=dossier,
        producer_agency=agency,
        occurred_at=_now(),
        document_id=doc_id,
        content_sha256=signed.document.digest,
        size_bytes=signed.document.size,
        media_type="application/pdf",
        storage_ref=signed.document.ref,
        title="Giấy chứng nhận quyền sử dụng đất",
    )


def _signed(dossier: str, doc_id: str, signed: SignedDocument, agency: str) -> DocumentSigned:
    return DocumentSigned.create(
        dossier_id=dossier,
        producer_agency=agency,
        occurred_at=_now(),
        document_id=doc_id,
        content_sha256=signed.document.digest,
        signature_ref=signed.signature.ref,
        signer_cert_sha256=signed.signer_certificate_sha256,
        signed_at=signed.signed_at,
    )


@pytest.fixture(scope="module")
def bus(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory):
    from lienthong.config import load_settings
    from lienthong.runtime.topics import TopicAdmin

    base = tmp_path_factory.mktemp("documents-stream")
    prefix = f"t{uuid.uuid4().hex[:10]}."
    run = base / "run"
    pki = init_dev_pki(base / "pki", "Bến Tre", AGENCIES)
    other = init_dev_pki(base / "other-pki", "Bến Tre", AGENCIES, root_name="Some Other Root")
    pki.issue_agency(
        EXPIRED,
        "Sở Tài nguyên và Môi trường",
        not_before=_now() - dt.timedelta(days=30),
        not_after=_now() - dt.timedelta(days=1),
    )
    pki.revoke(REVOKED)
    store = FilesystemStore(base / "store")
    env = {
        "LIENTHONG_BOOTSTRAP": kafka_bootstrap,
        "LIENTHONG_TOPIC_PREFIX": prefix,
        "LIENTHONG_WORKER__APP_ID": f"lienthong-{prefix.rstrip('.')}",
        "LIENTHONG_WORKER__SESSION_TIMEOUT_S": "6",
        "LIENTHONG_RUN_DIR": str(run),
        "LIENTHONG_LOG_LEVEL": "INFO",
        "LIENTHONG_DOCUMENTS__STORE": str(store.root),
        "LIENTHONG_DOCUMENTS__TRUST_DIR": str(pki.dir / "trust"),
        "LIENTHONG_DOCUMENTS__BUS_CERT": str(pki.dir / "bus" / "cert.pem"),
        "LIENTHONG_DOCUMENTS__BUS_KEY": str(pki.dir / "bus" / "key.pem"),
        "LIENTHONG_DOCUMENTS__BUS_CHAIN": str(pki.dir / "bus" / "chain.pem"),
        "LIENTHONG_DOCUMENTS__CHECKPOINT_EVERY": "2",
        # Correct on every broker (needed on Tansu, see WorkerSettings); only slower elsewhere.
        "LIENTHONG_WORKER__SINGLE_RECORD_BATCHES": "true",
    }
    settings = load_settings(environ=env)
    with TopicAdmin(settings) as admin:
        admin.apply()
        topics = {spec.name: settings.topic(spec.name) for spec in admin.catalogue.topics}

    codec = AvroCodec(FileSchemaRegistry(run / "schema-registry.json"))
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    tag = uuid.uuid4().hex[:6].upper()
    dossiers = {name: f"H10-{tag}-{name}" for name in [*DOCUMENT_CASES, "VALID", "BADRECEIPT"]}
    docs: dict[str, SignedDocument] = {}

    def send(event: Any, headers: list[tuple[str, bytes]] | None = None) -> None:
        producer.send(
            topics["documents"],
            key=event.envelope.dossier_id.encode(),
            value=codec.encode(event),
            headers=headers or [],
        )

    def publish(case: str, signer: Signer, agency: str = CENTER, tamper: bool = False) -> None:
        content = b"%PDF-1.7\n" + case.encode() + uuid.uuid4().bytes * 2048 + b"\n%%EOF\n"
        signed = store_and_sign(store, [content], signer)
        docs[case] = signed
        if tamper:  # one byte changed in the stored document after signing
            path = store.path_of(signed.document.digest)
            path.chmod(0o644)
            data = bytearray(path.read_bytes())
            data[100] ^= 0x01
            path.write_bytes(bytes(data))
        dossier = dossiers[case]
        send(_published(dossier, f"DOC-{case}", signed, agency))
        send(_signed(dossier, f"DOC-{case}", signed, agency))

    def receipt(case: str, acknowledged_sha256: str, event_sha256: str) -> None:
        signed = docs[case]
        receipt_doc = sign_receipt(
            Receipt(
                dossier_id=dossiers[case],
                document_sha256=acknowledged_sha256,
                document_size=signed.document.size,
                receiving_agency=LAND,
                received_at=_now().replace(microsecond=0),
                event_id=str(uuid.uuid4()),
            ),
            pki.signer(LAND),
            store,
        )
        assert receipt_doc.receipt_object and receipt_doc.signature_object
        send(
            DocumentReceipt.create(
                dossier_id=dossiers[case],
                producer_agency=LAND,
                occurred_at=_now(),
                document_id=f"DOC-{case}",
                receiving_agency=LAND,
                received_sha256=event_sha256,
                received_at=_now(),
                receipt_ref=receipt_doc.receipt_object.ref,
                receipt_signature_ref=receipt_doc.signature_object.ref,
            ),
            [],
        )

    publish("VALID", pki.signer(CENTER))
    receipt("VALID", docs["VALID"].document.digest, docs["VALID"].document.digest)
    publish("TAMPERED", pki.signer(CENTER), tamper=True)
    publish("OTHERKEY", pki.signer(TAX), agency=CENTER)
    publish("EXPIRED", pki.signer(EXPIRED), agency=EXPIRED)
    publish("REVOKED", pki.signer(REVOKED), agency=REVOKED)
    publish("UNTRUSTED", other.signer(CENTER))
    publish("BADRECEIPT", pki.signer(CENTER))
    wrong = "ab" * 32
    right = docs["BADRECEIPT"].document.digest
    receipt("BADRECEIPT", right, wrong)  # the event admits another digest
    receipt("BADRECEIPT", wrong, right)  # the event lies, the signed receipt does not
    producer.flush()
    producer.close()

    worker = WorkerProcess(env, base / "worker.log")
    worker.start(90.0)
    try:
        yield Bus(kafka_bootstrap, env, topics, str(run), worker, store, pki, dossiers, docs)
    finally:
        worker.stop()


# verified: VALID doc + VALID receipt + BADRECEIPT doc; quarantine: 5 documents + 2 receipts
N_VERIFIED = 3
N_QUARANTINED = len(DOCUMENT_CASES) + 2


def test_valid_document_accepted_end_to_end(bus: Bus) -> None:
    dossier = bus.dossiers["VALID"]
    verified = [
        v for v in bus.values("documents-verified", N_VERIFIED) if v["dossier_id"] == dossier
    ]
    kinds = sorted(v["kind"] for v in verified)
    assert kinds == ["document", "receipt"], bus.worker.log_tail()
    doc = next(v for v in verified if v["kind"] == "document")
    assert doc["sha256"] == bus.docs["VALID"].document.digest
    assert doc["signer_agency"] == CENTER
    rec = next(v for v in verified if v["kind"] == "receipt")
    assert rec["receiving_agency"] == LAND
    quarantined = bus.values("documents-quarantine", N_QUARANTINED)
    assert not [q for q in quarantined if q["dossier_id"] == dossier]

    view = bus.view(dossier)
    assert view["flagged"] is False
    (document,) = view["documents"]
    assert document["status"] == "verified"
    assert [a["agency"] for a in document["acks"]] == [LAND]
    assert view["chain"]["length"] == 2

    listing = bus.cli("documents", "list", dossier, "--json")
    assert listing.returncode == 0, listing.stderr
    parsed = json.loads(listing.stdout)
    (entry,) = parsed["documents"]
    assert entry["document_id"] == "DOC-VALID"
    assert [a["agency"] for a in entry["acknowledged_by"]] == [LAND]


@pytest.mark.parametrize("case", sorted(DOCUMENT_CASES))
def test_bad_document_quarantined_with_its_reason(bus: Bus, case: str) -> None:
    dossier = bus.dossiers[case]
    quarantined = bus.values("documents-quarantine", N_QUARANTINED)
    mine = [q for q in quarantined if q["dossier_id"] == dossier]
    assert [q["reason"] for q in mine] == [DOCUMENT_CASES[case]], (mine, bus.worker.log_tail())
    assert mine[0]["document_id"] == f"DOC-{case}" and mine[0]["detail"]
    verified = bus.values("documents-verified", N_VERIFIED)
    assert not [v for v in verified if v["dossier_id"] == dossier]
    alerts = [
        a for a in bus.values("monitoring-alerts", N_QUARANTINED) if a.get("dossier_id") == dossier
    ]
    assert [(a["alert_type"], a["reason"]) for a in alerts] == [
        ("document_quarantined", DOCUMENT_CASES[case])
    ]
    view = bus.view(dossier)
    assert view["flagged"] is True
    assert [d["status"] for d in view["documents"]] == ["quarantined"]
    assert view["documents"][0]["reason"] == DOCUMENT_CASES[case]
    assert view["chain"]["length"] == 0


def test_receipt_with_wrong_digest_rejected(bus: Bus) -> None:
    dossier = bus.dossiers["BADRECEIPT"]
    quarantined = bus.values("documents-quarantine", N_QUARANTINED)
    mine = [q for q in quarantined if q["dossier_id"] == dossier]
    assert [(q["kind"], q["reason"]) for q in mine] == [
        ("receipt", "receipt_digest_mismatch"),
        ("receipt", "receipt_digest_mismatch"),
    ], mine
    assert "receipt acknowledges" in mine[1]["detail"]  # caught by the signed receipt itself
    verified = [
        v for v in bus.values("documents-verified", N_VERIFIED) if v["dossier_id"] == dossier
    ]
    assert [v["kind"] for v in verified] == ["document"]  # the document yes, no receipt
    alerts = [
        a for a in bus.values("monitoring-alerts", N_QUARANTINED) if a.get("dossier_id") == dossier
    ]
    assert [a["alert_type"] for a in alerts] == ["receipt_rejected", "receipt_rejected"]
    view = bus.view(dossier)
    assert view["flagged"] is True
    assert view["documents"][0]["status"] == "verified"
    assert view["documents"][0]["acks"] == []


def test_evidence_bundle_from_topics_verifies_with_openssl_alone(bus: Bus, tmp_path: Path) -> None:
    dossier = bus.dossiers["VALID"]
    bus.values("documents-verified", N_VERIFIED)  # the worker has processed the dossier
    out = tmp_path / "bundle"
    exported = bus.cli("audit", "export", dossier, "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert len(list((out / "events").glob("*.json"))) == 2
    assert list((out / "documents").iterdir())
    assert list((out / "receipts").glob("*.p7s"))
    assert list((out / "checkpoints").glob("*.p7s"))
    # openssl and a POSIX shell only: no Python, no lienthong.
    check = subprocess.run(
        ["sh", "verify.sh"], cwd=out, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}
    )
    assert check.returncode == 0, check.stdout + check.stderr
    library = bus.cli("audit", "verify-bundle", str(out))
    assert library.returncode == 0 and "VALID" in library.stdout, library.stdout


def test_audit_verify_finds_an_edited_record(bus: Bus) -> None:
    dossier = bus.dossiers["VALID"]
    bus.values("documents-verified", N_VERIFIED)
    intact = bus.cli("audit", "verify", dossier)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "INTACT" in intact.stdout

    # Copy the dossier's trail with record 0 edited (a larger size claimed, link kept).
    values = [
        v
        for v in read_json_values(
            {"bootstrap_servers": bus.bootstrap}, bus.topics["audit-chain"], key=dossier
        )
    ]
    assert [v["index"] for v in values if v["kind"] == "link"] == [0, 1]
    forged_topic = "audit-chain-forged"
    full = bus.env["LIENTHONG_TOPIC_PREFIX"] + forged_topic
    admin = KafkaAdminClient(bootstrap_servers=bus.bootstrap)
    try:
        admin.create_topics([NewTopic(full, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bus.bootstrap, acks="all")
    for value in values:
        if value["kind"] == "link" and value["index"] == 0:
            record = json.loads(value["record"])
            record["document"]["size"] += 1
            value = {**value, "record": json.dumps(record, separators=(",", ":"), sort_keys=True)}
        producer.send(full, key=dossier.encode(), value=json.dumps(value).encode())
    producer.flush()
    producer.close()
    broken = bus.cli("audit", "verify", dossier, "--chain-topic", forged_topic)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "first broken link at index 0: link_mismatch" in broken.stdout
