"""Shared constants and helpers of the document tests."""

from __future__ import annotations

import datetime as dt
import subprocess
import uuid
from pathlib import Path

AGENCY_A = "000.00.12.H10"  # Sở Tài nguyên và Môi trường
AGENCY_B = "000.00.20.H10"  # Chi cục Thuế
AGENCIES = (
    (AGENCY_A, "Sở Tài nguyên và Môi trường"),
    (AGENCY_B, "Chi cục Thuế khu vực"),
    ("000.00.01.H10", "Trung tâm Phục vụ hành chính công tỉnh"),
)


def openssl_verify(
    content: Path, signature: bytes, ca_file: Path, tmp: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    sig = tmp / f"sig-{uuid.uuid4().hex}.p7s"
    sig.write_bytes(signature)
    return subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-binary",
            "-content",
            str(content),
            "-inform",
            "DER",
            "-in",
            str(sig),
            "-CAfile",
            str(ca_file),
            "-purpose",
            "any",
            "-out",
            "/dev/null",
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)
