"""Content-addressed document store (kho tài liệu theo mã băm).

Documents never travel inside Kafka records: an event carries ``sha256:<hex>``, the size,
the signature reference and the signer, and the bytes live here. Addressing by SHA-256 means
the key *is* the integrity check, so every read re-hashes what it returns and a corrupted
object can never be mistaken for the document an event talks about.

Reference URIs (see docs/documents.md):

* ``sha256:<64 lowercase hex>`` — the canonical, location-independent reference that events
  carry. Two stores holding the same bytes agree on it.
* ``file:///<root>/sha256/ab/<62 hex>`` and ``s3://<bucket>/<prefix>sha256/ab/<62 hex>`` —
  locators returned by :meth:`DocumentStore.locate`, for operators; they end in the digest, so
  :func:`parse_reference` turns them back into the canonical form.

Everything is streamed in chunks: a 50 MB scanned dossier must not need 50 MB of RAM.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from lienthong.logs import get_logger

CHUNK_SIZE = 1024 * 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_LOCATOR_TAIL = re.compile(r"sha256/([0-9a-f]{2})/([0-9a-f]{62})$")

log = get_logger("lienthong.documents.store")


class StoreError(Exception):
    """Base class of document-store failures."""


class DocumentNotFound(StoreError):
    """No object is stored under the digest."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"no document stored under sha256:{digest}")
        self.digest = digest


class DocumentCorrupted(StoreError):
    """The stored bytes do not hash to the key they are stored under."""

    def __init__(self, expected: str, actual: str, location: str = "") -> None:
        where = f" at {location}" if location else ""
        super().__init__(
            f"stored document{where} is corrupted: expected sha256:{expected}, "
            f"actual sha256:{actual}"
        )
        self.expected = expected
        self.actual = actual
        self.location = location


class InvalidReference(StoreError, ValueError):
    """A string is not a document reference this project understands."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What a put returns: the digest (hex) and byte size of what was stored."""

    digest: str
    size: int

    @property
    def ref(self) -> str:
        return make_reference(self.digest)


def make_reference(digest: str) -> str:
    """The canonical ``sha256:<hex>`` reference for a hex digest."""
    return f"sha256:{normalize_digest(digest)}"


def normalize_digest(digest: str) -> str:
    value = digest.strip().lower()
    if not _HEX64.match(value):
        raise InvalidReference(f"not a SHA-256 hex digest: {digest!r}")
    return value


def parse_reference(ref: str) -> str:
    """Digest (hex) named by ``sha256:<hex>``, a bare hex digest, or a file:// / s3:// locator.

    Locators are accepted so an operator can paste what ``locate`` printed; the digest is
    taken from the path tail, which is what the store would re-verify anyway.
    """
    text = ref.strip()
    if text.startswith("sha256:"):
        return normalize_digest(text[len("sha256:") :])
    if text.startswith(("file://", "s3://")):
        match = _LOCATOR_TAIL.search(text)
        if not match:
            raise InvalidReference(f"locator does not end in sha256/ab/<62 hex>: {ref!r}")
        return match.group(1) + match.group(2)
    if _HEX64.match(text.lower()):
        return text.lower()
    raise InvalidReference(f"not a document reference: {ref!r}")


def object_key(digest: str) -> str:
    """Relative path/key of a digest: ``sha256/ab/<remaining 62 hex>`` (git-style fan-out)."""
    value = normalize_digest(digest)
    return f"sha256/{value[:2]}/{value[2:]}"


def iter_file(path: str | os.PathLike[str], chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            yield chunk


def iter_stream(stream: BinaryIO, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    while chunk := stream.read(chunk_size):
        yield chunk


def hash_chunks(chunks: Iterable[bytes]) -> tuple[str, int]:
    """SHA-256 (hex) and size of a chunk stream, in constant memory."""
    hasher = hashlib.sha256()
    size = 0
    for chunk in chunks:
        hasher.update(chunk)
        size += len(chunk)
    return hasher.hexdigest(), size


def verified_chunks(chunks: Iterable[bytes], expected: str, location: str = "") -> Iterator[bytes]:
    """Pass chunks through while hashing; raise :class:`DocumentCorrupted` after the last one.

    A streaming reader cannot know the bytes are good before it has seen them all, so callers
    must consume to the end and treat the exception as "discard everything you got".
    """
    hasher = hashlib.sha256()
    for chunk in chunks:
        hasher.update(chunk)
        yield chunk
    actual = hasher.hexdigest()
    if actual != expected:
        log.warning("document_corrupted", expected=expected, actual=actual, location=location)
        raise DocumentCorrupted(expected, actual, location)


@runtime_checkable
class DocumentStore(Protocol):
    """The one interface the bus, the SDK and the audit code use; see the module docstring."""

    def put_chunks(self, chunks: Iterable[bytes]) -> StoredObject:
        """Store a stream of bytes under its SHA-256; atomic, idempotent."""
        ...

    def put_file(self, path: str | os.PathLike[str]) -> StoredObject: ...

    def put_bytes(self, data: bytes) -> StoredObject: ...

    def exists(self, digest: str) -> bool: ...

    def size(self, digest: str) -> int: ...

    def iter_chunks(self, digest: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Stream the object, verifying its hash (raises DocumentCorrupted at the end)."""
        ...

    def get_bytes(self, digest: str) -> bytes:
        """Whole object in memory, verified; for small objects (signatures, receipts)."""
        ...

    def get_to_file(self, digest: str, path: str | os.PathLike[str]) -> StoredObject:
        """Copy the object to ``path``; the file appears only once the hash has verified."""
        ...

    def locate(self, digest: str) -> str:
        """file:// or s3:// locator, for humans."""
        ...


class _StoreBase:
    """Shared conveniences built on ``put_chunks`` / ``iter_chunks``."""

    def put_chunks(self, chunks: Iterable[bytes]) -> StoredObject:  # pragma: no cover
        raise NotImplementedError

    def iter_chunks(
        self, digest: str, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[bytes]:  # pragma: no cover
        raise NotImplementedError

    def put_file(self, path: str | os.PathLike[str]) -> StoredObject:
        return self.put_chunks(iter_file(path))

    def put_bytes(self, data: bytes) -> StoredObject:
        return self.put_chunks([bytes(data)])

    def get_bytes(self, digest: str) -> bytes:
        return b"".join(self.iter_chunks(digest))

    def get_to_file(self, digest: str, path: str | os.PathLike[str]) -> StoredObject:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".partial-", dir=target.parent)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in self.iter_chunks(digest):
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return StoredObject(normalize_digest(digest), size)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemStore(_StoreBase):
    """Embedded default: ``<root>/sha256/ab/<62 hex>``, temp files in ``<root>/tmp``.

    The temp directory is inside the root so the final ``rename`` is on one filesystem and
    therefore atomic: a reader sees either no object or the whole object, never a prefix.
    Objects are made read-only (0444) because a content-addressed object never changes.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self._tmp = self.root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path_of(self, digest: str) -> Path:
        return self.root / object_key(digest)

    def put_chunks(self, chunks: Iterable[bytes]) -> StoredObject:
        return self._write(chunks, overwrite=False)

    def repair(self, chunks: Iterable[bytes]) -> StoredObject:
        """Replace an object (e.g. a corrupted one) with bytes that hash to its key."""
        return self._write(chunks, overwrite=True)

    def _write(self, chunks: Iterable[bytes], *, overwrite: bool) -> StoredObject:
        hasher = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(prefix="put-", dir=self._tmp)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = hasher.hexdigest()
            target = self.path_of(digest)
            if not overwrite and target.exists() and target.stat().st_size == size:
                # Same content already stored (dedup). A same-size corrupted object is still
                # caught by the hash check on every read, and can be fixed with `repair`.
                Path(tmp_name).unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp_name, 0o444)
                os.replace(tmp_name, target)
                _fsync_dir(target.parent)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        log.debug("document_stored", digest=digest, size=size, store="filesystem")
        return StoredObject(digest, size)

    def exists(self, digest: str) -> bool:
        return self.path_of(digest).is_file()

    def size(self, digest: str) -> int:
        path = self.path_of(digest)
        try:
            return path.stat().st_size
        except FileNotFoundError:
            raise DocumentNotFound(normalize_digest(digest)) from None

    def iter_chunks(self, digest: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        expected = normalize_digest(digest)
        path = self.path_of(expected)
        if not path.is_file():
            raise DocumentNotFound(expected)
        return verified_chunks(iter_file(path, chunk_size), expected, path.as_uri())

    def locate(self, digest: str) -> str:
        return self.path_of(digest).as_uri()


def open_store(uri: str) -> DocumentStore:
    """A store from a configuration string: a directory path, ``file://DIR`` or ``s3://BUCKET[/PREFIX]``.

    S3 endpoint, region and credentials come from the ``LIENTHONG_S3_*`` / standard AWS
    environment variables (see :mod:`lienthong.documents.s3`).
    """
    if uri.startswith("s3://"):
        from lienthong.documents.s3 import S3Store

        bucket, _, prefix = uri[len("s3://") :].partition("/")
        return S3Store.from_env(bucket=bucket, prefix=prefix)
    if uri.startswith("file://"):
        return FilesystemStore(uri[len("file://") :])
    return FilesystemStore(uri)
