"""``lienthong simulate`` refuses impossible figures before touching a broker."""

from __future__ import annotations

import pytest

from lienthong.cli.main import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "live", "--period", "2026-01"], "live runs from now"),
        (["--mode", "live", "--rate", "0"], "--rate"),
        (["--mode", "live", "--dossiers", "40"], "live arrivals follow --rate"),
        (["--mode", "live", "--dry-run"], "--dry-run"),
        (["--dry-run", "--procedures", "5000"], "cannot simulate 5000"),
        (["--dry-run", "--procedures", "1300", "--inter-agency", "200"], "single-agency"),
    ],
)
def test_usage_errors(args: list[str], message: str, capsys, tmp_path) -> None:
    code = main(["simulate", "--truth", str(tmp_path / "t.json"), *args])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "t.json").exists()


def test_subset_dry_run_writes_a_truth(capsys, tmp_path) -> None:
    truth = tmp_path / "t.json"
    args = ["--dry-run", "--dossiers", "50", "--procedures", "60", "--inter-agency", "20"]
    assert main(["simulate", "--truth", str(truth), *args]) == 0
    assert truth.exists()
