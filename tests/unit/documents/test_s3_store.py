"""S3-compatible store against a real HTTP S3 endpoint: moto in server mode on 127.0.0.1."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

from lienthong.documents.s3 import S3Config, S3Store  # noqa: E402
from lienthong.documents.store import (  # noqa: E402
    DocumentCorrupted,
    DocumentNotFound,
    open_store,
    parse_reference,
)

MB = 1024 * 1024


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3store(endpoint: str) -> S3Store:
    config = S3Config(
        bucket="lienthong-docs",
        endpoint_url=endpoint,
        region="ap-southeast-1",
        access_key_id="testing",
        secret_access_key="testing-secret",
        prefix="ben-tre",
    )
    store = S3Store(config)
    store.ensure_bucket()
    return store


def test_roundtrip_and_locator(s3store: S3Store) -> None:
    data = "Phiếu kiểm soát quá trình giải quyết hồ sơ".encode() * 50
    stored = s3store.put_bytes(data)
    assert stored.digest == hashlib.sha256(data).hexdigest()
    assert s3store.exists(stored.digest) and s3store.size(stored.digest) == len(data)
    assert s3store.get_bytes(stored.digest) == data
    locator = s3store.locate(stored.digest)
    assert locator == (
        f"s3://lienthong-docs/ben-tre/sha256/{stored.digest[:2]}/{stored.digest[2:]}"
    )
    assert parse_reference(locator) == stored.digest
    assert s3store.put_bytes(data) == stored  # idempotent
    assert "testing-secret" not in repr(s3store.config)


def test_corrupted_object_is_detected(s3store: S3Store) -> None:
    stored = s3store.put_bytes(b"original bytes")
    # Someone overwrites the object behind the store's back.
    s3store._s3.put_object(
        Bucket=s3store.bucket, Key=s3store.key_of(stored.digest), Body=b"tampered bytes"
    )
    with pytest.raises(DocumentCorrupted) as info:
        s3store.get_bytes(stored.digest)
    assert info.value.expected == stored.digest
    assert info.value.actual == hashlib.sha256(b"tampered bytes").hexdigest()


def test_missing(s3store: S3Store) -> None:
    digest = hashlib.sha256(b"never stored").hexdigest()
    assert not s3store.exists(digest)
    with pytest.raises(DocumentNotFound):
        s3store.get_bytes(digest)


def test_large_multipart_streaming(s3store: S3Store, tmp_path: Path) -> None:
    source = tmp_path / "scan.pdf"
    block = hashlib.sha256(b"scan").digest() * (MB // 32)
    with source.open("wb") as out:
        for _ in range(20):
            out.write(block)
    stored = s3store.put_file(source)
    assert stored.size == 20 * MB
    copy = s3store.get_to_file(stored.digest, tmp_path / "copy.pdf")
    assert copy == stored
    assert hashlib.sha256((tmp_path / "copy.pdf").read_bytes()).hexdigest() == stored.digest


def test_open_store_from_env(
    endpoint: str, s3store: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIENTHONG_S3_ENDPOINT", endpoint)
    monkeypatch.setenv("LIENTHONG_S3_REGION", "ap-southeast-1")
    monkeypatch.setenv("LIENTHONG_S3_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("LIENTHONG_S3_SECRET_ACCESS_KEY", "testing-secret")
    stored = s3store.put_bytes(b"via env")
    store = open_store("s3://lienthong-docs/ben-tre")
    assert store.get_bytes(stored.digest) == b"via env"
