"""Event contracts of the bus: Avro schemas, pydantic models, the wire codec and its gate.

Public API::

    from lienthong.schemas import encode, decode, decode_or_reason
    from lienthong.schemas import value_serializer, value_deserializer   # kafka-python
    import lienthong.schemas.faust_codec   # registers the Faust codec "lienthong"

The module-level functions use one process-wide :class:`AvroCodec` built from the settings
(file registry under the run dir, or the Confluent registry when ``schema_registry_url`` is
set); tests and tools can install their own with :func:`set_default_codec`.
"""

from __future__ import annotations

import threading

from lienthong.schemas.codec import HEADER_SIZE, MAGIC, AvroCodec, frame, unframe
from lienthong.schemas.errors import (
    AvroDecodeError,
    DecodeError,
    EncodeError,
    FutureEvent,
    NotFramed,
    RegistryUnavailable,
    SchemaNotFound,
    UnknownAgency,
    UnknownEventType,
    UnknownSchemaId,
    ValidationFailed,
)
from lienthong.schemas.models import (
    EVENT_CLASSES,
    MODELS_BY_EVENT_TYPE,
    VN_TZ,
    ApologyIssued,
    Channel,
    DeadlineOverdue,
    DeadlineWarning,
    DocumentPublished,
    DocumentReceipt,
    DocumentSigned,
    DossierReceived,
    DossierSubmitted,
    DossierWithdrawn,
    Envelope,
    Event,
    FeePaid,
    FeeRequested,
    HandoffAccepted,
    HandoffEscalated,
    HandoffReturned,
    HandoffSent,
    IntakeRefused,
    LiveStatsSnapshot,
    PortalStatus,
    PortalStatusRecord,
    PostalOrderKind,
    PostalOrderRequested,
    PostalTracking,
    ProcessingFinished,
    ProcessingStopped,
    ProgressEntry,
    ResultReturned,
    Subject,
    SupplementReceived,
    SupplementRequested,
    from_portal_date,
    hash_identifier,
    to_portal_date,
)
from lienthong.schemas.registry import (
    FileSchemaRegistry,
    HttpSchemaRegistry,
    SchemaRegistry,
    registry_from_settings,
)
from lienthong.schemas.validate import DEFAULT_MAX_FUTURE_SKEW, Validator, decode_or_reason

_default: AvroCodec | None = None
_default_lock = threading.Lock()


def default_codec() -> AvroCodec:
    """The process-wide codec, created from the settings on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                from lienthong.config import load_settings

                _default = AvroCodec(registry_from_settings(load_settings()))
    return _default


def set_default_codec(codec: AvroCodec | None) -> None:
    """Install ``codec`` as the process-wide codec (None: rebuild from settings on next use)."""
    global _default
    _default = codec


def encode(event: Event) -> bytes:
    """Confluent-framed Avro bytes of a validated event."""
    return default_codec().encode(event)


def decode(data: bytes) -> Event:
    """Validated event from framed bytes; raises a DecodeError subclass."""
    return default_codec().decode(data)


def value_serializer(event: Event) -> bytes:
    """kafka-python ``value_serializer``: event -> framed Avro."""
    return default_codec().encode(event)


def value_deserializer(data: bytes) -> Event:
    """kafka-python ``value_deserializer``: framed Avro -> validated event (raises DecodeError).

    A raising deserializer stops kafka-python's ``poll``; consumers that must carry on past bad
    records read raw bytes and use :func:`decode_or_reason` (see ``connectors.skeleton``).
    """
    return default_codec().decode(data)


__all__ = [
    "DEFAULT_MAX_FUTURE_SKEW",
    "EVENT_CLASSES",
    "HEADER_SIZE",
    "MAGIC",
    "MODELS_BY_EVENT_TYPE",
    "VN_TZ",
    "ApologyIssued",
    "AvroCodec",
    "AvroDecodeError",
    "Channel",
    "DeadlineOverdue",
    "DeadlineWarning",
    "DecodeError",
    "DocumentPublished",
    "DocumentReceipt",
    "DocumentSigned",
    "DossierReceived",
    "DossierSubmitted",
    "DossierWithdrawn",
    "EncodeError",
    "Envelope",
    "Event",
    "FeePaid",
    "FeeRequested",
    "FileSchemaRegistry",
    "FutureEvent",
    "HandoffAccepted",
    "HandoffEscalated",
    "HandoffReturned",
    "HandoffSent",
    "HttpSchemaRegistry",
    "IntakeRefused",
    "LiveStatsSnapshot",
    "NotFramed",
    "PortalStatus",
    "PortalStatusRecord",
    "PostalOrderKind",
    "PostalOrderRequested",
    "PostalTracking",
    "ProcessingFinished",
    "ProcessingStopped",
    "ProgressEntry",
    "RegistryUnavailable",
    "ResultReturned",
    "SchemaNotFound",
    "SchemaRegistry",
    "Subject",
    "SupplementReceived",
    "SupplementRequested",
    "UnknownAgency",
    "UnknownEventType",
    "UnknownSchemaId",
    "ValidationFailed",
    "Validator",
    "decode",
    "decode_or_reason",
    "default_codec",
    "encode",
    "frame",
    "from_portal_date",
    "hash_identifier",
    "set_default_codec",
    "to_portal_date",
    "unframe",
    "value_deserializer",
    "value_serializer",
]
