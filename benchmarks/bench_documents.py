"""Sign and verify throughput for a 1 MB document on one core.

    python benchmarks/bench_documents.py [--size-mb 1] [--seconds 3] [--key-type ec|rsa]

"sign" = stream the document through SHA-256 + build and sign the CAdES-BES signature;
"verify" = stream the stored document back through SHA-256 (filesystem store) + parse the
signature, check it, build the chain, check validity and CRLs, check the signer.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import tempfile
import time
from pathlib import Path

from lienthong.documents.pki import init_dev_pki
from lienthong.documents.sign import sign_file
from lienthong.documents.store import FilesystemStore
from lienthong.documents.verify import DocumentClaim, verify_document

AGENCY = "000.00.12.H10"


def _rate(fn, seconds: float) -> tuple[int, float]:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--key-type", choices=("ec", "rsa"), default="ec")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        pki = init_dev_pki(base / "pki", "Bến Tre", [(AGENCY, "Sở TNMT")], key_type=args.key_type)
        signer, trust = pki.signer(AGENCY), pki.trust()
        doc = base / "doc.bin"
        doc.write_bytes(os.urandom(int(args.size_mb * 1024 * 1024)))
        store = FilesystemStore(base / "documents")
        stored = store.put_file(doc)
        signature = sign_file(doc, signer)
        claim = DocumentClaim(stored.digest, stored.size, AGENCY, dt.datetime.now(dt.UTC))
        assert verify_document(claim, store, signature, trust).ok

        n, secs = _rate(lambda: sign_file(doc, signer), args.seconds)
        print(
            f"sign   {args.size_mb:g} MB {args.key_type}: {n / secs:8.1f} docs/s  "
            f"{n * args.size_mb / secs:8.1f} MB/s  ({secs / n * 1000:.2f} ms/doc)"
        )
        n, secs = _rate(lambda: verify_document(claim, store, signature, trust), args.seconds)
        print(
            f"verify {args.size_mb:g} MB {args.key_type}: {n / secs:8.1f} docs/s  "
            f"{n * args.size_mb / secs:8.1f} MB/s  ({secs / n * 1000:.2f} ms/doc)"
        )
        digest = bytes.fromhex(stored.digest)
        from lienthong.documents.verify import verify_detached

        n, secs = _rate(
            lambda: verify_detached(digest, signature, trust, expected_signer=AGENCY), args.seconds
        )
        print(
            f"verify signature only (digest known): {n / secs:8.1f} /s  ({secs / n * 1000:.2f} ms)"
        )


if __name__ == "__main__":
    main()
