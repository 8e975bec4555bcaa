"""A kafka-python consumer loop that only ever hands validated events to its handler.

Every record is read as raw bytes and passed through
:meth:`lienthong.schemas.Validator.decode_or_reason`; accepted events go to the handler,
rejected records go to ``dead-letters`` and the loop carries on. Offsets are committed only
after the handler returned and the dead letters were flushed (at-least-once).

Handler exceptions are *not* dead-lettered: they are bugs or outages on our side, not bad data,
so they stop the loop and the records are read again after the fix.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from lienthong.connectors.deadletter import DeadLetterPublisher
from lienthong.logs import get_logger
from lienthong.schemas.errors import DecodeError
from lienthong.schemas.models import Event
from lienthong.schemas.validate import Validator

Handler = Callable[[Event, Any], None]


class ValidatingConsumer:
    """Poll, gate, handle or dead-letter, commit."""

    def __init__(
        self,
        consumer: Any,
        handler: Handler,
        validator: Validator,
        dead_letters: DeadLetterPublisher,
        *,
        commit: bool = True,
    ) -> None:
        self.consumer = consumer
        self.handler = handler
        self.validator = validator
        self.dead_letters = dead_letters
        self.commit = commit
        self.accepted = 0
        self.rejected = 0
        self._log = get_logger("lienthong.consumer", consumer=dead_letters.consumer_name)

    def process(self, record: Any) -> Event | DecodeError:
        """Gate one record: handle it or dead-letter it."""
        outcome = self.validator.decode_or_reason(record.value)
        if isinstance(outcome, DecodeError):
            self.rejected += 1
            self.dead_letters.publish(record, outcome)
            return outcome
        self.accepted += 1
        self.handler(outcome, record)
        return outcome

    def process_batch(self, records: Iterable[Any]) -> int:
        count = 0
        for record in records:
            self.process(record)
            count += 1
        if count:
            self.dead_letters.flush()
            if self.commit:
                self.consumer.commit()
        return count

    def poll_once(self, timeout_ms: int = 500) -> int:
        """One poll; returns how many records were gated."""
        batches = self.consumer.poll(timeout_ms=timeout_ms)
        return sum(self.process_batch(records) for records in batches.values())

    def run(
        self,
        stop: threading.Event | Callable[[], bool] | None = None,
        *,
        max_records: int | None = None,
        timeout_ms: int = 500,
    ) -> int:
        """Loop until ``stop`` is set/true or ``max_records`` records were gated."""
        should_stop: Callable[[], bool]
        if stop is None:
            should_stop = lambda: False  # noqa: E731
        elif isinstance(stop, threading.Event):
            should_stop = stop.is_set
        else:
            should_stop = stop
        total = 0
        while not should_stop() and (max_records is None or total < max_records):
            total += self.poll_once(timeout_ms)
        self._log.info("consumer_stopped", accepted=self.accepted, rejected=self.rejected)
        return total
