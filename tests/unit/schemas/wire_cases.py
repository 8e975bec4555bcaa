"""Awkward values for the wire tests, in one place: the golden bytes and the C-vs-fastavro
comparison must exercise the very same instants and integers."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")

# Timestamps in Vietnam time, odd fixed offsets, both folds of a DST hour, early and late years.
INSTANTS = [
    datetime(2026, 3, 2, 8, 30, 0, 123456, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")),
    datetime(1975, 6, 12, 23, 59, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")),
    datetime(2024, 2, 29, 0, 0, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
    datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK),
    datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NEW_YORK),
    datetime(1, 1, 1, 0, 0, tzinfo=UTC),
    datetime(9999, 12, 31, 16, 59, 59, 999999, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


def varint_sweep() -> list[tuple[int, datetime]]:
    """(minutes, due) pairs hitting every varint length: ints across 32 bits, years 1..9999.

    Seeded, so the golden digest of these values stays fixed.
    """
    rnd = random.Random(7)
    minutes = [0, 1, -1, 63, -64, 64, -65, 2**31 - 1, -(2**31)]
    minutes += [rnd.randint(-(2**31), 2**31 - 1) >> rnd.randint(0, 31) for _ in range(300)]
    pairs = []
    for value in minutes:
        micros = rnd.randint(-62_135_510_400_000_000, 253_402_214_400_000_000) >> rnd.randint(0, 57)
        pairs.append((value, datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)))
    return pairs
