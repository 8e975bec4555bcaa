"""What a stream agent does when handling a record fails: blame the record, or stop.

Two kinds of failure need opposite answers:

- **The record's fault** (an input that makes an output impossible, e.g. a portal record over
  the producer's size limit, or a bug that only this record's content reaches): the record is
  dead-lettered with the reason and the agent carries on. Letting the exception escape would be
  worse than useless: Faust acknowledges every event of the batch in ``take_events``' ``finally``
  and restarts the agent in the same process, the gap guard reads the batch again, the same
  record raises again, and the partition never moves past it (a poison record).
- **Not the record's fault** (the broker or the producer failing after its retries): nothing
  about the record is wrong and dead-lettering it would lose good data. The process must stop
  *before* Faust acknowledges the batch, so the offsets stay uncommitted and whoever takes the
  partitions next (the restarted process, or another worker after the group rebalances)
  reads them again from the last commit. :func:`stop_process` does that with ``os._exit``:
  a graceful stop would run the generator's ``finally`` (acks) and Faust's final commit.

Pure helpers (no Faust import), unit-tested in ``tests/unit/streams/test_failures.py``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, NoReturn

from aiokafka.errors import KafkaError
from aiokafka.record.default_records import DefaultRecordBatchBuilder

# Exit status of a worker stopped because the bus failed under it (EX_TEMPFAIL: try again).
# Any non-zero status makes `lienthong up`'s supervisor (and systemd / Kubernetes) restart it.
EXIT_BUS_FAILED = 75

# Names of the exception types that mean "the bus failed", not "the record is bad": the
# producer's own errors (Faust wraps aiokafka's in ProducerSendError) and the network.
_INFRASTRUCTURE_NAMES = frozenset({"ProducerSendError", "ProducerFenced", "ConsumerNotStarted"})

# Room kept for a record's batch framing when the size is judged from key and value lengths
# alone: the v2 batch header is 61 bytes and a record's own varints and attributes < 32.
_FRAMING_SLACK = 1024


class Rejection(Exception):
    """A record the agent refuses, with the dead-letter error class and one-line reason."""

    def __init__(self, error_class: str, reason: str) -> None:
        super().__init__(reason)
        self.error_class = error_class
        self.reason = reason


def is_infrastructure(exc: BaseException) -> bool:
    """True when ``exc`` says the bus (broker, producer, network) failed, not the record.

    An oversize record is the record's fault even though the producer raises it; callers
    check sizes before sending (:func:`too_large`), so every send error left is the bus's.
    """
    if isinstance(exc, KafkaError | ConnectionError | TimeoutError):
        return True
    return type(exc).__name__ in _INFRASTRUCTURE_NAMES


def processing_failed(exc: BaseException, **where: Any) -> Rejection:
    """The dead-letter rejection for an unexpected exception while handling one record.

    The reason names the exception type and message (one line, bounded) and where it happened
    (dossier, event), so an operator can find the bug or the input from the dead letter alone.
    """
    message = " ".join(str(exc).split())
    if len(message) > 500:
        message = message[:500] + "…"
    context = ", ".join(f"{k}={v}" for k, v in where.items() if v is not None)
    reason = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    if context:
        reason = f"{reason} ({context})"
    return Rejection("ProcessingFailed", reason)


def too_large(
    topic: str,
    key: bytes | None,
    value: bytes | None,
    limit: int,
    what: str = "record",
    limit_name: str = "the producer's max_request_size",
) -> Rejection | None:
    """An ``OutputTooLarge`` rejection if the record would exceed the producer's request size.

    Judged before anything is saved or sent, so a record that cannot be written rejects its
    input event cleanly instead of failing the send (which the producer reports exactly like a
    broker failure). Costs two ``len`` calls unless the record is within ~1 KB of the limit.
    """
    approx = (len(key) if key else 0) + (len(value) if value else 0)
    if approx + _FRAMING_SLACK <= limit:
        return None
    size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, [])
    if size <= limit:
        return None
    return Rejection(
        "OutputTooLarge",
        f"the {what} it produces on {topic} would be {size} bytes, over {limit_name} of "
        f"{limit} bytes",
    )


# Room for the ``lienthong.dlq.*`` headers a dead letter adds (reason <= ~700 bytes).
_DEAD_LETTER_HEADROOM = 4096


@dataclass(frozen=True)
class _WithoutValue:
    """A source record stand-in whose value is left out of its dead letter."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: Any
    value: None = None


def dead_letter_parts(message: Any, error: BaseException, limit: int) -> tuple[Any, BaseException]:
    """The record and error to dead-letter: the record whole when it fits, else without value.

    Why: a source record accepted by the broker can be larger than what this worker's producer
    may send (other producers have other limits), and the dead letter adds headers. Sending it
    whole would fail like a broken broker and stop the worker at every restart, so the value
    is left out and the reason says where the original stays (its topic, partition and offset)
    and how large it was. Costs two ``len`` calls for any record not near the limit.
    """
    key, value = message.key, message.value
    headers = message.headers or []
    items = headers.items() if isinstance(headers, dict) else headers
    size = (len(key) if key else 0) + (len(value) if value else 0)
    if size + _DEAD_LETTER_HEADROOM <= limit:
        size += sum(len(k) + len(v or b"") for k, v in items)
        if size + _DEAD_LETTER_HEADROOM <= limit:
            return message, error
    error_class = getattr(error, "error_class", type(error).__name__)
    reason = getattr(error, "reason", None) or " ".join(str(error).split()) or error_class
    note = (
        f"{reason} [value of {len(value) if value else 0} bytes left out: too large to "
        f"dead-letter; the original is {message.topic} partition {message.partition} "
        f"offset {message.offset}]"
    )
    stand_in = _WithoutValue(message.topic, message.partition, message.offset, key, headers)
    return stand_in, Rejection(error_class, note)


def stop_process(log: Any, event: str, exc: BaseException, **fields: Any) -> NoReturn:
    """Log ``event`` at critical level with the exception, then end the process at once.

    ``os._exit`` on purpose (see the module docstring): no ``finally`` of Faust's stream runs,
    so the batch is never acknowledged and its offsets are never committed.
    """
    try:
        log.critical(
            event,
            error_type=type(exc).__name__,
            error=" ".join(str(exc).split())[:1000],
            exit_code=EXIT_BUS_FAILED,
            action="stopping the worker so its uncommitted records are read again on restart",
            exc_info=exc,
            **fields,
        )
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # nothing left to report it to
                pass
        os._exit(EXIT_BUS_FAILED)
