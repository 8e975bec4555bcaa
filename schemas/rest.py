"""The Confluent Schema Registry read API over the embedded file registry.

Why: our records carry the Confluent framing, so any standard client (kcat ``-s avro -r``,
confluent-kafka's ``AvroDeserializer``, Kafka UIs) can decode a topic once it can ask a
registry for schema ids. The embedded registry is a JSON file; this serves it, read-only, in
the Confluent REST shape (paths, bodies, ``error_code`` values, content type).

Read-only on purpose: schemas are registered by the bus's own producers (and
``lienthong schemas``) under the file lock; a second writer over HTTP would add nothing.

Run it with ``lienthong run schema-registry`` (``lienthong up`` starts it when no external
``schema_registry_url`` is configured).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from lienthong.logs import get_logger
from lienthong.schemas.errors import RegistryUnavailable
from lienthong.schemas.registry import CONTENT_TYPE, FileSchemaRegistry, RegistrySnapshot

log = get_logger(__name__)

# Confluent's error codes, which clients match on.
SUBJECT_NOT_FOUND = 40401
VERSION_NOT_FOUND = 40402
SCHEMA_NOT_FOUND = 40403
INVALID_VERSION = 42202
BACKEND_ERROR = 50001

DEFAULT_COMPATIBILITY = "BACKWARD"
_MAX_VERSION = 2**31 - 1


class RegistryApiError(Exception):
    """An answer in Confluent's error shape: HTTP status plus ``error_code`` and message."""

    def __init__(self, status: int, error_code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error_code": self.error_code, "message": self.message}


class RegistryReader:
    """Answers the read API from the registry file, re-reading it only when it changed.

    Other processes register schemas while this runs; a stat per request (inode, size,
    mtime) is far cheaper than parsing the file and catches every atomic replace.
    """

    def __init__(self, registry: FileSchemaRegistry) -> None:
        self.registry = registry
        self._stamp: tuple[int, int, int] | None = None
        self._snapshot = RegistrySnapshot(schemas={}, subjects={})
        self._loaded = False

    def snapshot(self) -> RegistrySnapshot:
        stamp = self.registry.file_stamp()
        if not self._loaded or stamp != self._stamp:
            try:
                self._snapshot = self.registry.snapshot()
            except RegistryUnavailable as exc:
                raise RegistryApiError(500, BACKEND_ERROR, str(exc)) from None
            self._stamp, self._loaded = stamp, True
        return self._snapshot

    # --- the API, as plain data -----------------------------------------------------------------

    def schema(self, schema_id: str) -> str:
        """Schema text of a global id (40403 when unknown or not a number)."""
        number = int(schema_id) if schema_id.isdigit() else None
        text = self.snapshot().schemas.get(number) if number is not None else None
        if text is None:
            raise RegistryApiError(404, SCHEMA_NOT_FOUND, f"Schema {schema_id} not found")
        return text

    def subjects_of(self, schema_id: str) -> list[dict[str, Any]]:
        """Every (subject, version) that holds the schema id."""
        self.schema(schema_id)
        number = int(schema_id)
        return [
            {"subject": subject, "version": index + 1}
            for subject, ids in sorted(self.snapshot().subjects.items())
            for index, held in enumerate(ids)
            if held == number
        ]

    def subjects(self) -> list[str]:
        return sorted(self.snapshot().subjects)

    def versions(self, subject: str) -> list[int]:
        return list(range(1, len(self._ids(subject)) + 1))

    def version(self, subject: str, version: str) -> dict[str, Any]:
        """``{"subject","version","id","schema"}``; version is 1..n, ``latest`` or -1."""
        ids = self._ids(subject)
        if version == "latest" or version == "-1":
            number = len(ids)
        elif version.isdigit() and 1 <= int(version) <= _MAX_VERSION:
            number = int(version)
        else:
            raise RegistryApiError(
                422,
                INVALID_VERSION,
                f"The specified version '{version}' is not a valid version id. Allowed values "
                f'are between [1, 2^31-1] and the string "latest"',
            )
        if number > len(ids):
            raise RegistryApiError(
                404,
                VERSION_NOT_FOUND,
                f"Version {version} not found (subject {subject} has {len(ids)} versions)",
            )
        schema_id = ids[number - 1]
        return {
            "subject": subject,
            "version": number,
            "id": schema_id,
            "schema": self.snapshot().schemas[schema_id],
        }

    def compatibility(self, subject: str | None) -> str:
        """The declared ``compatibility`` of a subject's latest schema, else the default."""
        if subject is None:
            return DEFAULT_COMPATIBILITY
        latest = json.loads(self.version(subject, "latest")["schema"])
        declared = latest.get("compatibility") if isinstance(latest, dict) else None
        return str(declared).upper() if declared else DEFAULT_COMPATIBILITY

    def _ids(self, subject: str) -> tuple[int, ...]:
        ids = self.snapshot().subjects.get(subject)
        if not ids:
            raise RegistryApiError(404, SUBJECT_NOT_FOUND, f"Subject '{subject}' not found.")
        return ids


# --- HTTP adapter -------------------------------------------------------------------------------


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(data, ensure_ascii=False), content_type=CONTENT_TYPE
    )


def _raw(text: str) -> web.Response:
    return web.Response(text=text, content_type=CONTENT_TYPE)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _confluent_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure in Confluent's ``{"error_code", "message"}`` shape, never HTML/text."""
    try:
        return await handler(request)
    except RegistryApiError as exc:
        return _json(exc.body(), exc.status)
    except web.HTTPMethodNotAllowed as exc:
        message = (
            f"{request.method} {request.path}: this registry is read-only (it serves the "
            "embedded file registry; schemas are registered by the bus's producers)"
        )
        return _json({"error_code": 405, "message": message}, exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = f"HTTP {exc.status} {exc.reason}: {request.method} {request.path}"
        return _json({"error_code": exc.status, "message": message}, exc.status)


def create_app(registry: FileSchemaRegistry) -> web.Application:
    """The read API routes over ``registry`` (a factory: nothing is read until a request)."""
    reader = RegistryReader(registry)

    def match(request: web.Request, key: str) -> str:
        return request.match_info[key]

    async def root(_: web.Request) -> web.Response:
        return _json({})

    async def health(_: web.Request) -> web.Response:
        snap = reader.snapshot()
        return _json(
            {
                "status": "ok",
                "file": str(registry.path),
                "schemas": len(snap.schemas),
                "subjects": len(snap.subjects),
            }
        )

    async def schema_by_id(request: web.Request) -> web.Response:
        return _json({"schema": reader.schema(match(request, "id"))})

    async def raw_schema_by_id(request: web.Request) -> web.Response:
        return _raw(reader.schema(match(request, "id")))

    async def subjects_by_id(request: web.Request) -> web.Response:
        return _json(sorted({row["subject"] for row in reader.subjects_of(match(request, "id"))}))

    async def versions_by_id(request: web.Request) -> web.Response:
        return _json(reader.subjects_of(match(request, "id")))

    async def schema_types(_: web.Request) -> web.Response:
        return _json(["AVRO"])

    async def subjects(_: web.Request) -> web.Response:
        return _json(reader.subjects())

    async def versions(request: web.Request) -> web.Response:
        return _json(reader.versions(match(request, "subject")))

    async def version(request: web.Request) -> web.Response:
        return _json(reader.version(match(request, "subject"), match(request, "version")))

    async def raw_version(request: web.Request) -> web.Response:
        answer = reader.version(match(request, "subject"), match(request, "version"))
        return _raw(answer["schema"])

    async def config(request: web.Request) -> web.Response:
        subject = request.match_info.get("subject")
        return _json({"compatibilityLevel": reader.compatibility(subject)})

    async def mode(_: web.Request) -> web.Response:
        return _json({"mode": "READONLY"})

    app = web.Application(middlewares=[_confluent_errors])
    get = app.router.add_get
    get("/", root)
    get("/health", health)
    get("/schemas/types", schema_types)
    get("/schemas/ids/{id}", schema_by_id)
    get("/schemas/ids/{id}/schema", raw_schema_by_id)
    get("/schemas/ids/{id}/subjects", subjects_by_id)
    get("/schemas/ids/{id}/versions", versions_by_id)
    get("/subjects", subjects)
    get("/subjects/{subject}/versions", versions)
    get("/subjects/{subject}/versions/{version}", version)
    get("/subjects/{subject}/versions/{version}/schema", raw_version)
    get("/config", config)
    get("/config/{subject}", config)
    get("/mode", mode)
    return app


def main(argv: list[str] | None = None) -> int:
    """``lienthong run schema-registry [--host H] [--port P]``."""
    from lienthong.runtime.serving import host_port_command, serve_until_signal
    from lienthong.schemas.registry import registry_from_settings

    parsed = host_port_command(
        argv,
        component="schema-registry",
        description="Serve the embedded schema registry as the Confluent read API.",
        section="schema_registry_rest",
        defaults=lambda s: (s.schema_registry_rest.host, s.schema_registry_rest.port),
    )
    if parsed is None:
        return 2
    settings, host, port = parsed
    registry = registry_from_settings(settings)
    if not isinstance(registry, FileSchemaRegistry):
        print(
            "lienthong schema-registry: schema_registry_url is set "
            f"({settings.schema_registry_url}); that registry already serves this API",
            file=sys.stderr,
        )
        return 2
    log.info("schema_registry_starting", host=host, port=port, file=str(registry.path))
    asyncio.run(serve_until_signal(create_app(registry), host, port))
    log.info("schema_registry_stopped")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
