"""Filesystem document store: atomic content-addressed writes, verified streaming reads."""

from __future__ import annotations

import hashlib
import os
import stat
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from lienthong.documents.store import (
    DocumentCorrupted,
    DocumentNotFound,
    FilesystemStore,
    InvalidReference,
    make_reference,
    object_key,
    open_store,
    parse_reference,
)

MB = 1024 * 1024


def corrupt(path: Path, offset: int = 10) -> None:
    os.chmod(path, 0o644)
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))


def test_put_get_roundtrip_layout_and_reference(store: FilesystemStore) -> None:
    data = "Giấy chứng nhận quyền sử dụng đất".encode() * 100
    stored = store.put_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    assert stored.digest == digest and stored.size == len(data)
    assert stored.ref == f"sha256:{digest}"
    path = store.root / "sha256" / digest[:2] / digest[2:]
    assert path.is_file() and store.path_of(digest) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert store.get_bytes(digest) == data
    assert store.exists(digest) and store.size(digest) == len(data)
    assert not list((store.root / "tmp").iterdir())  # no temp files left behind
    # Same content again: deduplicated, same key.
    assert store.put_chunks([data[:10], data[10:]]) == stored


def test_reference_forms() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    assert parse_reference(f"sha256:{digest}") == digest
    assert parse_reference(digest.upper()) == digest
    assert parse_reference(f"file:///var/lt/documents/{object_key(digest)}") == digest
    assert parse_reference(f"s3://bucket/prefix/{object_key(digest)}") == digest
    assert make_reference(digest) == f"sha256:{digest}"
    for bad in ("sha256:abc", "md5:" + digest, "file:///tmp/x", ""):
        with pytest.raises(InvalidReference):
            parse_reference(bad)


def test_locate_and_open_store(store: FilesystemStore, tmp_path: Path) -> None:
    stored = store.put_bytes(b"abc")
    assert store.locate(stored.digest) == store.path_of(stored.digest).as_uri()
    assert parse_reference(store.locate(stored.digest)) == stored.digest
    again = open_store(f"file://{store.root}")
    assert again.get_bytes(stored.digest) == b"abc"


def test_corrupted_object_raises_typed_error_with_both_digests(store: FilesystemStore) -> None:
    stored = store.put_bytes(b"A" * 5000)
    corrupt(store.path_of(stored.digest))
    with pytest.raises(DocumentCorrupted) as info:
        store.get_bytes(stored.digest)
    assert info.value.expected == stored.digest
    assert info.value.actual == hashlib.sha256(b"A" * 10 + b"@" + b"A" * 4989).hexdigest()
    assert stored.digest in str(info.value) and info.value.actual in str(info.value)


def test_get_to_file_leaves_nothing_when_corrupted(store: FilesystemStore, tmp_path: Path) -> None:
    stored = store.put_bytes(b"B" * 5000)
    corrupt(store.path_of(stored.digest))
    target = tmp_path / "out.bin"
    with pytest.raises(DocumentCorrupted):
        store.get_to_file(stored.digest, target)
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".partial-")]
    # repair puts the good bytes back under the same key
    assert store.repair([b"B" * 5000]) == stored
    assert store.get_bytes(stored.digest) == b"B" * 5000


def test_missing_object(store: FilesystemStore) -> None:
    digest = hashlib.sha256(b"nothing").hexdigest()
    with pytest.raises(DocumentNotFound):
        store.get_bytes(digest)
    with pytest.raises(DocumentNotFound):
        store.size(digest)
    assert not store.exists(digest)


def test_failed_put_leaves_no_object_and_no_temp(store: FilesystemStore) -> None:
    def broken() -> Iterator[bytes]:
        yield b"partial"
        raise OSError("network dropped")

    with pytest.raises(OSError):
        store.put_chunks(broken())
    assert not list((store.root / "tmp").iterdir())
    assert not (store.root / "sha256").exists() or not any((store.root / "sha256").rglob("*"))


def _pattern_chunks(total: int, chunk: int = MB) -> Iterator[bytes]:
    block = hashlib.sha256(b"seed").digest() * (chunk // 32)
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        yield block[:n]
        sent += n


def test_50mb_round_trip_streams_in_constant_memory(store: FilesystemStore, tmp_path: Path) -> None:
    size = 50 * MB
    expected, _ = hashlib.sha256(), None
    for chunk in _pattern_chunks(size):
        expected.update(chunk)

    tracemalloc.start()
    try:
        stored = store.put_chunks(_pattern_chunks(size))
        hasher = hashlib.sha256()
        total = 0
        for chunk in store.iter_chunks(stored.digest):
            hasher.update(chunk)
            total += len(chunk)
        copy = store.get_to_file(stored.digest, tmp_path / "copy.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored.size == size == total == copy.size
    assert stored.digest == expected.hexdigest() == hasher.hexdigest()
    assert (tmp_path / "copy.bin").stat().st_size == size
    assert peak < 8 * MB, f"peak traced memory {peak / MB:.1f} MB: not streaming"
