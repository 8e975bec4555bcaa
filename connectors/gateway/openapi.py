"""OpenAPI 3.1 description of the gateway, generated from the event models.

One request-body schema per event kind an outside system may publish
(:data:`lienthong.domain.roles.EXTERNAL_EVENT_TYPES`): the event's own fields plus the envelope
parts, built with ``pydantic.create_model`` from the same field definitions the gateway
validates with, so the spec cannot drift from the behaviour. The committed copy
``connectors/gateway/openapi.json`` is checked by a unit test; regenerate it with::

    .venv/bin/python -m lienthong.connectors.gateway.openapi --write
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import models_json_schema

from lienthong.domain.roles import EXTERNAL_EVENT_TYPES, PERMISSIONS
from lienthong.schemas.models import (
    EVENT_CLASSES,
    AgencyCode,
    Event,
    NonEmpty,
    Timestamp,
)

SPEC_FILE = Path(__file__).resolve().parent / "openapi.json"
REF = "#/components/schemas/{model}"


def accepted_event_types() -> tuple[str, ...]:
    """Event kinds the gateway accepts from some role, in catalogue order."""
    return tuple(c.EVENT_TYPE for c in EVENT_CLASSES if c.EVENT_TYPE in EXTERNAL_EVENT_TYPES)


def _envelope_fields(cls: type[Event]) -> dict[str, Any]:
    dossier: Any = (
        (NonEmpty, Field(description="the dossier (mã hồ sơ); also the Kafka record key"))
        if cls.DOSSIER_SCOPED
        else (NonEmpty | None, Field(default=None, description="the dossier, if any"))
    )
    return {
        "dossier_id": dossier,
        "occurred_at": (
            Timestamp,
            Field(description="when it happened, with a timezone (e.g. +07:00)"),
        ),
        "event_id": (
            uuid.UUID | None,
            Field(
                default=None,
                description="your id for this event; without an Idempotency-Key it is the "
                "idempotency key. Default: derived from the Idempotency-Key, else random",
            ),
        ),
        "trace_id": (
            NonEmpty | None,
            Field(default=None, description="correlation id across systems (default: event id)"),
        ),
        "causation_id": (
            uuid.UUID | None,
            Field(default=None, description="event_id of the event that caused this one"),
        ),
        "producer_agency": (
            AgencyCode | None,
            Field(
                default=None,
                description="optional; must be the authenticated agency (else 403)",
            ),
        ),
    }


@cache
def request_models() -> dict[str, type[BaseModel]]:
    """event_type -> pydantic model of the request body (for the spec)."""
    out: dict[str, type[BaseModel]] = {}
    wanted = set(accepted_event_types())
    for cls in EVENT_CLASSES:
        if cls.EVENT_TYPE not in wanted:
            continue
        fields: dict[str, Any] = _envelope_fields(cls)
        for name, info in cls.model_fields.items():
            if name != "envelope":
                fields[name] = (info.annotation, info)
        model = create_model(  # type: ignore[call-overload]
            f"{cls.__name__}Request",
            __config__=ConfigDict(extra="forbid", title=f"{cls.EVENT_TYPE} request"),
            __doc__=(cls.__doc__ or f"Body of POST /v1/events/{cls.EVENT_TYPE}.").strip(),
            **fields,
        )
        out[cls.EVENT_TYPE] = model
    return out


class Accepted(BaseModel):
    """202: the broker acknowledged the event."""

    model_config = ConfigDict(title="Accepted")
    event_id: uuid.UUID
    topic: str
    partition: int
    offset: int


class ProblemError(BaseModel):
    model_config = ConfigDict(title="ProblemError")
    pointer: str = Field(description="JSON pointer (RFC 6901) into the request body")
    rule: str = Field(description="the rule that failed (pydantic error type or policy)")
    detail: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(title="Problem")
    type: str
    title: str
    status: int
    detail: str | None = None
    event_type: str | None = None
    errors: list[ProblemError] | None = None


_ERRORS = {
    "400": "body is not JSON",
    "401": "missing or wrong credential",
    "403": "agency may not publish this kind, or the body names another producer_agency",
    "404": "unknown event type",
    "409": "Idempotency-Key reused with a different body",
    "413": "body larger than max_body_bytes",
    "415": "content type is not application/json",
    "422": "the event does not validate (errors list each field by JSON pointer)",
    "429": "rate limit of the agency exceeded (see Retry-After)",
    "503": "broker did not acknowledge; nothing accepted, retry with the same key",
}


def _problem_responses() -> dict[str, Any]:
    return {
        code: {
            "description": text,
            "content": {
                "application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}
            },
        }
        for code, text in _ERRORS.items()
    }


def _who_may(event_type: str) -> str:
    roles = sorted(r.value for r, kinds in PERMISSIONS.items() if event_type in kinds)
    return ", ".join(roles)


def build_spec() -> dict[str, Any]:
    models = request_models()
    pairs = [(m, "validation") for m in models.values()]
    pairs += [(Accepted, "serialization"), (Problem, "serialization")]
    refs, top = models_json_schema(pairs, ref_template=REF)
    schemas = dict(sorted(top.get("$defs", {}).items()))
    security = [{"bearer": []}, {"apiKey": []}, {"mutualTLS": []}]
    paths: dict[str, Any] = {}
    for event_type, model in models.items():
        paths[f"/v1/events/{event_type}"] = {
            "post": {
                "operationId": f"post_{event_type}",
                "summary": f"Publish a {event_type} event",
                "description": f"Roles that may publish it: {_who_may(event_type)}.",
                "security": security,
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                        "description": "same key + same body: the original 202 again "
                        "(Idempotency-Replayed: true); scoped per agency",
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": refs[(model, "validation")]}},
                },
                "responses": {
                    "202": {
                        "description": "accepted: the broker acknowledged the event",
                        "content": {
                            "application/json": {"schema": {"$ref": REF.format(model="Accepted")}}
                        },
                    },
                    **_problem_responses(),
                },
            }
        }
    paths["/health"] = {
        "get": {
            "operationId": "health",
            "summary": "Liveness and counters (accepted, replayed, rejected by status)",
            "responses": {"200": {"description": "counters"}},
        }
    }
    paths["/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3.1"}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "lienthong ingest gateway",
            "version": "1",
            "description": "Department, district, commune, central and postal systems publish "
            "dossier events to the bus. 202 only after the broker acknowledged.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "mutualTLS": {"type": "mutualTLS"},
            },
        },
    }


def render() -> str:
    return json.dumps(build_spec(), ensure_ascii=False, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="print or write the gateway's OpenAPI spec")
    parser.add_argument("--write", action="store_true", help=f"write {SPEC_FILE.name}")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        SPEC_FILE.write_text(text, encoding="utf-8")
        print(f"wrote {SPEC_FILE}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
