"""Signed, verified, acknowledged and provable document exchange (issue 7).

Modules: :mod:`.store` (content-addressed store, filesystem) and :mod:`.s3` (S3-compatible),
:mod:`.pki` (agency certificates, trust anchors, development PKI), :mod:`.sign` (CAdES-BES
detached signatures), :mod:`.verify` (checks and rejection reasons), :mod:`.receipts` (signed
receipts, acknowledgement listing), :mod:`.chain` (hash chain and checkpoints), :mod:`.bundle`
(evidence bundle export/verification). Formats are specified in docs/documents.md.
"""

from lienthong.documents.verify import DocumentClaim, Reason, VerificationResult

__all__ = ["DocumentClaim", "Reason", "VerificationResult"]
