"""Portal status records (Trạng thái hồ sơ gửi Cổng DVC quốc gia) from the tracker's decision.

An object, not module-level caches, so a test builds one. Why it caches at all: every portal
record repeats the dossier's whole processing log (QuaTrinhXuLy), so the same instants are
rendered again and again and the same lines validated again; the caches are bounded (cleared
when they grow large) and the models are frozen, so one line instance serves many records.
Every field is a function of the decision, so a record built again is identical.

The log a record carries is bounded: the newest ``max_progress`` lines (oldest first, as the
portal expects). Without the bound a dossier's records grow with its events, so the bytes
sent per dossier grow with the square of its events, and a record re-emitted after a
redelivery repeats them all. Typical dossiers have 3-10 events and keep their whole log; a
longer one's older lines went to the portal in the earlier records of the dossier.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from lienthong.domain.decide import PortalStatus
from lienthong.schemas.models import PortalStatusRecord, ProgressEntry, to_portal_date

__all__ = ["MAX_PROGRESS_LINES", "PORTAL_NAMESPACE", "PortalRecords"]

# The newest QuaTrinhXuLy lines a portal record carries (see the module docstring).
MAX_PROGRESS_LINES = 20

PORTAL_NAMESPACE = uuid.UUID("0b9c9d4e-3a51-5a0e-8f3e-706f7274616c")


class PortalRecords:
    def __init__(
        self,
        max_dates: int = 100_000,
        max_lines: int = 50_000,
        max_progress: int = MAX_PROGRESS_LINES,
    ) -> None:
        if max_progress < 1:
            raise ValueError(f"max_progress must be at least 1, not {max_progress}")
        self._max_progress = max_progress
        self._max_dates = max_dates
        self._max_lines = max_lines
        self._dates: dict[datetime | str, str] = {}  # instant -> portal date
        self._lines: dict[tuple[str, datetime, str, int], ProgressEntry] = {}

    def date(self, value: datetime | str | None) -> str | None:
        """The portal's rendering (yyyyMMddHHmmss, Vietnam time) of an instant (or ISO text)."""
        if value is None:
            return None
        rendered = self._dates.get(value)
        if rendered is None:
            if len(self._dates) >= self._max_dates:
                self._dates.clear()
            instant = datetime.fromisoformat(value) if isinstance(value, str) else value
            rendered = self._dates[value] = to_portal_date(instant)
        return rendered

    def line(self, agency: str, at: datetime, note: str, status: int) -> ProgressEntry:
        """One QuaTrinhXuLy line, validated once per content."""
        key = (agency, at, note, status)
        entry = self._lines.get(key)
        if entry is None:
            if len(self._lines) >= self._max_lines:
                self._lines.clear()
            entry = self._lines[key] = ProgressEntry(
                NguoiXuLy=agency,
                DonViXuLy=agency,
                ThoiDiemXuLy=self.date(at),
                NoiDungXuLy=note,
                TrangThaiHoSo=status,
            )
        return entry

    def build(self, dossier_id: str, portal: PortalStatus) -> PortalStatusRecord:
        """The record; its event id is uuid5 of the source event's, so a repeat is the same;
        its log is the newest ``max_progress`` lines of the decision's."""
        v = portal.view
        at = datetime.fromisoformat(v["at"])
        pd = self.date
        return PortalStatusRecord.create(
            event_id=uuid.uuid5(PORTAL_NAMESPACE, v["event_id"]),
            dossier_id=dossier_id,
            producer_agency=v["DonViXuLy"],
            occurred_at=at,
            recorded_at=at,
            MaHoSo=v["MaHoSo"],
            MaTTHC=v["MaTTHC"],
            NgayTiepNhan=pd(v["NgayTiepNhan"]),
            NgayHenTra=pd(v["NgayHenTra"]),
            TrangThaiHoSo=v["TrangThaiHoSo"],
            KenhThucHien=v["KenhThucHien"],
            NgayKetThucXuLy=pd(v["NgayKetThucXuLy"]),
            NgayTra=pd(v["NgayTra"]),
            DonViXuLy=v["DonViXuLy"],
            QuaTrinhXuLy=[
                self.line(e.agency, e.at, e.note, e.status)
                for e in portal.progress[-self._max_progress :]
            ],
        )
