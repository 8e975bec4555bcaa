"""Structured JSON logs for every component.

One line per event on stderr: ``timestamp`` (ISO-8601 UTC), ``level``, ``component``,
``event`` and, where known, ``dossier_id`` / ``event_id`` / ``agency``. Faust, mode, aiokafka
and kafka-python log through the standard library; their records are rendered by the same
JSON renderer so an operator greps one format.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

# Loggers of the libraries we run; they are routed through our renderer.
_LIBRARY_LOGGERS = ("faust", "mode", "aiokafka", "kafka", "aiohttp", "asyncio")


def _shared_processors(component: str) -> list[Any]:
    def add_component(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        event_dict.setdefault("component", component)
        return event_dict

    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        add_component,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(component: str, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Set up structlog and stdlib logging to emit JSON lines for ``component``.

    Safe to call more than once (the last call wins); each process calls it at start-up.
    """
    out = stream if stream is not None else sys.stderr
    shared = _shared_processors(component)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _LIBRARY_LOGGERS:
        lib = logging.getLogger(name)
        lib.handlers.clear()
        lib.propagate = True
    # kafka-python is chatty at INFO about every connection; keep warnings and above.
    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLevelName(level)))

    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None, **context: Any) -> structlog.stdlib.BoundLogger:
    """A logger bound to ``context`` (e.g. dossier_id=..., event_id=..., agency=...)."""
    logger = structlog.get_logger(name)
    return logger.bind(**context) if context else logger
