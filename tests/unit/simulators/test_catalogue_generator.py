"""Generated province-sized procedure catalogue: deterministic, as asked, valid, real ones kept."""

from __future__ import annotations

from collections import Counter
from importlib import resources

import pytest

from lienthong.domain.agencies import AgencyLevel, load_agencies
from lienthong.domain.procedures import (
    PROCEDURE_CODE_RE,
    load_procedures,
    parse_procedures,
)
from lienthong.simulators.catalogue import (
    CatalogueSpecError,
    generate_catalogue,
    header_for,
    render_toml,
)
from lienthong.simulators.province import Period, ProvinceSimulator, SimConfig, select_procedures

REAL = load_procedures(include_generated=False)


def _as_catalogue(procedures: int, inter: int, seed: int):
    items = generate_catalogue(procedures, inter, seed)
    return items, parse_procedures(render_toml(items, "test"), "generated.toml")


def test_same_seed_same_catalogue_other_seed_differs() -> None:
    a = render_toml(generate_catalogue(400, 120, 5), "h")
    b = render_toml(generate_catalogue(400, 120, 5), "h")
    c = render_toml(generate_catalogue(400, 120, 6), "h")
    assert a == b
    assert a != c


@pytest.mark.parametrize(("total", "inter"), [(1300, 300), (200, 60), (40, 20)])
def test_counts_and_proportions_as_asked(total: int, inter: int) -> None:
    items, generated = _as_catalogue(total, inter, 1)
    assert len(REAL) + len(generated) == total
    assert sum(p.inter_agency for p in REAL) + sum(p.inter_agency for p in generated) == inter
    if total >= 1000:
        levels = Counter(p.level for p in generated)
        assert levels["province"] > levels["district"] > levels["commune"] > 0


def test_every_generated_procedure_follows_the_domain_rules() -> None:
    reg = load_agencies()
    _, generated = _as_catalogue(1300, 300, 1)  # parse_procedures validated every field
    codes = [p.code for p in generated]
    assert len(set(codes)) == len(codes)
    assert not set(codes) & {p.code for p in REAL}
    assert all(PROCEDURE_CODE_RE.fullmatch(c) for c in codes)
    own_level = {
        "province": AgencyLevel.DEPARTMENT,
        "district": AgencyLevel.DISTRICT,
        "commune": AgencyLevel.COMMUNE,
    }
    centrals: Counter[str] = Counter()
    for p in generated:
        assert sum(s.share for s in p.steps) == 100
        owner = p.steps[0].agency if p.steps[0].agency != "000.00.01.H10" else p.steps[1].agency
        assert reg[owner].level is own_level[p.level], p.code
        for s in p.steps:
            if reg[s.agency].level is AgencyLevel.CENTRAL:
                centrals[reg[s.agency].name] += 1
        if not p.inter_agency:
            assert len({s.agency for s in p.steps}) == 1
    names = " ".join(centrals)
    for word in ("Thuế", "Công an", "Bảo hiểm xã hội"):
        assert word in names  # chains through the central vertical agencies


def test_shipped_catalogue_is_the_generator_output_and_keeps_the_real_ones() -> None:
    shipped = resources.files("lienthong.domain").joinpath("data", "procedures_generated.toml")
    expected = render_toml(generate_catalogue(1300, 300, 1), header_for(1300, 300, 1))
    assert shipped.read_text(encoding="utf-8") == expected  # regenerate, never edit by hand
    full = load_procedures()
    assert len(full) == 1300
    assert sum(p.inter_agency for p in full) == 300
    assert [p.code for p in full][: len(REAL)] == [p.code for p in REAL]  # real ones rank first
    for p in REAL:
        assert full[p.code] == p  # unchanged


def test_impossible_figures_are_refused() -> None:
    with pytest.raises(CatalogueSpecError, match="real procedures"):
        generate_catalogue(10, 5, 1)
    with pytest.raises(CatalogueSpecError, match="inter-agency"):
        generate_catalogue(100, 1, 1)
    with pytest.raises(CatalogueSpecError, match="inter-agency"):
        generate_catalogue(100, 200, 1)


def test_simulator_subset_follows_the_figures() -> None:
    full = load_procedures()
    chosen = select_procedures(full, 200, 50)
    assert len(chosen) == 200 and sum(p.inter_agency for p in chosen) == 50
    assert {p.code for p in REAL if p.inter_agency} <= {p.code for p in chosen}
    with pytest.raises(ValueError, match="cannot simulate"):
        select_procedures(full, 2000, None)
    sim = ProvinceSimulator(
        SimConfig(Period.parse("2026-01"), dossiers=2000, procedures=200, inter_agency=50)
    )
    used = {sim.dossier(i).procedure.code for i in range(2000)}
    assert used <= {p.code for p in chosen}
    assert len(used) > 50  # the long tail is used, not only the top ranks


def test_default_simulation_uses_the_province_sized_catalogue() -> None:
    sim = ProvinceSimulator(SimConfig(Period.parse("2026-01"), dossiers=3000))
    procs = Counter(sim.dossier(i).procedure.code for i in range(3000))
    real = {p.code for p in REAL}
    assert len(procs) > 300  # many distinct procedures, as in a province
    top = [code for code, _ in procs.most_common(5)]
    assert set(top) & real  # Zipf: the real ones, ranked first, carry the most volume
