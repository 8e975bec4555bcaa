"""The evolution gate catches what would strand a reader, and passes what Avro can resolve."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lienthong.cli.main import main
from lienthong.schemas.compat import check_catalogue, check_pair, release_catalogue
from lienthong.schemas.models import AVRO_DIR


def _base() -> dict[str, Any]:
    return json.loads((AVRO_DIR / "handoff_returned.avsc").read_text(encoding="utf-8"))


def _field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def _lines(findings) -> list[str]:
    return [f.line() for f in findings]


def test_unchanged_schema_is_compatible() -> None:
    assert check_pair("handoff_returned", _base(), _base(), "FULL") == []


def test_removed_field_without_default_fails_forward() -> None:
    new = _base()
    new["fields"] = [f for f in new["fields"] if f["name"] != "handoff_id"]
    assert check_pair("handoff_returned", new, _base(), "BACKWARD") == []  # new reader ignores it
    lines = _lines(check_pair("handoff_returned", new, _base(), "FULL"))
    assert lines == [
        "handoff_returned: handoff_id: FORWARD: field is in the old schema but not in new data "
        "and the old schema gives it no default"
    ]


def test_removed_field_with_default_is_fine() -> None:
    new = _base()
    new["fields"] = [f for f in new["fields"] if f["name"] != "note"]  # note has default null
    assert check_pair("handoff_returned", new, _base(), "FULL") == []


def test_added_field_without_default_fails_backward() -> None:
    new = _base()
    new["fields"].append({"name": "officer", "type": "string"})
    lines = _lines(check_pair("handoff_returned", new, _base(), "BACKWARD"))
    assert lines == [
        "handoff_returned: officer: BACKWARD: field is in the new schema but not in old data "
        "and the new schema gives it no default"
    ]
    new["fields"][-1]["default"] = ""
    assert check_pair("handoff_returned", new, _base(), "FULL") == []


def test_changed_type_is_caught() -> None:
    new = _base()
    _field(new, "step")["type"] = "string"
    lines = _lines(check_pair("handoff_returned", new, _base(), "BACKWARD"))
    assert lines == [
        "handoff_returned: step: BACKWARD: type changed from int (old data) to string "
        "(new schema), not a permitted promotion"
    ]


def test_promotion_is_backward_but_not_forward() -> None:
    new = _base()
    _field(new, "step")["type"] = "long"
    assert check_pair("handoff_returned", new, _base(), "BACKWARD") == []
    lines = _lines(check_pair("handoff_returned", new, _base(), "FULL"))
    assert len(lines) == 1 and "FORWARD: type changed from long (new data) to int" in lines[0]


def test_renamed_enum_symbol_is_caught() -> None:
    new = _base()
    _field(new, "outcome")["type"]["symbols"][0] = "done"  # completed -> done
    lines = _lines(check_pair("handoff_returned", new, _base(), "FULL"))
    assert lines == [
        "handoff_returned: outcome: BACKWARD: enum symbol(s) completed of old data missing from "
        "the new schema (removed or renamed) and the new schema's enum has no default",
        "handoff_returned: outcome: FORWARD: enum symbol(s) done of new data missing from "
        "the old schema (removed or renamed) and the old schema's enum has no default",
    ]


def test_nested_record_field_type_change_is_reported_with_its_path() -> None:
    new = _base()
    env = _field(new, "envelope")["type"]
    _field(env, "schema_version")["type"] = "string"
    lines = _lines(check_pair("handoff_returned", new, _base(), "BACKWARD"))
    assert len(lines) == 1 and lines[0].startswith("handoff_returned: envelope.schema_version:")


def test_union_branch_removed() -> None:
    new = _base()
    _field(new, "note")["type"] = "string"  # was ["null", "string"]
    lines = _lines(check_pair("handoff_returned", new, _base(), "BACKWARD"))
    assert lines == [
        "handoff_returned: note: BACKWARD: union branch null of old data has no match in "
        "string of the new schema"
    ]


def test_logical_type_change_is_caught() -> None:
    new = _base()
    _field(_field(new, "envelope")["type"], "occurred_at")["type"]["logicalType"] = (
        "timestamp-millis"
    )
    lines = _lines(check_pair("handoff_returned", new, _base(), "BACKWARD"))
    assert "logical type changed from timestamp-micros" in lines[0]


def test_record_rename_without_alias() -> None:
    new = _base()
    new["name"] = "HandoffAnswered"
    assert "record renamed" in _lines(check_pair("handoff_returned", new, _base()))[0]
    new["aliases"] = ["lienthong.events.HandoffReturned"]
    assert check_pair("handoff_returned", new, _base(), "BACKWARD") == []


@pytest.fixture
def catalogue(tmp_path: Path) -> tuple[Path, Path]:
    avro_dir = tmp_path / "avro"
    released = tmp_path / "released"
    avro_dir.mkdir()
    for name in ("envelope", "handoff_returned", "fee_paid"):
        shutil.copy(AVRO_DIR / f"{name}.avsc", avro_dir)
    assert len(release_catalogue(avro_dir, released)) == 2
    return avro_dir, released


def _write(path: Path, schema: dict[str, Any]) -> None:
    path.write_text(json.dumps(schema, indent=2), encoding="utf-8")


def test_cli_check_exits_nonzero_with_one_line_per_finding(catalogue, capsys) -> None:
    avro_dir, released = catalogue
    args = ["schemas", "check", "--schemas-dir", str(avro_dir), "--released-dir", str(released)]
    assert main(args) == 0
    new = _base()
    new["schema_version"] = 2
    _field(new, "step")["type"] = "string"
    _field(new, "outcome")["type"]["symbols"][1] = "refused"
    new["fields"] = [f for f in new["fields"] if f["name"] != "handoff_id"]
    _write(avro_dir / "handoff_returned.avsc", new)
    capsys.readouterr()
    assert main(args) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert "handoff_returned: step: BACKWARD: type changed from int" in out[0]
    assert any(
        line.startswith("handoff_returned: outcome: BACKWARD: enum symbol(s) rejected")
        for line in out
    )
    assert any(line.startswith("handoff_returned: handoff_id: FORWARD:") for line in out)
    # release refuses while incompatible
    assert (
        main(
            ["schemas", "release", "--schemas-dir", str(avro_dir), "--released-dir", str(released)]
        )
        == 2
    )


def test_change_without_version_bump_is_reported_and_release_snapshots_v2(
    catalogue, capsys
) -> None:
    avro_dir, released = catalogue
    new = copy.deepcopy(_base())
    new["fields"].append({"name": "officer", "type": ["null", "string"], "default": None})
    _write(avro_dir / "handoff_returned.avsc", new)
    report = check_catalogue(avro_dir, released)
    assert [f.path for f in report.findings] == ["schema_version"]
    new["schema_version"] = 2
    _write(avro_dir / "handoff_returned.avsc", new)
    assert check_catalogue(avro_dir, released).ok
    written = release_catalogue(avro_dir, released)
    assert [p.relative_to(released).as_posix() for p in written] == ["handoff_returned/v2.avsc"]
    assert release_catalogue(avro_dir, released) == []


def test_doc_only_change_needs_no_bump(catalogue) -> None:
    avro_dir, released = catalogue
    new = _base()
    new["doc"] = "Better words."
    _write(avro_dir / "handoff_returned.avsc", new)
    assert check_catalogue(avro_dir, released).ok


def test_repository_catalogue_passes_the_gate() -> None:
    report = check_catalogue()
    assert report.ok, [f.line() for f in report.findings]
    assert not report.notes  # every event has a released version


def test_docs_are_up_to_date() -> None:
    from lienthong.schemas.docs import render_events_markdown

    docs = Path(__file__).resolve().parents[3] / "docs" / "events.md"
    assert docs.read_text(encoding="utf-8") == render_events_markdown()
