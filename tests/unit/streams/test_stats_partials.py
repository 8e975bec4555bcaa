"""Stage 2 checks each ``stats-partials`` record before it can reach a key's totals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from lienthong.domain import stats as rules
from lienthong.streams.stats import parse_partial

KEY = "000.00.01.H10|1.004227|counter|month:2026-01"


def partial(**changes: Any) -> dict[str, Any]:
    figures = rules.KeyFigures().figures(
        rules.parse_period("month:2026-01"), datetime(2026, 1, 5, tzinfo=UTC), {}
    )
    value = {
        "partition": 3,
        "version": [1763800000.5, 41],
        "as_of": "2026-01-05T09:00:00+07:00",
        "figures": figures,
    }
    value.update(changes)
    return value


def test_a_partial_as_stage_one_writes_it_is_accepted() -> None:
    assert parse_partial(KEY, json.dumps(partial()).encode()) == partial()


@pytest.mark.parametrize(
    ("key", "raw", "message"),
    [
        ("a|b|c", json.dumps(partial()).encode(), "is not agency|procedure|channel|period"),
        (KEY, b"\x00\x01 not json", "value is not JSON"),
        (KEY, b"[1, 2]", "value is not a JSON object"),
        (KEY, json.dumps(partial(partition="3")).encode(), "partition: must be an integer"),
        (KEY, json.dumps(partial(version=[1])).encode(), "version: must be [epoch, offset]"),
        (KEY, json.dumps(partial(as_of="yesterday")).encode(), "as_of: must be an ISO 8601"),
        (KEY, json.dumps(partial(figures=[])).encode(), "figures: must be an object"),
        (
            KEY,
            json.dumps(partial(figures={**partial()["figures"], "refused": "2"})).encode(),
            "figures.refused: must be an integer",
        ),
        (KEY, None, "value is not JSON"),
    ],
)
def test_anything_else_is_refused_naming_what_is_wrong(
    key: str, raw: bytes | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("|", r"\|")):
        parse_partial(key, raw)


def test_an_unknown_period_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_partial("000.00.01.H10|1.004227|counter|fortnight:2026-01", b"{}")
