"""Failure helpers of the stream agents: who is to blame, what the dead letter says, sizes."""

from __future__ import annotations

import io
import json
import logging

import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError, NodeNotReadyError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from faust.exceptions import ProducerSendError

from lienthong.connectors.deadletter import dead_letter_headers
from lienthong.logs import configure_logging, get_logger
from lienthong.streams import failures
from lienthong.streams.failures import (
    EXIT_BUS_FAILED,
    Rejection,
    dead_letter_parts,
    is_infrastructure,
    processing_failed,
    stop_process,
    too_large,
)


@pytest.mark.parametrize(
    "exc",
    [
        ProducerSendError("Error while sending: KafkaTimeoutError()"),
        KafkaTimeoutError(),
        NodeNotReadyError("node 1"),
        MessageSizeTooLargeError("raised by the broker for a record the check let through"),
        ConnectionResetError("reset by peer"),
        TimeoutError(),
    ],
)
def test_bus_failures_are_infrastructure(exc: BaseException) -> None:
    assert is_infrastructure(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad date"),
        KeyError("history"),
        AssertionError(),
        TypeError("'NoneType' object is not subscriptable"),
        Rejection("OutputTooLarge", "too big"),
        RecursionError(),
    ],
)
def test_record_failures_are_not_infrastructure(exc: BaseException) -> None:
    assert not is_infrastructure(exc)


def test_processing_failed_names_the_exception_and_where_in_one_bounded_line() -> None:
    exc = ValueError("line one\n  line two " + "x" * 2000)
    rejection = processing_failed(exc, dossier_id="HS-1", event_id="e-1", offset=7, missing=None)
    assert rejection.error_class == "ProcessingFailed"
    assert rejection.reason.startswith("ValueError: line one line two xxx")
    assert rejection.reason.endswith("(dossier_id=HS-1, event_id=e-1, offset=7)")
    assert "\n" not in rejection.reason and "missing" not in rejection.reason
    assert len(rejection.reason) < 600


def test_processing_failed_without_a_message_gives_the_type() -> None:
    assert processing_failed(KeyError()).reason == "KeyError"
    assert processing_failed(AssertionError(), dossier_id="HS-2").reason == (
        "AssertionError (dossier_id=HS-2)"
    )


def test_rejection_becomes_the_dead_letter_error_class_and_reason() -> None:
    from datetime import UTC, datetime

    rejection = processing_failed(RuntimeError("boom"), dossier_id="HS-3")
    headers = dict(
        dead_letter_headers(
            [],
            source_topic="p.dossier-events",
            source_partition=0,
            source_offset=5,
            error=rejection,
            consumer="streams.tracker",
            failed_at=datetime(2025, 3, 1, tzinfo=UTC),
        )
    )
    assert headers["lienthong.dlq.error_class"] == b"ProcessingFailed"
    assert headers["lienthong.dlq.reason"] == b"RuntimeError: boom (dossier_id=HS-3)"


def test_too_large_agrees_with_the_producer_estimate_at_the_limit() -> None:
    key = b"HS-1"
    limit = 1_000_000
    overhead = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, b"", []) + 8
    for size in range(limit - overhead - 64, limit - overhead + 64):
        value = b"v" * size
        estimate = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, [])
        assert (too_large("t", key, value, limit) is None) == (estimate <= limit), size


def test_too_large_says_which_topic_what_and_how_big() -> None:
    rejection = too_large("p.portal-status", b"k", b"v" * 2_000, 1_500)
    assert rejection is not None and rejection.error_class == "OutputTooLarge"
    assert "p.portal-status" in rejection.reason and "1500 bytes" in rejection.reason
    assert too_large("p.portal-status", b"k", b"v" * 100, 1_500) is None
    assert too_large("p.x", None, None, 1_500) is None
    changelog = too_large("p.c", b"k", b"v" * 2_000, 1_500, what="tracker record (changelog)")
    assert changelog is not None and "tracker record (changelog) it produces" in changelog.reason


@pytest.fixture
def restore_logging():
    """configure_logging replaces the root handlers; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_stop_process_logs_critical_flushes_and_exits_without_unwinding(
    monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    out = io.StringIO()
    configure_logging("worker", stream=out)
    exits: list[int] = []

    class Exited(BaseException):
        pass

    def fake_exit(code: int) -> None:
        exits.append(code)
        raise Exited

    monkeypatch.setattr(failures.os, "_exit", fake_exit)
    with pytest.raises(Exited):
        stop_process(
            get_logger("test"), "tracker_batch_failed", ProducerSendError("gone"), records=3
        )
    assert exits == [EXIT_BUS_FAILED]
    line = json.loads(out.getvalue().strip().splitlines()[-1])
    assert line["event"] == "tracker_batch_failed" and line["level"] == "critical"
    assert line["error_type"] == "ProducerSendError" and line["records"] == 3
    assert line["exit_code"] == EXIT_BUS_FAILED


class _Message:
    def __init__(self, value: bytes | None, headers: object = None) -> None:
        self.topic, self.partition, self.offset = "p.dossier-events", 3, 41
        self.key, self.value, self.headers = b"HS-9", value, headers


def test_a_record_that_fits_is_dead_lettered_whole() -> None:
    message = _Message(b"v" * 1_000, [("traceparent", b"00-abc")])
    error = Rejection("OutputTooLarge", "the portal record would be too large")
    assert dead_letter_parts(message, error, 1_000_000) == (message, error)


def test_a_record_too_large_to_dead_letter_keeps_everything_but_its_value() -> None:
    message = _Message(b"v" * 999_000, {"traceparent": b"00-abc"})
    error = Rejection("OutputTooLarge", "the tracker record would be too large")
    stand_in, note = dead_letter_parts(message, error, 1_000_000)
    assert stand_in.value is None and stand_in.key == b"HS-9"
    assert (stand_in.topic, stand_in.partition, stand_in.offset) == ("p.dossier-events", 3, 41)
    assert stand_in.headers == {"traceparent": b"00-abc"}
    assert isinstance(note, Rejection) and note.error_class == "OutputTooLarge"
    assert note.reason.startswith("the tracker record would be too large [value of 999000 bytes")
    assert "p.dossier-events partition 3 offset 41" in note.reason


def test_large_original_headers_count_too() -> None:
    message = _Message(b"v" * 900_000, [("big", b"h" * 99_000)])
    stand_in, note = dead_letter_parts(message, DecodeErrorLike("not Avro"), 1_000_000)
    assert stand_in.value is None and stand_in.headers == [("big", b"h" * 99_000)]
    assert note.error_class == "NotFramed" and note.reason.startswith("not Avro [value of")


class DecodeErrorLike(Exception):
    error_class = "NotFramed"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
