"""Faust codec ``"lienthong"``: agents receive validated pydantic models and write framed Avro.

Importing this module registers the codec. Use it for topics whose records you produce
yourself; for topics fed by other agencies, consume with ``value_serializer="raw"`` and gate
with :func:`lienthong.schemas.decode_or_reason` so bad records are dead-lettered instead of
being dropped by Faust's deserializer error handling (see ``connectors.deadletter``).
"""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

from lienthong.schemas.codec import AvroCodec
from lienthong.schemas.errors import EncodeError
from lienthong.schemas.models import Event

CODEC_NAME = "lienthong"


class LienthongCodec(codecs.Codec):
    """Confluent-framed Avro <-> validated event models."""

    def __init__(self, codec: AvroCodec | None = None, **kwargs: Any) -> None:
        super().__init__(codec=codec, **kwargs)
        self._codec = codec

    def _avro(self) -> AvroCodec:
        if self._codec is not None:
            return self._codec
        from lienthong.schemas import default_codec

        return default_codec()

    def _dumps(self, obj: Any) -> bytes:
        if isinstance(obj, Event):
            return self._avro().encode(obj)
        if isinstance(obj, bytes | bytearray):
            return bytes(obj)  # already encoded (e.g. forwarded raw)
        raise EncodeError(f"codec {CODEC_NAME!r} cannot encode {type(obj).__name__}")

    def _loads(self, s: bytes) -> Any:
        return self._avro().decode(s)


def register(name: str = CODEC_NAME, codec: AvroCodec | None = None) -> LienthongCodec:
    """Register (or re-register with a specific codec) under ``name``."""
    instance = LienthongCodec(codec)
    codecs.register(name, instance)
    return instance


register()
