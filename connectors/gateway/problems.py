"""RFC 9457 problem details (``application/problem+json``) for every refusal of the gateway.

Each problem has a stable ``type`` URI per kind so a department system can branch on it, a
human ``title``, the HTTP ``status``, a ``detail`` sentence and, for validation failures, an
``errors`` list of ``{"pointer": "/field/0", "rule": "missing", "detail": "..."}`` where the
pointer is a JSON pointer (RFC 6901) into the request body.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiohttp import web

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://lienthong.example/problems/"

# status -> (type slug, title) for the kinds the gateway emits.
KINDS: dict[str, tuple[int, str]] = {
    "bad-json": (400, "Request body is not valid JSON"),
    "unauthenticated": (401, "Missing or invalid credential"),
    "forbidden-producer": (403, "Body names another producer agency"),
    "forbidden-event": (403, "Agency may not publish this event kind"),
    "unknown-event-type": (404, "Unknown event type"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "idempotency-conflict": (409, "Idempotency key reused with a different request"),
    "too-large": (413, "Request body too large"),
    "unsupported-media-type": (415, "Content type must be application/json"),
    "validation": (422, "Event does not validate"),
    "rate-limited": (429, "Too many requests"),
    "internal": (500, "Internal error"),
    "unavailable": (503, "Broker did not acknowledge; the event was NOT accepted"),
}


def pointer(loc: Iterable[Any]) -> str:
    """JSON pointer (RFC 6901) of a pydantic ``loc`` tuple."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in loc]
    return "/" + "/".join(parts) if parts else ""


def body(kind: str, detail: str | None = None, **extensions: Any) -> dict[str, Any]:
    status, title = KINDS[kind]
    out: dict[str, Any] = {"type": TYPE_BASE + kind, "title": title, "status": status}
    if detail:
        out["detail"] = detail
    out.update(extensions)
    return out


def problem(
    kind: str,
    detail: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> web.Response:
    """A problem+json response of one of :data:`KINDS`."""
    payload = body(kind, detail, **extensions)
    return web.Response(
        status=payload["status"],
        body=json.dumps(payload, ensure_ascii=False, default=str).encode(),
        content_type=PROBLEM_JSON,
        headers=headers,
    )


def validation_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """pydantic ``errors()`` (already mapped to body locations) → problem ``errors`` list."""
    return [
        {
            "pointer": pointer(e.get("loc", ())),
            "rule": str(e.get("type", "invalid")),
            "detail": str(e.get("msg", "invalid")),
        }
        for e in errors
    ]
