"""Real keys, real files: a development PKI per session (and fresh ones where a test mutates it)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from lienthong.documents.pki import DevPKI, init_dev_pki
from lienthong.documents.store import FilesystemStore
from tests.unit.documents.helpers import AGENCIES, openssl_verify


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPKI:
    return init_dev_pki(tmp_path_factory.mktemp("pki") / "pki", "Bến Tre", AGENCIES)


@pytest.fixture(scope="session")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPKI:
    """An independent root: certificates from here are untrusted by ``pki``'s anchors."""
    return init_dev_pki(
        tmp_path_factory.mktemp("other") / "pki", "Bến Tre", AGENCIES, root_name="Some Other Root"
    )


@pytest.fixture
def fresh_pki(tmp_path: Path) -> DevPKI:
    """A PKI a test may revoke in or add certificates to."""
    return init_dev_pki(tmp_path / "fresh-pki", "Lào Cai", AGENCIES)


@pytest.fixture
def store(tmp_path: Path) -> FilesystemStore:
    return FilesystemStore(tmp_path / "run" / "documents")


@pytest.fixture
def doc_file(tmp_path: Path) -> Path:
    path = tmp_path / "giay-chung-nhan.pdf"
    path.write_bytes(b"%PDF-1.7\n" + uuid.uuid4().bytes * 4096 + b"\n%%EOF\n")
    return path


@pytest.fixture
def assert_openssl_ok(tmp_path: Path, pki: DevPKI) -> Callable[..., None]:
    """openssl cms -verify (with and without full CRL checking) must accept the signature."""

    def check(content: Path | bytes, signature: bytes, the_pki: DevPKI | None = None) -> None:
        p = the_pki or pki
        if isinstance(content, bytes):
            path = tmp_path / f"content-{uuid.uuid4().hex}"
            path.write_bytes(content)
            content = path
        plain = openssl_verify(content, signature, p.dir / "trust" / "roots.pem", tmp_path)
        assert plain.returncode == 0, plain.stderr
        assert "Verification successful" in plain.stderr
        full = openssl_verify(
            content, signature, p.dir / "trust" / "openssl-ca.pem", tmp_path, "-crl_check_all"
        )
        assert full.returncode == 0, full.stderr

    return check
