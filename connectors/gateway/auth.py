"""Per-agency credentials: API keys (stored only as SHA-256 hashes) and mTLS certificates.

The clients file (``connectors.gateway.clients_file``) is TOML::

    [[client]]
    agency = "000.00.01.H10"              # the producer_agency this client publishes as
    name = "Một cửa điện tử tỉnh"          # for logs
    api_key_sha256 = "9f86d0…"             # sha256(api key) in hex; the key itself is never stored
    cert_sha256 = "4c1a…"                  # optional: SHA-256 fingerprint of its client cert (DER)
    role = "postal"                        # optional: overrides the role from the agency's level

A key is presented as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; its hash is
compared with every client's hash in constant time (no early exit). With mTLS on, the TLS layer
has already verified the chain against ``tls_client_cafile``; the certificate's fingerprint
then names the client. When both a certificate and a key are presented they must name the
same agency.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lienthong.connectors.keyfile import entries, read_file, sha256_hex
from lienthong.domain.agencies import AgencyRegistry, load_agencies
from lienthong.domain.roles import Role, allowed_event_types, roles_for_level


class ClientsFileError(ValueError):
    """The clients file is malformed; one line naming the file, the entry and the field."""


@dataclass(frozen=True)
class Client:
    agency: str
    name: str
    roles: frozenset[Role]
    allowed: frozenset[str]
    api_key_sha256: str | None = None
    cert_sha256: str | None = None


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def _hex(raw: Mapping[str, Any], name: str, where: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    digest = sha256_hex(value)
    if digest is None:
        detail = " (a SHA-256)" if isinstance(value, str) else ""
        raise ClientsFileError(f"{where}: {name}: must be 64 hex digits{detail}")
    return digest


def parse_clients(text: str, path: str, registry: AgencyRegistry | None = None) -> list[Client]:
    registry = registry or load_agencies()
    fields = ("agency", "name", "api_key_sha256", "cert_sha256", "role")
    clients: list[Client] = []
    for where, raw in entries(text, path, "client", fields, ClientsFileError):
        agency = raw.get("agency")
        agency_info = registry.get(agency) if isinstance(agency, str) else None
        if agency_info is None:
            raise ClientsFileError(f"{where}: agency: {agency!r} is not in the agency registry")
        where = f"{where} {agency}"
        name = raw.get("name", agency)
        if not isinstance(name, str) or not name.strip():
            raise ClientsFileError(f"{where}: name: must be a non-empty string")
        role = raw.get("role")
        if role is None:
            roles = roles_for_level(agency_info.level)
        else:
            try:
                roles = frozenset({Role(role)})
            except ValueError:
                allowed = ", ".join(r.value for r in Role)
                raise ClientsFileError(f"{where}: role: must be one of {allowed}") from None
        key = _hex(raw, "api_key_sha256", where)
        cert = _hex(raw, "cert_sha256", where)
        if key is None and cert is None:
            raise ClientsFileError(f"{where}: needs api_key_sha256 or cert_sha256")
        clients.append(Client(agency, name, roles, allowed_event_types(roles), key, cert))
    certs = [c.cert_sha256 for c in clients if c.cert_sha256]
    if len(certs) != len(set(certs)):
        raise ClientsFileError(f"{path}: the same cert_sha256 is given to two clients")
    return clients


def load_clients(path: Path | None, registry: AgencyRegistry | None = None) -> list[Client]:
    if path is None:
        return []
    return parse_clients(read_file(path, ClientsFileError), str(path), registry)


class Authenticator:
    """Credential → :class:`Client`. All comparisons are constant-time."""

    def __init__(self, clients: Iterable[Client]) -> None:
        self.clients = tuple(clients)
        self._keyed = tuple(
            (bytes.fromhex(c.api_key_sha256), c) for c in self.clients if c.api_key_sha256
        )
        self._certs = {c.cert_sha256: c for c in self.clients if c.cert_sha256}

    def by_api_key(self, api_key: str) -> Client | None:
        digest = hashlib.sha256(api_key.encode("utf-8", "surrogateescape")).digest()
        found: Client | None = None
        for stored, client in self._keyed:  # no early exit: same work for every key
            if hmac.compare_digest(stored, digest):
                found = client
        return found

    def by_cert(self, der: bytes) -> Client | None:
        return self._certs.get(hashlib.sha256(der).hexdigest())


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The API key from ``Authorization: Bearer`` or ``X-API-Key`` (None when absent)."""
    auth = headers.get("Authorization")
    if auth:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return ""  # present but not a bearer credential: treated as wrong
    key = headers.get("X-API-Key")
    if key is not None:
        return key.strip()
    return None
