"""The console's evidence download against the real broker: one signed document for a
dossier, a worker that verifies it and chains it, then the console's
``/dossiers/<id>/evidence.zip`` must be a bundle that ``lienthong audit verify-bundle``
accepts. Nobody without a credential gets it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest
from kafka import KafkaProducer

from lienthong.documents.pki import init_dev_pki
from lienthong.documents.sign import store_and_sign
from lienthong.documents.store import FilesystemStore
from lienthong.schemas import DocumentPublished, DocumentSigned
from lienthong.schemas.codec import AvroCodec
from lienthong.schemas.registry import FileSchemaRegistry
from tests.integration.test_console import ConsoleProcess, wait_for
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.integration

CENTER = "000.00.01.H10"  # Trung tâm Phục vụ hành chính công tỉnh
KEY = "console-evidence-" + uuid.uuid4().hex


def test_the_dossier_page_downloads_a_bundle_that_verifies(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    from lienthong.config import load_settings
    from lienthong.runtime.topics import TopicAdmin

    prefix = f"t{uuid.uuid4().hex[:10]}."
    run = tmp_path / "run"
    pki = init_dev_pki(tmp_path / "pki", "Bến Tre", ((CENTER, "Trung tâm Phục vụ HCC"),))
    store = FilesystemStore(tmp_path / "store")
    users = tmp_path / "users.toml"
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    users.write_text(f'[[user]]\nname = "Lan"\nrole = "monitor"\napi_key_sha256 = "{digest}"\n')
    env = {
        **os.environ,
        "LIENTHONG_BOOTSTRAP": kafka_bootstrap,
        "LIENTHONG_TOPIC_PREFIX": prefix,
        "LIENTHONG_WORKER__APP_ID": f"lienthong-{prefix.rstrip('.')}",
        "LIENTHONG_WORKER__SESSION_TIMEOUT_S": "6",
        "LIENTHONG_WORKER__SINGLE_RECORD_BATCHES": "true",
        "LIENTHONG_RUN_DIR": str(run),
        "LIENTHONG_DOCUMENTS__STORE": str(store.root),
        "LIENTHONG_DOCUMENTS__TRUST_DIR": str(pki.dir / "trust"),
        "LIENTHONG_DOCUMENTS__BUS_CERT": str(pki.dir / "bus" / "cert.pem"),
        "LIENTHONG_DOCUMENTS__BUS_KEY": str(pki.dir / "bus" / "key.pem"),
        "LIENTHONG_DOCUMENTS__BUS_CHAIN": str(pki.dir / "bus" / "chain.pem"),
        "LIENTHONG_CONSOLE__USERS_FILE": str(users),
    }
    settings = load_settings(environ=env)
    with TopicAdmin(settings) as admin:
        admin.apply()
    dossier = f"H10-{uuid.uuid4().hex[:6].upper()}-EVIDENCE"
    signed = store_and_sign(store, [b"%PDF-1.7\n" + uuid.uuid4().bytes * 512], pki.signer(CENTER))
    now = dt.datetime.now(dt.UTC)
    common = {"dossier_id": dossier, "producer_agency": CENTER, "occurred_at": now}
    events = [
        DocumentPublished.create(
            **common,
            document_id="DOC-1",
            content_sha256=signed.document.digest,
            size_bytes=signed.document.size,
            media_type="application/pdf",
            storage_ref=signed.document.ref,
            title="Giấy chứng nhận",
        ),
        DocumentSigned.create(
            **common,
            document_id="DOC-1",
            content_sha256=signed.document.digest,
            signature_ref=signed.signature.ref,
            signer_cert_sha256=signed.signer_certificate_sha256,
            signed_at=signed.signed_at,
        ),
    ]
    codec = AvroCodec(FileSchemaRegistry(run / "schema-registry.json"))
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for event in events:
        producer.send(settings.topic("documents"), key=dossier.encode(), value=codec.encode(event))
    producer.flush()
    producer.close()
    worker = WorkerProcess(env, tmp_path / "worker.log").start(90.0)
    console = None
    try:
        view = f"/documents/?dossier={dossier}"

        def verified() -> bool:
            documents = worker.get_json(view).get("documents", [])
            return bool(documents) and documents[0]["status"] == "verified"

        wait_for(verified, 60, "the document verified by the worker", every=1.0)
        console = ConsoleProcess(env, tmp_path / "console.log")
        wait_for(lambda: console.get("/login", None)[0] == 200, 30, "console listening")
        status, page = console.get(f"/dossiers/{dossier}", key=KEY)
        assert status == 200 and f"/dossiers/{dossier}/evidence.zip" in page
        # Without a key: the login form (a redirect followed), never the bundle.
        status, body = console.get(f"/dossiers/{dossier}/evidence.zip", key=None)
        assert 'name="api_key"' in body and "PK" not in body[:4]
        import urllib.request

        request = urllib.request.Request(f"{console.url}/dossiers/{dossier}/evidence.zip")
        request.add_header("Authorization", f"Bearer {KEY}")
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.headers["Content-Type"] == "application/zip"
            bundle = tmp_path / "evidence.zip"
            bundle.write_bytes(response.read())
        assert zipfile.is_zipfile(bundle)
        verified = subprocess.run(
            [sys.executable, "-m", "lienthong", "audit", "verify-bundle", str(bundle)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert dossier in verified.stdout
    finally:
        if console is not None:
            console.stop()
        worker.stop()
