"""Fixtures for the event-contract unit tests: a codec over a throw-away registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from lienthong.schemas import AvroCodec, FileSchemaRegistry


class MemoryRegistry:
    """Registry with fixed ids, so golden bytes do not depend on registration order."""

    def __init__(self, ids: dict[str, int] | None = None) -> None:
        self.ids = dict(ids or {})
        self.schemas: dict[int, str] = {}

    def register(self, subject: str, schema: str) -> int:
        schema_id = self.ids.setdefault(subject, 1000 + len(self.ids))
        self.schemas[schema_id] = schema
        return schema_id

    def get_schema(self, schema_id: int) -> str:
        from lienthong.schemas import SchemaNotFound

        try:
            return self.schemas[schema_id]
        except KeyError:
            raise SchemaNotFound(schema_id) from None


@pytest.fixture
def file_registry(tmp_path: Path) -> FileSchemaRegistry:
    return FileSchemaRegistry(tmp_path / "registry.json")


@pytest.fixture
def codec(file_registry: FileSchemaRegistry) -> AvroCodec:
    return AvroCodec(file_registry)


@pytest.fixture
def memory_registry() -> MemoryRegistry:
    return MemoryRegistry()
