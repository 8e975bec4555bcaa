"""The event catalogue on disk: ``schemas/avro/<event_type>.avsc`` plus released snapshots.

Each ``.avsc`` is self-contained (the envelope is inlined) so anyone holding one file and the
framing rules can decode a topic with stock Avro tooling; ``envelope.avsc`` is the reference copy
of the shared header and a unit test keeps every inlined copy identical to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from lienthong.schemas.models import AVRO_DIR

RELEASED_DIR = Path(__file__).resolve().parent / "released"
ENVELOPE_FILE = "envelope.avsc"
COMPATIBILITY_LEVELS = ("BACKWARD", "FORWARD", "FULL", "NONE")


@dataclass(frozen=True)
class EventSchema:
    """One event's current schema."""

    event_type: str
    path: Path
    schema: dict[str, Any]

    @property
    def full_name(self) -> str:
        return f"{self.schema['namespace']}.{self.schema['name']}"

    @property
    def version(self) -> int:
        return int(self.schema["schema_version"])

    @property
    def compatibility(self) -> str:
        return str(self.schema.get("compatibility", "BACKWARD")).upper()

    @property
    def text(self) -> str:
        """The exact schema text registered and used on the wire."""
        return json.dumps(self.schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def load_schema_file(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def event_schemas(avro_dir: Path = AVRO_DIR) -> dict[str, EventSchema]:
    """Every event schema in ``avro_dir`` keyed by event type (file stem)."""
    out: dict[str, EventSchema] = {}
    for path in sorted(avro_dir.glob("*.avsc")):
        if path.name == ENVELOPE_FILE:
            continue
        out[path.stem] = EventSchema(path.stem, path, load_schema_file(path))
    return out


@cache
def current_schema(event_type: str) -> EventSchema:
    path = AVRO_DIR / f"{event_type}.avsc"
    return EventSchema(event_type, path, load_schema_file(path))


def released_versions(event_type: str, released_dir: Path = RELEASED_DIR) -> dict[int, Path]:
    """Released snapshots ``released/<event_type>/v<N>.avsc`` keyed by N."""
    folder = released_dir / event_type
    out: dict[int, Path] = {}
    if folder.is_dir():
        for path in folder.glob("v*.avsc"):
            stem = path.stem[1:]
            if stem.isdigit():
                out[int(stem)] = path
    return dict(sorted(out.items()))
