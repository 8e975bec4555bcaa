"""The console's aiohttp adapter: ``lienthong run console`` (default http://127.0.0.1:6095).

Deny by default: a middleware answers every request but the login form with 401 (API,
fragments) or a redirect to the login form (pages) unless it carries a session cookie opened
by the login form or an ``Authorization: Bearer`` / ``X-API-Key`` key of a console user.
Monitoring officers read; only an operator may redrive a dead letter, and each redrive is
recorded (who, when, which record) in a header of the re-sent record, in the log and in
``<run_dir>/console-audit.jsonl``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from lienthong.logs import get_logger

from . import pages, view
from .auth import Gatekeeper, Session, User, UsersFileError, load_users
from .feed import BusState, TopicReader, read_key

log = get_logger(__name__)

COOKIE = "lienthong_console"
REDRIVEN_BY = "lienthong.console.redriven_by"
_OPEN_PATHS = frozenset({"/login"})
# What a dossier id may look like before it goes on a command line (H10.2601.0000011).
_DOSSIER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
USER = web.RequestKey("console_user", User)
SESSION = web.RequestKey("console_session", Session)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Console:
    """Everything the handlers share: settings, users, the bus state, the producer."""

    def __init__(self, settings: Any, users: list[User], state: BusState | None = None) -> None:
        from lienthong.domain.agencies import load_agencies
        from lienthong.domain.calendar import default_calendar

        self.settings = settings
        self.gate = Gatekeeper.of(users)
        self.state = state or BusState()
        self.registry = load_agencies()
        self.calendar = default_calendar()
        self.audit_file = Path(settings.run_dir) / "console-audit.jsonl"
        self._producer: Any = None
        self._health_cache: tuple[float, dict[str, Any]] | None = None
        self._names: dict[str, str] | None = None
        self._load_audit()

    @property
    def worker_urls(self) -> list[str]:
        console = self.settings.console
        if console.worker_urls:
            return [u.rstrip("/") for u in console.worker_urls]
        w = self.settings.worker
        return [f"http://{w.web_host}:{w.web_port + i}" for i in range(w.count)]

    def _load_audit(self) -> None:
        try:
            lines = self.audit_file.read_text(encoding="utf-8").splitlines()
        except OSError:
            return
        for line in lines:
            try:
                entry = json.loads(line)
                address = view.parse_address(entry["address"])
                self.state.note_redrive(address, entry["by"], entry["at"], entry["to"])
            except (ValueError, KeyError, TypeError):
                continue

    def producer(self) -> Any:
        if self._producer is None:
            from kafka import KafkaProducer

            from lienthong.connectors.kafka import kafka_python_config

            self._producer = KafkaProducer(**kafka_python_config(self.settings), acks="all")
        return self._producer

    def redrive(self, address: tuple[int, int], user: User) -> str:
        """Send one dead letter back to its source (the ``dlq replay`` code path); audited."""
        from lienthong.cli.dlq import replay_record

        letter = self.state.snapshot().dead_letters.get(address)
        if letter is None:
            raise LookupError(f"no dead letter at {address[0]}:{address[1]}")
        producer = self.producer()
        at = datetime.now(UTC).isoformat(timespec="seconds")
        topic = self.settings.topic("dead-letters")
        audit = [(REDRIVEN_BY, f"{user.name} ({user.role.value}) {at}".encode())]
        source = replay_record(producer, topic, letter, audit)
        if source is None:
            raise ValueError(f"dead letter {address[0]}:{address[1]} names no source topic")
        producer.flush(timeout=10)
        entry = {"address": f"{address[0]}:{address[1]}", "by": user.name, "role": user.role.value}
        entry |= {"at": at, "to": source}
        self.audit_file.parent.mkdir(parents=True, exist_ok=True)
        with self.audit_file.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.state.note_redrive(address, user.name, at, source)
        log.info("dead_letter_redriven", **entry)
        return source

    def health(self) -> dict[str, Any]:
        """Components (as ``lienthong status`` sees them) and the workers' consumer lag."""
        cached = self._health_cache
        if cached is not None and time.monotonic() - cached[0] < 3.0:
            return cached[1]
        components: list[dict[str, Any]] = []
        try:
            from lienthong.runtime.supervisor import collect_status

            for row in collect_status(self.settings)["components"]:
                url = f":{row['port']}" if row.get("port") else ""
                status = "ok" if row["healthy"] else "FAIL"
                components.append({"name": row["component"], "url": url, "status": status})
        except Exception as exc:
            components.append({"name": "status", "url": "", "status": f"unknown: {exc}"})
        lag: list[tuple[str, str, int]] = []
        for url in self.worker_urls:
            status = "down"
            try:
                with urllib.request.urlopen(url + "/health", timeout=1.5) as r:
                    status = json.loads(r.read()).get("status", "?")
                with urllib.request.urlopen(url + "/metrics", timeout=1.5) as r:
                    lag += view.lag_rows(r.read().decode("utf-8", "replace"))
            except (OSError, ValueError):
                pass
            components.append({"name": "worker", "url": url, "status": status})
        portal: dict[str, Any] = {}
        conn = self.settings.connectors.portal
        try:
            # The portal sync backlog: the portal connector's counters (lag = records not yet
            # sent, parked = given up after retries), when one runs.
            url = f"http://{conn.host}:{conn.health_port}/health"
            with urllib.request.urlopen(url, timeout=1.0) as r:
                portal = json.loads(r.read())
        except (OSError, ValueError):
            pass
        report = {
            "components": components,
            "lag": lag,
            "portal": portal,
            # What the console holds and what its bounds dropped (feed.Limits).
            "console_memory": {
                "held": self.state.sizes(),
                "dropped": dict(self.state.snapshot().dropped),
            },
        }
        self._health_cache = (time.monotonic(), report)
        return report

    def worker_json(self, path: str, dossier_id: str) -> Any:
        """A dossier view (slip, documents) from whichever worker holds it (None if none)."""
        from urllib.parse import quote

        for url in self.worker_urls:
            try:
                with urllib.request.urlopen(f"{url}{path}{quote(dossier_id)}", timeout=2) as r:
                    return json.loads(r.read())
            except (OSError, ValueError):
                continue
        return None

    def dossier_alerts(self, dossier_id: str) -> BusState:
        """The dossier's own deadline alerts, read from its partition: its page shows them
        even once the console's bounded state has let an ended dossier go."""
        from lienthong.schemas import Event, decode_or_reason

        own = BusState()
        try:
            records = read_key(self.settings, "deadline-alerts", dossier_id)
        except Exception as exc:
            log.warning("console_alerts_read_failed", dossier_id=dossier_id, error=str(exc))
            return self.state.snapshot()
        for record in records:
            event = decode_or_reason(record.value)
            if not isinstance(event, Event):
                continue
            if event.EVENT_TYPE == "handoff_escalated":
                own.put_escalation(event)
            else:
                own.put_alert(event)
        return own

    def portal_records(self, dossier_id: str) -> list[dict[str, Any]]:
        """The status records the bus sent the national portal for one dossier, oldest first."""
        from lienthong.schemas import Event, decode_or_reason

        out = []
        try:
            records = read_key(self.settings, "portal-status", dossier_id)
        except Exception as exc:
            log.warning("console_portal_read_failed", dossier_id=dossier_id, error=str(exc))
            return []
        for record in records:
            event = decode_or_reason(record.value)
            if isinstance(event, Event) and event.EVENT_TYPE == "portal_status_record":
                out.append(
                    {
                        "at": event.envelope.occurred_at.isoformat(timespec="minutes"),
                        "TrangThaiHoSo": event.TrangThaiHoSo,
                        "DonViXuLy": event.DonViXuLy,
                        "NgayHenTra": event.NgayHenTra,
                    }
                )
        return out

    def export_evidence(self, dossier_id: str) -> tuple[bytes | None, str]:
        """The dossier's signed evidence bundle (.zip) by ``lienthong audit export`` — the
        same command an auditor runs — or None and its one-line reason."""
        import subprocess
        import tempfile

        if not _DOSSIER_ID.fullmatch(dossier_id):
            return None, f"not a dossier id: {dossier_id!r}"
        with tempfile.TemporaryDirectory(prefix="console-evidence-") as tmp:
            out = Path(tmp) / "bundle"
            try:
                args = ["audit", "export", "--zip", "--out", str(out), "--", dossier_id]
                done = self.run_cli(args)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return None, f"export failed: {exc}"
            if done.returncode != 0:
                lines = (done.stderr or done.stdout or "export failed").strip().splitlines()
                return None, lines[-1] if lines else "export failed"
            written = done.stdout.strip().rpartition(": ")[2]
            path = Path(written) if written else out.with_suffix(".zip")
            try:
                return path.read_bytes(), ""
            except OSError as exc:
                return None, f"export wrote no bundle: {exc}"

    def run_cli(self, args: list[str]) -> Any:
        import subprocess

        return subprocess.run(
            [sys.executable, "-m", "lienthong", *args],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    def now(self, snap: BusState) -> datetime:
        """The bus's clock: the latest figures' ``as_of`` (the replay watermark), else now."""
        return view.reference_instant(snap.as_of, datetime.now(UTC))

    def alert_rows(self, snap: BusState, agency: str | None) -> list[view.AlertRow]:
        """Open dossiers' alerts with the working time over/left at the bus's clock."""
        return view.alert_rows(snap.alerts, agency, self.now(snap), self.calendar, snap.ended)

    def agency_names(self) -> dict[str, str]:
        if self._names is None:
            self._names = {a.code: a.name for a in self.registry}
        return self._names

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None


def _lang(request: web.Request) -> str:
    return "en" if request.query.get("lang") == "en" else "vi"


def _params(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in request.query.items() if k != "fragment"}


def _who(request: web.Request) -> tuple[User, Session | None]:
    return request[USER], request.get(SESSION)


def _middleware(console: Console) -> Any:
    @web.middleware
    async def deny_by_default(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in _OPEN_PATHS:
            return await handler(request)
        session = console.gate.session(request.cookies.get(COOKIE))
        user = session.user if session else None
        if user is None:
            from lienthong.connectors.gateway.auth import presented_key

            key = presented_key(request.headers)
            user = console.gate.by_key(key) if key else None
        if user is None:
            api = request.path.startswith("/api/") or "fragment" in request.query
            if api or request.method != "GET":
                return web.json_response({"error": "a console credential is required"}, status=401)
            target = request.path_qs
            raise web.HTTPSeeOther("/login?" + _encode({"next": target, "lang": _lang(request)}))
        request[USER] = user
        if session is not None:
            request[SESSION] = session
        return await handler(request)

    return deny_by_default


def _encode(params: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def _unchanged(request: web.Request, version: int | None) -> bool:
    """A fragment poll that has already seen this version of the state (answered 204)."""
    return (
        version is not None
        and bool(request.query.get("fragment"))
        and request.query.get("since") == str(version)
    )


def _page(
    console: Console, request: web.Request, title: str, body: str, version: int | None = None
) -> web.Response:
    """The page, or only its fragment for the browser's poll (with the state's version, so
    that an unchanged page is not re-sent and not re-drawn)."""
    headers = {"X-Console-Version": str(version)} if version is not None else {}
    if request.query.get("fragment"):
        return web.Response(text=body, content_type="text/html", headers=headers)
    lang = _lang(request)
    html = pages.frame(
        view.t(title, lang),
        body,
        lang,
        request.get(USER),
        console.settings.console.refresh_s,
        version=version,
        params=_params(request),
    )
    return web.Response(text=html, content_type="text/html", headers=headers)


def create_app(console: Console) -> web.Application:
    app = web.Application(middlewares=[_middleware(console)])
    routes = web.RouteTableDef()

    @routes.get("/login")
    async def login_form(request: web.Request) -> web.Response:
        lang = _lang(request)
        body = pages.login_page(lang, bool(request.query.get("failed")), _safe_next(request))
        return web.Response(
            text=pages.frame(
                view.t("login", lang), body, lang, None, 0, script=False, params=_params(request)
            ),
            content_type="text/html",
        )

    @routes.post("/login")
    async def login(request: web.Request) -> web.Response:
        remote = request.remote or "?"
        if console.gate.blocked(remote):
            log.warning("console_login_throttled", remote=remote)
            raise web.HTTPTooManyRequests(text="too many wrong keys from this address; wait")
        form = await request.post()
        lang = "en" if form.get("lang") == "en" else "vi"
        user = console.gate.by_key(str(form.get("api_key", "")))
        target = _safe_next(request, str(form.get("next", "/")))
        if user is None:
            console.gate.note_failure(remote)
            log.warning("console_login_refused", remote=remote)
            raise web.HTTPSeeOther("/login?" + _encode({"failed": "1", "lang": lang}))
        token = console.gate.open_session(user)
        log.info("console_login", user=user.name, role=user.role.value)
        response = web.HTTPSeeOther(target)
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        raise response

    @routes.post("/logout")
    async def logout(request: web.Request) -> web.Response:
        console.gate.close_session(request.cookies.get(COOKIE))
        response = web.HTTPSeeOther("/login")
        response.del_cookie(COOKIE, path="/")
        raise response

    @routes.get("/static/console.js")
    async def script(request: web.Request) -> web.Response:
        return web.Response(text=pages.SCRIPT, content_type="application/javascript")

    def overview_model(request: web.Request) -> dict[str, Any]:
        snap = console.state.snapshot()
        reference = console.now(snap)
        choice = request.query.get("period", "month")
        try:
            period = view.resolve_period(choice, reference)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"period: {exc}") from None
        agency = request.query.get("agency") or None
        level = request.query.get("level") or None
        sums = console.state.sums_of(view.labels_for(period))
        rows, totals = view.agency_rows(sums[period.label], console.registry)
        if agency or level:
            rows = [r for r in rows if r.agency == (agency or r.agency)]
            rows = [r for r in rows if r.level == (level or r.level)]
            totals = view.sum_rows(rows)
        return {
            "period": period,
            "choice": choice,
            "reference": reference,
            "rows": rows,
            "totals": totals,
            "series": view.series_of(
                sums, period, {r.agency for r in rows} if agency or level else None
            ),
        }

    @routes.get("/")
    async def overview(request: web.Request) -> web.Response:
        version = console.state.version
        if _unchanged(request, version):
            return web.Response(status=204)
        m = overview_model(request)
        lang = _lang(request)
        body = pages.overview_fragment(
            m["rows"],
            m["totals"],
            m["period"].label,
            m["choice"],
            m["reference"].astimezone(view.VN).isoformat(timespec="seconds"),
            view.chart_svg(m["series"], lang),
            lang,
            _params(request),
        )
        return _page(console, request, "overview", body, version)

    @routes.get("/api/overview")
    async def overview_api(request: web.Request) -> web.Response:
        m = overview_model(request)
        rows = [
            {"agency": r.agency, "name": r.name, "level": r.level, **r.figures, **r.rates}
            for r in m["rows"]
        ]
        return web.json_response(
            {
                "period": m["period"].label,
                "as_of": m["reference"].isoformat(),
                "rows": rows,
                "totals": m["totals"] | view.rates(m["totals"]),
                "series": m["series"],
            }
        )

    @routes.get("/overdue")
    async def overdue(request: web.Request) -> web.Response:
        snap = console.state.snapshot()
        if _unchanged(request, snap.version):
            return web.Response(status=204)
        rows = console.alert_rows(snap, request.query.get("agency") or None)
        body = pages.overdue_fragment(rows, _lang(request), console.agency_names())
        return _page(console, request, "overdue", body, snap.version)

    @routes.get("/handoffs")
    async def handoffs(request: web.Request) -> web.Response:
        snap = console.state.snapshot()
        if _unchanged(request, snap.version):
            return web.Response(status=204)
        body = pages.handoffs_fragment(
            view.escalation_rows(snap.escalations),
            view.postal_alert_rows(snap.ops_alerts),
            _lang(request),
            console.agency_names(),
        )
        return _page(console, request, "handoffs", body, snap.version)

    @routes.get("/api/overdue")
    async def overdue_api(request: web.Request) -> web.Response:
        snap = console.state.snapshot()
        rows = console.alert_rows(snap, request.query.get("agency") or None)
        return web.json_response(
            {
                "as_of": console.now(snap).isoformat(),
                "alerts": [
                    {
                        "dossier_id": r.alert.dossier_id,
                        "kind": r.alert.kind,
                        "scope": r.alert.scope,
                        "agency": r.alert.agency,
                        "step": r.alert.step,
                        "due_at": r.alert.due_at.isoformat(),
                        "working_hours": r.hours,
                    }
                    for r in rows
                ],
            }
        )

    @routes.get("/api/handoffs")
    async def handoffs_api(request: web.Request) -> web.Response:
        snap = console.state.snapshot()
        stuck = [
            {
                **e.__dict__,
                "sent_at": e.sent_at.isoformat(),
                "accept_due_at": e.accept_due_at.isoformat(),
            }
            for e in view.escalation_rows(snap.escalations)
        ]
        postal = view.postal_alert_rows(snap.ops_alerts)
        return web.json_response({"stuck_handoffs": stuck, "postal_alerts": postal})

    @routes.get("/dossiers/{dossier_id}")
    async def dossier(request: web.Request) -> web.Response:
        dossier_id = request.match_info["dossier_id"]
        snap = console.state.snapshot()
        loop = asyncio.get_running_loop()
        slip, documents, portal, own = await asyncio.gather(
            loop.run_in_executor(None, console.worker_json, "/dossiers/slip?id=", dossier_id),
            loop.run_in_executor(None, console.worker_json, "/documents/?dossier=", dossier_id),
            loop.run_in_executor(None, console.portal_records, dossier_id),
            loop.run_in_executor(None, console.dossier_alerts, dossier_id),
        )
        alerts = [
            r
            for r in view.alert_rows(own.alerts, as_of=console.now(snap), calendar=console.calendar)
            if r.alert.dossier_id == dossier_id
        ]
        body = pages.slip_fragment(
            dossier_id,
            slip,
            alerts,
            view.escalation_rows(own.escalations, dossier_id),
            view.postal_alert_rows(snap.ops_alerts, dossier_id),
            portal,
            documents,
            _lang(request),
        )
        return _page(console, request, "dossier", body)

    @routes.get("/dossiers/{dossier_id}/evidence.zip")
    async def evidence(request: web.Request) -> web.Response:
        dossier_id = request.match_info["dossier_id"]
        loop = asyncio.get_running_loop()
        data, reason = await loop.run_in_executor(None, console.export_evidence, dossier_id)
        user, _ = _who(request)
        if data is None:
            log.warning("console_evidence_failed", dossier_id=dossier_id, reason=reason)
            raise web.HTTPConflict(text=f"no evidence bundle for {dossier_id}: {reason}")
        log.info("console_evidence_downloaded", dossier_id=dossier_id, user=user.name)
        name = "".join(c if c.isalnum() or c in ".-_" else "_" for c in dossier_id)
        return web.Response(
            body=data,
            content_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="evidence-{name}.zip"'},
        )

    @routes.get("/dead-letters")
    async def dead_letters(request: web.Request) -> web.Response:
        user, session = _who(request)
        snap = console.state.snapshot()
        if _unchanged(request, snap.dlq_version):
            return web.Response(status=204)
        q = request.query
        rows = view.dead_letter_rows(
            snap.dead_letters, snap.redrives, q.get("source") or None, q.get("error_class") or None
        )
        body = pages.dead_letters_fragment(
            rows,
            view.dead_letter_groups(snap.dead_letters),
            _lang(request),
            _params(request),
            user.may_redrive and session is not None,
            session.csrf if session else "",
        )
        return _page(console, request, "dead_letters", body, snap.dlq_version)

    @routes.get("/api/dead-letters")
    async def dead_letters_api(request: web.Request) -> web.Response:
        snap = console.state.snapshot()
        q = request.query
        rows = view.dead_letter_rows(
            snap.dead_letters, snap.redrives, q.get("source") or None, q.get("error_class") or None
        )
        return web.json_response({"dead_letters": [r.__dict__ for r in rows]})

    @routes.get("/dead-letters/{address}")
    async def dead_letter(request: web.Request) -> web.Response:
        try:
            address = view.parse_address(request.match_info["address"])
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        letter = console.state.snapshot().dead_letters.get(address)
        if letter is None:
            raise web.HTTPNotFound(text=f"no dead letter at {address[0]}:{address[1]}")
        headers = {n: v.decode("utf-8", "replace") for n, v in letter.headers}
        body = pages.dead_letter_detail(
            f"{address[0]}:{address[1]}",
            headers,
            repr(letter.key),
            _decoded(letter.value or b""),
            _hexdump(letter.value or b""),
            _lang(request),
        )
        return _page(console, request, "dead_letters", body)

    async def redrive_request(request: web.Request, address_text: str) -> str:
        user, _ = _who(request)
        if not user.may_redrive:
            log.warning("console_redrive_refused", user=user.name, role=user.role.value)
            raise web.HTTPForbidden(text=view.t("forbidden", _lang(request)))
        try:
            address = view.parse_address(address_text)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        try:
            return await asyncio.get_running_loop().run_in_executor(
                None, console.redrive, address, user
            )
        except LookupError as exc:
            raise web.HTTPNotFound(text=str(exc)) from None
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None

    @routes.post("/dead-letters/redrive")
    async def redrive_form(request: web.Request) -> web.Response:
        form = await request.post()
        session = request.get(SESSION)
        # A form post must carry its session's token (no cross-site redrive).
        if session is None or form.get("csrf") != session.csrf:
            raise web.HTTPForbidden(text="missing or wrong form token")
        addresses = [str(a) for a in form.getall("address", [])]
        if not addresses:
            raise web.HTTPBadRequest(text="no dead letter selected (address=PARTITION:OFFSET)")
        # One at a time, in the order given; the first that fails stops the rest (its error
        # is the answer, the ones before it are redriven and recorded).
        for address in addresses:
            await redrive_request(request, address)
        raise web.HTTPSeeOther("/dead-letters")

    @routes.post("/api/dead-letters/{address}/redrive")
    async def redrive_api(request: web.Request) -> web.Response:
        source = await redrive_request(request, request.match_info["address"])
        return web.json_response({"redriven": request.match_info["address"], "to": source})

    @routes.get("/bus-health")
    async def health(request: web.Request) -> web.Response:
        report = await asyncio.get_running_loop().run_in_executor(None, console.health)
        body = pages.health_fragment(
            report["components"],
            report["lag"],
            report["portal"],
            _lang(request),
            report.get("console_memory"),
        )
        return _page(console, request, "health", body)

    @routes.get("/api/bus-health")
    async def health_api(request: web.Request) -> web.Response:
        report = await asyncio.get_running_loop().run_in_executor(None, console.health)
        return web.json_response(report)

    app.add_routes(routes)
    return app


def _safe_next(request: web.Request, value: str | None = None) -> str:
    """Only a local path: the login form must not bounce a user to another site."""
    target = value if value is not None else request.query.get("next", "/")
    if not target.startswith("/") or target.startswith("//") or target.startswith("/login"):
        return "/"
    return target


def _decoded(value: bytes) -> str:
    from lienthong.schemas import DecodeError, RegistryUnavailable, default_codec

    try:
        model, body = default_codec().decode_record(value)
        return f"{model.EVENT_TYPE} (not validated):\n" + json.dumps(
            body, default=str, ensure_ascii=False, indent=2
        )
    except (DecodeError, RegistryUnavailable) as exc:
        return f"cannot decode: {type(exc).__name__}: {exc}"


def _hexdump(value: bytes, limit: int = 512) -> str:
    lines = []
    for start in range(0, min(len(value), limit), 16):
        chunk = value[start : start + 16]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{start:08x}  {chunk.hex(' '):<47}  {text}")
    return "\n".join(lines)


async def serve(console: Console, host: str, port: int) -> None:
    from lienthong.runtime.serving import serve_until_signal

    reader = TopicReader(console.settings, console.state).start()
    try:
        await serve_until_signal(create_app(console), host, port)
    finally:
        reader.close()
        console.close()


def main(argv: list[str] | None = None) -> int:
    """``lienthong run console [--host H] [--port P]``."""
    from lienthong.logs import configure_logging
    from lienthong.runtime.serving import settings_or_report

    parser = argparse.ArgumentParser(
        prog="lienthong run console", description="Serve the monitoring console in the browser."
    )
    parser.add_argument("--host", help="default: console.host")
    parser.add_argument("--port", type=int, help="default: console.port")
    args = parser.parse_args(argv)
    settings = settings_or_report("lienthong console")
    if settings is None:
        return 2
    configure_logging("console", settings.log_level)
    try:
        users = load_users(settings.console.users_file)
    except UsersFileError as exc:
        print(f"lienthong console: {exc}", file=sys.stderr)
        return 2
    if not users:
        log.warning("console_no_users", hint="set console.users_file; nobody can log in")
    host = args.host or settings.console.host
    port = settings.console.port if args.port is None else args.port
    log.info("console_starting", host=host, port=port, users=len(users))
    asyncio.run(serve(Console(settings, users), host, port))
    log.info("console_stopped")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
