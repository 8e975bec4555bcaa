"""HTML of the console's pages (server-side, escaped; pure functions of the view-model).

Each page is a ``<main id="live">`` fragment inside a shared frame; the browser re-fetches the
fragment (``?fragment=1``) every ``refresh_s`` and swaps it in, so figures update without a
reload and without any script library.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from .feed import STATS_FIELDS, Escalation
from .view import (
    LEVELS,
    PERIOD_CHOICES,
    TEXT,
    AlertRow,
    DeadLetterRow,
    OverviewRow,
    percent,
    rates,
    t,
)

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#f6f7f9}
header{background:#8b1a1a;color:#fff;padding:.5em 1em;display:flex;gap:1em;align-items:center}
header a{color:#fff;text-decoration:none}header .who{margin-left:auto}
main{padding:1em}table{border-collapse:collapse;background:#fff;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right;font-size:13px}
th{text-align:left;background:#eef0f3}button{white-space:nowrap}
th:first-child,td:first-child{text-align:left}td.l{text-align:left}
nav.periods a{margin-right:.8em}nav.periods a.on{font-weight:bold}
.late{color:#c0392b}.ok{color:#2e7d32}.muted{color:#777}form.inline{display:inline}
pre{background:#fff;border:1px solid #ccc;padding:.5em;overflow:auto;max-height:30em}
"""

# Polls the page's own URL with fragment=1 and swaps <main> when it changed (no library).
SCRIPT = """
(function(){
  var main=document.getElementById('live'); if(!main) return;
  var every=parseFloat(main.dataset.refresh||'1')*1000;
  function tick(){
    // A selection in progress (dead letters to redrive) is not swapped away under the user.
    if(main.querySelector('input[type=checkbox]:checked')){setTimeout(tick,every);return;}
    var u=new URL(window.location.href); u.searchParams.set('fragment','1');
    if(main.dataset.version) u.searchParams.set('since',main.dataset.version);
    fetch(u,{credentials:'same-origin',cache:'no-store'}).then(function(r){
      if(r.status===401){window.location.reload();return null;}
      if(r.status!==200) return null;
      var v=r.headers.get('X-Console-Version'); if(v) main.dataset.version=v;
      return r.text();
    }).then(function(html){ if(html!==null) main.innerHTML=html; })
      .catch(function(){}).finally(function(){setTimeout(tick,every);});
  }
  setTimeout(tick,every);
})();
"""


def _q(params: dict[str, str], **changes: str | None) -> str:
    merged = {k: v for k, v in {**params, **changes}.items() if v}
    return "?" + urlencode(merged) if merged else ""


def frame(
    title: str,
    body: str,
    lang: str,
    user: Any | None,
    refresh_s: float,
    script: bool = True,
    version: int | None = None,
    params: dict[str, str] | None = None,
) -> str:
    """The full page around a fragment: header, navigation, language switch."""
    nav = ""
    if user is not None:
        suffix = "?lang=en" if lang == "en" else ""
        links = [
            ("/", "overview"),
            ("/overdue", "nav_overdue"),
            ("/handoffs", "nav_handoffs"),
            ("/dead-letters", "nav_dead_letters"),
            ("/bus-health", "nav_health"),
        ]
        nav = "".join(f'<a href="{href}{suffix}">{escape(t(k, lang))}</a>' for href, k in links)
        role = user.role.value
        nav += (
            f'<span class="who" id="who">{escape(user.name)} ({escape(role)})</span>'
            '<form class="inline" method="post" action="/logout">'
            f'<button type="submit">{escape(t("logout", lang))}</button></form>'
        )
    other = "vi" if lang == "en" else "en"
    # The other language of the same page (its period, filters, next target kept).
    here = _q(params or {}, lang=other if other == "en" else None) or "?"
    switch = f'<a href="{escape(here)}" id="lang">{other.upper()}</a>'
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{escape(title)} · {escape(t('title', lang))}</title>"
        f'<meta name="viewport" content="width=device-width"><style>{STYLE}</style></head>'
        f"<body><header><strong>{escape(t('title', lang))}</strong>{nav}{switch}</header>"
        f'<main id="live" data-refresh="{refresh_s}"'
        + (f' data-version="{version}"' if version is not None else "")
        + f">{body}</main>"
        + ('<script src="/static/console.js"></script>' if script else "")
        + "</body></html>"
    )


def login_page(lang: str, failed: bool, next_url: str) -> str:
    error = f'<p class="late" id="error">{escape(t("login_failed", lang))}</p>' if failed else ""
    return (
        f"<h1>{escape(t('login', lang))}</h1>{error}"
        '<form method="post" action="/login" id="login">'
        f'<input type="hidden" name="next" value="{escape(next_url)}">'
        f'<input type="hidden" name="lang" value="{escape(lang)}">'
        f"<label>{escape(t('api_key', lang))} "
        '<input type="password" name="api_key" id="api_key" autocomplete="off"></label> '
        f'<button type="submit" id="submit">{escape(t("login", lang))}</button></form>'
    )


# The overview's count columns: the §6 counts an officer reads per department.
COLUMNS = tuple(
    f for f in STATS_FIELDS if f not in ("carried_over", "refused", "withdrawn", "returned_by_post")
)


def _figure_cells(figures: dict[str, int], agency: str) -> str:
    cells = "".join(
        f'<td data-agency="{escape(agency)}" data-figure="{name}">{figures[name]}</td>'
        for name in COLUMNS
    )
    r = rates(figures)
    cells += "".join(
        f'<td data-agency="{escape(agency)}" data-figure="{name}">{percent(r[name])}</td>'
        for name in ("on_time_rate", "online_rate", "postal_rate")
    )
    return cells


def overview_fragment(
    rows: list[OverviewRow],
    totals: dict[str, int],
    period_label: str,
    choice: str,
    as_of: str,
    chart: str,
    lang: str,
    params: dict[str, str],
) -> str:
    links = "".join(
        f'<a href="{_q(params, period=c)}" class="{"on" if c == choice else ""}" '
        f'id="period-{c}">{escape(t(c, lang))}</a>'
        for c in PERIOD_CHOICES
    )
    head = "".join(
        f"<th>{escape(t(n, lang))}</th>"
        for n in ("agency", "level", *COLUMNS, "on_time_rate", "online_rate", "postal_rate")
    )
    body = "".join(
        f'<tr data-agency="{escape(r.agency)}"><td class="l">{escape(r.name)}'
        f'<br><span class="muted">{escape(r.agency)}</span></td>'
        f'<td class="l">{escape(t(r.level, lang) if r.level in LEVELS else r.level)}</td>'
        f"{_figure_cells(r.figures, r.agency)}</tr>"
        for r in rows
    )
    level = params.get("level", "")
    levels = f'<a href="{_q(params, level=None)}" class="{"" if level else "on"}">'
    levels += f"{escape(t('all', lang))}</a>" + "".join(
        f'<a href="{_q(params, level=v)}" class="{"on" if v == level else ""}">'
        f"{escape(t(v, lang))}</a>"
        for v in LEVELS
    )
    total_row = (
        f'<tr data-agency="*"><th>{escape(t("total", lang))}</th><td></td>'
        f"{_figure_cells(totals, '*')}</tr>"
    )
    table = (
        f'<table id="overview"><tr>{head}</tr>{body}{total_row}</table>'
        if rows
        else f'<p id="no-data">{escape(t("no_data", lang))}</p>'
    )
    return (
        f"<h1>{escape(t('overview', lang))}</h1>"
        f'<nav class="periods">{links}</nav>'
        f'<p>{escape(t("period", lang))}: <b id="period">{escape(period_label)}</b> · '
        f'{escape(t("as_of", lang))} <span id="as-of">{escape(as_of)}</span></p>'
        f'<nav class="periods">{escape(t("levels", lang))}: {levels}</nav>'
        f"<h2>{escape(t('chart', lang))}</h2>{chart}{table}"
    )


def overdue_fragment(rows: list[AlertRow], lang: str, names: dict[str, str]) -> str:
    head = "".join(
        f"<th>{escape(t(n, lang))}</th>" for n in ("dossier", "kind", "agency", "step", "due_at")
    )
    head += f"<th>{escape(t('over', lang))} / {escape(t('left', lang))}</th>"
    body = ""
    for row in rows:
        a = row.alert
        cls = "late" if a.kind == "overdue" else ""
        kind = t(f"kind_{a.kind}", lang)
        body += (
            f'<tr class="{cls}" data-dossier="{escape(a.dossier_id)}">'
            f'<td><a href="/dossiers/{escape(a.dossier_id)}">{escape(a.dossier_id)}</a></td>'
            f'<td class="l">{escape(kind)}</td>'
            f'<td class="l">{escape(names.get(a.agency, a.agency))}</td>'
            f"<td>{a.step or ''}</td><td>{escape(a.due_at.isoformat(timespec='minutes'))}</td>"
            f"<td>{row.hours}</td></tr>"
        )
    table = f'<table id="alerts"><tr>{head}</tr>{body}</table>' if rows else ""
    return f"<h1>{escape(t('overdue', lang))}</h1><p>{len(rows)}</p>{table}"


def dead_letters_fragment(
    rows: list[DeadLetterRow],
    groups: list[tuple[str, str, int]],
    lang: str,
    params: dict[str, str],
    may_redrive: bool,
    csrf: str,
) -> str:
    group_rows = "".join(
        f'<tr><td><a href="{_q(params, source=s, error_class=c)}">{escape(s)}</a></td>'
        f'<td class="l">{escape(c)}</td><td>{n}</td></tr>'
        for s, c, n in groups
    )
    groups_table = (
        f'<table id="dlq-groups"><tr><th>{escape(t("source", lang))}</th>'
        f"<th>{escape(t('error_class', lang))}</th><th>{escape(t('count', lang))}</th></tr>"
        f"{group_rows}</table>"
    )
    head = "".join(
        f"<th>{escape(x)}</th>"
        for x in ("#", t("source", lang), t("error_class", lang), t("reason", lang), "")
    )
    body = ""
    for r in rows:
        if r.redriven:
            action = (
                f'<span class="ok redriven">{escape(t("redriven", lang))} '
                f"{escape(t('by', lang))} {escape(r.redriven['by'])} {escape(r.redriven['at'])}"
                "</span>"
            )
        elif may_redrive:
            action = (
                f'<input type="checkbox" name="address" value="{escape(r.address)}" '
                'form="redrive-selection" class="select"> '
                '<form class="inline" method="post" action="/dead-letters/redrive">'
                f'<input type="hidden" name="address" value="{escape(r.address)}">'
                f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
                f'<button type="submit" class="redrive" data-address="{escape(r.address)}">'
                f"{escape(t('redrive', lang))}</button></form>"
            )
        else:
            action = f'<span class="muted">{escape(t("read_only", lang))}</span>'
        body += (
            f'<tr data-address="{escape(r.address)}">'
            f'<td><a href="/dead-letters/{escape(r.address)}">{escape(r.address)}</a></td>'
            f'<td class="l">{escape(r.source)}</td><td class="l">{escape(r.error_class)}</td>'
            f'<td class="l">{escape(r.reason[:160])}</td><td class="l">{action}</td></tr>'
        )
    shown = f'<a href="{_q(params, source=None, error_class=None)}">{escape(t("all", lang))}</a>'
    selection = ""
    if may_redrive:
        selection = (
            '<form id="redrive-selection" method="post" action="/dead-letters/redrive">'
            f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
            f'<button type="submit" id="redrive-selected">{escape(t("redrive_selected", lang))}'
            "</button></form>"
        )
    return (
        f"<h1>{escape(t('dead_letters', lang))}</h1>{groups_table}<p>{shown} · "
        f'<span id="dlq-count">{len(rows)}</span></p>{selection}'
        f'<table id="dlq"><tr>{head}</tr>{body}</table>'
    )


def dead_letter_detail(
    address: str, headers: dict[str, str], key: str, decoded: str, hexdump: str, lang: str
) -> str:
    rows = "".join(
        f'<tr><td>{escape(k)}</td><td class="l">{escape(v)}</td></tr>' for k, v in headers.items()
    )
    return (
        f"<h1>{escape(t('dead_letters', lang))} {escape(address)}</h1>"
        f'<p><a href="/dead-letters">{escape(t("back", lang))}</a></p>'
        f"<p>key: <code>{escape(key)}</code></p><table>{rows}</table>"
        f'<pre id="decoded">{escape(decoded)}</pre><pre>{escape(hexdump)}</pre>'
    )


def health_fragment(
    components: list[dict[str, Any]],
    lag: list[tuple[str, str, int]],
    portal: dict[str, Any],
    lang: str,
    memory: dict[str, dict[str, int]] | None = None,
) -> str:
    comp = "".join(
        f'<tr><td>{escape(c["name"])}</td><td class="l">{escape(c["url"])}</td>'
        f'<td class="l {"ok" if c["status"] == "ok" else "late"}">{escape(c["status"])}</td></tr>'
        for c in components
    )
    lag_html = "".join(
        f'<tr><td>{escape(g)}</td><td class="l">{escape(tp)}</td><td>{n}</td></tr>'
        for g, tp, n in lag
    )
    return (
        f"<h1>{escape(t('health', lang))}</h1>"
        f'<table id="components"><tr><th>{escape(t("component", lang))}</th><th>URL</th>'
        f"<th>{escape(t('status', lang))}</th></tr>{comp}</table>"
        f"<h2>{escape(t('portal_sync', lang))}</h2>"
        + (
            _table(
                "portal-sync",
                ["kind", "count"],
                [
                    [escape(str(k)), escape(str(v))]
                    for k, v in portal.items()
                    if isinstance(v, int | float | str)
                ],
                lang,
            )
            if portal
            else f'<p class="muted" id="portal-sync">{escape(t("no_portal", lang))}</p>'
        )
        + f"<h2>{escape(t('lag', lang))}</h2>"
        f'<table id="lag"><tr><th>group</th><th>topic:partition</th><th>lag</th></tr>'
        f"{lag_html}</table>" + _memory_table(memory or {}, lang)
    )


def _memory_table(memory: dict[str, dict[str, int]], lang: str) -> str:
    """What the console holds and what its bounds dropped (feed.Limits), by table."""
    held, dropped = memory.get("held", {}), memory.get("dropped", {})
    if not held and not dropped:
        return ""
    names = sorted(set(held) | set(dropped))
    rows = [[escape(n), str(held.get(n, "")), str(dropped.get(n, ""))] for n in names]
    return f"<h2>{escape(t('console_memory', lang))}</h2>" + _table(
        "console-memory", ["kind", "held", "dropped"], rows, lang
    )


def _when(value: Any) -> str:
    return value.isoformat(timespec="minutes") if hasattr(value, "isoformat") else str(value)


def _table(table_id: str, head: list[str], rows: list[list[str]], lang: str) -> str:
    """A plain table of already-escaped cells (header keys are TEXT keys or literals)."""
    th = "".join(f"<th>{escape(t(h, lang) if h in TEXT else h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f'<td class="l">{c}</td>' for c in r) + "</tr>" for r in rows)
    return f'<table id="{table_id}"><tr>{th}</tr>{body}</table>'


def _dossier_link(dossier_id: str) -> str:
    d = escape(dossier_id)
    return f'<a href="/dossiers/{d}">{d}</a>'


def handoffs_fragment(
    escalations: list[Escalation],
    postal: list[dict[str, Any]],
    lang: str,
    names: dict[str, str],
) -> str:
    stuck = [
        [
            _dossier_link(e.dossier_id),
            str(e.step),
            escape(names.get(e.from_agency, e.from_agency)),
            escape(names.get(e.to_agency, e.to_agency)),
            escape(_when(e.sent_at)),
            escape(_when(e.accept_due_at)),
        ]
        for e in escalations
    ]
    late = [
        [
            _dossier_link(str(a.get("dossier_id", ""))),
            escape(str(a.get("alert_type", ""))),
            escape(names.get(str(a.get("agency")), str(a.get("agency", "")))),
            escape(str(a.get("reason", ""))),
            escape(str(a.get("raised_at", ""))),
        ]
        for a in postal
    ]
    return (
        f"<h1>{escape(t('handoffs', lang))}</h1>"
        f"<h2>{escape(t('stuck', lang))} ({len(stuck)})</h2>"
        + _table("stuck", ["dossier", "step", "from", "to", "sent_at", "accept_due"], stuck, lang)
        + f"<h2>{escape(t('postal_late', lang))} ({len(late)})</h2>"
        + _table("postal", ["dossier", "kind", "agency", "reason", "raised_at"], late, lang)
    )


def _pretty(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, indent=2, default=str) if value else "–"


def slip_fragment(
    dossier_id: str,
    slip: Any,
    alerts: list[AlertRow],
    escalations: list[Escalation],
    postal: list[dict[str, Any]],
    portal: list[dict[str, Any]],
    documents: Any,
    lang: str,
) -> str:
    """One dossier: its alerts, stuck handoffs, the post's alerts, the process control slip
    (phiếu kiểm soát quá trình), the records sent to the national portal, its documents."""
    portal_rows = [
        [
            escape(str(r.get(k, "") or ""))
            for k in ("at", "TrangThaiHoSo", "DonViXuLy", "NgayHenTra")
        ]
        for r in portal
    ]
    return (
        f"<h1>{escape(t('dossier', lang))} {escape(dossier_id)}</h1>"
        f'<p><a href="/overdue">{escape(t("back", lang))}</a> · '
        f'<a id="evidence" href="/dossiers/{quote(dossier_id)}/evidence.zip">'
        f"{escape(t('evidence', lang))}</a></p>"
        f"<h2>{escape(t('alerts', lang))}</h2>"
        f"{overdue_fragment(alerts, lang, {}).split('</h1>', 1)[1]}"
        + (handoffs_fragment(escalations, postal, lang, {}).split("</h1>", 1)[1])
        + f'<h2>{escape(t("slip", lang))}</h2><pre id="slip">{escape(_pretty(slip))}</pre>'
        + f"<h2>{escape(t('portal_records', lang))} ({len(portal)})</h2>"
        + _table("portal", ["raised_at", "status", "agency", "due_at"], portal_rows, lang)
        + f"<h2>{escape(t('documents', lang))}</h2>"
        + f'<pre id="documents">{escape(_pretty(documents))}</pre>'
    )
