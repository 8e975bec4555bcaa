"""The packaged catalogue = hand-written real procedures + the generated remainder."""

from __future__ import annotations

import pytest

from lienthong.domain.procedures import (
    ProcedureDataError,
    load_procedures,
    merge_procedures,
    parse_procedures,
)

ONE = """
[[procedure]]
code = "{code}"
name = "X"
sector = "S"
level = "province"
duration = "5d"
postal_result = true
online = "full"
  [[procedure.step]]
  agency = "000.00.04.H10"
  task = "T"
  share = 100
"""


def test_real_ones_first_then_generated_and_both_loaders_agree() -> None:
    real = load_procedures(include_generated=False)
    full = load_procedures()
    assert len(real) == 25 and len(full) == 1300
    assert list(full)[:25] == list(real)
    assert load_procedures() is full  # cached: a worker parses the files once


def test_a_code_defined_twice_across_files_is_refused() -> None:
    a = parse_procedures(ONE.format(code="1.000001"), "a.toml")
    b = parse_procedures(ONE.format(code="1.000001"), "b.toml")
    with pytest.raises(ProcedureDataError, match=r"b.toml: procedure 1.000001: code: already"):
        merge_procedures(a, b, "b.toml")
    c = parse_procedures(ONE.format(code="1.000002"), "c.toml")
    assert [p.code for p in merge_procedures(a, c, "c.toml")] == ["1.000001", "1.000002"]
