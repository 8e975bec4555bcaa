"""Hash chain and bus checkpoints: edits are found, with the first broken index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lienthong.documents.canonical import canonical_json
from lienthong.documents.chain import (
    GENESIS,
    ChainProblem,
    build_chain,
    make_checkpoints,
    next_link,
    verify_chain,
)
from lienthong.documents.pki import DevPKI
from tests.unit.documents.helpers import AGENCY_A

DOSSIER = "H10.22-241122-0002"


def _records(n: int) -> list[dict]:
    return [
        {
            "dossier_id": DOSSIER,
            "event_id": f"e{i}",
            "type": "dossier.step_done",
            "agency": AGENCY_A,
            "note": f"bước {i}",
        }
        for i in range(n)
    ]


def _pairs(entries) -> list[tuple[bytes, str]]:
    return [(e.record, e.link) for e in entries]


def test_link_formula() -> None:
    entries = build_chain(_records(3))
    import hashlib

    first = hashlib.sha256(GENESIS.encode() + canonical_json(_records(3)[0])).hexdigest()
    assert entries[0].link == first
    assert entries[1].link == next_link(first, entries[1].record)


def test_intact_chain_with_checkpoints_verifies(pki: DevPKI) -> None:
    entries = build_chain(_records(25))
    cps = make_checkpoints(DOSSIER, entries, pki.bus_signer(), every=10)
    assert [c.checkpoint.index for c in cps] == [9, 19, 24]
    result = verify_chain(
        DOSSIER, _pairs(entries), [(c.data, c.signature) for c in cps], pki.trust()
    )
    assert result.ok and result.checkpoints_verified == 3


def test_edited_record_is_found_at_its_index(pki: DevPKI) -> None:
    entries = build_chain(_records(25))
    pairs = _pairs(entries)
    record = json.loads(pairs[13][0])
    record["note"] = "bước 13 (đã sửa)"
    pairs[13] = (canonical_json(record), pairs[13][1])
    result = verify_chain(DOSSIER, pairs)
    assert not result.ok
    assert result.broken_index == 13 and result.problem is ChainProblem.LINK_MISMATCH


def test_consistent_rewrite_is_caught_by_checkpoint(pki: DevPKI) -> None:
    records = _records(25)
    entries = build_chain(records)
    cps = [
        (c.data, c.signature)
        for c in make_checkpoints(DOSSIER, entries, pki.bus_signer(), every=10)
    ]
    records[13]["note"] = "rewritten"
    rewritten = build_chain(records)  # attacker recomputes every link
    result = verify_chain(DOSSIER, _pairs(rewritten), cps, pki.trust())
    assert result.problem is ChainProblem.CHECKPOINT_MISMATCH
    assert result.broken_index == 19 and "10..19" in result.detail


def test_checkpoint_not_signed_by_bus_is_invalid(pki: DevPKI) -> None:
    entries = build_chain(_records(5))
    forged = make_checkpoints(DOSSIER, entries, pki.signer(AGENCY_A), every=5)
    result = verify_chain(
        DOSSIER, _pairs(entries), [(c.data, c.signature) for c in forged], pki.trust()
    )
    assert result.problem is ChainProblem.CHECKPOINT_INVALID
    assert "signer_mismatch" in result.detail


def test_foreign_record_and_floats() -> None:
    entries = build_chain([*_records(2), {"dossier_id": "OTHER", "x": 1}])
    assert verify_chain(DOSSIER, _pairs(entries)).problem is ChainProblem.FOREIGN_RECORD
    with pytest.raises(TypeError):
        canonical_json({"fee": 1.5})


def test_deleted_record_is_found(tmp_path: Path) -> None:
    pairs = _pairs(build_chain(_records(6)))
    del pairs[2]
    result = verify_chain(DOSSIER, pairs)
    assert result.broken_index == 2 and result.problem is ChainProblem.LINK_MISMATCH
