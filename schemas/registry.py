"""Schema registries: where Confluent-framed records find their writer schema by id.

Two implementations of one small interface:

* :class:`FileSchemaRegistry` — the embedded default, a JSON file under the run dir. Several
  processes (workers, simulators, the CLI) share it, so every read-modify-write holds an
  exclusive ``fcntl`` lock and the file is replaced atomically (write temp + ``os.replace``);
  ids are never reused or renumbered, and registering a schema that is already there (under
  any subject) returns its existing id, as the Confluent registry does.
* :class:`HttpSchemaRegistry` — a client for the Confluent Schema Registry REST API, used when
  ``schema_registry_url`` is configured, so a national deployment shares the standard tool.

Subjects follow RecordNameStrategy (subject = the record's full name, e.g.
``lienthong.events.DossierReceived``): one topic carries many event types, and one event type
may travel on several topics, while compatibility is a property of the event contract.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lienthong.schemas.errors import RegistryUnavailable, SchemaNotFound

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


def canonical_schema(schema: str | dict[str, Any]) -> str:
    """Stable text of a schema (sorted keys, no whitespace) used for identity and registration."""
    parsed = json.loads(schema) if isinstance(schema, str) else schema
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def subject_for(record_full_name: str) -> str:
    """RecordNameStrategy subject name."""
    return record_full_name


class SchemaRegistry(Protocol):
    """What the codec needs from a registry."""

    def register(self, subject: str, schema: str) -> int:
        """Register ``schema`` under ``subject`` (idempotent) and return its global id."""
        ...

    def get_schema(self, schema_id: int) -> str:
        """The schema text for ``schema_id``; raises SchemaNotFound when there is none."""
        ...


@dataclass(frozen=True)
class RegistrySnapshot:
    """The whole registry at one instant: global ids and each subject's versions.

    Version N of a subject is the N-th id registered under it (``subjects[s][N - 1]``), as in
    the Confluent registry, where versions count per subject and ids are global.
    """

    schemas: dict[int, str]
    subjects: dict[str, tuple[int, ...]]


class FileSchemaRegistry:
    """Registry in one JSON file, safe for several processes on one machine."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    @contextlib.contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"format": 1, "next_id": 1, "schemas": {}, "subjects": {}}
        except json.JSONDecodeError as exc:
            raise RegistryUnavailable(
                f"schema registry file {self.path} is corrupt: {exc}"
            ) from exc
        return data

    def _write(self, data: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=1, ensure_ascii=False, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def register(self, subject: str, schema: str) -> int:
        text = canonical_schema(schema)
        with self._locked(exclusive=True):
            data = self._read()
            schema_id = next(
                (int(k) for k, v in data["schemas"].items() if v == text),
                None,
            )
            changed = False
            if schema_id is None:
                schema_id = int(data["next_id"])
                data["next_id"] = schema_id + 1
                data["schemas"][str(schema_id)] = text
                changed = True
            versions = data["subjects"].setdefault(subject, [])
            if schema_id not in versions:
                versions.append(schema_id)
                changed = True
            if changed:
                self._write(data)
            return schema_id

    def get_schema(self, schema_id: int) -> str:
        with self._locked(exclusive=False):
            data = self._read()
        try:
            return str(data["schemas"][str(schema_id)])
        except KeyError:
            raise SchemaNotFound(schema_id) from None

    def snapshot(self) -> RegistrySnapshot:
        """Everything in the file, read once under the shared lock."""
        with self._locked(exclusive=False):
            data = self._read()
        return RegistrySnapshot(
            schemas={int(k): str(v) for k, v in data["schemas"].items()},
            subjects={k: tuple(int(i) for i in v) for k, v in data["subjects"].items()},
        )

    def file_stamp(self) -> tuple[int, int, int] | None:
        """Changes whenever the file is replaced (inode, size, mtime); None when absent.

        Writers replace the file atomically, so a new inode is enough even when two writes
        land within the file system's mtime resolution.
        """
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def subjects(self) -> dict[str, list[int]]:
        """Subject -> schema ids in registration order (version N is index N-1)."""
        with self._locked(exclusive=False):
            return {k: list(v) for k, v in self._read()["subjects"].items()}


class HttpSchemaRegistry:
    """Confluent Schema Registry REST client on the standard library (no extra dependency)."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read().decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                detail = {}
            if exc.code == 404 and detail.get("error_code") in (40403, None) and "/ids/" in path:
                raise SchemaNotFound(path.rsplit("/", 1)[-1]) from None
            message = detail.get("message", exc.reason)
            raise RegistryUnavailable(
                f"schema registry {method} {path}: HTTP {exc.code}: {message}"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise RegistryUnavailable(f"schema registry {self.url} unreachable: {exc}") from None

    def register(self, subject: str, schema: str) -> int:
        quoted = urllib.parse.quote(subject, safe="")
        answer = self._call("POST", f"/subjects/{quoted}/versions", {"schema": schema})
        return int(answer["id"])

    def get_schema(self, schema_id: int) -> str:
        answer = self._call("GET", f"/schemas/ids/{int(schema_id)}")
        return str(answer["schema"])


def registry_from_settings(settings: Any) -> SchemaRegistry:
    """HTTP registry when ``schema_registry_url`` is configured, else the run-dir file."""
    if getattr(settings, "schema_registry_url", None):
        return HttpSchemaRegistry(settings.schema_registry_url)
    return FileSchemaRegistry(Path(settings.run_dir) / "schema-registry.json")
