"""The console against the real broker and a replay worker, and in a real headless Chromium.

One scenario for the module: a replayed month (faults included, so there are dead letters)
into a replay-clock worker, checked by ``lienthong verify``; then a console process reading
the bus. The API and the pages must show the figures of the simulator's truth; the browser
logs in, is refused without a credential, sees a figure change live after an event is
published, opens an overdue dossier's slip and redrives a dead letter.

Screenshots of the main pages go to ``$CONSOLE_SCREENSHOTS`` when set (docs/img/ is made
that way), else to a temporary folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from lienthong.connectors.console.pages import COLUMNS
from lienthong.runtime import probe
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.integration

MONITOR_KEY = "console-test-monitor-" + uuid.uuid4().hex
OPERATOR_KEY = "console-test-operator-" + uuid.uuid4().hex
PERIOD = "month:2026-01"
SHOWN = COLUMNS  # the overview's count columns


def wait_for(condition: Any, timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll ``condition`` until it returns something truthy (never wait for a time window)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except Exception as exc:  # not there yet
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(every)
    raise AssertionError(f"{what} not within {timeout}s (last: {last!r})")


class ConsoleProcess:
    def __init__(self, env: dict[str, str], log_file: Path) -> None:
        self.port = probe.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = log_file
        with log_file.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "lienthong", "run", "console", "--port", str(self.port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def get(self, path: str, key: str | None = MONITOR_KEY) -> tuple[int, Any]:
        request = urllib.request.Request(self.url + path)
        if key:
            request.add_header("Authorization", f"Bearer {key}")
        try:
            # Generous: the evidence download runs `lienthong audit export` in a child process,
            # which took over 5 s on a machine at load 10.
            with urllib.request.urlopen(request, timeout=60) as r:
                body = r.read()
                return r.status, json.loads(body) if path.startswith("/api/") else body.decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


def truth_by_agency(truth: dict[str, Any], label: str) -> dict[str, dict[str, int]]:
    """The simulator's truth summed per agency, as the overview shows it."""
    out: dict[str, dict[str, int]] = {}
    for key, counts in truth["counts"].items():
        agency, _procedure, channel, period = key.split("|")
        if period != label:
            continue
        acc = out.setdefault(agency, dict.fromkeys([*SHOWN, "online", "postal"], 0))
        for name in SHOWN:
            acc[name] += counts[name]
        if channel in ("online", "postal"):
            acc[channel] += counts["received"]
    return {a: f for a, f in out.items() if any(f.values())}


@pytest.fixture(scope="module")
def bus(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    from lienthong.config import load_settings
    from lienthong.runtime.topics import TopicAdmin
    from tests import conftest

    tmp = tmp_path_factory.mktemp("console")
    prefix = f"t{uuid.uuid4().hex[:10]}."
    env = {
        **os.environ,
        "LIENTHONG_BOOTSTRAP": kafka_bootstrap,
        "LIENTHONG_TOPIC_PREFIX": prefix,
        "LIENTHONG_WORKER__APP_ID": f"lienthong-{prefix.rstrip('.')}",
        "LIENTHONG_WORKER__SESSION_TIMEOUT_S": "6",
        "LIENTHONG_RUN_DIR": str(tmp / "run"),
        "LIENTHONG_LOG_LEVEL": "INFO",
        "LIENTHONG_WORKER__SINGLE_RECORD_BATCHES": "true" if conftest._tansu_session else "false",
        "LIENTHONG_STREAMS__CLOCK": "replay",
        "LIENTHONG_STREAMS__STATS_FLUSH_S": "0.3",
    }
    settings = load_settings(environ=env)
    with TopicAdmin(settings) as admin:
        admin.apply()
    worker = WorkerProcess(env, tmp / "worker.log").start(90.0)
    users = tmp / "users.toml"
    users.write_text(
        "".join(
            f'[[user]]\nname = "{name}"\nrole = "{role}"\n'
            f'api_key_sha256 = "{hashlib.sha256(key.encode()).hexdigest()}"\n'
            for name, role, key in (
                ("Cán bộ Lan", "monitor", MONITOR_KEY),
                ("Vận hành Minh", "operator", OPERATOR_KEY),
            )
        ),
        encoding="utf-8",
    )
    env |= {
        "LIENTHONG_CONSOLE__USERS_FILE": str(users),
        "LIENTHONG_CONSOLE__WORKER_URLS": worker.url,
    }
    console = None
    try:
        truth_file = tmp / "truth.json"

        def cli(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "-m", "lienthong", *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )

        sim = cli(
            "simulate", "--mode", "replay", "--period", "2026-01", "--seed", "11",
            "--dossiers", "120", "--all-faults", "0.05", "--truth", str(truth_file),
        )  # fmt: skip
        assert sim.returncode == 0, sim.stderr[-2000:]
        verified = cli("verify", "--truth", str(truth_file), "--wait", "120", "--timeout", "5")
        assert verified.returncode == 0, verified.stdout
        console = ConsoleProcess(env, tmp / "console.log")
        wait_for(lambda: console.get("/login", None)[0] == 200, 30, "console listening")
        yield {
            "console": console,
            "truth": json.loads(truth_file.read_text()),
            "settings": settings,
            "worker": worker,
            "tmp": tmp,
        }
    finally:
        if console is not None:
            console.stop()
        worker.stop()


def overview_rows(console: ConsoleProcess, period: str = PERIOD) -> dict[str, dict[str, Any]]:
    status, body = console.get(f"/api/overview?period={period}")
    assert status == 200, body
    return {row["agency"]: row for row in body["rows"]}


def test_api_figures_equal_the_truth_and_nothing_answers_without_a_key(bus: dict) -> None:
    console: ConsoleProcess = bus["console"]
    expected = truth_by_agency(bus["truth"], PERIOD)
    assert sum(f["received"] for f in expected.values()) > 50

    def matches() -> bool:
        rows = overview_rows(console)
        return all(
            rows.get(a, {}).get(n) == f[n] for a, f in expected.items() for n in SHOWN
        ) and set(rows) >= set(expected)

    wait_for(matches, 30, "console figures equal to the truth")
    rows = overview_rows(console)
    for agency, f in expected.items():
        received = f["received"]
        if received:
            assert rows[agency]["online_rate"] == pytest.approx(f["online"] / received)
            assert rows[agency]["postal_rate"] == pytest.approx(f["postal"] / received)
    # The quarter and the year: every dossier of the scenario is a January one and the bus's
    # clock is still in January, so their figures are the month's truth (the truth file has
    # the month only).
    for period in ("quarter:2026-Q1", "year:2026"):
        got = overview_rows(console, period)
        assert {a: {n: got[a][n] for n in SHOWN} for a in expected} == {
            a: {n: f[n] for n in SHOWN} for a, f in expected.items()
        }, period
    # Dead letters of the faults are listed with source and reason; the bus health shows lag.
    status, dl = console.get("/api/dead-letters")
    assert status == 200 and dl["dead_letters"]
    assert all(r["source"] != "?" and r["error_class"] != "?" for r in dl["dead_letters"])
    # Stuck handoffs are the truth's escalations (handoffs not accepted within the window).
    escalated = {e["handoff_id"] for e in bus["truth"]["alerts"]["escalations"].values()}
    status, handoffs = console.get("/api/handoffs")
    assert status == 200
    assert {h["handoff_id"] for h in handoffs["stuck_handoffs"]} == escalated
    # Overdue list: the truth's overdue dossiers whose processing has not ended (their last
    # portal status, read here straight from the topic, is not 3/7/8/9/10).
    from lienthong.schemas.codec import AvroCodec
    from lienthong.schemas.registry import registry_from_settings
    from lienthong.simulators.verify import read_topic

    codec = AvroCodec(registry_from_settings(bus["settings"]))
    last: dict[str, int] = {}
    for record in read_topic(bus["settings"], "portal-status", 10.0):
        event = codec.decode(record.value)
        last[str(event.envelope.dossier_id)] = event.TrangThaiHoSo
    assert last
    still_open = {
        d for d in bus["truth"]["alerts"]["overdue_dossiers"] if last.get(d) not in {3, 7, 8, 9, 10}
    }
    status, overdue = console.get("/api/overdue")
    listed = {
        a["dossier_id"]
        for a in overdue["alerts"]
        if a["kind"] == "overdue" and a["scope"] == "dossier"
    }
    assert still_open and listed == still_open
    assert all(a["working_hours"] > 0 for a in overdue["alerts"] if a["kind"] == "overdue")
    # A step's notice leaves the list once that agency handed the step back (the portal
    # record's progress line says so): none listed is older than a handback of its agency,
    # and the scenario has such steps (their notices were on the topic).
    from lienthong.connectors.console.feed import RETURNED_NOTE

    handbacks: dict[tuple[str, str], list[datetime]] = {}
    for record in read_topic(bus["settings"], "portal-status", 10.0):
        event = codec.decode(record.value)
        line = event.QuaTrinhXuLy[-1] if event.QuaTrinhXuLy else None
        if line is not None and line.NoiDungXuLy.startswith(RETURNED_NOTE):
            key = (str(event.envelope.dossier_id), event.DonViXuLy)
            handbacks.setdefault(key, []).append(event.envelope.occurred_at)
    cleared = 0
    for record in read_topic(bus["settings"], "deadline-alerts", 10.0):
        event = codec.decode(record.value)
        if event.EVENT_TYPE == "deadline_overdue" and event.scope.value == "step":
            times = handbacks.get((str(event.envelope.dossier_id), event.responsible_agency))
            cleared += any(t >= event.envelope.occurred_at for t in times or ())
    assert cleared, "the scenario has no late step handed back"
    for a in overdue["alerts"]:
        if a["scope"] == "step":
            due = datetime.fromisoformat(a["due_at"])
            after = [t for t in handbacks.get((a["dossier_id"], a["agency"]), ()) if t > due]
            assert not after, (a, after)
    # Without a trust directory there is no evidence bundle, and the console says why.
    status, text = console.get(f"/dossiers/{sorted(still_open)[0]}/evidence.zip")
    assert status == 409 and "trust directory" in text, text
    status, health = console.get("/api/bus-health")
    assert status == 200 and any(c["status"] == "ok" for c in health["components"])
    assert health["lag"], health
    for path in ("/api/overview", "/api/dead-letters", "/api/bus-health", "/?fragment=1"):
        assert console.get(path, key=None)[0] == 401, path
        assert console.get(path, key="wrong")[0] == 401, path
    assert console.get("/api/dead-letters/0:0/redrive", key=None)[0] in (401, 405)


# --- the browser --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(bus: dict) -> Iterator[Any]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        message = "browser tests need Debian's chromium and chromium-driver (make browser)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={bus['tmp'] / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def shots_dir(bus: dict) -> Path:
    target = Path(os.environ.get("CONSOLE_SCREENSHOTS") or bus["tmp"] / "shots")
    target.mkdir(parents=True, exist_ok=True)
    return target


def log_in(driver: Any, url: str, key: str, start: str = "/") -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(url + start)
    wait_for(lambda: driver.find_elements(By.ID, "api_key"), 10, "login form")
    driver.find_element(By.ID, "api_key").send_keys(key)
    driver.find_element(By.ID, "submit").click()
    wait_for(lambda: driver.find_elements(By.ID, "who"), 10, "logged-in page")


def received_at_counter(dossier: str, agency: str, at: datetime) -> Any:
    """A ``dossier_received`` at the one-stop counter of ``agency`` (procedure 1.004227)."""
    from lienthong.schemas.models import DossierReceived

    return DossierReceived.create(
        event_id=uuid.uuid4(),
        dossier_id=dossier,
        producer_agency=agency,
        occurred_at=at,
        recorded_at=at,
        channel="counter",
        procedure_code="1.004227",
        receiving_agency=agency,
        subject={"kind": "citizen", "identifier_hash": "ab" * 32},
        received_at=at,
    )


def cell(driver: Any, agency: str, figure: str) -> str:
    """A figure's text, read in one script call (the live update may swap the table)."""
    selector = f'td[data-agency="{agency}"][data-figure="{figure}"]'
    text = driver.execute_script(
        "var e=document.querySelector(arguments[0]); return e===null?null:e.textContent;", selector
    )
    assert text is not None, f"no cell {selector}"
    return text


def test_browser_refused_without_a_credential(bus: dict, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    url = bus["console"].url
    browser.delete_all_cookies()
    for path in ("/", "/dead-letters", "/overdue", "/bus-health"):
        browser.get(url + path)
        assert "/login" in browser.current_url, path
        assert not browser.find_elements(By.ID, "overview")
        assert not browser.find_elements(By.ID, "dlq")
    browser.find_element(By.ID, "api_key").send_keys("not-a-key")
    browser.find_element(By.ID, "submit").click()
    wait_for(lambda: browser.find_elements(By.ID, "error"), 10, "login refused")
    assert not browser.get_cookies() or all(
        c["name"] != "lienthong_console" for c in browser.get_cookies()
    )
    browser.save_screenshot(str(shots_dir(bus) / "console-login.png"))


def test_browser_overview_equals_the_truth_and_changes_live(bus: dict, browser: Any) -> None:
    from lienthong.domain.stats import VN
    from lienthong.schemas.codec import AvroCodec
    from lienthong.schemas.registry import registry_from_settings

    url = bus["console"].url
    expected = truth_by_agency(bus["truth"], PERIOD)
    log_in(browser, url, MONITOR_KEY, f"/?period={PERIOD}")
    for agency, f in expected.items():
        for name in SHOWN:
            assert cell(browser, agency, name) == str(f[name]), (agency, name)
    total = sum(f["received"] for f in expected.values())
    assert cell(browser, "*", "received") == str(total)
    browser.save_screenshot(str(shots_dir(bus) / "console-overview.png"))
    browser.get(url + f"/?period={PERIOD}&lang=en")
    assert "Overview" in browser.page_source and "Received" in browser.page_source

    # A new dossier is received: the open page shows it without a reload.
    browser.execute_script("window.__same_page = 'yes';")
    agency = "000.00.01.H10"
    before = int(cell(browser, agency, "received")) if agency in expected else 0
    settings = bus["settings"]
    codec = AvroCodec(registry_from_settings(settings))
    at = datetime(2026, 1, 30, 10, tzinfo=VN)
    event = received_at_counter(f"HS-LIVE-{uuid.uuid4().hex[:8]}", agency, at)
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    producer.send(
        settings.topic("dossier-events"),
        key=event.envelope.dossier_id.encode(),
        value=codec.encode(event),
    )
    producer.flush()
    producer.close()
    published = time.monotonic()

    def changed() -> bool:
        try:
            return int(cell(browser, agency, "received")) == before + 1
        except Exception:
            return False

    wait_for(changed, 30, "received figure updated on the open page", every=0.05)
    seen = time.monotonic() - published
    assert browser.execute_script("return window.__same_page;") == "yes"  # no reload
    print(f"\n[console] live figure changed {seen:.2f}s after publishing")


def test_browser_overdue_dossier_slip(bus: dict, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    url = bus["console"].url
    log_in(browser, url, MONITOR_KEY, "/overdue")
    overdue = set(bus["truth"]["alerts"]["overdue_dossiers"])
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#alerts tr.late"), 20, "overdue")
    shown = {
        e.get_attribute("data-dossier")
        for e in browser.find_elements(By.CSS_SELECTOR, "#alerts tr.late")
    }
    assert shown and shown <= overdue | {
        s.split("#")[0] for s in bus["truth"]["alerts"]["overdue_steps"]
    }

    browser.save_screenshot(str(shots_dir(bus) / "console-overdue.png"))
    first = browser.find_element(By.CSS_SELECTOR, "#alerts tr.late td a")
    dossier = first.text
    first.click()
    wait_for(lambda: browser.find_elements(By.ID, "slip"), 10, "dossier page")
    slip = browser.find_element(By.ID, "slip").text
    assert dossier in slip, slip[:500]
    # What the bus sent the national portal for it: at least the reception record.
    assert browser.find_elements(By.CSS_SELECTOR, "#portal tr td"), browser.page_source[-3000:]
    browser.save_screenshot(str(shots_dir(bus) / "console-dossier.png"))


def test_browser_operator_redrives_a_dead_letter(bus: dict, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    from lienthong.connectors.headers import DLQ_REPLAYED_FROM
    from lienthong.simulators.verify import read_topic

    url = bus["console"].url
    # A monitoring officer sees no redrive button.
    log_in(browser, url, MONITOR_KEY, "/dead-letters")

    def listed() -> list[Any]:
        # The month's faults reach the console's dead-letter list as the worker meets them:
        # on a loaded machine this test can come first, so reload until they are listed.
        rows = browser.find_elements(By.CSS_SELECTOR, "#dlq tr[data-address]")
        if not rows:
            browser.refresh()
        return rows

    assert wait_for(listed, 120, "dead letters listed", every=1.0)
    assert not browser.find_elements(By.CSS_SELECTOR, "button.redrive")
    log_in(browser, url, OPERATOR_KEY, "/dead-letters")
    button = browser.find_element(By.CSS_SELECTOR, "button.redrive")
    address = button.get_attribute("data-address")
    browser.save_screenshot(str(shots_dir(bus) / "console-dead-letters.png"))
    button.click()
    row = f'#dlq tr[data-address="{address}"] .redriven'
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, row), 15, "redrive recorded")
    assert "Vận hành Minh" in browser.find_element(By.CSS_SELECTOR, row).text
    topic = bus["settings"].topic("dead-letters")
    origin = f"{topic}:{address}".encode()

    def replayed() -> bool:
        for record in read_topic(bus["settings"], "dossier-events", 10.0):
            if (DLQ_REPLAYED_FROM, origin) in list(record.headers or ()):
                return True
        return False

    wait_for(replayed, 30, "redriven record in its source topic", every=1.0)
    # A selection of two at once; the live poll leaves the page alone while boxes are ticked.
    boxes = browser.find_elements(By.CSS_SELECTOR, "#dlq input.select")[:2]
    chosen = [b.get_attribute("value") for b in boxes]
    assert len(chosen) == 2
    for box in boxes:
        box.click()
    browser.find_element(By.ID, "redrive-selected").click()
    for address in chosen:
        row = f'#dlq tr[data-address="{address}"] .redriven'
        wait_for(lambda row=row: browser.find_elements(By.CSS_SELECTOR, row), 15, "selection")
    browser.get(url + "/bus-health")
    wait_for(lambda: browser.find_elements(By.ID, "lag"), 10, "health page")
    browser.save_screenshot(str(shots_dir(bus) / "console-health.png"))


def test_browser_redriven_dead_letter_is_applied(bus: dict, browser: Any) -> None:
    """A withdrawal published before its dossier was received is dead-lettered (unknown
    dossier); once the dossier is received, the operator's redrive makes the worker apply it:
    the portal gets the dossier's status 7 (rút hồ sơ)."""
    from kafka import KafkaProducer
    from selenium.webdriver.common.by import By

    from lienthong.connectors.console.feed import read_key
    from lienthong.domain.stats import VN
    from lienthong.schemas.codec import AvroCodec
    from lienthong.schemas.models import DossierWithdrawn
    from lienthong.schemas.registry import registry_from_settings

    settings = bus["settings"]
    codec = AvroCodec(registry_from_settings(settings))
    agency = "000.00.01.H10"
    dossier = f"HS-REDRIVE-{uuid.uuid4().hex[:8]}"
    received_at = datetime(2026, 1, 30, 11, tzinfo=VN)
    withdrawn_at = datetime(2026, 1, 30, 11, 30, tzinfo=VN)
    common = {"dossier_id": dossier, "producer_agency": agency}
    withdrawn = DossierWithdrawn.create(
        event_id=uuid.uuid4(),
        occurred_at=withdrawn_at,
        recorded_at=withdrawn_at,
        agency=agency,
        reason="công dân xin rút",
        **common,
    )
    received = received_at_counter(dossier, agency, received_at)
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")

    def send(event: Any) -> None:
        producer.send(
            settings.topic("dossier-events"), key=dossier.encode(), value=codec.encode(event)
        )
        producer.flush()

    console = bus["console"]

    def dead_letter() -> str | None:
        _, body = console.get("/api/dead-letters")
        found = [r["address"] for r in body["dead_letters"] if dossier in r["reason"]]
        return found[0] if found else None

    def statuses() -> list[int]:
        records = read_key(settings, "portal-status", dossier)
        return [codec.decode(r.value).TrangThaiHoSo for r in records]

    try:
        send(withdrawn)
        address = wait_for(dead_letter, 60, "the early withdrawal dead-lettered", every=0.5)
        send(received)
        wait_for(lambda: statuses(), 60, "the dossier received", every=0.5)
        assert 7 not in statuses()
    finally:
        producer.close()
    log_in(browser, console.url, OPERATOR_KEY, "/dead-letters")
    button = f'button.redrive[data-address="{address}"]'
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, button), 15, "its redrive button")
    browser.find_element(By.CSS_SELECTOR, button).click()
    row = f'#dlq tr[data-address="{address}"] .redriven'
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, row), 15, "redrive recorded")
    wait_for(lambda: 7 in statuses(), 60, "the redriven withdrawal applied", every=0.5)
