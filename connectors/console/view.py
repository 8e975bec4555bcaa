"""The console's view-model: plain Python over the in-memory state, no HTTP, no Kafka.

Figures per department are sums of the ``live-stats`` snapshots (agency × procedure ×
channel) of one period, so they are the BRIEF §6 figures the stream workers computed; the
console adds nothing but sums and the rates over the sums.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Any

from lienthong.connectors import headers as h
from lienthong.domain.stats import FIGURES, VN, Period, parse_period, period_of

from .feed import Alert, DeadLetter, Escalation

PERIOD_CHOICES = ("day", "month", "quarter", "year")
_MINUTE = timedelta(minutes=1)

# Vietnamese first (the officers' language), English with ?lang=en.
TEXT: dict[str, tuple[str, str]] = {
    "title": ("Bảng điều khiển Một cửa liên thông", "One-stop-shop console"),
    "overview": ("Tổng quan", "Overview"),
    "overdue": ("Hồ sơ quá hạn / sắp đến hạn", "Overdue / at-risk dossiers"),
    "dead_letters": ("Thư chết (DLQ)", "Dead letters"),
    "health": ("Tình trạng hệ thống", "Bus health"),
    "login": ("Đăng nhập", "Log in"),
    "logout": ("Đăng xuất", "Log out"),
    "api_key": ("Khóa truy cập", "Access key"),
    "login_failed": ("Khóa truy cập không đúng", "Wrong access key"),
    "agency": ("Đơn vị", "Department"),
    "level": ("Cấp", "Level"),
    "received": ("Tiếp nhận", "Received"),
    "carried_over": ("Kỳ trước chuyển qua", "Carried over"),
    "finished_early": ("Giải quyết trước hạn", "Finished early"),
    "finished_on_time": ("Đúng hạn", "On time"),
    "finished_late": ("Trễ hạn", "Late"),
    "in_progress_on_time": ("Đang giải quyết trong hạn", "In progress, on time"),
    "in_progress_overdue": ("Đang giải quyết quá hạn", "In progress, overdue"),
    "waiting_supplement": ("Chờ bổ sung", "Waiting for supplement"),
    "on_time_rate": ("Tỷ lệ đúng hạn", "On-time %"),
    "online_rate": ("Tỷ lệ trực tuyến", "Online %"),
    "postal_rate": ("Tỷ lệ bưu chính", "Postal %"),
    "total": ("Tổng cộng", "Total"),
    "day": ("Hôm nay", "Today"),
    "month": ("Tháng này", "This month"),
    "quarter": ("Quý này", "This quarter"),
    "year": ("Năm nay", "This year"),
    "period": ("Kỳ", "Period"),
    "as_of": ("Số liệu tại", "Figures as of"),
    "chart": ("Tiếp nhận và trễ hạn theo ngày", "Intake and late per day"),
    "no_data": ("Chưa có số liệu", "No figures yet"),
    "dossier": ("Hồ sơ", "Dossier"),
    "step": ("Bước", "Step"),
    "due_at": ("Hạn", "Due"),
    "over": ("Quá (giờ làm việc)", "Working time over"),
    "left": ("Còn (giờ làm việc)", "Working time left"),
    "kind": ("Loại", "Kind"),
    "source": ("Nguồn", "Source"),
    "reason": ("Lý do", "Reason"),
    "error_class": ("Loại lỗi", "Error class"),
    "count": ("Số lượng", "Count"),
    "redrive": ("Gửi lại", "Redrive"),
    "redriven": ("Đã gửi lại", "Redriven"),
    "redrive_selected": ("Gửi lại các mục đã chọn", "Redrive the selected"),
    "by": ("bởi", "by"),
    "all": ("Tất cả", "All"),
    "component": ("Thành phần", "Component"),
    "status": ("Trạng thái", "Status"),
    "lag": ("Độ trễ tiêu thụ", "Consumer lag"),
    "portal_sync": ("Đồng bộ Cổng DVC quốc gia", "National portal sync"),
    "no_portal": ("Không có kết nối Cổng đang chạy", "No portal connector answering"),
    "read_only": ("Chỉ xem", "Read-only"),
    "forbidden": ("Chỉ cán bộ vận hành được gửi lại", "Only an operator may redrive"),
    "slip": ("Phiếu kiểm soát", "Process control slip"),
    "back": ("Quay lại", "Back"),
    "province_center": ("Trung tâm tỉnh", "Province center"),
    "department": ("Sở, ngành", "Department"),
    "district": ("Cấp huyện", "District"),
    "commune": ("Cấp xã", "Commune"),
    "central": ("Ngành dọc", "Central agency"),
    "levels": ("Cấp", "Levels"),
    "handoffs": ("Chuyển hồ sơ bị treo, bưu chính quá hạn", "Stuck handoffs, late post"),
    "stuck": ("Chuyển hồ sơ chưa được tiếp nhận", "Handoffs not accepted in time"),
    "postal_late": ("Bưu chính quá hạn và sự cố", "Postal orders late or failed"),
    "from": ("Từ", "From"),
    "to": ("Đến", "To"),
    "sent_at": ("Gửi lúc", "Sent"),
    "accept_due": ("Hạn tiếp nhận", "Accept by"),
    "raised_at": ("Lúc", "Raised"),
    "portal_records": ("Bản ghi gửi Cổng DVC quốc gia", "Portal records"),
    "documents": ("Tài liệu", "Documents"),
    "alerts": ("Cảnh báo", "Alerts"),
    "evidence": ("Tải bộ chứng cứ đã ký (.zip)", "Download the signed evidence bundle (.zip)"),
    "nav_overdue": ("Quá hạn", "Overdue"),
    "kind_overdue": ("Quá hạn", "Overdue"),
    "kind_warning": ("Sắp đến hạn", "At risk"),
    "nav_handoffs": ("Chuyển hồ sơ treo", "Stuck handoffs"),
    "nav_dead_letters": ("Thư chết", "Dead letters"),
    "nav_health": ("Hệ thống", "Health"),
    "console_memory": ("Bộ nhớ của bảng điều khiển", "Console memory"),
    "held": ("Đang giữ", "Held"),
    "dropped": ("Đã bỏ (giới hạn)", "Dropped (bounds)"),
}

LEVELS = ("province_center", "department", "district", "commune", "central")


def t(key: str, lang: str) -> str:
    vi, en = TEXT[key]
    return en if lang == "en" else vi


def resolve_period(choice: str | None, reference: datetime) -> Period:
    """``day|month|quarter|year`` relative to ``reference``, or an explicit ``month:2026-01``.

    Raises ValueError with a one-line reason for anything else.
    """
    choice = (choice or "month").strip()
    if choice in PERIOD_CHOICES:
        return period_of(choice, reference)
    return parse_period(choice)


def reference_instant(as_of: datetime | None, now: datetime) -> datetime:
    """The bus's "now": the latest ``as_of`` of the figures (the replay watermark when the
    workers replay history), or the wall clock when there are none yet."""
    return as_of if as_of is not None else now


def days_of(period: Period) -> list[str]:
    """``YYYY-MM-DD`` of every day in the period (Vietnam time)."""
    days = []
    day = period.start
    while day < period.end:
        days.append(f"{day:%Y-%m-%d}")
        day = (day + timedelta(days=1, hours=2)).replace(hour=0, tzinfo=VN)
    return days


def labels_for(period: Period) -> list[str]:
    """The period's own label and those of its days (what its page and chart read)."""
    return [period.label, *(f"day:{d}" for d in days_of(period))]


@dataclass(frozen=True)
class OverviewRow:
    agency: str
    name: str
    level: str
    figures: dict[str, int]

    @property
    def rates(self) -> dict[str, float | None]:
        return rates(self.figures)


def rates(f: dict[str, int]) -> dict[str, float | None]:
    finished = f["finished_early"] + f["finished_on_time"] + f["finished_late"]
    received = f["received"]
    return {
        "on_time_rate": (f["finished_early"] + f["finished_on_time"]) / finished
        if finished
        else None,
        "online_rate": f["received_online"] / received if received else None,
        "postal_rate": f["received_postal"] / received if received else None,
    }


def by_agency(stats: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, int]]]:
    """label → agency → the sums of its procedure × channel snapshots."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for key, row in stats.items():
        agency, _procedure, _channel, label = key.split("|")
        acc = out.setdefault(label, {}).setdefault(agency, dict.fromkeys(FIGURES, 0))
        for name in FIGURES:
            acc[name] += int(row.get(name, 0))
    return out


def overview(
    stats: dict[str, dict[str, Any]], period: Period, registry: Any = None
) -> tuple[list[OverviewRow], dict[str, int]]:
    """Rows per department (agency) for one period, and the totals over them."""
    return agency_rows(by_agency(stats).get(period.label, {}), registry)


def agency_rows(
    per_agency: dict[str, dict[str, int]], registry: Any = None
) -> tuple[list[OverviewRow], dict[str, int]]:
    """The overview's rows from one period's figures per agency, and their totals."""
    rows = []
    for agency in sorted(per_agency):
        info = registry.get(agency) if registry is not None else None
        name = info.name if info is not None else agency
        level = str(info.level.value) if info is not None else ""
        rows.append(OverviewRow(agency, name, level, dict(per_agency[agency])))
    return rows, sum_rows(rows)


def sum_rows(rows: list[OverviewRow]) -> dict[str, int]:
    totals = dict.fromkeys(FIGURES, 0)
    for r in rows:
        for name in FIGURES:
            totals[name] += r.figures[name]
    return totals


def daily_series(
    stats: dict[str, dict[str, Any]], period: Period, agencies: Collection[str] | None = None
) -> list[tuple[str, int, int]]:
    """(day, received, finished late) for every day of ``period`` (zeros where none), over
    ``agencies`` (None: all)."""
    return series_of(by_agency(stats), period, agencies)


def series_of(
    per_label: dict[str, dict[str, dict[str, int]]],
    period: Period,
    agencies: Collection[str] | None = None,
) -> list[tuple[str, int, int]]:
    """:func:`daily_series` from figures already summed per label and agency."""
    out = []
    for day in days_of(period):
        received = late = 0
        for agency, f in per_label.get(f"day:{day}", {}).items():
            if agencies is None or agency in agencies:
                received += f["received"]
                late += f["finished_late"]
        out.append((day, received, late))
    return out


def chart_svg(series: list[tuple[str, int, int]], lang: str, width: int = 720) -> str:
    """Inline SVG: one bar pair (intake, late) per day; no script, no library."""
    height, pad = 180, 24
    top = max([max(r, lt) for _, r, lt in series] + [1])
    n = max(len(series), 1)
    slot = (width - 2 * pad) / n
    bar = max(slot * 0.4, 1.0)
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(t("chart", lang))}" '
        f'viewBox="0 0 {width} {height + 2 * pad}" width="100%" height="{height + 2 * pad}">',
        f'<line x1="{pad}" y1="{pad + height}" x2="{width - pad}" y2="{pad + height}" '
        'stroke="#888"/>',
        f'<text x="{pad}" y="{pad - 8}" font-size="11">max {top}</text>',
    ]
    for i, (day, received, late) in enumerate(series):
        x = pad + i * slot
        bars = ((received, "#2f6fb3", "received"), (late, "#c0392b", "finished_late"))
        for j, (value, colour, name) in enumerate(bars):
            label = t(name, lang)
            bar_h = value / top * height
            parts.append(
                f'<rect x="{x + j * bar:.1f}" y="{pad + height - bar_h:.1f}" width="{bar:.1f}" '
                f'height="{bar_h:.1f}" fill="{colour}"><title>{day} {escape(label)}: {value}'
                "</title></rect>"
            )
        if n <= 31 and (i % max(n // 10, 1) == 0):
            parts.append(
                f'<text x="{x:.1f}" y="{pad + height + 14}" font-size="10">{day[8:]}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class AlertRow:
    alert: Alert
    hours: float


def alert_rows(
    alerts: dict[str, Alert],
    agency: str | None = None,
    as_of: datetime | None = None,
    calendar: Any = None,
    ended: Collection[str] = (),
) -> list[AlertRow]:
    """Overdue first (most working time over first), then warnings (least time left first).

    With ``as_of`` and a working calendar the hours are those at ``as_of`` (an overdue notice
    is raised when the time runs out, so its own figure is about zero); else the alert's own.
    Dossiers in ``ended`` (processing over) are left out, and so are warnings whose due
    instant passed without an overdue notice (the step or dossier was done in time).
    """
    rows = []
    for a in alerts.values():
        if (agency is not None and a.agency != agency) or a.dossier_id in ended:
            continue
        minutes = a.minutes
        if as_of is not None and calendar is not None:
            if a.kind == "overdue" and as_of > a.due_at:
                minutes = max(minutes, calendar.working_time_between(a.due_at, as_of) // _MINUTE)
            elif a.kind == "warning" and as_of >= a.due_at:
                continue  # due passed without an overdue notice: done in time
            elif a.kind == "warning" and as_of > a.occurred_at:
                spent = calendar.working_time_between(a.occurred_at, as_of) // _MINUTE
                minutes = max(0, minutes - spent)
        rows.append(AlertRow(a, round(minutes / 60, 1)))

    rows.sort(
        key=lambda r: (
            r.alert.kind != "overdue",
            -r.hours if r.alert.kind == "overdue" else r.hours,
            r.alert.dossier_id,
        )
    )
    return rows


@dataclass(frozen=True)
class DeadLetterRow:
    address: str
    source: str
    error_class: str
    reason: str
    consumer: str
    failed_at: str
    redriven: dict[str, str] | None


def dlq_headers(letter: DeadLetter) -> dict[str, str]:
    out = {}
    for name, value in letter.headers:
        if name.startswith("lienthong.dlq."):
            out[name] = value.decode("utf-8", "replace")
    return out


def dead_letter_rows(
    letters: dict[tuple[int, int], DeadLetter],
    redrives: dict[tuple[int, int], dict[str, str]],
    source: str | None = None,
    error_class: str | None = None,
) -> list[DeadLetterRow]:
    """Newest first, filtered by source topic and error class."""
    rows = []
    for address in sorted(letters, key=lambda a: (-(letters[a].timestamp_ms or 0), a)):
        d = dlq_headers(letters[address])
        src = d.get(h.DLQ_SOURCE_TOPIC, "?")
        cls = d.get(h.DLQ_ERROR_CLASS, "?")
        if (source and src != source) or (error_class and cls != error_class):
            continue
        rows.append(
            DeadLetterRow(
                f"{address[0]}:{address[1]}",
                src,
                cls,
                d.get(h.DLQ_REASON, ""),
                d.get(h.DLQ_CONSUMER, ""),
                d.get(h.DLQ_FAILED_AT, ""),
                redrives.get(address),
            )
        )
    return rows


def dead_letter_groups(letters: dict[tuple[int, int], DeadLetter]) -> list[tuple[str, str, int]]:
    """(source topic, error class, count), largest first: where to look first."""
    counts: Counter[tuple[str, str]] = Counter()
    for letter in letters.values():
        d = dlq_headers(letter)
        counts[(d.get(h.DLQ_SOURCE_TOPIC, "?"), d.get(h.DLQ_ERROR_CLASS, "?"))] += 1
    return [(s, c, n) for (s, c), n in sorted(counts.items(), key=lambda i: (-i[1], i[0]))]


def parse_address(text: str) -> tuple[int, int]:
    """``PARTITION:OFFSET`` → (partition, offset); ValueError with the reason otherwise."""
    part, sep, offset = text.strip().partition(":")
    if not sep or not part.isdigit() or not offset.isdigit():
        raise ValueError(f"expected PARTITION:OFFSET, got {text!r}")
    return int(part), int(offset)


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def lag_rows(metrics_text: str) -> list[tuple[str, str, int]]:
    """(group, topic:partition, lag) from a Prometheus exposition of the consumer lag gauge."""
    rows = []
    for line in metrics_text.splitlines():
        if not line.startswith("lienthong_consumer_lag{"):
            continue
        labels_text, _, value = line[len("lienthong_consumer_lag{") :].rpartition("} ")
        labels = dict(part.split("=", 1) for part in labels_text.split(",") if "=" in part)
        labels = {k: v.strip('"') for k, v in labels.items()}
        try:
            lag = int(float(value))
        except ValueError:
            continue
        rows.append(
            (
                labels.get("group", "?"),
                f"{labels.get('topic', '?')}:{labels.get('partition', '?')}",
                lag,
            )
        )
    return sorted(rows)


def escalation_rows(
    escalations: dict[str, Escalation], dossier: str | None = None
) -> list[Escalation]:
    """Longest waiting first (earliest accept-by instant)."""
    rows = [e for e in escalations.values() if dossier is None or e.dossier_id == dossier]
    return sorted(rows, key=lambda e: (e.accept_due_at, e.handoff_id))


def postal_alert_rows(
    alerts: dict[str, dict[str, Any]], dossier: str | None = None
) -> list[dict[str, Any]]:
    """The post's operational alerts (late delivery, failed or returned), newest first."""
    rows = [
        a
        for a in alerts.values()
        if str(a.get("alert_type", "")).startswith("postal_")
        and (dossier is None or a.get("dossier_id") == dossier)
    ]
    return sorted(rows, key=lambda a: str(a.get("raised_at", "")), reverse=True)
