"""Deterministic generator of a province-sized procedure catalogue (about 1,300 procedures).

Why generate: a province publishes about 1,300 procedures of which a few hundred are
inter-agency (liên thông), and the bus must cope with that many keys, but the repository can
only ship a handful of hand-written ones (``lienthong/domain/data/procedures.toml``, 25). The
generator writes the remainder as a second data file (``procedures_generated.toml``) that the
domain loader merges with the hand-written one, so the simulator *and* the stream workers know
every procedure without any configuration. The real procedures are never touched: they are the
templates (durations, cut-offs, postal and online flags, chain shapes) and they come first in
volume rank.

Generated procedures follow the same rules as real ones: national code format (``d.dddddd``,
never one of the real codes), levels province/district/commune, step agencies from the agency
registry at the matching level, inter-agency chains through central vertical agencies (tax,
police, social insurance; treasury and customs rarely), shares adding up to 100. The file is
written in volume rank order (most frequent first within each level): the simulator gives
procedures Zipf weights by that rank.

    python -m lienthong.simulators.catalogue --procedures 1300 --inter-agency 300 --seed 1 \\
        --output lienthong/domain/data/procedures_generated.toml
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from lienthong.domain.agencies import AgencyLevel, AgencyRegistry, load_agencies
from lienthong.domain.procedures import (
    PROCEDURE_CODE_RE,
    ProcedureCatalogue,
    load_procedures,
)

# Share of the generated procedures by authority level: a province's published list is mostly
# department (province-level) procedures, then district, then commune.
LEVEL_MIX = {"province": 0.74, "district": 0.18, "commune": 0.08}

# Durations seen on real lists, by level (working days, or hours for the quick commune ones).
DURATIONS = {
    "province": ("3d", "5d", "5d", "7d", "10d", "10d", "15d", "15d", "20d", "30d", "35d"),
    "district": ("3d", "5d", "5d", "7d", "10d", "15d", "20d"),
    "commune": ("4h", "8h", "1d", "2d", "3d", "5d", "5d", "10d"),
}

SECTORS = {
    "province": (
        "Đất đai",
        "Hoạt động xây dựng",
        "Đầu tư tại Việt Nam",
        "Thành lập và hoạt động doanh nghiệp",
        "Đường bộ",
        "Việc làm",
        "Dược phẩm",
        "Khám bệnh, chữa bệnh",
        "Giáo dục và Đào tạo",
        "Văn hóa",
        "Du lịch",
        "Hoạt động khoa học và công nghệ",
        "Xuất bản, In và Phát hành",
        "Lưu thông hàng hóa trong nước",
        "Thủy sản",
        "Trồng trọt",
        "Môi trường",
        "Tài nguyên nước",
        "Lý lịch tư pháp",
        "Công chứng",
        "Thi đua, khen thưởng",
        "Người có công",
        "Ngoại vụ",
        "Viễn thông và Internet",
    ),
    "district": (
        "Thành lập và hoạt động của hộ kinh doanh",
        "Đất đai",
        "Hoạt động xây dựng",
        "Hộ tịch",
        "Bảo trợ xã hội",
        "Giáo dục và Đào tạo",
        "Văn hóa",
        "Lưu thông hàng hóa trong nước",
    ),
    "commune": ("Hộ tịch", "Chứng thực", "Bảo trợ xã hội", "Người có công", "Đất đai"),
}
VERBS = (
    "Cấp",
    "Cấp lại",
    "Cấp đổi",
    "Điều chỉnh",
    "Gia hạn",
    "Đăng ký",
    "Xác nhận",
    "Thẩm định",
    "Phê duyệt",
    "Công nhận",
    "Thu hồi",
)
OBJECTS = (
    "giấy phép",
    "giấy chứng nhận",
    "chứng chỉ hành nghề",
    "hồ sơ",
    "quyết định",
    "văn bản chấp thuận",
    "giấy xác nhận",
)

# Central vertical agencies a chain may go through, weighted: tax and police dominate.
PROVINCE_CENTRAL = (
    ("000.00.60.H10", 5, "Xác định nghĩa vụ tài chính, thông báo nộp thuế"),
    ("000.00.61.H10", 3, "Tra cứu, xác minh thông tin"),
    ("000.00.62.H10", 2, "Giải quyết chế độ bảo hiểm xã hội"),
    ("000.00.63.H10", 1, "Kiểm soát, thanh toán qua Kho bạc"),
    ("000.00.64.H10", 1, "Xác nhận thông tin hải quan"),
)
LOCAL_CENTRAL = (
    ("000.31.60.H10", 4, "Xác định nghĩa vụ tài chính"),
    ("000.31.61.H10", 4, "Đăng ký, xác minh cư trú"),
    ("000.00.62.H10", 2, "Cấp thẻ, giải quyết chế độ bảo hiểm"),
)
CENTER = "000.00.01.H10"


class CatalogueSpecError(ValueError):
    """The asked figures cannot be met (e.g. fewer procedures than the real ones)."""


@dataclass(frozen=True)
class GeneratedStep:
    agency: str
    task: str
    share: int


@dataclass(frozen=True)
class GeneratedProcedure:
    code: str
    name: str
    sector: str
    level: str
    duration: str
    cutoff: str | None
    postal_result: bool
    online: str
    steps: tuple[GeneratedStep, ...]

    @property
    def inter_agency(self) -> bool:
        return len({s.agency for s in self.steps}) > 1


def _split(rng: random.Random, parts: int) -> list[int]:
    """Whole percentages adding up to 100, none below 5 (a step always has some time)."""
    if parts == 1:
        return [100]
    cuts = sorted(rng.sample(range(1, 20), parts - 1))
    bounds = [0, *cuts, 20]
    return [5 * (b - a) for a, b in zip(bounds, bounds[1:], strict=False)]


def _weighted(rng: random.Random, items: tuple[tuple[str, int, str], ...]) -> tuple[str, str]:
    code, _, task = rng.choices(items, [w for _, w, _ in items])[0]
    return code, task


class _Generator:
    def __init__(self, base: ProcedureCatalogue, agencies: AgencyRegistry, seed: int) -> None:
        self.rng = random.Random(f"catalogue:{seed}")
        self.base = base
        self.used = {p.code for p in base}
        self.by_level = {
            "province": sorted(a.code for a in agencies.by_level(AgencyLevel.DEPARTMENT)),
            "district": sorted(a.code for a in agencies.by_level(AgencyLevel.DISTRICT)),
            "commune": sorted(a.code for a in agencies.by_level(AgencyLevel.COMMUNE)),
        }
        # Real procedures give each level its flag mix (cut-off, postal, online).
        self.templates = {
            level: [p for p in base if p.level == level] or list(base) for level in LEVEL_MIX
        }

    def code(self) -> str:
        while True:
            code = f"{self.rng.choice((1, 1, 2, 3))}.{self.rng.randrange(10**6):06d}"
            if code not in self.used and PROCEDURE_CODE_RE.fullmatch(code):
                self.used.add(code)
                return code

    def one(self, level: str, inter: bool) -> GeneratedProcedure:
        rng = self.rng
        own = rng.choice(self.by_level[level])
        sector = rng.choice(SECTORS[level])
        if inter:
            steps = self._chain(level, own)
        elif rng.random() < 0.6:
            steps = [GeneratedStep(own, "Tiếp nhận, thẩm định, phê duyệt và trả kết quả", 100)]
        else:
            a, b = _split(rng, 2)
            steps = [
                GeneratedStep(own, "Tiếp nhận, thẩm định hồ sơ", a),
                GeneratedStep(own, "Phê duyệt, ký và trả kết quả", b),
            ]
        template = rng.choice(self.templates[level])
        duration = rng.choice(DURATIONS[level])
        name = f"{rng.choice(VERBS)} {rng.choice(OBJECTS)} lĩnh vực {sector.lower()}"
        return GeneratedProcedure(
            code=self.code(),
            name=name,
            sector=sector,
            level=level,
            duration=duration,
            cutoff="15:00" if template.cutoff is not None or rng.random() < 0.1 else None,
            postal_result=template.postal_result
            if rng.random() < 0.8
            else not template.postal_result,
            online=template.online.value if rng.random() < 0.7 else rng.choice(("full", "partial")),
            steps=tuple(steps),
        )

    def _chain(self, level: str, own: str) -> list[GeneratedStep]:
        """An inter-agency chain: own agency, then one or two others, usually back again."""
        rng = self.rng
        centrals = PROVINCE_CENTRAL if level == "province" else LOCAL_CENTRAL
        shape = rng.random()
        agencies: list[tuple[str, str]] = [(own, "Tiếp nhận, thẩm định hồ sơ")]
        if shape < 0.55:  # own -> central (tax/police/insurance) -> own
            agencies.append(_weighted(rng, centrals))
            agencies.append((own, "Phê duyệt và trả kết quả"))
        elif shape < 0.75:  # own -> central, the central agency returns the result
            agencies.append(_weighted(rng, centrals))
        elif shape < 0.9:  # own -> another agency of the province -> own
            others = [a for a in self.by_level["province"] if a != own]
            agencies.append((rng.choice(others), "Cho ý kiến chuyên môn"))
            agencies.append((own, "Phê duyệt và trả kết quả"))
        else:  # center receives, own processes, a central agency, own concludes (land-like)
            agencies = [
                (CENTER, "Tiếp nhận, kiểm tra và chuyển hồ sơ"),
                (own, "Thẩm tra hồ sơ"),
                _weighted(rng, centrals),
                (own, "Hoàn thiện và chuyển trả kết quả"),
            ]
        shares = _split(rng, len(agencies))
        return [GeneratedStep(a, task, s) for (a, task), s in zip(agencies, shares, strict=True)]


def generate_catalogue(
    procedures: int = 1300,
    inter_agency: int = 300,
    seed: int = 1,
    base: ProcedureCatalogue | None = None,
    agencies: AgencyRegistry | None = None,
) -> list[GeneratedProcedure]:
    """The procedures to add to ``base`` (the real ones) so the total is ``procedures``, of
    which ``inter_agency`` are inter-agency; in volume rank order within each level."""
    base = base or load_procedures(include_generated=False)
    agencies = agencies or load_agencies()
    real_inter = sum(1 for p in base if p.inter_agency)
    new_total = procedures - len(base)
    new_inter = inter_agency - real_inter
    if new_total < 0:
        raise CatalogueSpecError(
            f"--procedures {procedures} is below the {len(base)} real procedures"
        )
    if new_inter < 0 or new_inter > new_total:
        raise CatalogueSpecError(
            f"--inter-agency {inter_agency} must be between the {real_inter} real inter-agency "
            f"procedures and {real_inter + new_total}"
        )
    gen = _Generator(base, agencies, seed)
    # Which of the new procedures are inter-agency: spread evenly (not all at the tail), so
    # every volume rank has some chains, as on a real list.
    inter_flags = [False] * new_total
    for i in gen.rng.sample(range(new_total), new_inter):
        inter_flags[i] = True
    levels = list(LEVEL_MIX)
    out = [
        gen.one(gen.rng.choices(levels, [LEVEL_MIX[lv] for lv in levels])[0], flag)
        for flag in inter_flags
    ]
    return out


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_toml(items: list[GeneratedProcedure], header: str) -> str:
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for p in items:
        lines += [
            "",
            "[[procedure]]",
            f"code = {_q(p.code)}",
            f"name = {_q(p.name)}",
            f"sector = {_q(p.sector)}",
            f"level = {_q(p.level)}",
            f"duration = {_q(p.duration)}",
        ]
        if p.cutoff:
            lines.append(f"cutoff = {_q(p.cutoff)}")
        lines += [
            f"postal_result = {'true' if p.postal_result else 'false'}",
            f"online = {_q(p.online)}",
        ]
        for s in p.steps:
            lines += [
                "  [[procedure.step]]",
                f"  agency = {_q(s.agency)}",
                f"  task = {_q(s.task)}",
                f"  share = {s.share}",
            ]
    return "\n".join(lines) + "\n"


def header_for(procedures: int, inter_agency: int, seed: int) -> str:
    return (
        "GENERATED SAMPLE procedures (do not edit by hand), merged by the domain loader with\n"
        "procedures.toml (the hand-written real ones, which come first in volume rank).\n"
        "Regenerate with:\n"
        "  python -m lienthong.simulators.catalogue "
        f"--procedures {procedures} --inter-agency {inter_agency} --seed {seed} \\\n"
        "      --output lienthong/domain/data/procedures_generated.toml\n"
        "Codes have the national format but are invented; replace with the province's list."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lienthong.simulators.catalogue",
        description="generate the synthetic part of a province-sized procedure catalogue",
    )
    parser.add_argument("--procedures", type=int, default=1300, help="total, real ones included")
    parser.add_argument("--inter-agency", type=int, default=300, help="total inter-agency")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=None, help="file (default: stdout)")
    args = parser.parse_args(argv)
    try:
        items = generate_catalogue(args.procedures, args.inter_agency, args.seed)
    except CatalogueSpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = render_toml(items, header_for(args.procedures, args.inter_agency, args.seed))
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {len(items)} generated procedures to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
