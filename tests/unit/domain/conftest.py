from __future__ import annotations

from datetime import datetime

import pytest

from lienthong.domain.calendar import VN_TZ, WorkingCalendar, default_calendar


def vn(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=VN_TZ)


@pytest.fixture
def cal() -> WorkingCalendar:
    return default_calendar()
