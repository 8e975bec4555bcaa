"""lienthong.runtime.offsets without a broker: the fetched high watermark wins over ListOffsets."""

from __future__ import annotations

from typing import Any

import pytest

from lienthong.runtime.offsets import high_watermarks


class FakeConsumer:
    """ListOffsets says ``lower``; the high watermark is known after ``polls_needed`` polls."""

    def __init__(self, lower: dict[str, int], high: dict[str, int], polls_needed: int) -> None:
        self.lower, self.high, self.polls_needed = lower, high, polls_needed
        self.polls = 0
        self.sought: dict[str, int] = {}

    def end_offsets(self, tps: list[str]) -> dict[str, int]:
        return {tp: self.lower[tp] for tp in tps}

    def assign(self, tps: list[str]) -> None:
        self.assigned = list(tps)

    def seek(self, tp: str, offset: int) -> None:
        self.sought[tp] = offset

    def highwater(self, tp: str) -> int | None:
        return self.high[tp] if self.polls >= self.polls_needed else None

    def poll(self, **_: Any) -> dict[str, list[Any]]:
        self.polls += 1
        return {}


def test_the_fetched_high_watermark_is_the_end_and_list_offsets_a_lower_bound() -> None:
    consumer = FakeConsumer({"a": 6, "b": 3}, {"a": 8, "b": 2}, polls_needed=2)
    assert high_watermarks(consumer, ["a", "b"]) == {"a": 8, "b": 3}
    assert consumer.sought == {"a": 6, "b": 3} and consumer.polls == 2


def test_no_partitions_ask_nothing_and_a_silent_broker_times_out_naming_them() -> None:
    assert high_watermarks(FakeConsumer({}, {}, 0), []) == {}

    class TP(str):
        topic = "t"
        partition = 4

    silent = FakeConsumer({TP("x"): 1}, {TP("x"): 1}, polls_needed=10**9)
    with pytest.raises(TimeoutError, match="t/4"):
        high_watermarks(silent, [TP("x")], timeout_s=0.3)
