"""Evidence bundle: a third party checks it with openssl alone (the README's commands)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

import pytest

from lienthong.cli import audit as audit_cli
from lienthong.documents.bundle import export_bundle, readme_steps, verify_bundle
from lienthong.documents.pki import DevPKI
from lienthong.documents.store import FilesystemStore
from tests.unit.documents.records import DOSSIER, dossier_records


@pytest.fixture
def bundle(pki: DevPKI, store: FilesystemStore, tmp_path: Path) -> Path:
    records = dossier_records(pki, store, tmp_path)
    other = {"type": "dossier.received", "dossier_id": "someone-else", "event_id": "x"}
    return export_bundle(
        DOSSIER,
        [other, *records],
        store,
        pki.trust(),
        tmp_path / "bundle",
        bus=pki.bus_signer(),
        checkpoint_every=3,
    )


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", command],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ["PATH"]},
    )


def test_readme_commands_verify_with_openssl_alone(bundle: Path) -> None:
    steps = readme_steps((bundle / "README.txt").read_text(encoding="utf-8"))
    kinds = " ".join(s.command for s in steps)
    assert kinds.count("openssl cms -verify") == 2 + 2 + 2  # documents, receipts, checkpoints
    assert kinds.count("openssl dgst") >= 6 + 4
    for step in steps:
        done = _run(step.command, bundle)
        assert done.returncode == 0, (step, done.stderr)
        if step.expect is not None:
            assert done.stdout.strip() == step.expect, step


def test_verify_script_and_layout(bundle: Path) -> None:
    done = _run("sh verify.sh", bundle)
    assert done.returncode == 0, done.stdout
    assert "FAIL" not in done.stdout
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["dossier_id"] == DOSSIER and manifest["records"] == 6
    assert len(list((bundle / "documents").iterdir())) == 2
    assert len(list((bundle / "signatures").glob("*.p7s"))) == 2
    assert len(list((bundle / "receipts").glob("*.json"))) == 2
    assert sorted(p.name for p in (bundle / "checkpoints").iterdir()) == [
        "000002.json",
        "000002.p7s",
        "000005.json",
        "000005.p7s",
    ]
    assert (bundle / "chain.txt").read_text().count("\n") == 6


def test_library_verification_of_bundle(bundle: Path, pki: DevPKI) -> None:
    report = verify_bundle(bundle)
    assert report.ok, report.failures
    pinned = verify_bundle(bundle, trust=pki.trust())
    assert pinned.ok


def test_tampered_document_in_bundle_fails_both_ways(bundle: Path) -> None:
    doc = next((bundle / "documents").iterdir())
    data = bytearray(doc.read_bytes())
    data[100] ^= 0xFF
    doc.write_bytes(bytes(data))
    assert _run("sh verify.sh", bundle).returncode != 0
    report = verify_bundle(bundle)
    assert not report.ok
    failed = {name for name, _ok, _d in report.failures}
    assert "manifest" in failed and any(n.startswith("document") for n in failed)
    detail = " ".join(d for _n, _ok, d in report.failures)
    assert "hash_mismatch" in detail


def test_edited_event_in_bundle_is_found(bundle: Path) -> None:
    event = bundle / "events" / "000003.json"
    event.write_bytes(event.read_bytes().replace(b'"agency":"', b'"agency":"X'))
    assert _run("sh verify.sh", bundle).returncode != 0
    report = verify_bundle(bundle)
    chain = [c for c in report.checks if c[0] == "chain"][0]
    assert not chain[1] and "index 3" in chain[2] and "link_mismatch" in chain[2]


def test_bundle_under_foreign_root_is_rejected_when_pinned(bundle: Path, other_pki: DevPKI) -> None:
    report = verify_bundle(bundle, trust=other_pki.trust())
    assert not report.ok
    assert "untrusted_chain" in " ".join(d for _n, _ok, d in report.failures)


def test_zip_bundle_and_cli(
    pki: DevPKI, store: FilesystemStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = dossier_records(pki, store, tmp_path)
    path = export_bundle(
        DOSSIER,
        records,
        store,
        pki.trust(),
        tmp_path / "evidence.zip",
        bus=pki.bus_signer(),
        as_zip=True,
    )
    assert path.suffix == ".zip" and path.is_file()
    parser = argparse.ArgumentParser()
    audit_cli.register(parser.add_subparsers())
    args = parser.parse_args(["audit", "verify-bundle", str(path)])
    assert args.func(args) == 0
    assert "VALID" in capsys.readouterr().out
    # export from a JSONL record source through the CLI
    jsonl = tmp_path / "records.jsonl"
    jsonl.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8"
    )
    out = tmp_path / "cli-bundle"
    args = parser.parse_args(
        [
            "audit",
            "export",
            DOSSIER,
            "--records",
            str(jsonl),
            "--store",
            str(store.root),
            "--trust",
            str(pki.dir / "trust"),
            "--bus-cert",
            str(pki.dir / "bus" / "cert.pem"),
            "--bus-key",
            str(pki.dir / "bus" / "key.pem"),
            "--bus-chain",
            str(pki.dir / "bus" / "chain.pem"),
            "--out",
            str(out),
        ]
    )
    assert args.func(args) == 0
    args = parser.parse_args(
        ["audit", "verify-bundle", str(out), "--trust-roots", str(pki.dir / "trust" / "roots.pem")]
    )
    assert args.func(args) == 0
