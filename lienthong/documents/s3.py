"""S3-compatible document store for production (MinIO, Ceph RGW, AWS S3, a provincial cloud).

Same layout as the filesystem store, under an optional key prefix:
``s3://<bucket>/<prefix>sha256/ab/<62 hex>``. S3 has no rename, so atomicity comes from
hashing *first* and then putting the object under its final key in one (multipart) upload:
S3 makes an object visible only when its upload completes, so a reader never sees a prefix.
Input that is not already a file is spooled to a local temp file while it is hashed.

``boto3`` is an optional dependency (``pip install lienthong[s3]``); it is imported only when an
:class:`S3Store` is created, so the rest of the package works without it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from lienthong.documents.store import (
    CHUNK_SIZE,
    DocumentNotFound,
    StoredObject,
    StoreError,
    _StoreBase,
    hash_chunks,
    iter_file,
    normalize_digest,
    object_key,
    verified_chunks,
)
from lienthong.logs import get_logger

log = get_logger("lienthong.documents.s3")


def _boto3() -> Any:
    try:
        import boto3
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise StoreError("the S3 document store needs boto3: pip install 'lienthong[s3]'") from exc
    return boto3


@dataclass(frozen=True, slots=True)
class S3Config:
    """Where the bucket is. Credentials may be None to use boto3's default chain (IAM role…)."""

    bucket: str
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    prefix: str = ""

    def __repr__(self) -> str:  # never print the secret
        return (
            f"S3Config(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r}, "
            f"region={self.region!r}, prefix={self.prefix!r})"
        )


class S3Store(_StoreBase):
    """Content-addressed store in an S3 bucket; see the module docstring."""

    def __init__(self, config: S3Config, client: Any | None = None) -> None:
        self.config = config
        self.bucket = config.bucket
        prefix = config.prefix.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        if client is None:
            boto3 = _boto3()
            client = boto3.client(
                "s3",
                endpoint_url=config.endpoint_url,
                region_name=config.region,
                aws_access_key_id=config.access_key_id,
                aws_secret_access_key=config.secret_access_key,
            )
        self._s3 = client

    @classmethod
    def from_env(
        cls, bucket: str, prefix: str = "", environ: dict[str, str] | None = None
    ) -> S3Store:
        """Config from ``LIENTHONG_S3_ENDPOINT`` / ``_REGION`` / ``_ACCESS_KEY_ID`` /
        ``_SECRET_ACCESS_KEY``, falling back to boto3's own AWS_* handling when unset."""
        env = os.environ if environ is None else environ
        return cls(
            S3Config(
                bucket=bucket,
                prefix=prefix,
                endpoint_url=env.get("LIENTHONG_S3_ENDPOINT") or None,
                region=env.get("LIENTHONG_S3_REGION") or None,
                access_key_id=env.get("LIENTHONG_S3_ACCESS_KEY_ID") or None,
                secret_access_key=env.get("LIENTHONG_S3_SECRET_ACCESS_KEY") or None,
            )
        )

    def key_of(self, digest: str) -> str:
        return self.prefix + object_key(digest)

    def put_file(self, path: str | os.PathLike[str]) -> StoredObject:
        digest, size = hash_chunks(iter_file(path))
        key = self.key_of(digest)
        if self._head(key) == size:
            return StoredObject(digest, size)
        with open(path, "rb") as handle:
            # upload_fileobj streams in parts (multipart above 8 MB): constant memory.
            self._s3.upload_fileobj(
                handle,
                self.bucket,
                key,
                ExtraArgs={
                    "Metadata": {"sha256": digest},
                    "ContentType": "application/octet-stream",
                },
            )
        actual = self._head(key)
        if actual != size:
            raise StoreError(f"s3 upload of sha256:{digest} stored {actual} bytes, expected {size}")
        log.debug("document_stored", digest=digest, size=size, store="s3", bucket=self.bucket)
        return StoredObject(digest, size)

    def put_chunks(self, chunks: Iterable[bytes]) -> StoredObject:
        # The key is the hash, and the hash is known only at the end: spool locally first.
        fd, tmp_name = tempfile.mkstemp(prefix="lienthong-s3-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
            return self.put_file(tmp_name)
        finally:
            os.unlink(tmp_name)

    def _head(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            response = self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        return int(response["ContentLength"])

    def exists(self, digest: str) -> bool:
        return self._head(self.key_of(digest)) is not None

    def size(self, digest: str) -> int:
        size = self._head(self.key_of(digest))
        if size is None:
            raise DocumentNotFound(normalize_digest(digest))
        return size

    def iter_chunks(self, digest: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        from botocore.exceptions import ClientError

        expected = normalize_digest(digest)
        key = self.key_of(expected)
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                raise DocumentNotFound(expected) from None
            raise
        body = response["Body"]
        return verified_chunks(
            _close_after(body.iter_chunks(chunk_size), body), expected, self.locate(expected)
        )

    def locate(self, digest: str) -> str:
        return f"s3://{self.bucket}/{self.key_of(digest)}"

    def ensure_bucket(self) -> None:
        """Create the bucket if missing (development and tests; production buckets pre-exist)."""
        from botocore.exceptions import ClientError

        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except ClientError:
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if self.config.region and self.config.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.config.region}
            self._s3.create_bucket(**kwargs)


def _close_after(chunks: Iterator[bytes], body: Any) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        body.close()
