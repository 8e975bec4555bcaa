"""Console users and sessions (functional core, no HTTP).

Deny by default: with no users file nobody can log in, and every page but the login form
needs a session or an API key. The users file follows the gateway's clients file (TOML, the
key stored only as its SHA-256)::

    [[user]]
    name = "Nguyễn Văn A"          # shown in the header and recorded in the redrive audit
    role = "operator"               # monitor (cán bộ giám sát: read-only) | operator (redrive)
    api_key_sha256 = "9f86d0…"
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from lienthong.connectors.keyfile import entries, read_file, sha256_hex


class UsersFileError(ValueError):
    """The users file is malformed; one line naming the file, the entry and the field."""


class ConsoleRole(StrEnum):
    MONITOR = "monitor"  # cán bộ giám sát: xem
    OPERATOR = "operator"  # vận hành: xem và gửi lại thư chết (redrive)


@dataclass(frozen=True)
class User:
    name: str
    role: ConsoleRole
    api_key_sha256: str

    @property
    def may_redrive(self) -> bool:
        return self.role is ConsoleRole.OPERATOR


def parse_users(text: str, path: str) -> list[User]:
    users: list[User] = []
    fields = ("name", "role", "api_key_sha256")
    for where, raw in entries(text, path, "user", fields, UsersFileError):
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            raise UsersFileError(f"{where}: name: must be a non-empty string")
        try:
            role = ConsoleRole(raw.get("role"))
        except ValueError:
            raise UsersFileError(f"{where} {name}: role: must be monitor or operator") from None
        key = sha256_hex(raw.get("api_key_sha256"))
        if key is None:
            raise UsersFileError(f"{where} {name}: api_key_sha256: must be 64 hex digits")
        users.append(User(name.strip(), role, key))
    return users


def load_users(path: Path | None) -> list[User]:
    if path is None:
        return []
    return parse_users(read_file(path, UsersFileError), str(path))


@dataclass
class Session:
    user: User
    csrf: str
    expires: float


@dataclass
class Gatekeeper:
    """API key → user (constant time), and the sessions the login form opens."""

    users: tuple[User, ...]
    ttl_s: float = 8 * 3600.0
    sessions: dict[str, Session] = field(default_factory=dict)
    # Guessing keys on the login form: this many wrong keys from one address within the
    # window, and that address is refused until the window has passed.
    max_failures: int = 5
    failure_window_s: float = 300.0
    failures: dict[str, list[float]] = field(default_factory=dict)

    def blocked(self, remote: str, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        recent = [t for t in self.failures.get(remote, ()) if now - t < self.failure_window_s]
        if recent:
            self.failures[remote] = recent
        else:
            self.failures.pop(remote, None)
        return len(recent) >= self.max_failures

    def note_failure(self, remote: str, now: float | None = None) -> None:
        self.failures.setdefault(remote, []).append(time.time() if now is None else now)

    @classmethod
    def of(cls, users: Iterable[User]) -> Gatekeeper:
        return cls(tuple(users))

    def by_key(self, api_key: str) -> User | None:
        digest = hashlib.sha256(api_key.encode("utf-8", "surrogateescape")).digest()
        found: User | None = None
        for user in self.users:  # no early exit: the same work for every key
            if hmac.compare_digest(bytes.fromhex(user.api_key_sha256), digest):
                found = user
        return found

    def open_session(self, user: User, now: float | None = None) -> str:
        token = secrets.token_urlsafe(32)
        now = time.time() if now is None else now
        self.sessions[token] = Session(user, secrets.token_urlsafe(24), now + self.ttl_s)
        return token

    def session(self, token: str | None, now: float | None = None) -> Session | None:
        if not token:
            return None
        found = self.sessions.get(token)
        now = time.time() if now is None else now
        if found is None or found.expires < now:
            self.sessions.pop(token, None)
            return None
        return found

    def close_session(self, token: str | None) -> None:
        if token:
            self.sessions.pop(token, None)


def write_demo_users(directory: Path) -> Path:
    """Fresh console users for ``up --demo``: one monitoring officer, one operator.

    Like the demo's gateway keys: the users file holds hashes only; the keys are written
    beside it (mode 0600) for the person running the demo.
    """
    import json
    import os

    directory.mkdir(parents=True, exist_ok=True)
    keys, entries = [], []
    for name, role in (("Cán bộ giám sát (demo)", "monitor"), ("Vận hành (demo)", "operator")):
        key = "console-" + secrets.token_urlsafe(24)
        keys.append({"name": name, "role": role, "api_key": key})
        digest = hashlib.sha256(key.encode()).hexdigest()
        entries.append(f'[[user]]\nname = "{name}"\nrole = "{role}"\napi_key_sha256 = "{digest}"')
    for path, text in (
        (directory / "console-users.toml", "\n\n".join(entries) + "\n"),
        (directory / "console-keys.json", json.dumps(keys, ensure_ascii=False, indent=2) + "\n"),
    ):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
    return directory / "console-users.toml"
