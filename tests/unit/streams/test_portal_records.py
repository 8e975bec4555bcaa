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


def test_a_portal_record_carries_only_the_newest_lines_of_a_long_log():
    """Bounded records: a dossier with many events (or a re-emission of its record) does not
    send its whole history again each time; the newest lines are kept, oldest first."""
    parts = run(load_procedures(), march_script())
    postal = [s for p in parts for d, s in p.portal if d == "HS-POSTAL"]
    whole = PortalRecords().build("HS-POSTAL", postal[-1])
    capped = PortalRecords(max_progress=3)
    built = [capped.build("HS-POSTAL", s) for s in postal]
    assert [len(r.QuaTrinhXuLy) for r in built] == [1, 2, 3, 3, 3, 3, 3]
    assert built[-1].QuaTrinhXuLy == whole.QuaTrinhXuLy[-3:]
    assert built[-1].model_copy(update={"QuaTrinhXuLy": whole.QuaTrinhXuLy}) == whole
    # Built again (a re-emission after a redelivery): the same bytes, still bounded.
    assert encode(PortalRecords(max_progress=3).build("HS-POSTAL", postal[-1])) == encode(built[-1])
    assert len(encode(built[-1])) < len(encode(whole))
