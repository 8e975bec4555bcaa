"""The TOML credential files of the edges: the gateway's ``[[client]]`` and the console's
``[[user]]`` entries. Both hold SHA-256 hashes of API keys, never keys, and both refuse a
malformed file with one line naming the file, the entry and the field; the reading and the
entry checks they share live here, the meaning of each field stays with its edge.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection
from pathlib import Path
from typing import Any

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def read_file(path: Path, error: type[ValueError]) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from exc


def entries(
    text: str, path: str, table: str, fields: Collection[str], error: type[ValueError]
) -> list[tuple[str, dict[str, Any]]]:
    """``(where, entry)`` of every ``[[table]]``: a table each, with no field outside ``fields``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from exc
    items = data.get(table, [])
    if not isinstance(items, list):
        raise error(f"{path}: [[{table}]] entries expected")
    out = []
    for i, raw in enumerate(items):
        where = f"{path}: {table}[{i}]"
        if not isinstance(raw, dict):
            raise error(f"{where}: must be a table")
        unknown = set(raw) - set(fields)
        if unknown:
            raise error(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        out.append((where, raw))
    return out


def sha256_hex(value: Any) -> str | None:
    """A SHA-256 in hex, normalised (lower case, ``:`` separators dropped), or None if not one."""
    if not isinstance(value, str):
        return None
    value = value.replace(":", "").lower()
    return value if _HEX64.fullmatch(value) else None
