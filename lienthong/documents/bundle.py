"""Evidence bundle (hồ sơ chứng cứ) per dossier: everything a third party needs, checkable with
openssl alone — like X-Road's signed evidence container, but as plain files.

Layout (docs/documents.md, "Bundle layout")::

    README.txt                   what this is + every openssl command, with expected output
    verify.sh                    the same commands as a POSIX sh script (exit 0 = all good)
    manifest.json                dossier, creation time, SHA-256 of every other file
    events/NNNNNN.json           chain records, canonical JSON bytes, in acceptance order
    chain.txt                    "NNNNNN <link hex> events/NNNNNN.json" per record
    checkpoints/NNNNNN.json      bus checkpoints (canonical JSON) + NNNNNN.p7s (DER CMS)
    documents/<sha256 hex>       document bytes
    signatures/<sha256 hex>.p7s  detached signature of the document with that hash
    receipts/<sha256 hex>.json   receipt bytes + receipts/<sha256 hex>.p7s
    certs/root-N.pem, roots.pem, intermediates.pem, crls.pem, openssl-ca.pem (roots + CRLs)

The record source is a parameter (any iterable of record mappings): today a list or a JSONL
file, later the Kafka topics.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shlex
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization

from lienthong.documents.chain import (
    GENESIS,
    SignedCheckpoint,
    build_chain,
    make_checkpoints,
    verify_chain,
)
from lienthong.documents.pki import Signer, TrustAnchors
from lienthong.documents.receipts import (
    DOCUMENT_PUBLISHED,
    DOCUMENT_RECEIVED,
    parse_time,
    verify_receipt,
)
from lienthong.documents.store import (
    CHUNK_SIZE,
    DocumentCorrupted,
    DocumentNotFound,
    DocumentStore,
    _StoreBase,
    iter_file,
    normalize_digest,
    verified_chunks,
)
from lienthong.documents.verify import DocumentClaim, verify_document
from lienthong.logs import get_logger

log = get_logger("lienthong.documents.bundle")

BUNDLE_FORMAT = "lienthong-evidence-bundle/1"


@dataclass(frozen=True, slots=True)
class Step:
    """One third-party check: a shell command run in the bundle directory and its output."""

    title: str
    command: str
    expect: str | None = None  # exact stdout (stripped); None = exit status 0 is enough


def _pem(items: Sequence[Any]) -> bytes:
    return b"".join(i.public_bytes(serialization.Encoding.PEM) for i in items)


def _cms_verify(sig: str, content: str) -> str:
    return (
        f"openssl cms -verify -binary -inform DER -in {sig} -content {content} "
        "-CAfile certs/openssl-ca.pem -crl_check_all -purpose any -out /dev/null"
    )


def export_bundle(
    dossier_id: str,
    records: Iterable[Mapping[str, Any]],
    store: DocumentStore,
    trust: TrustAnchors,
    out: str | os.PathLike[str],
    *,
    bus: Signer | None = None,
    checkpoints: Sequence[SignedCheckpoint] | None = None,
    checkpoint_every: int = 100,
    as_zip: bool = False,
    now: dt.datetime | None = None,
) -> Path:
    """Write the evidence bundle of one dossier; returns the directory (or .zip) written.

    Give either the checkpoints the bus already signed, or the bus signer to sign them now
    (every ``checkpoint_every`` records and at the head).
    """
    created = now or dt.datetime.now(dt.UTC)
    rows = [dict(r) for r in records if r.get("dossier_id") == dossier_id]
    if not rows:
        raise ValueError(f"no records for dossier {dossier_id!r}")
    entries = build_chain(rows)
    if checkpoints is None:
        if bus is None:
            raise ValueError("give the bus signer or the existing signed checkpoints")
        checkpoints = make_checkpoints(
            dossier_id, entries, bus, every=checkpoint_every, now=created
        )

    target = Path(out)
    workdir = Path(tempfile.mkdtemp(prefix="bundle-")) if as_zip else target
    if not as_zip:
        if target.exists() and any(target.iterdir()):
            raise ValueError(f"{target} exists and is not empty")
    root = workdir
    for sub in ("events", "checkpoints", "documents", "signatures", "receipts", "certs"):
        (root / sub).mkdir(parents=True, exist_ok=True)

    steps: list[Step] = []
    # --- trust material
    for n, cert in enumerate(trust.roots):
        (root / "certs" / f"root-{n}.pem").write_bytes(_pem([cert]))
        colon = ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))
        steps.append(
            Step(
                f"Trusted root {n}: compare this fingerprint with the one the CA publishes",
                f"openssl x509 -in certs/root-{n}.pem -noout -fingerprint -sha256",
                f"sha256 Fingerprint={colon}",
            )
        )
    (root / "certs" / "roots.pem").write_bytes(_pem(trust.roots))
    (root / "certs" / "intermediates.pem").write_bytes(_pem(trust.intermediates))
    (root / "certs" / "crls.pem").write_bytes(_pem(trust.crls))
    (root / "certs" / "openssl-ca.pem").write_bytes(_pem(trust.roots) + _pem(trust.crls))

    # --- documents, signatures, receipts
    for row in rows:
        kind = row.get("type")
        if kind == DOCUMENT_PUBLISHED:
            doc = row["document"]
            digest = normalize_digest(doc["sha256"])
            sig = normalize_digest(doc["signature_sha256"])
            doc_path = f"documents/{digest}"
            sig_path = f"signatures/{digest}.p7s"
            if not (root / doc_path).exists():
                store.get_to_file(digest, root / doc_path)
                store.get_to_file(sig, root / sig_path)
                steps.append(
                    Step(
                        f"Document {digest[:12]}… (event {row.get('event_id')}) "
                        "has the SHA-256 its event states",
                        f"openssl dgst -sha256 -r {doc_path}",
                        f"{digest} *{doc_path}",
                    )
                )
                steps.append(
                    Step(
                        f"Signature of {digest[:12]}… by {doc.get('signer_agency')} "
                        "verifies to the trusted root, certificates not revoked",
                        _cms_verify(sig_path, doc_path),
                    )
                )
        elif kind == DOCUMENT_RECEIVED:
            rec = row["receipt"]
            digest = normalize_digest(rec["sha256"])
            rpath = f"receipts/{digest}.json"
            spath = f"receipts/{digest}.p7s"
            store.get_to_file(digest, root / rpath)
            store.get_to_file(normalize_digest(rec["signature_sha256"]), root / spath)
            doc_digest = normalize_digest(rec["document_sha256"])
            steps.append(
                Step(
                    f"Receipt {digest[:12]}… from {row.get('agency')} is intact",
                    f"openssl dgst -sha256 -r {rpath}",
                    f"{digest} *{rpath}",
                )
            )
            steps.append(
                Step(
                    f"Receipt {digest[:12]}… is signed by {row.get('agency')}",
                    _cms_verify(spath, rpath),
                )
            )
            steps.append(
                Step(
                    f"Receipt {digest[:12]}… acknowledges document {doc_digest[:12]}…",
                    f'grep -o \'"document_sha256":"[0-9a-f]*"\' {rpath}',
                    f'"document_sha256":"{doc_digest}"',
                )
            )

    # --- chain
    chain_lines = []
    previous = GENESIS
    for entry in entries:
        name = f"events/{entry.index:06d}.json"
        (root / name).write_bytes(entry.record)
        chain_lines.append(f"{entry.index:06d} {entry.link} {name}")
        steps.append(
            Step(
                f"Chain link {entry.index}: SHA-256(previous link text || {name})",
                f"{{ printf '%s' {previous}; cat {name}; }} | openssl dgst -sha256 -r",
                f"{entry.link} *stdin",
            )
        )
        previous = entry.link
    (root / "chain.txt").write_text("\n".join(chain_lines) + "\n", encoding="ascii")

    for cp in checkpoints:
        base = f"checkpoints/{cp.checkpoint.index:06d}"
        (root / f"{base}.json").write_bytes(cp.data)
        (root / f"{base}.p7s").write_bytes(cp.signature)
        steps.append(
            Step(
                f"Checkpoint at record {cp.checkpoint.index} is signed by the bus",
                _cms_verify(f"{base}.p7s", f"{base}.json"),
            )
        )
        steps.append(
            Step(
                f"Checkpoint at record {cp.checkpoint.index} names chain link "
                f"{cp.checkpoint.index} computed above",
                f'grep -o \'"link":"[0-9a-f]*"\' {base}.json',
                f'"link":"{cp.checkpoint.link}"',
            )
        )

    (root / "README.txt").write_text(_readme(dossier_id, created, steps), encoding="utf-8")
    (root / "verify.sh").write_text(_script(steps), encoding="utf-8")
    os.chmod(root / "verify.sh", 0o755)
    _write_manifest(root, dossier_id, created, len(entries), len(checkpoints))
    log.info(
        "evidence_bundle_exported",
        dossier_id=dossier_id,
        records=len(entries),
        checkpoints=len(checkpoints),
        path=str(target),
    )
    if as_zip:
        zip_path = target if target.suffix == ".zip" else target.with_suffix(".zip")
        with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(root).as_posix())
        shutil.rmtree(root)
        return zip_path
    return target


def _sha256_file(path: Path) -> str:
    hasher = hashlib.sha256()
    for chunk in iter_file(path):
        hasher.update(chunk)
    return hasher.hexdigest()


def _write_manifest(
    root: Path, dossier_id: str, created: dt.datetime, records: int, checkpoints: int
) -> None:
    files = {
        p.relative_to(root).as_posix(): _sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }
    manifest = {
        "format": BUNDLE_FORMAT,
        "dossier_id": dossier_id,
        "created_at": created.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "records": records,
        "checkpoints": checkpoints,
        "files": files,
    }
    (root / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


_README_HEAD = """\
lienthong evidence bundle
=========================

Dossier (hồ sơ): {dossier}
Created:         {created}
Format:          {fmt}

This directory proves what the one-stop-shop integration bus accepted for the dossier: every
event in order (events/), the documents and their detached CMS (CAdES-BES) signatures, the
signed receipts of the agencies that took them, the hash chain over the events (chain.txt),
the bus's signed checkpoints over that chain, and the certificates and CRLs needed to check
all of it. You need only openssl (1.1.1 or 3.x) and a POSIX shell; run the commands below from
this directory. `sh verify.sh` runs the same commands and compares the output.

How to read it
--------------
* events/NNNNNN.json are canonical JSON (sorted keys, no spaces, UTF-8): the exact bytes hashed.
  document.published events state the document's sha256, size, signature_sha256 and signer;
  document.received events state the receipt's sha256 and the document_sha256 it acknowledges.
* Chain: link[-1] = 64 zeros; link[i] = SHA-256(link[i-1] as 64 lowercase hex characters,
  immediately followed by the bytes of events/i.json). chain.txt lists every link.
* Checkpoints are JSON statements by the bus ("index i has link L"), signed with the bus
  certificate (CN=lienthong-bus); a checkpoint pins every record up to its index.
* Signatures are checked against certs/openssl-ca.pem (trusted roots + CRLs, -crl_check_all).
  First confirm that the root fingerprint is the one your authority publishes: the bundle
  cannot vouch for its own root. Agency certificates carry the agency code in the subject CN.
* Commands check certificates at the current time. To re-check an old bundle after the
  certificates or CRLs have expired, add "-attime <unix time of the signing>" (the signing time
  is shown by: openssl cms -cmsout -print -inform DER -in FILE.p7s | grep -A1 signingTime)
  and use a CRL valid at that time.
* Every command must exit with status 0; where "expect:" is given its output must be exactly
  that line.

Commands
--------
"""


def _readme(dossier_id: str, created: dt.datetime, steps: Sequence[Step]) -> str:
    lines = [
        _README_HEAD.format(dossier=dossier_id, created=created.isoformat(), fmt=BUNDLE_FORMAT)
    ]
    for number, step in enumerate(steps, 1):
        lines.append(f"[{number}] {step.title}\n")
        lines.append(f"$ {step.command}\n")
        if step.expect is not None:
            lines.append(f"expect: {step.expect}\n")
        lines.append("\n")
    return "".join(lines)


def _script(steps: Sequence[Step]) -> str:
    out = [
        "#!/bin/sh",
        "# Generated with the bundle: runs every README command. Exit 0 = valid.",
        'cd "$(dirname "$0")" || exit 2',
        "failed=0",
    ]
    for number, step in enumerate(steps, 1):
        if step.expect is None:
            out.append(
                f"if {step.command} 2>/dev/null; then echo 'ok   [{number}]'; "
                f"else echo 'FAIL [{number}]'; failed=1; fi"
            )
        else:
            out.append(f"got=$({step.command})")
            out.append(
                f"if [ \"$got\" = {shlex.quote(step.expect)} ]; then echo 'ok   [{number}]'; "
                f"else echo 'FAIL [{number}]'; failed=1; fi"
            )
    out.append('exit "$failed"')
    return "\n".join(out) + "\n"


_STEP = re.compile(r"^\$ (?P<cmd>.+)$")


def readme_steps(readme: str) -> list[Step]:
    """Parse README.txt back into steps (used by tests and auditors' tooling)."""
    steps: list[Step] = []
    title = ""
    for line in readme.splitlines():
        if line.startswith("[") and "] " in line:
            title = line.split("] ", 1)[1]
        elif match := _STEP.match(line):
            steps.append(Step(title, match.group("cmd")))
        elif line.startswith("expect: ") and steps:
            last = steps[-1]
            steps[-1] = Step(last.title, last.command, line[len("expect: ") :])
    return steps


# ----------------------------------------------------------------------------- verification


class _FlatDirectoryStore(_StoreBase):
    """Read-only view of ``documents/`` / ``receipts/`` style directories (files named by hex)."""

    def __init__(self, *paths: Path) -> None:
        self._paths = paths

    def _find(self, digest: str) -> Path:
        value = normalize_digest(digest)
        for base in self._paths:
            for name in (value, f"{value}.json"):
                if (base / name).is_file():
                    return base / name
        raise DocumentNotFound(value)

    def put_chunks(self, chunks: Iterable[bytes]) -> Any:  # pragma: no cover - read-only
        raise NotImplementedError("bundle store is read-only")

    def exists(self, digest: str) -> bool:
        try:
            self._find(digest)
        except DocumentNotFound:
            return False
        return True

    def size(self, digest: str) -> int:
        return self._find(digest).stat().st_size

    def iter_chunks(self, digest: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        path = self._find(digest)
        return verified_chunks(iter_file(path, chunk_size), normalize_digest(digest), str(path))

    def locate(self, digest: str) -> str:
        return self._find(digest).as_uri()


@dataclass(slots=True)
class BundleReport:
    ok: bool = True
    dossier_id: str = ""
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append((name, ok, detail))
        if not ok:
            self.ok = False

    @property
    def failures(self) -> list[tuple[str, bool, str]]:
        return [c for c in self.checks if not c[1]]


def verify_bundle(
    path: str | os.PathLike[str], *, trust: TrustAnchors | None = None, require_crl: bool = True
) -> BundleReport:
    """Check a bundle (directory or .zip) with this library: files, chain, signatures, receipts.

    ``trust`` pins the roots; without it the bundle's own certs/ are used (then compare the
    root fingerprint out of band, as the README says).
    """
    source = Path(path)
    if source.is_file() and zipfile.is_zipfile(source):
        with tempfile.TemporaryDirectory(prefix="bundle-check-") as tmp:
            with zipfile.ZipFile(source) as archive:
                for member in archive.namelist():
                    if member.startswith("/") or ".." in Path(member).parts:
                        report = BundleReport(False)
                        report.add("zip", False, f"unsafe member name {member!r}")
                        return report
                archive.extractall(tmp)
            return _verify_dir(Path(tmp), trust, require_crl)
    return _verify_dir(source, trust, require_crl)


def _verify_dir(root: Path, trust: TrustAnchors | None, require_crl: bool) -> BundleReport:
    report = BundleReport()
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        report.add("manifest", False, f"cannot read manifest.json: {exc}")
        return report
    dossier_id = str(manifest.get("dossier_id", ""))
    report.dossier_id = dossier_id
    listed = manifest.get("files", {})
    present = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    }
    bad = [
        name
        for name, digest in listed.items()
        if name not in present or _sha256_file(root / name) != digest
    ]
    extra = sorted(present - set(listed))
    report.add(
        "manifest",
        not bad and not extra,
        f"changed or missing: {bad}; unlisted: {extra}" if bad or extra else f"{len(listed)} files",
    )

    if trust is None:
        trust = TrustAnchors.from_files(
            [root / "certs" / "roots.pem"],
            [root / "certs" / "intermediates.pem"],
            [root / "certs" / "crls.pem"],
        )
    entries: list[tuple[bytes, str]] = []
    for line in (root / "chain.txt").read_text(encoding="ascii").splitlines():
        _index, link, name = line.split(" ", 2)
        entries.append(((root / name).read_bytes(), link))
    checkpoints = [
        (p.read_bytes(), p.with_suffix(".p7s").read_bytes())
        for p in sorted((root / "checkpoints").glob("*.json"))
    ]
    chain = verify_chain(dossier_id, entries, checkpoints, trust, require_crl=require_crl)
    report.add(
        "chain",
        chain.ok,
        f"{chain.length} records, {chain.checkpoints_verified} checkpoints"
        if chain.ok
        else f"index {chain.broken_index}: {chain.problem}: {chain.detail}",
    )

    documents = _FlatDirectoryStore(root / "documents")
    receipts = _FlatDirectoryStore(root / "receipts")
    for data, _link in entries:
        record = json.loads(data.decode("utf-8"))
        when = _event_time(record)
        if record.get("type") == DOCUMENT_PUBLISHED:
            doc = record["document"]
            claim = DocumentClaim(doc["sha256"], doc.get("size"), str(record.get("agency")), when)
            try:
                signature = (
                    root / "signatures" / f"{normalize_digest(doc['sha256'])}.p7s"
                ).read_bytes()
            except OSError:
                report.add(f"document {doc['sha256'][:12]}", False, "signature file missing")
                continue
            result = verify_document(claim, documents, signature, trust, require_crl=require_crl)
            report.add(
                f"document {doc['sha256'][:12]}",
                result.ok,
                f"{result.reason}: {result.detail}"
                if not result.ok
                else f"signed by {result.signer_agency}",
            )
        elif record.get("type") == DOCUMENT_RECEIVED:
            rec = record["receipt"]
            digest = normalize_digest(rec["sha256"])
            try:
                data_r = receipts.get_bytes(digest)
                sig_r = (root / "receipts" / f"{digest}.p7s").read_bytes()
            except (OSError, DocumentNotFound, DocumentCorrupted) as exc:
                report.add(f"receipt {digest[:12]}", False, str(exc))
                continue
            result = verify_receipt(
                data_r,
                sig_r,
                trust,
                document_sha256=rec["document_sha256"],
                receiving_agency=str(record.get("agency")),
                dossier_id=dossier_id,
                event_time=when,
                require_crl=require_crl,
            )
            report.add(
                f"receipt {digest[:12]}",
                result.ok,
                f"{result.reason}: {result.detail}"
                if not result.ok
                else f"acknowledged by {result.signer_agency}",
            )
    return report


def _event_time(record: Mapping[str, Any]) -> dt.datetime | None:
    text = record.get("occurred_at")
    if not text:
        return None
    try:
        return parse_time(str(text))
    except ValueError:
        return None
