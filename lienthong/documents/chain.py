"""Tamper-evident trail per dossier (chuỗi băm hồ sơ): hash chain plus signed checkpoints.

Like X-Road's message log: every accepted record of a dossier (events, including the
``document.published`` / ``document.received`` records that bind documents, signatures and
receipts by hash) is linked to the previous one, so changing, removing or reordering any record
changes every later link. The chain alone does not stop someone who can rewrite the whole log,
so the bus periodically signs a checkpoint (index + link) with its own key; rewriting history
then also requires the bus key.

Link formula (checkable with openssl and a shell, see the bundle README)::

    link[-1] = "0" * 64                                   (genesis)
    link[i]  = hex(SHA-256( ascii(link[i-1]) || canonical_json(record[i]) ))

where ``ascii(link)`` is the 64-character lowercase hex text of the previous link.

Checkpoint: canonical JSON ``{"type": "lienthong.checkpoint", "version": 1, "dossier_id",
"index", "link", "created_at"}`` with a detached CAdES-BES signature by the bus certificate
(subject CN ``lienthong-bus``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lienthong.documents.canonical import canonical_json
from lienthong.documents.pki import BUS_CN, Signer, TrustAnchors
from lienthong.documents.receipts import format_time, parse_time
from lienthong.documents.sign import sign_bytes
from lienthong.documents.verify import VerificationResult, verify_detached

GENESIS = "0" * 64
CHECKPOINT_TYPE = "lienthong.checkpoint"
DEFAULT_CHECKPOINT_EVERY = 100


def next_link(previous: str, record_bytes: bytes) -> str:
    return hashlib.sha256(previous.encode("ascii") + record_bytes).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainEntry:
    index: int
    record: bytes = field(repr=False)  # canonical JSON bytes
    link: str


def build_chain(records: Iterable[Mapping[str, Any] | bytes]) -> list[ChainEntry]:
    """Links for records in acceptance order (mappings are canonicalised; bytes used as is)."""
    entries: list[ChainEntry] = []
    previous = GENESIS
    for index, record in enumerate(records):
        data = record if isinstance(record, bytes) else canonical_json(dict(record))
        previous = next_link(previous, data)
        entries.append(ChainEntry(index, data, previous))
    return entries


@dataclass(frozen=True, slots=True)
class Checkpoint:
    dossier_id: str
    index: int
    link: str
    created_at: dt.datetime

    def to_bytes(self) -> bytes:
        return canonical_json(
            {
                "type": CHECKPOINT_TYPE,
                "version": 1,
                "dossier_id": self.dossier_id,
                "index": self.index,
                "link": self.link,
                "created_at": format_time(self.created_at),
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        obj = json.loads(data.decode("utf-8"))
        if obj.get("type") != CHECKPOINT_TYPE or obj.get("version") != 1:
            raise ValueError("not a lienthong.checkpoint v1")
        checkpoint = cls(
            str(obj["dossier_id"]),
            int(obj["index"]),
            str(obj["link"]),
            parse_time(str(obj["created_at"])),
        )
        if checkpoint.to_bytes() != data:
            raise ValueError("checkpoint bytes are not in canonical form")
        return checkpoint


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    data: bytes = field(repr=False)
    signature: bytes = field(repr=False)


def sign_checkpoint(
    dossier_id: str, entry: ChainEntry, bus: Signer, *, now: dt.datetime | None = None
) -> SignedCheckpoint:
    checkpoint = Checkpoint(dossier_id, entry.index, entry.link, now or dt.datetime.now(dt.UTC))
    data = checkpoint.to_bytes()
    return SignedCheckpoint(
        checkpoint, data, sign_bytes(data, bus, signing_time=checkpoint.created_at)
    )


def make_checkpoints(
    dossier_id: str,
    entries: Sequence[ChainEntry],
    bus: Signer,
    *,
    every: int = DEFAULT_CHECKPOINT_EVERY,
    include_head: bool = True,
    now: dt.datetime | None = None,
) -> list[SignedCheckpoint]:
    """Checkpoints at indexes every-1, 2*every-1, … and (optionally) at the chain head."""
    if every < 1:
        raise ValueError("checkpoint interval must be >= 1")
    indexes = list(range(every - 1, len(entries), every))
    if include_head and entries and (not indexes or indexes[-1] != len(entries) - 1):
        indexes.append(len(entries) - 1)
    return [sign_checkpoint(dossier_id, entries[i], bus, now=now) for i in indexes]


class ChainProblem(StrEnum):
    LINK_MISMATCH = "link_mismatch"
    FOREIGN_RECORD = "foreign_record"
    CHECKPOINT_INVALID = "checkpoint_invalid"
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"


@dataclass(frozen=True, slots=True)
class ChainVerification:
    ok: bool
    length: int
    broken_index: int | None = None
    problem: ChainProblem | None = None
    detail: str = ""
    checkpoints_verified: int = 0


def verify_chain(
    dossier_id: str,
    entries: Sequence[tuple[bytes, str]],
    checkpoints: Sequence[tuple[bytes, bytes]] = (),
    trust: TrustAnchors | None = None,
    *,
    require_crl: bool = True,
) -> ChainVerification:
    """Recompute the chain from stored ``(record_bytes, stored_link)`` pairs; check checkpoints.

    Reports the FIRST broken link: ``link_mismatch`` at the first index whose stored link is
    not the recomputed one (the record at that index, or the link itself, was edited);
    ``foreign_record`` if a record names another dossier; for ``(checkpoint_bytes, signature)``
    pairs, ``checkpoint_invalid`` (bad bus signature, see ``detail``) or
    ``checkpoint_mismatch`` (the chain was rewritten consistently but differs from what the bus
    signed: some record at or before that index changed).
    """
    recomputed: list[str] = []
    previous = GENESIS
    for index, (data, stored) in enumerate(entries):
        try:
            record = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            record = None
        if not isinstance(record, dict) or record.get("dossier_id") != dossier_id:
            return ChainVerification(
                False,
                len(entries),
                index,
                ChainProblem.FOREIGN_RECORD,
                f"record {index} is not a record of dossier {dossier_id!r}",
            )
        previous = next_link(previous, data)
        recomputed.append(previous)
        if stored != previous:
            return ChainVerification(
                False,
                len(entries),
                index,
                ChainProblem.LINK_MISMATCH,
                f"record {index}: stored link {stored[:16]}…, recomputed {previous[:16]}…",
            )
    verified = 0
    last_good = -1
    for data, signature in sorted(checkpoints, key=lambda cp: _checkpoint_index(cp[0])):
        try:
            checkpoint = Checkpoint.from_bytes(data)
        except (ValueError, KeyError, UnicodeDecodeError) as exc:
            return ChainVerification(
                False,
                len(entries),
                None,
                ChainProblem.CHECKPOINT_INVALID,
                f"unreadable checkpoint: {exc}",
                verified,
            )
        if trust is None:
            return ChainVerification(
                False,
                len(entries),
                checkpoint.index,
                ChainProblem.CHECKPOINT_INVALID,
                "no trust anchors given to check checkpoint signatures",
                verified,
            )
        result: VerificationResult = verify_detached(
            hashlib.sha256(data).digest(),
            signature,
            trust,
            expected_signer=BUS_CN,
            require_crl=require_crl,
        )
        if not result.ok:
            return ChainVerification(
                False,
                len(entries),
                checkpoint.index,
                ChainProblem.CHECKPOINT_INVALID,
                f"checkpoint at {checkpoint.index}: {result.reason}: {result.detail}",
                verified,
            )
        if checkpoint.dossier_id != dossier_id or not 0 <= checkpoint.index < len(recomputed):
            return ChainVerification(
                False,
                len(entries),
                checkpoint.index,
                ChainProblem.CHECKPOINT_MISMATCH,
                f"checkpoint for {checkpoint.dossier_id!r} index {checkpoint.index} does not fit "
                f"a chain of {len(recomputed)} records of {dossier_id!r}",
                verified,
            )
        if recomputed[checkpoint.index] != checkpoint.link:
            return ChainVerification(
                False,
                len(entries),
                checkpoint.index,
                ChainProblem.CHECKPOINT_MISMATCH,
                f"the bus signed link {checkpoint.link[:16]}… at index {checkpoint.index}; the "
                f"chain now has {recomputed[checkpoint.index][:16]}…: a record in "
                f"{last_good + 1}..{checkpoint.index} was changed",
                verified,
            )
        last_good = checkpoint.index
        verified += 1
    return ChainVerification(True, len(entries), checkpoints_verified=verified)


def _checkpoint_index(data: bytes) -> int:
    try:
        return int(json.loads(data.decode("utf-8")).get("index", -1))
    except (ValueError, AttributeError, UnicodeDecodeError):
        return -1
