"""The procedure catalogue (danh mục thủ tục hành chính) as validated data.

Each procedure carries what the machine needs to watch it: the legal maximum duration, the
ordered steps with the responsible agency and each step's share of the duration (so a slip can
say which agency made a dossier late), an optional cut-off hour, whether results may go by
post, and the online level. The file is validated when loaded, and every error names the
file, the procedure code, the field and why — a catalogue that loads is a catalogue the
deadline code can trust.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import time, timedelta
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from lienthong.domain.agencies import AgencyRegistry, load_agencies
from lienthong.domain.calendar import WorkingCalendar, default_calendar
from lienthong.domain.deadlines import Duration

__all__ = [
    "PROCEDURE_CODE_RE",
    "OnlineLevel",
    "Procedure",
    "ProcedureCatalogue",
    "ProcedureDataError",
    "Step",
    "load_procedures",
    "merge_procedures",
]

# National TTHC code: a digit, a dot, six digits (1.004227, 2.000881).
PROCEDURE_CODE_RE = re.compile(r"^[1-9]\.\d{6}$")
_HHMM_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class OnlineLevel(StrEnum):
    FULL = "full"  # dịch vụ công trực tuyến toàn trình
    PARTIAL = "partial"  # một phần


class ProcedureDataError(ValueError):
    """The catalogue is malformed: the message is ``file: procedure CODE: field: why``."""


@dataclass(frozen=True)
class Step:
    order: int  # 1-based; handoff events carry this number
    agency: str  # agency code
    task: str
    share: int  # percent of the procedure's duration

    def working_time(self, total: timedelta) -> timedelta:
        return total * self.share / 100


@dataclass(frozen=True)
class Procedure:
    code: str  # mã TTHC
    name: str
    sector: str
    level: str  # authority level: province | district | commune
    duration: Duration  # thời hạn giải quyết
    steps: tuple[Step, ...]
    cutoff: time | None  # received after this hour counts from the next working day
    postal_result: bool  # kết quả có thể trả qua bưu chính công ích
    online: OnlineLevel

    @property
    def inter_agency(self) -> bool:
        """Liên thông: more than one agency handles the dossier."""
        return len({s.agency for s in self.steps}) > 1

    def working_time(self, calendar: WorkingCalendar | None = None) -> timedelta:
        return self.duration.working_time(calendar or default_calendar())

    def step_working_time(self, order: int, calendar: WorkingCalendar | None = None) -> timedelta:
        """The step's allotment: its share of the legal duration."""
        return self.step(order).working_time(self.working_time(calendar))

    def step(self, order: int) -> Step:
        for s in self.steps:
            if s.order == order:
                return s
        raise KeyError(f"procedure {self.code} has no step {order}")


class ProcedureCatalogue:
    def __init__(self, procedures: Mapping[str, Procedure]) -> None:
        self._by_code: Mapping[str, Procedure] = MappingProxyType(dict(procedures))

    def is_known(self, code: str) -> bool:
        return code in self._by_code

    def get(self, code: str) -> Procedure | None:
        return self._by_code.get(code)

    def __getitem__(self, code: str) -> Procedure:
        try:
            return self._by_code[code]
        except KeyError:
            raise KeyError(f"unknown procedure {code!r}") from None

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[Procedure]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)


_PROC_FIELDS = {
    "code",
    "name",
    "sector",
    "level",
    "duration",
    "cutoff",
    "postal_result",
    "online",
    "step",
}
_STEP_FIELDS = {"agency", "task", "share"}


def _need(cond: bool, path: str, code: str, field: str, why: str) -> None:
    if not cond:
        raise ProcedureDataError(f"{path}: procedure {code}: {field}: {why}")


def _parse_procedure(raw: Any, index: int, path: str, agencies: AgencyRegistry) -> Procedure:
    if not isinstance(raw, dict):
        raise ProcedureDataError(f"{path}: procedure[{index}]: must be a table")
    code = raw.get("code")
    label = code if isinstance(code, str) else f"[{index}]"
    _need(
        isinstance(code, str) and bool(PROCEDURE_CODE_RE.fullmatch(code)),
        path,
        label,
        "code",
        f"{code!r} is not a national procedure code like 1.004227",
    )
    assert isinstance(code, str)
    unknown = set(raw) - _PROC_FIELDS
    _need(not unknown, path, code, ", ".join(sorted(unknown)), "unknown field")
    for key in ("name", "sector"):
        v = raw.get(key)
        _need(isinstance(v, str) and bool(v.strip()), path, code, key, "must be a non-empty string")
    level = raw.get("level")
    _need(
        level in ("province", "district", "commune"),
        path,
        code,
        "level",
        "must be province, district or commune",
    )
    dur_raw = raw.get("duration")
    try:
        duration = Duration.parse(dur_raw) if isinstance(dur_raw, str) else None
    except ValueError:
        duration = None
    _need(
        duration is not None and duration.amount > 0,
        path,
        code,
        "duration",
        f"{dur_raw!r} is not a positive duration like '15d' (working days) or '8h'",
    )
    assert duration is not None
    cutoff_raw = raw.get("cutoff")
    cutoff: time | None = None
    if cutoff_raw is not None:
        _need(
            isinstance(cutoff_raw, str) and bool(_HHMM_RE.fullmatch(cutoff_raw)),
            path,
            code,
            "cutoff",
            f"{cutoff_raw!r} is not an hour like '15:00'",
        )
        cutoff = time.fromisoformat(cutoff_raw)
    postal = raw.get("postal_result")
    _need(isinstance(postal, bool), path, code, "postal_result", "must be true or false")
    try:
        online = OnlineLevel(raw.get("online"))
    except ValueError:
        raise ProcedureDataError(
            f"{path}: procedure {code}: online: must be 'full' or 'partial'"
        ) from None
    steps_raw = raw.get("step")
    _need(
        isinstance(steps_raw, list) and len(steps_raw) > 0,
        path,
        code,
        "step",
        "at least one [[procedure.step]] is required",
    )
    assert isinstance(steps_raw, list)
    steps: list[Step] = []
    for i, s in enumerate(steps_raw, start=1):
        where = f"step[{i}]"
        _need(isinstance(s, dict), path, code, where, "must be a table")
        extra = set(s) - _STEP_FIELDS
        _need(not extra, path, code, f"{where}.{', '.join(sorted(extra))}", "unknown field")
        agency = s.get("agency")
        _need(
            isinstance(agency, str) and agencies.is_known(agency),
            path,
            code,
            f"{where}.agency",
            f"{agency!r} is not in the agency registry",
        )
        task = s.get("task")
        _need(isinstance(task, str) and bool(task.strip()), path, code, f"{where}.task", "empty")
        share = s.get("share")
        _need(
            type(share) is int and 0 < share <= 100,
            path,
            code,
            f"{where}.share",
            f"{share!r} must be a whole percentage between 1 and 100",
        )
        steps.append(Step(i, agency, task, share))  # type: ignore[arg-type]
    total = sum(s.share for s in steps)
    _need(total == 100, path, code, "step.share", f"shares add up to {total}%, not 100%")
    return Procedure(
        code=code,
        name=raw["name"],
        sector=raw["sector"],
        level=level,  # type: ignore[arg-type]
        duration=duration,
        steps=tuple(steps),
        cutoff=cutoff,
        postal_result=postal,  # type: ignore[arg-type]
        online=online,
    )


def parse_procedures(
    text: str, path: str, agencies: AgencyRegistry | None = None
) -> ProcedureCatalogue:
    agencies = agencies or load_agencies()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProcedureDataError(f"{path}: not valid TOML: {exc}") from exc
    items = data.get("procedure")
    if not isinstance(items, list) or not items:
        raise ProcedureDataError(f"{path}: no [[procedure]] entries")
    out: dict[str, Procedure] = {}
    for i, raw in enumerate(items):
        p = _parse_procedure(raw, i, path, agencies)
        _need(p.code not in out, path, p.code, "code", "defined twice")
        out[p.code] = p
    return ProcedureCatalogue(out)


GENERATED_FILE = "procedures_generated.toml"
_defaults: dict[bool, ProcedureCatalogue] = {}


def _packaged(agencies: AgencyRegistry | None, include_generated: bool) -> ProcedureCatalogue:
    """The hand-written file, then the generated one (if shipped) in the same catalogue.

    The real procedures come first so their volume rank (the simulator's Zipf weights follow
    catalogue order) stays at the top; a code defined in both files is an error.
    """
    data = resources.files("lienthong.domain").joinpath("data")
    real = parse_procedures(
        data.joinpath("procedures.toml").read_text(encoding="utf-8"),
        "lienthong/domain/data/procedures.toml",
        agencies,
    )
    generated = data.joinpath(GENERATED_FILE)
    if not include_generated or not generated.is_file():
        return real
    path = f"lienthong/domain/data/{GENERATED_FILE}"
    extra = parse_procedures(generated.read_text(encoding="utf-8"), path, agencies)
    return merge_procedures(real, extra, path)


def merge_procedures(
    first: ProcedureCatalogue, second: ProcedureCatalogue, second_path: str
) -> ProcedureCatalogue:
    """``first`` then ``second`` in one catalogue; a code in both is an error naming the file
    (a generated procedure must never shadow a real one)."""
    merged = {p.code: p for p in first}
    for p in second:
        _need(p.code not in merged, second_path, p.code, "code", "already defined earlier")
        merged[p.code] = p
    return ProcedureCatalogue(merged)


def load_procedures(
    path: Path | None = None,
    agencies: AgencyRegistry | None = None,
    *,
    include_generated: bool = True,
) -> ProcedureCatalogue:
    """The packaged catalogue, or the file at ``path``.

    Packaged = ``data/procedures.toml`` (the hand-written real procedures) merged with
    ``data/procedures_generated.toml`` (the province-sized synthetic remainder, see
    ``lienthong.simulators.catalogue``), so every component that loads the default catalogue —
    the stream workers and the simulator alike — knows the same ~1,300 procedures.
    ``include_generated=False`` gives the hand-written ones only.
    """
    if path is not None:
        return parse_procedures(path.read_text(encoding="utf-8"), str(path), agencies)
    if agencies is not None:
        return _packaged(agencies, include_generated)
    if include_generated not in _defaults:
        _defaults[include_generated] = _packaged(None, include_generated)
    return _defaults[include_generated]
