"""Schema evolution gate: Avro schema-resolution rules, checked release against release.

Agencies upgrade their systems on their own schedules, so a contract change must never strand a
reader. BACKWARD (the default) means a reader with the new schema reads data written with the
previous released one; FORWARD means a reader still on the previous schema reads new data; FULL
is both and is what every catalogue event declares (``"compatibility": "FULL"`` in its .avsc).

The rules are implemented here rather than borrowed so each finding can name the event, the
field path and the reason in one line. They follow the Avro specification's resolution rules:
records match by full name (or reader alias) and fields by name (or reader field alias); a reader
field missing from the writer needs a default; primitives may only be promoted
int→long→float→double and string↔bytes; a changed logical type changes meaning and is refused;
every writer enum symbol must exist in the reader unless the reader enum has a default; every
writer union branch must resolve against the reader; arrays, maps and nested records recurse.
Documentation-only changes (``doc``) are ignored.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lienthong.schemas.catalogue import (
    RELEASED_DIR,
    event_schemas,
    load_schema_file,
    released_versions,
)
from lienthong.schemas.models import AVRO_DIR

PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
PROMOTIONS = {
    "int": ("long", "float", "double"),
    "long": ("float", "double"),
    "float": ("double",),
    "string": ("bytes",),
    "bytes": ("string",),
}


@dataclass(frozen=True)
class Incompatibility:
    """One finding: ``event: path: why``."""

    event: str
    path: str
    why: str

    def line(self) -> str:
        return f"{self.event}: {self.path}: {self.why}"


# --- named-type indexing ------------------------------------------------------------------------


def _full_name(name: str, namespace: str | None) -> str:
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


class _Schema:
    """A parsed schema with its named types indexed (namespace rules of the Avro spec)."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.names: dict[str, tuple[dict[str, Any], str | None]] = {}
        self._index(root, None)

    def _index(self, node: Any, namespace: str | None) -> None:
        if isinstance(node, list):
            for branch in node:
                self._index(branch, namespace)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind in ("record", "error", "enum", "fixed"):
                full = _full_name(node["name"], node.get("namespace", namespace))
                inner_ns = full.rsplit(".", 1)[0] if "." in full else None
                self.names[full] = (node, inner_ns)
                for field in node.get("fields", ()) if kind != "enum" else ():
                    self._index(field["type"], inner_ns)
            elif kind == "array":
                self._index(node["items"], namespace)
            elif kind == "map":
                self._index(node["values"], namespace)
            elif isinstance(kind, dict | list):
                self._index(kind, namespace)

    def resolve(self, node: Any, namespace: str | None) -> tuple[Any, str | None]:
        """Follow name references and ``{"type": <schema>}`` wrappers to a concrete node."""
        while True:
            if isinstance(node, str) and node not in PRIMITIVES:
                full = _full_name(node, namespace)
                if full not in self.names and node in self.names:
                    full = node
                if full not in self.names:
                    raise ValueError(f"unknown named type {node!r}")
                return self.names[full]
            if isinstance(node, dict) and isinstance(node.get("type"), dict | list):
                node = node["type"]
                continue
            if isinstance(node, dict) and node.get("type") in ("record", "error", "enum", "fixed"):
                full = _full_name(node["name"], node.get("namespace", namespace))
                return self.names[full]
            return node, namespace


def _kind(node: Any) -> str:
    if isinstance(node, list):
        return "union"
    if isinstance(node, str):
        return node
    kind = node.get("type")
    return "record" if kind == "error" else str(kind)


def _logical(node: Any) -> str | None:
    return node.get("logicalType") if isinstance(node, dict) else None


def _describe(node: Any) -> str:
    kind = _kind(node)
    if kind in ("record", "enum", "fixed"):
        return f"{kind} {node['name']}"
    if kind == "array":
        return "array"
    if kind == "map":
        return "map"
    if kind == "union":
        return "union"
    logical = _logical(node)
    return f"{kind} ({logical})" if logical else kind


# --- resolution ---------------------------------------------------------------------------------


class _Checker:
    def __init__(self, reader: _Schema, writer: _Schema, reader_label: str, writer_label: str):
        self.reader = reader
        self.writer = writer
        self.r = reader_label  # e.g. "new reader"
        self.w = writer_label  # e.g. "old data"
        self._seen: set[tuple[int, int]] = set()

    def check(self, path: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        self._compat(self.reader.root, None, self.writer.root, None, path, out)
        return out

    def _matches(self, r: Any, r_ns: str | None, w: Any, w_ns: str | None) -> bool:
        probe: list[tuple[str, str]] = []
        saved = set(self._seen)
        self._compat(r, r_ns, w, w_ns, "", probe)
        self._seen = saved
        return not probe

    def _compat(
        self,
        r: Any,
        r_ns: str | None,
        w: Any,
        w_ns: str | None,
        path: str,
        out: list[tuple[str, str]],
    ) -> None:
        r, r_ns = self.reader.resolve(r, r_ns)
        w, w_ns = self.writer.resolve(w, w_ns)
        rk, wk = _kind(r), _kind(w)
        if wk == "union":
            for branch in w:
                b, b_ns = self.writer.resolve(branch, w_ns)
                if rk == "union":
                    ok = any(self._matches(rb, r_ns, b, b_ns) for rb in r)
                else:
                    ok = self._matches(r, r_ns, b, b_ns)
                if not ok:
                    target = "any branch of the union" if rk == "union" else _describe(r)
                    out.append(
                        (
                            path,
                            f"union branch {_describe(b)} of {self.w} has no match in "
                            f"{target} of the {self.r}",
                        )
                    )
            return
        if rk == "union":
            if not any(self._matches(rb, r_ns, w, w_ns) for rb in r):
                out.append(
                    (
                        path,
                        f"type {_describe(w)} of {self.w} is not a branch of the {self.r}'s union",
                    )
                )
            return
        if rk in PRIMITIVES and wk in PRIMITIVES:
            if rk == wk:
                if _logical(r) != _logical(w):
                    out.append(
                        (
                            path,
                            f"logical type changed from {_logical(w)} ({self.w}) to "
                            f"{_logical(r)} ({self.r})",
                        )
                    )
            elif rk not in PROMOTIONS.get(wk, ()):
                out.append(
                    (
                        path,
                        f"type changed from {_describe(w)} ({self.w}) to {_describe(r)} "
                        f"({self.r}), not a permitted promotion",
                    )
                )
            return
        if rk != wk:
            out.append(
                (path, f"type changed from {_describe(w)} ({self.w}) to {_describe(r)} ({self.r})")
            )
            return
        if rk == "array":
            self._compat(r["items"], r_ns, w["items"], w_ns, f"{path}[]", out)
        elif rk == "map":
            self._compat(r["values"], r_ns, w["values"], w_ns, f"{path}{{}}", out)
        elif rk == "fixed":
            self._names_match(r, r_ns, w, w_ns, path, out)
            if r.get("size") != w.get("size"):
                out.append((path, f"fixed size changed from {w.get('size')} to {r.get('size')}"))
        elif rk == "enum":
            self._names_match(r, r_ns, w, w_ns, path, out)
            missing = [s for s in w["symbols"] if s not in r["symbols"]]
            if missing and "default" not in r:
                out.append(
                    (
                        path,
                        f"enum symbol(s) {', '.join(missing)} of {self.w} missing from the "
                        f"{self.r} (removed or renamed) and the {self.r}'s enum has no default",
                    )
                )
        elif rk == "record":
            self._names_match(r, r_ns, w, w_ns, path, out)
            key = (id(r), id(w))
            if key in self._seen:
                return
            self._seen.add(key)
            writer_fields = {f["name"]: f for f in w.get("fields", ())}
            for field in r.get("fields", ()):
                names = [field["name"], *field.get("aliases", ())]
                match = next((writer_fields[n] for n in names if n in writer_fields), None)
                sub = f"{path}.{field['name']}" if path else field["name"]
                if match is None:
                    if "default" not in field:
                        out.append(
                            (
                                sub,
                                f"field is in the {self.r} but not in {self.w} and the "
                                f"{self.r} gives it no default",
                            )
                        )
                    continue
                self._compat(field["type"], r_ns, match["type"], w_ns, sub, out)

    def _names_match(
        self,
        r: dict[str, Any],
        r_ns: str | None,
        w: dict[str, Any],
        w_ns: str | None,
        path: str,
        out: list[tuple[str, str]],
    ) -> None:
        r_full = _full_name(r["name"], r.get("namespace", r_ns))
        w_full = _full_name(w["name"], w.get("namespace", w_ns))
        aliases = {_full_name(a, r.get("namespace", r_ns)) for a in r.get("aliases", ())}
        if r_full != w_full and w_full not in aliases:
            out.append((path or "<record>", f"{_kind(r)} renamed from {w_full} to {r_full}"))


def check_pair(
    event: str, new: dict[str, Any], old: dict[str, Any], compatibility: str = "BACKWARD"
) -> list[Incompatibility]:
    """Findings for ``new`` against the previous released ``old`` under ``compatibility``."""
    level = compatibility.upper()
    findings: list[Incompatibility] = []
    new_s, old_s = _Schema(new), _Schema(old)
    if level in ("BACKWARD", "FULL"):
        for path, why in _Checker(new_s, old_s, "new schema", "old data").check(""):
            findings.append(Incompatibility(event, path or "<record>", f"BACKWARD: {why}"))
    if level in ("FORWARD", "FULL"):
        for path, why in _Checker(old_s, new_s, "old schema", "new data").check(""):
            findings.append(Incompatibility(event, path or "<record>", f"FORWARD: {why}"))
    return findings


def _without_docs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_docs(v) for k, v in node.items() if k != "doc"}
    if isinstance(node, list):
        return [_without_docs(v) for v in node]
    return node


def same_contract(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal apart from documentation."""
    return json.dumps(_without_docs(a), sort_keys=True) == json.dumps(
        _without_docs(b), sort_keys=True
    )


@dataclass
class CheckReport:
    findings: list[Incompatibility]
    notes: list[str]

    @property
    def ok(self) -> bool:
        return not self.findings


def check_catalogue(avro_dir: Path = AVRO_DIR, released_dir: Path = RELEASED_DIR) -> CheckReport:
    """Compare every current schema with its latest released version."""
    findings: list[Incompatibility] = []
    notes: list[str] = []
    current = event_schemas(avro_dir)
    for event, schema in current.items():
        versions = released_versions(event, released_dir)
        if not versions:
            notes.append(f"{event}: new, no released version yet (v{schema.version} on release)")
            continue
        latest = max(versions)
        old = load_schema_file(versions[latest])
        level = schema.compatibility
        if level not in ("BACKWARD", "FORWARD", "FULL", "NONE"):
            findings.append(Incompatibility(event, "compatibility", f"unknown level {level!r}"))
            continue
        findings.extend(check_pair(event, schema.schema, old, level))
        if schema.version < latest:
            findings.append(
                Incompatibility(
                    event, "schema_version", f"{schema.version} is lower than released v{latest}"
                )
            )
        elif schema.version == latest and not same_contract(schema.schema, old):
            findings.append(
                Incompatibility(
                    event,
                    "schema_version",
                    f"schema differs from released v{latest} but schema_version is still "
                    f"{latest}; bump it and run `lienthong schemas release`",
                )
            )
    if released_dir.is_dir():
        for folder in sorted(p for p in released_dir.iterdir() if p.is_dir()):
            if folder.name not in current and released_versions(folder.name, released_dir):
                findings.append(
                    Incompatibility(folder.name, "<event>", "released event type was removed")
                )
    return CheckReport(findings, notes)


def release_catalogue(avro_dir: Path = AVRO_DIR, released_dir: Path = RELEASED_DIR) -> list[Path]:
    """Snapshot every new or changed schema as ``released/<event>/v<schema_version>.avsc``.

    Refuses (ValueError) while the gate has findings, so an incompatible change can never become
    the baseline the next change is judged against.
    """
    report = check_catalogue(avro_dir, released_dir)
    if not report.ok:
        raise ValueError(
            f"{len(report.findings)} incompatibilities; fix them before releasing "
            f"(first: {report.findings[0].line()})"
        )
    written: list[Path] = []
    for event, schema in event_schemas(avro_dir).items():
        versions = released_versions(event, released_dir)
        if versions and same_contract(schema.schema, load_schema_file(versions[max(versions)])):
            continue
        target = released_dir / event / f"v{schema.version}.avsc"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(schema.path, target)
        written.append(target)
    return written
