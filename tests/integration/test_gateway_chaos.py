"""Agencies post while the gateway is SIGKILLed and restarted: nothing acknowledged is lost.

A small run of simulators/gateway_load.py (the full 50 agencies x 60 s is
``benchmarks/chaos_gateway.py``, ``make chaos``) against the real broker and a real gateway
process: every 202 is on dossier-events, exactly once unless its first attempt went
unanswered; every refusal (the deliberately malformed requests) is problem+json.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lienthong.simulators.gateway_load import LoadReport, run_load

pytestmark = pytest.mark.integration  # small and quick: runs in the suite


def test_gateway_killed_under_load_loses_nothing_it_acknowledged(
    bus_env: dict[str, str], bus_settings, catalogue_topics, tmp_path: Path
) -> None:
    report = run_load(
        bus_settings, bus_env, tmp_path, agencies=10, duration_s=12, kill_at_s=4, bad_every=10
    )
    figures = report.figures()
    assert report.problems() == [], figures
    assert len(report.accepted) >= 20, figures  # load really ran, before and after the kill
    assert report.unanswered >= 1, figures  # the kill really hit requests in flight
    assert report.refused[422] >= 1 and set(report.refused) <= {422, 429}, figures
    # Every acknowledged id was read back from the topic.
    assert all(report.on_topic[e] >= 1 for e in report.accepted)


def test_report_flags_what_the_claims_forbid() -> None:
    """The checker itself: a lost 202, a duplicate without a retry, a non-problem refusal."""
    report = LoadReport()
    report.accepted = {"lost": 1, "twice": 1, "retried": 2}
    report.on_topic.update({"twice": 2, "retried": 2})
    report.not_problem_json.append("500 text/html oops")
    problems = report.problems()
    assert any("not on the topic" in p for p in problems)
    assert any("on the topic twice" in p for p in problems)
    assert any("not problem+json" in p for p in problems)
    assert len(problems) == 3  # the retried duplicate is allowed (at-least-once across a crash)
