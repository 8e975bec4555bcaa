"""The tracker writes its tables' changelog records itself: they must be Faust's own bytes."""

from __future__ import annotations

from faust.serializers import codecs

from lienthong.streams.app import changelog_json

RECORD = {
    "id": "H10.L260105.0001",
    "partition": 3,
    "procedure": "1.004227",
    "history": [
        {"agency": "000.00.01.H10", "at": "2026-01-05T09:00:00+07:00", "note": "Tiếp nhận hồ sơ"},
    ],
    "sent_alerts": ["dossier:warning"],
    "pauses": [],
    "holder": None,
    "score": 1.5,
}


def test_changelog_bytes_are_what_fausts_json_codec_writes_and_reads_back() -> None:
    codec = codecs.get_codec("json")
    for value in (RECORD, "H10.L260105.0001", 42, -1, None):
        raw = changelog_json(value)
        assert isinstance(raw, bytes)
        assert raw == codec.dumps(value)
        assert codec.loads(raw) == value
