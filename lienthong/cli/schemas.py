"""``lienthong schemas``: list the event catalogue, gate schema evolution, release, render docs.

``check`` is meant for CI: it exits 1 when any schema is incompatible with its previous
released version, printing one line per finding (event, field path, why).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lienthong.cli.main import UsageError


def _dirs(args: argparse.Namespace) -> tuple[Path, Path]:
    from lienthong.schemas.catalogue import RELEASED_DIR
    from lienthong.schemas.models import AVRO_DIR

    avro_dir = Path(args.schemas_dir) if args.schemas_dir else AVRO_DIR
    released = Path(args.released_dir) if args.released_dir else RELEASED_DIR
    if not avro_dir.is_dir():
        raise UsageError(f"schemas directory {str(avro_dir)!r} does not exist")
    return avro_dir, released


def _check(args: argparse.Namespace) -> int:
    from lienthong.schemas.compat import check_catalogue

    avro_dir, released = _dirs(args)
    report = check_catalogue(avro_dir, released)
    for finding in report.findings:
        print(finding.line())
    if args.verbose:
        for note in report.notes:
            print(f"note: {note}", file=sys.stderr)
    if report.findings:
        print(f"{len(report.findings)} incompatibilities", file=sys.stderr)
        return 1
    print(f"ok: {len(list(avro_dir.glob('*.avsc'))) - 1} schemas compatible", file=sys.stderr)
    return 0


def _release(args: argparse.Namespace) -> int:
    from lienthong.schemas.compat import release_catalogue

    avro_dir, released = _dirs(args)
    try:
        written = release_catalogue(avro_dir, released)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for path in written:
        print(f"released {path}")
    if not written:
        print("nothing to release: every schema equals its latest released version")
    return 0


def _list(args: argparse.Namespace) -> int:
    from lienthong.schemas.catalogue import event_schemas, released_versions
    from lienthong.schemas.models import MODELS_BY_EVENT_TYPE

    avro_dir, released = _dirs(args)
    for event, schema in event_schemas(avro_dir).items():
        model = MODELS_BY_EVENT_TYPE.get(event)
        versions = ",".join(f"v{n}" for n in released_versions(event, released)) or "-"
        topic = model.TOPIC if model else "?"
        print(
            f"{event:24} v{schema.version}  {schema.compatibility:8} {topic:16} "
            f"released={versions}  {schema.full_name}"
        )
    return 0


def _docs(args: argparse.Namespace) -> int:
    from lienthong.schemas.docs import render_events_markdown

    text = render_events_markdown()
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    if args.check:
        if not out.is_file() or out.read_text(encoding="utf-8") != text:
            print(f"{out} is out of date; run `lienthong schemas docs`")
            return 1
        return 0
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("schemas", help="event schemas: list, check, release, docs")
    sub = parser.add_subparsers(dest="schemas_command", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--schemas-dir", help="current .avsc directory (default: schemas/avro)")
        p.add_argument("--released-dir", help="released snapshots (default: schemas/released)")

    check = sub.add_parser("check", help="compare each schema with its last released version")
    common(check)
    check.add_argument("-v", "--verbose", action="store_true", help="also print notes")
    check.set_defaults(func=_check)

    release = sub.add_parser("release", help="snapshot new/changed schemas as released versions")
    common(release)
    release.set_defaults(func=_release)

    lst = sub.add_parser("list", help="list event types, versions and topics")
    common(lst)
    lst.set_defaults(func=_list)

    docs = sub.add_parser("docs", help="render docs/events.md from the schemas and examples")
    docs.add_argument("--output", default="docs/events.md", help="file to write, or -")
    docs.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    docs.set_defaults(func=_docs)
