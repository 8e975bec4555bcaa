"""Typed reasons a consumer rejects a record.

Each class names one way a record can be unacceptable; ``str(exc)`` is a one-line reason
that goes verbatim into the dead-letter ``reason`` header, and the class name goes into the
``error_class`` header, so operators can filter and replay by class.

:class:`RegistryUnavailable` is deliberately *not* a :class:`DecodeError`: a registry outage is
not the record's fault, so it must stop the consumer (and be retried), never dead-letter data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _one_line(text: str, limit: int = 500) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class DecodeError(Exception):
    """A record the bus cannot accept. ``reason`` is one readable line."""

    def __init__(self, reason: str) -> None:
        self.reason = _one_line(reason)
        super().__init__(self.reason)

    @property
    def error_class(self) -> str:
        return type(self).__name__


class NotFramed(DecodeError):
    """The bytes are not in the Confluent framing (magic byte 0 + 4-byte schema id + body)."""


class UnknownSchemaId(DecodeError):
    """The schema id in the framing is not in the schema registry."""

    def __init__(self, schema_id: int, reason: str | None = None) -> None:
        self.schema_id = schema_id
        super().__init__(reason or f"schema id {schema_id} is not in the schema registry")


class UnknownEventType(DecodeError):
    """The schema id is registered but its record is not an event of this catalogue."""


class AvroDecodeError(DecodeError):
    """The body does not decode with the writer schema (corrupt, truncated or trailing bytes)."""


class ValidationFailed(DecodeError):
    """The decoded record breaks a rule of the event model; ``path`` locates the first error."""

    def __init__(self, event_type: str, errors: Sequence[dict[str, Any]]) -> None:
        first = errors[0]
        self.event_type = event_type
        self.path = ".".join(str(part) for part in first.get("loc", ())) or "<record>"
        self.errors = list(errors)
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{event_type}: {self.path}: {first.get('msg', 'invalid')}{more}")


class UnknownAgency(DecodeError):
    """An agency code in the event is well-formed but not in the agency registry."""

    def __init__(self, field: str, agency: str) -> None:
        self.field = field
        self.agency = agency
        super().__init__(f"{field} = {agency!r} is not a known agency")


class FutureEvent(DecodeError):
    """occurred_at lies further in the future than the allowed clock skew."""


class EncodeError(ValueError):
    """An object given to the encoder is not a catalogue event or does not fit its schema."""


class SchemaNotFound(KeyError):
    """The registry has no schema under that id (the codec maps it to UnknownSchemaId)."""


class RegistryUnavailable(RuntimeError):
    """The schema registry cannot be reached or answered with an error; retry, do not DLQ."""
