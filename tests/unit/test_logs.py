import io
import json
import logging

import pytest

from lienthong.logs import configure_logging, get_logger


@pytest.fixture(autouse=True)
def _restore_logging():
    """configure_logging replaces root handlers; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_structlog_lines_are_json_with_context():
    stream = io.StringIO()
    configure_logging("tracker", "INFO", stream=stream)
    get_logger("x", dossier_id="H10.12-240101-0001", agency="000.00.12.H10").info(
        "dossier_received", event_id="e-1"
    )
    (line,) = _lines(stream)
    assert line["event"] == "dossier_received"
    assert line["component"] == "tracker"
    assert line["level"] == "info"
    assert line["dossier_id"] == "H10.12-240101-0001"
    assert line["agency"] == "000.00.12.H10"
    assert line["event_id"] == "e-1"
    assert line["timestamp"].endswith("Z")


def test_library_loggers_use_the_same_renderer():
    stream = io.StringIO()
    configure_logging("worker", "INFO", stream=stream)
    logging.getLogger("faust.agents").info("agent started %s", "x")
    logging.getLogger("aiokafka.consumer").warning("rebalance")
    lines = _lines(stream)
    assert [line["event"] for line in lines] == ["agent started x", "rebalance"]
    assert all(line["component"] == "worker" and "timestamp" in line for line in lines)
    assert lines[0]["logger"] == "faust.agents"
