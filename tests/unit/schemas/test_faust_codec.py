"""The Faust codec "lienthong" writes framed Avro and hands agents validated models."""

from __future__ import annotations

import pytest
from faust.serializers import codecs

import lienthong.schemas.faust_codec as faust_codec
from lienthong.schemas import AvroCodec, EncodeError, NotFramed
from lienthong.schemas.examples import example_event


def test_registered_under_its_name() -> None:
    assert isinstance(codecs.get_codec("lienthong"), faust_codec.LienthongCodec)


def test_dumps_and_loads_through_faust(codec: AvroCodec) -> None:
    faust_codec.register(codec=codec)
    try:
        event = example_event("postal_tracking")
        data = codecs.dumps("lienthong", event)
        assert data == codec.encode(event)
        assert codecs.loads("lienthong", data) == event
        with pytest.raises(NotFramed):
            codecs.loads("lienthong", b"{}")
        with pytest.raises(EncodeError):
            codecs.dumps("lienthong", {"a": 1})
    finally:
        faust_codec.register()


def test_faust_registry_dumps_value(codec: AvroCodec) -> None:
    from faust.serializers.registry import Registry

    faust_codec.register(codec=codec)
    try:
        registry = Registry(key_serializer="raw", value_serializer="lienthong")
        event = example_event("fee_requested")
        data = registry.dumps_value(None, event)
        assert registry.loads_value(None, data) == event
    finally:
        faust_codec.register()
