"""The agency registry (danh mục cơ quan): who may send and receive dossiers on the bus.

Agencies are identified by the national electronic agency code (mã định danh điện tử của cơ
quan, tổ chức): four dot-separated groups written from the lowest level to the highest, e.g.
``000.00.12.H10`` — level-4 (3 characters), level-3 (2), level-2 (2), level-1 (a letter and
two digits: the province or ministry). The registry is data so a province adds an agency
without a release; other components only ask whether a code is known and what it is.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType

__all__ = [
    "AGENCY_CODE_RE",
    "Agency",
    "AgencyDataError",
    "AgencyLevel",
    "AgencyRegistry",
    "is_valid_agency_code",
    "load_agencies",
]

# level4.level3.level2.level1 — digits/upper-case letters; level 1 is a letter + 2 digits.
AGENCY_CODE_RE = re.compile(r"^[0-9A-Z]{3}\.[0-9A-Z]{2}\.[0-9A-Z]{2}\.[A-Z][0-9]{2}$")


class AgencyLevel(StrEnum):
    PROVINCE_CENTER = "province_center"  # Trung tâm Phục vụ hành chính công tỉnh
    DEPARTMENT = "department"  # sở, ban, ngành (and their units)
    DISTRICT = "district"  # UBND cấp huyện
    COMMUNE = "commune"  # UBND cấp xã
    CENTRAL = "central"  # cơ quan ngành dọc Trung ương đóng tại địa phương


class AgencyDataError(ValueError):
    """The registry file is malformed; the message names the file, the agency and the field."""


def is_valid_agency_code(code: str) -> bool:
    return bool(AGENCY_CODE_RE.fullmatch(code))


@dataclass(frozen=True)
class Agency:
    code: str
    name: str
    level: AgencyLevel
    parent: str | None = None  # the agency this unit belongs to, if any
    short_name: str | None = None


class AgencyRegistry:
    """Read-only lookup of agencies by code."""

    def __init__(self, agencies: Mapping[str, Agency]) -> None:
        self._by_code: Mapping[str, Agency] = MappingProxyType(dict(agencies))

    def is_known(self, code: str) -> bool:
        return code in self._by_code

    def get(self, code: str) -> Agency | None:
        return self._by_code.get(code)

    def __getitem__(self, code: str) -> Agency:
        try:
            return self._by_code[code]
        except KeyError:
            raise KeyError(f"unknown agency code {code!r}") from None

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[Agency]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)

    def by_level(self, level: AgencyLevel | str) -> list[Agency]:
        lv = AgencyLevel(level)
        return [a for a in self._by_code.values() if a.level is lv]

    def name_of(self, code: str) -> str:
        """Human name for reports; falls back to the code for an unknown agency."""
        a = self._by_code.get(code)
        return a.name if a else code


def parse_agencies(text: str, path: str) -> AgencyRegistry:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AgencyDataError(f"{path}: not valid TOML: {exc}") from exc
    items = data.get("agency")
    if not isinstance(items, list) or not items:
        raise AgencyDataError(f"{path}: no [[agency]] entries")
    out: dict[str, Agency] = {}
    for i, raw in enumerate(items):
        code = raw.get("code") if isinstance(raw, dict) else None
        where = f"{path}: agency[{i}]" + (f" {code}" if isinstance(code, str) else "")
        if not isinstance(raw, dict):
            raise AgencyDataError(f"{where}: must be a table")
        unknown = set(raw) - {"code", "name", "level", "parent", "short_name"}
        if unknown:
            raise AgencyDataError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        if not isinstance(code, str) or not is_valid_agency_code(code):
            raise AgencyDataError(
                f"{where}: code: {code!r} is not an agency code like 000.00.12.H10"
            )
        if code in out:
            raise AgencyDataError(f"{where}: code: defined twice")
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            raise AgencyDataError(f"{where}: name: must be a non-empty string")
        try:
            level = AgencyLevel(raw.get("level"))
        except ValueError:
            allowed = ", ".join(lv.value for lv in AgencyLevel)
            raise AgencyDataError(f"{where}: level: must be one of {allowed}") from None
        parent = raw.get("parent")
        if parent is not None and (not isinstance(parent, str) or not is_valid_agency_code(parent)):
            raise AgencyDataError(f"{where}: parent: {parent!r} is not an agency code")
        out[code] = Agency(code, name, level, parent, raw.get("short_name"))
    for a in out.values():
        if a.parent is not None and a.parent not in out:
            raise AgencyDataError(f"{path}: agency {a.code}: parent: {a.parent} is not defined")
    return AgencyRegistry(out)


_default: AgencyRegistry | None = None


def load_agencies(path: Path | None = None) -> AgencyRegistry:
    """The packaged registry (``data/agencies.toml``), or the file at ``path``."""
    global _default
    if path is not None:
        return parse_agencies(path.read_text(encoding="utf-8"), str(path))
    if _default is None:
        res = resources.files("lienthong.domain").joinpath("data", "agencies.toml")
        _default = parse_agencies(
            res.read_text(encoding="utf-8"), "lienthong/domain/data/agencies.toml"
        )
    return _default
