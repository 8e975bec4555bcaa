"""Development PKI: layout, permissions, agency code placement, CLI, production loading."""

from __future__ import annotations

import argparse
import json
import stat
from pathlib import Path

import pytest
from cryptography.x509.oid import NameOID

from lienthong.cli import pki as pki_cli
from lienthong.cli.main import UsageError
from lienthong.documents.pki import (
    BUS_CN,
    DevPKI,
    PKIError,
    TrustAnchors,
    agency_code_of,
    load_signer,
    slugify,
)
from tests.unit.documents.helpers import AGENCY_A


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    pki_cli.register(parser.add_subparsers())
    return parser


def test_layout_permissions_and_subjects(pki: DevPKI) -> None:
    for key in [
        pki.dir / "root" / "ca.key",
        pki.dir / "intermediate" / "ben-tre.key",
        pki.agency_dir(AGENCY_A) / "key.pem",
        pki.dir / "bus" / "key.pem",
    ]:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    signer = pki.signer(AGENCY_A)
    assert agency_code_of(signer.certificate) == AGENCY_A
    org = signer.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    assert org == "Sở Tài nguyên và Môi trường"
    assert agency_code_of(pki.bus_signer().certificate) == BUS_CN
    trust = pki.trust()
    assert len(trust.roots) == 1 and len(trust.intermediates) == 1 and len(trust.crls) == 2
    manifest = (pki.dir / "pki.json").read_text()
    assert "PRIVATE" not in manifest
    assert "PRIVATE" not in repr(signer) and "private_key" not in repr(signer)


def test_slug() -> None:
    assert slugify("Bến Tre") == "ben-tre"
    assert slugify("Đắk Lắk") == "dak-lak"


def test_cli_init_with_agencies_file_issue_and_revoke(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agencies = tmp_path / "agencies.json"
    agencies.write_text(
        json.dumps([{"code": "000.00.12.H22", "name": "Sở TNMT Lào Cai"}]), encoding="utf-8"
    )
    out = tmp_path / "pki"
    parser = _parser()
    args = parser.parse_args(
        [
            "pki",
            "init",
            "--out",
            str(out),
            "--province",
            "Lào Cai",
            "--agencies-file",
            str(agencies),
        ]
    )
    assert args.func(args) == 0
    assert "000.00.12.H22" in capsys.readouterr().out
    args = parser.parse_args(
        ["pki", "issue", "--pki", str(out), "--agency", "000.00.13.H22", "--expired"]
    )
    assert args.func(args) == 0
    cert = load_signer(
        out / "agencies/000.00.13.H22/cert.pem", out / "agencies/000.00.13.H22/key.pem"
    ).certificate
    assert cert.not_valid_after_utc < cert.not_valid_before_utc.replace(year=3000)
    args = parser.parse_args(["pki", "revoke", "--pki", str(out), "--agency", "000.00.12.H22"])
    assert args.func(args) == 0
    crl = [c for c in DevPKI(out).trust().crls if c.issuer == DevPKI(out).intermediate().subject][0]
    serial = load_signer(
        out / "agencies/000.00.12.H22/cert.pem", out / "agencies/000.00.12.H22/key.pem"
    ).certificate.serial_number
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    # refusing to overwrite, and bad codes, are one-line usage errors
    with pytest.raises(UsageError):
        args = parser.parse_args(["pki", "init", "--out", str(out), "--province", "X"])
        args.func(args)
    with pytest.raises(UsageError):
        args = parser.parse_args(["pki", "issue", "--pki", str(out), "--agency", "12.H22"])
        args.func(args)


def test_production_loading_from_files(pki: DevPKI) -> None:
    trust = TrustAnchors.from_files(
        [pki.dir / "trust/roots.pem"],
        [pki.dir / "trust/intermediates.pem"],
        [pki.dir / "crl/ben-tre.crl"],
    )  # DER CRL
    assert len(trust.crls) == 1
    with pytest.raises(PKIError):
        load_signer(pki.agency_dir(AGENCY_A) / "cert.pem", pki.dir / "bus" / "key.pem")
    with pytest.raises(PKIError):
        TrustAnchors.from_dir(pki.dir)
