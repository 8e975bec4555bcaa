"""Portal status records built from decisions (lienthong.streams.portal), no broker."""

from __future__ import annotations

import uuid

from lienthong.domain.procedures import load_procedures
from lienthong.schemas import encode
from lienthong.streams.portal import PORTAL_NAMESPACE, PortalRecords
from tests.integration.test_streams_scenarios import PROC, march_script
from tests.unit.domain.test_decide import run


def test_the_scripted_postal_dossier_gives_the_portal_its_fields_and_whole_log():
    parts = run(load_procedures(), march_script())
    postal = [s for p in parts for d, s in p.portal if d == "HS-POSTAL"]
    records = PortalRecords()
    built = [records.build("HS-POSTAL", s) for s in postal]
    last = built[-1]
    assert last.NgayTra == "20250311090000" and last.KenhThucHien == 3 and last.MaTTHC == PROC
    assert [r.TrangThaiHoSo for r in built] == [2, 5, 2, 5, 2, 9, 10]
    assert [len(r.QuaTrinhXuLy) for r in built] == [1, 2, 3, 4, 5, 6, 7]
    assert last.envelope.event_id == uuid.uuid5(PORTAL_NAMESPACE, postal[-1].view["event_id"])
    # A line is validated once and shared by every later record of the dossier.
    assert last.QuaTrinhXuLy[0] is built[0].QuaTrinhXuLy[0]
    # Built again, by another instance with its caches cleared as it goes: the same bytes.
    tiny = PortalRecords(max_dates=1, max_lines=1)
    assert [encode(tiny.build("HS-POSTAL", s)) for s in postal] == [encode(r) for r in built]
