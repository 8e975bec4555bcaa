"""Who may publish what: event kinds per agency role (functional core, no Kafka, no HTTP).

The ingest gateway asks this module before it accepts an event from an outside system; the
rules follow the actors of BRIEF §1–§2 (see docs/connectors/gateway.md for the table):

- **service center** (province center; the one-stop section — Bộ phận Một cửa — of a district
  or commune plays the same part): receives dossiers, refuses intake, asks for and takes
  supplements,
  records withdrawals, returns results, orders postal pickups/deliveries, hands dossiers on;
- **processing agencies** (departments, district/commune People's Committees, central vertical
  agencies): accept/return handoffs, ask for supplements and fees, record payments, stop or
  finish processing, publish/sign/acknowledge documents;
- **postal service**: only its tracking scans (``postal_tracking``). It has no registry level
  of its own; a gateway client is given this role explicitly (``role = "postal"``);
- **bus-produced** events (deadline alerts, apologies, escalations, portal records, live
  counts) are computed by the stream processors and never accepted from outside.

Deny by default: an event kind not listed for a role is refused, and so is an unknown kind.
A handoff is also bound to the agency that performs it: ``handoff_sent`` must be sent by its
``from_agency``, ``handoff_accepted``/``handoff_returned`` by its ``to_agency``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from lienthong.domain.agencies import AgencyLevel

__all__ = [
    "BUS_ONLY",
    "EXTERNAL_EVENT_TYPES",
    "PERMISSIONS",
    "Denial",
    "Role",
    "acting_agency_field",
    "allowed_event_types",
    "check_publish",
    "may_publish",
    "roles_for_level",
]


class Role(StrEnum):
    SERVICE_CENTER = "service_center"  # nhận và trả kết quả (Trung tâm / Bộ phận Một cửa)
    PROCESSING = "processing"  # thẩm định, giải quyết (sở, UBND huyện/xã)
    CENTRAL = "central"  # cơ quan ngành dọc Trung ương
    POSTAL = "postal"  # bưu chính công ích


# Computed by the bus itself (streams.*): never accepted from an outside system.
BUS_ONLY: frozenset[str] = frozenset(
    {
        "deadline_warning",
        "deadline_overdue",
        "apology_issued",
        "handoff_escalated",
        "portal_status_record",
        "live_stats_snapshot",
    }
)

_HANDOFF = frozenset({"handoff_sent", "handoff_accepted", "handoff_returned"})
_DOCUMENTS = frozenset({"document_published", "document_signed", "document_receipt"})
_INTAKE = frozenset(
    {
        "dossier_submitted",
        "dossier_received",
        "intake_refused",
        "supplement_requested",  # the counter finds the received dossier incomplete
        "supplement_received",
        "dossier_withdrawn",
        "result_returned",
        "postal_order_requested",
    }
)
_PROCESSING = frozenset(
    {
        "supplement_requested",
        "fee_requested",
        "fee_paid",
        "processing_stopped",
        "processing_finished",
    }
)

PERMISSIONS: Mapping[Role, frozenset[str]] = MappingProxyType(
    {
        Role.SERVICE_CENTER: _INTAKE | _HANDOFF | _DOCUMENTS,
        Role.PROCESSING: _PROCESSING | _HANDOFF | _DOCUMENTS,
        Role.CENTRAL: _PROCESSING | _HANDOFF | _DOCUMENTS,
        Role.POSTAL: frozenset({"postal_tracking"}),
    }
)

# Every kind some outside role may publish.
EXTERNAL_EVENT_TYPES: frozenset[str] = frozenset().union(*PERMISSIONS.values())

_LEVEL_ROLES: Mapping[AgencyLevel, frozenset[Role]] = MappingProxyType(
    {
        AgencyLevel.PROVINCE_CENTER: frozenset({Role.SERVICE_CENTER}),
        AgencyLevel.DEPARTMENT: frozenset({Role.PROCESSING}),
        # District and commune: People's Committee decides, its one-stop section receives.
        AgencyLevel.DISTRICT: frozenset({Role.PROCESSING, Role.SERVICE_CENTER}),
        AgencyLevel.COMMUNE: frozenset({Role.PROCESSING, Role.SERVICE_CENTER}),
        AgencyLevel.CENTRAL: frozenset({Role.CENTRAL}),
    }
)

_ACTING_FIELD: Mapping[str, str] = MappingProxyType(
    {
        "handoff_sent": "from_agency",
        "handoff_accepted": "to_agency",
        "handoff_returned": "to_agency",
    }
)


@dataclass(frozen=True)
class Denial:
    """Why an agency may not publish an event; ``reason`` is one sentence for a 403 body."""

    event_type: str
    reason: str


def roles_for_level(level: AgencyLevel | str) -> frozenset[Role]:
    """The roles an agency of a registry level plays."""
    return _LEVEL_ROLES[AgencyLevel(level)]


def allowed_event_types(roles: frozenset[Role] | set[Role]) -> frozenset[str]:
    """Event kinds an agency with these roles may publish (bus-only kinds never)."""
    allowed: frozenset[str] = frozenset()
    for role in roles:
        allowed |= PERMISSIONS.get(Role(role), frozenset())
    return allowed - BUS_ONLY


def may_publish(roles: frozenset[Role] | set[Role], event_type: str) -> bool:
    return event_type in allowed_event_types(roles)


def acting_agency_field(event_type: str) -> str | None:
    """The field naming the agency that must be the producer (handoffs), if any."""
    return _ACTING_FIELD.get(event_type)


def check_publish(
    roles: frozenset[Role] | set[Role],
    producer: str,
    event_type: str,
    fields: Mapping[str, object] | None = None,
) -> Denial | None:
    """None when ``producer`` (with ``roles``) may publish this event, else the denial.

    ``fields`` are the event's own fields; when given, the acting-agency rule is checked too.
    """
    if event_type in BUS_ONLY:
        return Denial(event_type, f"{event_type} is produced by the bus itself, never accepted")
    if not may_publish(roles, event_type):
        names = ", ".join(sorted(r.value for r in roles)) or "no role"
        return Denial(event_type, f"agency {producer} ({names}) may not publish {event_type}")
    name = acting_agency_field(event_type)
    if name is not None and fields is not None:
        actor = fields.get(name)
        if isinstance(actor, str) and actor != producer:
            return Denial(
                event_type, f"{event_type} must be published by its {name} {actor}, not {producer}"
            )
    return None
