"""Accept or reject raw record bytes: the single gate every consumer of the bus goes through.

A record is accepted only if it is framed, its schema id is known, the Avro body decodes, the
pydantic model validates, every agency code it names is a known agency, and it did not happen
further in the future than the allowed clock skew. Anything else comes back as a typed
:class:`~lienthong.schemas.errors.DecodeError` (returned, not raised) so the caller can
dead-letter it and carry on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

from lienthong.schemas.codec import AvroCodec
from lienthong.schemas.errors import DecodeError, FutureEvent, UnknownAgency
from lienthong.schemas.models import AGENCY_CODE_PATTERN, AGENCY_CODE_RE, EVENT_CLASSES, Event

DEFAULT_MAX_FUTURE_SKEW = timedelta(minutes=5)

AgencyCheck = Callable[[str], bool]
Clock = Callable[[], datetime]


def pattern_only_agency_check(code: str) -> bool:
    """Fallback until the agency registry exists: any well-formed code is accepted."""
    return AGENCY_CODE_RE.match(code) is not None


@cache
def default_agency_check() -> AgencyCheck:
    """The domain's agency registry when available, else the pattern-only fallback."""
    try:
        from lienthong.domain.agencies import load_agencies  # type: ignore[import-not-found]
    except ImportError:
        return pattern_only_agency_check
    return load_agencies().is_known


def utc_now() -> datetime:
    return datetime.now(UTC)


def _agency_fields(model: type[Event]) -> tuple[str, ...]:
    """Top-level fields of ``model`` typed as agency codes (found from the field constraints)."""
    names = []
    for name, info in model.model_fields.items():
        if any(getattr(meta, "pattern", None) == AGENCY_CODE_PATTERN for meta in info.metadata):
            names.append(name)
    return tuple(names)


AGENCY_FIELDS: dict[type[Event], tuple[str, ...]] = {
    cls: _agency_fields(cls) for cls in EVENT_CLASSES
}


@dataclass
class Validator:
    """Decode + validate + policy checks with injectable agency registry and clock."""

    codec: AvroCodec
    is_known_agency: AgencyCheck | None = None
    clock: Clock = utc_now
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW
    _agency_cache: dict[str, bool] = field(default_factory=dict, repr=False)

    def _known(self, code: str) -> bool:
        known = self._agency_cache.get(code)
        if known is None:
            check = self.is_known_agency or default_agency_check()
            known = bool(check(code))
            if len(self._agency_cache) < 100_000:
                self._agency_cache[code] = known
        return known

    def check_policy(self, event: Event) -> DecodeError | None:
        """Agency and time checks on an already validated event."""
        if not self._known(event.envelope.producer_agency):
            return UnknownAgency("envelope.producer_agency", event.envelope.producer_agency)
        for name in AGENCY_FIELDS.get(type(event), ()):
            code = getattr(event, name)
            if code is not None and not self._known(code):
                return UnknownAgency(name, code)
        now = self.clock()
        occurred = event.envelope.occurred_at
        if occurred - now > self.max_future_skew:
            return FutureEvent(
                f"envelope.occurred_at {occurred.isoformat()} is {occurred - now} ahead of the "
                f"consumer clock {now.isoformat()} (allowed skew {self.max_future_skew})"
            )
        return None

    def decode_or_reason(self, data: bytes | None) -> Event | DecodeError:
        try:
            event = self.codec.decode(data)  # type: ignore[arg-type]
        except DecodeError as error:
            return error
        return self.check_policy(event) or event


def decode_or_reason(
    data: bytes | None,
    *,
    codec: AvroCodec | None = None,
    is_known_agency: AgencyCheck | None = None,
    clock: Clock = utc_now,
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
) -> Event | DecodeError:
    """The validated event, or the typed reason it is rejected (never raises DecodeError).

    Registry outages raise :class:`~lienthong.schemas.errors.RegistryUnavailable`: they are not
    the record's fault and must not turn good data into dead letters.
    """
    from lienthong.schemas import default_codec

    validator = Validator(codec or default_codec(), is_known_agency, clock, max_future_skew)
    return validator.decode_or_reason(data)
