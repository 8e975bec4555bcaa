"""Reconciliation compares the bus's latest view with the portal's, one line per difference."""

from __future__ import annotations

from lienthong.connectors.portal.reconcile import compare


def rec(status: int, key: str, due: str = "20260119170000") -> dict:
    return {"MaHoSo": "A", "TrangThaiHoSo": status, "NgayHenTra": due, "idempotency_key": key}


def test_in_sync_gives_nothing_even_with_other_keys() -> None:
    assert compare("records", {"A": rec(4, "k2")}, {"A": rec(4, "k1")}) == []


def test_each_kind_of_difference() -> None:
    bus = {"A": rec(4, "k2"), "B": rec(2, "k3"), "C": rec(9, "k5")}
    portal = {"A": rec(2, "k1", due="20260120170000"), "Z": rec(1, "k9"), "C": rec(4, "k4")}
    diffs = compare("records", bus, portal, parked={"k5": "portal rejected it with 422"})
    lines = [d.line() for d in diffs]
    assert lines == [
        'stale\trecords\tA\tNgayHenTra bus="20260119170000" portal="20260120170000"; '
        "TrangThaiHoSo bus=4 portal=2",
        "missing\trecords\tB\tnot at portal (k3)",
        "parked\trecords\tC\tk5: portal rejected it with 422",
        "unknown\trecords\tZ\tnot sent by the bus (k9)",
    ]


def test_stats_ignore_as_of() -> None:
    bus = {"s": {"key": "s", "received": 3, "as_of": "b", "idempotency_key": "x"}}
    same = {"s": {"key": "s", "received": 3, "as_of": "a", "idempotency_key": "y"}}
    assert compare("stats", bus, same) == []
    other = {"s": {"key": "s", "received": 2, "as_of": "a", "idempotency_key": "y"}}
    [diff] = compare("stats", bus, other)
    assert diff.kind == "stale" and diff.detail == "received bus=3 portal=2"
