"""Province simulator: deterministic dossier lifecycles generated from the procedure catalogue.

Why deterministic: the ground truth and the bus must be compared on exactly the same stream,
and a failing verification must be reproducible from ``--seed`` alone. Every random draw comes
from one ``random.Random(seed)`` per dossier (derived from the seed and the dossier number),
ids are uuid5, and no wall-clock value enters the generated events (``recorded_at`` equals
``occurred_at``). Times come from the working calendar (``lienthong.domain``), so appointments
and step due times are those the deadline rules compute.

Calibration defaults (BRIEF §6–§7, seeds 000–004): channel mix 81.4 % counter / 13.81 % post /
4.77 % online (Bến Tre, 3 months); about 1.1 % of department-level dossiers late (Lào Cai: 659
of 57,813); levels weighted by Lào Cai's four months (57,813 department, 9,631 district,
76,567 commune dossiers); about 430,000 dossiers a year for a 0.75 M province. The default
catalogue has 1,300 procedures of which 300 inter-agency: the 25 hand-written real ones plus a
generated remainder (``lienthong.simulators.catalogue``) that the stream workers load too.
``procedures`` / ``inter_agency`` take a subset of it (real ones first); volumes follow Zipf
weights by catalogue rank inside each level, so a few procedures dominate as in practice.

Live mode (``simulators/live.py``) asks for one dossier at an explicit arrival instant and may
run the officers on an around-the-clock ``activity`` calendar; legal figures (appointments,
step due times) always come from the official working calendar. With ``postal="connector"``
(live only) the post is not simulated: postal dossiers carry ``postal_order_requested``
commands (pickup before the receipt, delivery instead of the by-post ``result_returned``) and
the postal connector with the (fake) post produces the scans and the return.
"""

from __future__ import annotations

import bisect
import hashlib
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Protocol

from lienthong.domain.calendar import WorkingCalendar, default_calendar
from lienthong.domain.deadlines import compute_appointment
from lienthong.domain.procedures import Procedure, ProcedureCatalogue, load_procedures
from lienthong.schemas.models import (
    VN_TZ,
    DocumentPublished,
    DocumentSigned,
    DossierReceived,
    DossierSubmitted,
    DossierWithdrawn,
    Event,
    FeePaid,
    FeeRequested,
    HandoffAccepted,
    HandoffReturned,
    HandoffSent,
    IntakeRefused,
    PostalOrderRequested,
    PostalTracking,
    ProcessingFinished,
    ResultReturned,
    SupplementReceived,
    SupplementRequested,
    hash_identifier,
)

NAMESPACE = uuid.UUID("6f1c2a52-9d0e-5b7e-8f43-3a0f1d2c4b10")
CENTER = "000.00.01.H10"  # Trung tâm Phục vụ hành chính công tỉnh (also acts for the post)
TAX_AGENCIES = frozenset({"000.00.60.H10", "000.31.60.H10"})
SUBJECT_SALT = "lienthong-simulator-salt-not-secret"

# Lào Cai, first 4 months of 2019 (BRIEF §6): dossiers by level.
LEVEL_WEIGHTS = {"province": 57_813, "district": 9_631, "commune": 76_567}
POSTAL_MODES = ("simulated", "connector")
# The post's commitment for a result delivery (the connector's default watch, 72 h).
DELIVERY_DUE = timedelta(hours=72)
# Synthetic recipients of postal orders: never a real person (postal-orders keeps 90 days).
_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Võ", "Đặng", "Bùi")
_GIVEN = ("Văn An", "Thị Bình", "Minh Châu", "Quốc Dũng", "Thị Hoa", "Hữu Phước")
_WARDS = ("phường An Hội", "phường Phú Khương", "xã Sơn Đông", "xã Mỹ Thạnh An")


class ActivityCalendar(Protocol):
    """When simulated people act: the working calendar, or around the clock (live demo)."""

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime: ...

    def next_working_instant(self, instant: datetime) -> datetime: ...

    def is_working_instant(self, instant: datetime) -> bool: ...


class AroundTheClock:
    """Every instant is working time: officers act at night and at weekends (demo option).

    Only the *timing* of simulated actions uses it; appointments and step due times stay on
    the official calendar, so the bus still sees legally correct deadlines.
    """

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        return start + duration

    def next_working_instant(self, instant: datetime) -> datetime:
        return instant

    def is_working_instant(self, instant: datetime) -> bool:
        return True


def select_procedures(
    catalogue: ProcedureCatalogue, total: int | None, inter_agency: int | None
) -> list[Procedure]:
    """The first ``total`` procedures in catalogue (volume rank) order, ``inter_agency`` of them
    inter-agency; ``None`` = no limit. Raises ``ValueError`` when the catalogue is too small."""
    every = list(catalogue)
    inter = [p for p in every if p.inter_agency]
    single = [p for p in every if not p.inter_agency]
    n_total = len(every) if total is None else total
    n_inter = min(len(inter), n_total) if inter_agency is None else inter_agency
    if n_total > len(every) or n_inter > len(inter) or n_inter > n_total:
        raise ValueError(
            f"the catalogue has {len(every)} procedures of which {len(inter)} inter-agency; "
            f"cannot simulate {n_total} with {n_inter} inter-agency"
        )
    n_single = n_total - n_inter
    if n_single > len(single):
        raise ValueError(
            f"the catalogue has only {len(single)} single-agency procedures; "
            f"cannot simulate {n_total} with only {n_inter} inter-agency"
        )
    keep = {p.code for p in inter[:n_inter]} | {p.code for p in single[:n_single]}
    return [p for p in every if p.code in keep]


@dataclass(frozen=True)
class Period:
    """A replay window [start, end) in Vietnam time, named like the portal's period keys."""

    key: str
    start: datetime
    end: datetime

    @classmethod
    def parse(cls, text: str) -> Period:
        """``2026`` (year), ``2026-Q1``, ``2026-01`` (month) or ``2026-01-15`` (day)."""
        parts = text.strip().split("-")
        try:
            year = int(parts[0])
            if len(parts) == 1:
                first, last = date(year, 1, 1), date(year + 1, 1, 1)
            elif parts[1].upper().startswith("Q"):
                q = int(parts[1][1:])
                if not 1 <= q <= 4:
                    raise ValueError
                first = date(year, 3 * q - 2, 1)
                last = date(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1)
            elif len(parts) == 2:
                month = int(parts[1])
                first = date(year, month, 1)
                last = date(year + (month == 12), 1 if month == 12 else month + 1, 1)
            elif len(parts) == 3:
                first = date(year, int(parts[1]), int(parts[2]))
                last = first + timedelta(days=1)
            else:
                raise ValueError
        except (ValueError, IndexError):
            raise ValueError(
                f"bad period {text!r}: want YYYY, YYYY-Qn, YYYY-MM or YYYY-MM-DD"
            ) from None
        return cls(
            text.strip().upper() if "Q" in text.upper() else text.strip(),
            datetime.combine(first, time(0), VN_TZ),
            datetime.combine(last, time(0), VN_TZ),
        )


@dataclass
class SimConfig:
    """Every figure of the simulation; each is a ``lienthong simulate`` option."""

    period: Period
    seed: int = 7
    dossiers: int | None = None  # None: derived from dossiers_per_year and the period length
    dossiers_per_year: int = 430_000  # Lào Cai ≈ 144,000 in 4 months (BRIEF §7)
    share_counter: float = 0.814
    share_postal: float = 0.1381
    share_online: float = 0.0477
    refusal_rate: float = 0.01
    withdrawal_rate: float = 0.005
    supplement_rate: float = 0.05
    second_supplement_rate: float = 0.08  # of dossiers that had one (>1 request counts as late)
    fee_rate: float = 0.3  # non-tax procedures that still charge a fee (lệ phí)
    late_step_rate: float = 0.004
    postal_return_rate: float = 0.12  # results sent home by post (Bến Tre: 1,516 of 12,356)
    postal_failure_rate: float = 0.05  # first delivery attempt fails
    level_weights: dict[str, float] = field(default_factory=lambda: dict(LEVEL_WEIGHTS))
    procedures: int | None = None  # None: every procedure of the catalogue (1,300 shipped)
    inter_agency: int | None = None  # of those, inter-agency (None: as many as there are)
    zipf_exponent: float = 1.0  # volume of the procedure ranked r is ∝ 1 / r^s in its level
    # Agencies whose steps a real connector drives (the demo's central adapter): procedures
    # routed through them are not simulated, so the two never answer the same handoff.
    leave_out_agencies: frozenset[str] = frozenset()
    # "simulated": the simulator writes the post's scans and the by-post result_returned
    # itself (replay, deterministic). "connector" (live only): it orders pickups and
    # deliveries on postal-orders and the postal connector + the post produce those.
    postal: str = "simulated"

    def dossier_count(self) -> int:
        if self.dossiers is not None:
            return self.dossiers
        days = (self.period.end - self.period.start).days
        return max(1, round(self.dossiers_per_year * days / 365))


@dataclass(frozen=True)
class GeneratedDossier:
    """One dossier's events in causal order, cut at the end of the window."""

    dossier_id: str
    procedure: Procedure
    channel: str
    receiving_agency: str
    events: list[Event]  # dossier-events, postal-tracking and documents, in occurred_at order


def dossier_uuid(seed: int, *parts: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, ":".join(str(p) for p in (seed, *parts)))


class ProvinceSimulator:
    """Generates dossiers ``0..n-1`` of one province for a window; each is independent."""

    def __init__(
        self,
        config: SimConfig,
        catalogue: ProcedureCatalogue | None = None,
        calendar: WorkingCalendar | None = None,
        activity: ActivityCalendar | None = None,
    ) -> None:
        if config.postal not in POSTAL_MODES:
            raise ValueError(f"postal must be one of {', '.join(POSTAL_MODES)}")
        self.config = config
        self.catalogue = catalogue or load_procedures()
        self.calendar = calendar or default_calendar()
        self.activity: ActivityCalendar = activity or self.calendar
        self._procedures, self._weights = self._procedure_weights()
        self._working_days = self._days_in_window()
        total = sum(w for _, w in self._working_days)
        acc = 0.0
        self._cumulative: list[float] = []
        for _, w in self._working_days:
            acc += w / total
            self._cumulative.append(acc)

    def day_of(self, index: int) -> date:
        position = (index + 0.5) / self.config.dossier_count()
        i = min(bisect.bisect_left(self._cumulative, position), len(self._working_days) - 1)
        return self._working_days[i][0]

    def _procedure_weights(self) -> tuple[list[Procedure], list[float]]:
        """Zipf weights by catalogue rank inside each level, scaled so levels keep the Lào Cai
        proportions (the catalogue lists the real procedures first, then the generated ones in
        volume rank order)."""
        by_level: dict[str, list[Procedure]] = {}
        chosen = select_procedures(self.catalogue, self.config.procedures, self.config.inter_agency)
        for p in chosen:
            if self.config.leave_out_agencies & {step.agency for step in p.steps}:
                continue
            by_level.setdefault(p.level, []).append(p)
        procs: list[Procedure] = []
        weights: list[float] = []
        for level, items in sorted(by_level.items()):
            level_weight = self.config.level_weights.get(level, 0.0)
            s = self.config.zipf_exponent
            zipf = [1.0 / (rank + 1) ** s for rank in range(len(items))]
            total = sum(zipf)
            for p, z in zip(items, zipf, strict=True):
                procs.append(p)
                weights.append(level_weight * z / total)
        return procs, weights

    def _days_in_window(self) -> list[tuple[date, float]]:
        """Working days with weights: busier at month ends (peaks in BRIEF §7)."""
        days: list[tuple[date, float]] = []
        d = self.config.period.start.date()
        while d < self.config.period.end.date():
            if self.calendar.is_working_day(d):
                nxt = d + timedelta(days=1)
                days.append((d, 1.5 if nxt.day <= 3 or d.day >= 26 else 1.0))
            d += timedelta(days=1)
        if not days:  # a window without a working day still gets (online) dossiers
            days.append((self.config.period.start.date(), 1.0))
        return days

    def dossiers(self) -> Iterator[GeneratedDossier]:
        for index in range(self.config.dossier_count()):
            yield self.dossier(index)

    # -- one dossier ---------------------------------------------------------------------
    def dossier(
        self,
        index: int,
        *,
        arrival: datetime | None = None,
        dossier_id: str | None = None,
        rng_key: str | None = None,
    ) -> GeneratedDossier:
        """Dossier ``index`` of the window, cut at its end. Live mode gives the ``arrival``
        instant, its own id and random stream, and gets every event (no cut)."""
        cfg = self.config
        rng = random.Random(rng_key or f"{cfg.seed}:{index}")
        proc = rng.choices(self._procedures, self._weights)[0]
        channel = rng.choices(
            ("counter", "postal", "online"),
            (cfg.share_counter, cfg.share_postal, cfg.share_online),
        )[0]
        dossier_id = dossier_id or f"H10.{cfg.period.start:%y%m}.{index:07d}"
        b = _Builder(self, rng, dossier_id, proc, channel)
        b.index = index
        b.arrival_at = arrival
        b.run()
        events = b.events
        if arrival is None:
            end = cfg.period.end
            events = [e for e in events if e.envelope.occurred_at < end]
        return GeneratedDossier(dossier_id, proc, channel, b.receiving_agency, events)


class _Builder:
    """Walks one dossier through the lifecycle, appending events with their times."""

    def __init__(
        self,
        sim: ProvinceSimulator,
        rng: random.Random,
        dossier_id: str,
        proc: Procedure,
        channel: str,
    ) -> None:
        self.sim = sim
        self.cal = sim.calendar  # legal figures: appointments, step due times
        self.act = sim.activity  # when people act (working hours, or around the clock)
        self.arrival_at: datetime | None = None
        self.cfg = sim.config
        self.rng = rng
        self.dossier_id = dossier_id
        self.proc = proc
        self.channel = channel
        self.receiving_agency = proc.steps[0].agency
        self.events: list[Event] = []
        self.trace = dossier_uuid(self.cfg.seed, dossier_id, "trace").hex
        self.last: uuid.UUID | None = None
        self.n = 0
        self.index = 0

    # helpers
    def emit(self, cls: type[Event], at: datetime, producer: str, **fields: object) -> None:
        self.n += 1
        eid = dossier_uuid(self.cfg.seed, self.dossier_id, self.n, cls.EVENT_TYPE)
        event = cls.create(
            dossier_id=self.dossier_id,
            producer_agency=producer,
            occurred_at=at,
            recorded_at=at,
            event_id=eid,
            trace_id=self.trace,
            causation_id=self.last,
            **fields,
        )
        self.events.append(event)
        self.last = eid

    def work(self, start: datetime, hours: float) -> datetime:
        """``hours`` of working time after ``start`` (minute precision keeps times readable)."""
        t = self.act.add_working_time(start, timedelta(minutes=max(1, round(hours * 60))))
        return t.replace(second=0, microsecond=0) if t.second or t.microsecond else t

    def arrival(self) -> datetime:
        # The day follows from the dossier number (cumulative day weights), so dossiers come
        # out roughly in arrival order and a replay can stream them with bounded memory.
        # Live mode decides the instant itself; the draws below still happen so the rest of
        # the dossier keeps the same random stream.
        day = self.sim.day_of(self.index) if self.arrival_at is None else self.arrival_at.date()
        if self.channel == "online":  # filed at any hour, counted from the next session
            minute = self.rng.randrange(24 * 60)
            drawn = datetime.combine(day, time(minute // 60, minute % 60), VN_TZ)
            return self.arrival_at or drawn
        sessions = self.cal.hours.sessions
        s, e = self.rng.choice(sessions)
        start = datetime.combine(day, s, VN_TZ)
        span = int((datetime.combine(day, e) - datetime.combine(day, s)).total_seconds() // 60)
        drawn = start + timedelta(minutes=self.rng.randrange(max(1, span - 5)))
        return self.arrival_at or drawn

    def tracking(self, at: datetime, kind: str, code: str, place: str) -> None:
        self.emit(
            PostalTracking, at, CENTER, tracking_code=code, kind=kind, place=place, scanned_at=at
        )

    def order(self, at: datetime, kind: str) -> None:
        """A pickup or delivery order for the postal connector (``postal: connector``).

        Recipient, address and phone are derived from the dossier id, never drawn from the
        dossier's random stream: the rest of the dossier stays what ``simulated`` makes.
        """
        h = dossier_uuid(self.cfg.seed, self.dossier_id, "recipient").int
        name = f"{_FAMILY[h % len(_FAMILY)]} {_GIVEN[(h >> 8) % len(_GIVEN)]}"
        street = f"{(h >> 16) % 200 + 1} đường {(h >> 24) % 30 + 1}"
        self.emit(
            PostalOrderRequested,
            at,
            CENTER,
            order_id=f"{self.dossier_id}:{kind}",
            kind=kind,
            requesting_agency=CENTER,
            recipient_name=name,
            address=f"{street}, {_WARDS[(h >> 32) % len(_WARDS)]}, tỉnh H10",
            phone=f"09{(h >> 40) % 10**8:08d}",
            deliver_by=at + DELIVERY_DUE if kind == "delivery" else None,
        )

    # lifecycle
    def run(self) -> None:
        rng, cfg, proc = self.rng, self.cfg, self.proc
        received = self.arrival()
        subject = {
            "kind": "citizen" if rng.random() < 0.8 else "organisation",
            "identifier_hash": hash_identifier(f"{cfg.seed}-{self.dossier_id}", SUBJECT_SALT),
        }
        if self.channel == "postal":  # collected at home, brought to the counter
            code = f"EP{dossier_uuid(cfg.seed, self.dossier_id, 'in').int % 10**9:09d}VN"
            t0 = received - timedelta(hours=rng.randint(20, 30))
            if cfg.postal == "connector":
                # The post collects on its own schedule; the receipt below does not wait for
                # it (the dossier is at the counter at ``received`` as in simulated mode).
                self.order(t0, "pickup")
                self.n += 2  # the lifecycle keeps the event ids it has in simulated mode
            else:
                self.tracking(t0, "pickup_ordered", code, "Cổng dịch vụ bưu chính")
                self.tracking(t0 + timedelta(hours=3), "collected", code, "Nhà công dân")
                self.tracking(received - timedelta(minutes=10), "delivered_to_center", code, CENTER)
        if self.channel == "online":
            self.emit(
                DossierSubmitted,
                received,
                self.receiving_agency,
                procedure_code=proc.code,
                receiving_agency=self.receiving_agency,
                subject=subject,
            )
            received = self.act.next_working_instant(received) + timedelta(
                minutes=rng.randint(5, 90)
            )
            if rng.random() < cfg.refusal_rate:
                self.emit(
                    IntakeRefused,
                    received,
                    self.receiving_agency,
                    agency=self.receiving_agency,
                    reason="Hồ sơ không thuộc thẩm quyền / thành phần không hợp lệ",
                )
                return
        appointment = compute_appointment(received, proc.duration, cutoff=proc.cutoff).due
        self.emit(
            DossierReceived,
            received,
            self.receiving_agency,
            channel=self.channel,
            procedure_code=proc.code,
            receiving_agency=self.receiving_agency,
            subject=subject,
            received_at=received,
            appointment_at=appointment,
        )
        now = received
        if self.channel != "online" and rng.random() < cfg.refusal_rate:
            self.emit(
                IntakeRefused,
                self.work(now, 0.5),
                self.receiving_agency,
                agency=self.receiving_agency,
                reason="Thành phần hồ sơ không đầy đủ theo quy định",
            )
            return
        total = proc.working_time(self.cal).total_seconds() / 3600
        supplements = 0
        if rng.random() < cfg.supplement_rate:
            supplements = 2 if rng.random() < cfg.second_supplement_rate else 1
        supplement_at = sorted(rng.sample(range(len(proc.steps)), 1) * supplements)
        withdraw_at = rng.randrange(len(proc.steps)) if rng.random() < cfg.withdrawal_rate else None
        holder = self.receiving_agency
        fee_done = False
        for step in proc.steps:
            i = step.order - 1
            while supplement_at and supplement_at[0] == i:  # before this step's handoff
                supplement_at.pop(0)
                asked = self.work(now, rng.uniform(0.5, 4))
                self.emit(
                    SupplementRequested,
                    asked,
                    step.agency,
                    requesting_agency=step.agency,
                    reason="Bổ sung giấy tờ chứng minh",
                    documents=["Bản sao giấy tờ tùy thân"],
                    supplement_due_at=self.cal.add_working_time(asked, timedelta(hours=40)),
                )
                back = self.work(asked, rng.uniform(4, 40))
                self.emit(
                    SupplementReceived,
                    back,
                    self.receiving_agency,
                    receiving_agency=self.receiving_agency,
                    documents=["Bản sao giấy tờ tùy thân"],
                )
                now = back
            if withdraw_at == i:
                self.emit(
                    DossierWithdrawn,
                    self.work(now, rng.uniform(1, 8)),
                    self.receiving_agency,
                    agency=self.receiving_agency,
                    reason="Công dân đề nghị rút hồ sơ",
                )
                return
            allot = total * step.share / 100
            handoff = f"{self.dossier_id}/{step.order}"
            sent = self.work(now, rng.uniform(0.05, 0.5)) if i else now + timedelta(minutes=2)
            due = self.cal.add_working_time(sent, timedelta(hours=allot))
            common = {"handoff_id": handoff, "from_agency": holder, "to_agency": step.agency}
            self.emit(HandoffSent, sent, holder, step=step.order, step_due_at=due, **common)
            accepted = sent + timedelta(minutes=rng.randint(1, 30))
            self.emit(HandoffAccepted, accepted, step.agency, step=step.order, **common)
            late = rng.random() < cfg.late_step_rate
            factor = rng.uniform(1.3, 2.5) if late else rng.uniform(0.15, 0.8)
            done = max(self.work(sent, allot * factor), accepted + timedelta(minutes=1))
            self.emit(
                HandoffReturned, done, step.agency, step=step.order, outcome="completed", **common
            )
            now, holder = done, step.agency
            if not fee_done and (
                step.agency in TAX_AGENCIES
                or (step.order == len(proc.steps) - 1 and rng.random() < cfg.fee_rate)
            ):
                fee_done = True
                kind = "tax" if step.agency in TAX_AGENCIES else "charge"
                amount = rng.randrange(50, 5000) * 1000
                self.emit(
                    FeeRequested,
                    self.work(now, 0.1),
                    step.agency,
                    agency=step.agency,
                    obligation=kind,
                    amount_vnd=amount,
                    description="Thông báo nộp nghĩa vụ tài chính",
                )
                now = self.work(now, rng.uniform(0.5, 6))
                self.emit(
                    FeePaid,
                    now,
                    step.agency,
                    agency=step.agency,
                    obligation=kind,
                    amount_vnd=amount,
                    payment_ref=f"PAY{self.dossier_id}",
                )
        finisher = proc.steps[-1].agency
        finished = self.work(now, rng.uniform(0.1, 1))
        doc_id = str(dossier_uuid(self.cfg.seed, self.dossier_id, "result"))
        content = hashlib.sha256(f"{self.dossier_id}:{doc_id}".encode()).hexdigest()
        self.emit(
            DocumentPublished,
            finished,
            finisher,
            document_id=doc_id,
            content_sha256=content,
            size_bytes=rng.randint(40_000, 900_000),
            media_type="application/pdf",
            storage_ref=f"cas://sha256/{content}",
            title=f"Kết quả giải quyết {proc.code}",
        )
        self.emit(
            DocumentSigned,
            finished + timedelta(minutes=1),
            finisher,
            document_id=doc_id,
            content_sha256=content,
            signature_ref=f"cas://sig/{doc_id}.p7s",
            signer_cert_sha256=hashlib.sha256(finisher.encode()).hexdigest(),
            signed_at=finished + timedelta(minutes=1),
        )
        self.emit(
            ProcessingFinished,
            finished + timedelta(minutes=2),
            finisher,
            agency=finisher,
            outcome="approved",
            result_document_id=doc_id,
        )
        by_post = proc.postal_result and rng.random() < (
            0.85 if self.channel == "postal" else self.cfg.postal_return_rate * 0.5
        )
        returned = self.work(finished, rng.uniform(0.5, 16))
        if by_post and cfg.postal == "connector":
            # The connector emits result_returned (method post) when the post delivers: the
            # dossier stays finished (TrangThaiHoSo 9) until then, as the lifecycle requires.
            self.order(returned, "delivery")
        elif by_post:
            code = f"EP{dossier_uuid(cfg.seed, self.dossier_id, 'out').int % 10**9:09d}VN"
            self.emit(
                ResultReturned,
                returned,
                CENTER,
                agency=CENTER,
                method="post",
                postal_tracking_code=code,
            )
            self.tracking(returned + timedelta(hours=1), "result_dispatched", code, CENTER)
            t = returned + timedelta(hours=rng.randint(20, 50))
            if rng.random() < cfg.postal_failure_rate:
                self.tracking(t, "failed", code, "Nhà công dân (vắng nhà)")
                t += timedelta(hours=24)
            self.tracking(t, "delivered_to_citizen", code, "Nhà công dân")
        else:
            self.emit(ResultReturned, returned, CENTER, agency=CENTER, method="counter")
