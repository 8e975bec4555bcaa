"""``lienthong topics apply|check|list``: reconcile the broker with deploy/topics.toml."""

from __future__ import annotations

import argparse

from lienthong.config import load_settings
from lienthong.logs import configure_logging


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("topics", help="topic catalogue (deploy/topics.toml)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    apply = actions.add_parser("apply", help="create or raise topics to match the catalogue")
    apply.set_defaults(func=cmd_apply)
    check = actions.add_parser("check", help="report drift; exit 1 if any")
    check.set_defaults(func=cmd_check)
    listing = actions.add_parser("list", help="print the catalogue")
    listing.set_defaults(func=cmd_list)
    docs = actions.add_parser("docs", help="print docs/topics.md generated from the catalogue")
    docs.set_defaults(func=cmd_docs)


def _admin():
    from lienthong.cli.main import UsageError
    from lienthong.runtime.topics import CatalogueError, TopicAdmin

    settings = load_settings()
    configure_logging("cli", "WARNING")
    try:
        return TopicAdmin(settings)
    except CatalogueError as exc:
        raise UsageError(str(exc)) from None
    except Exception as exc:  # kafka.errors.NoBrokersAvailable and friends
        raise UsageError(
            f"cannot reach Kafka at {settings.bootstrap_servers}: {exc.__class__.__name__}: {exc}"
            + (" (start it with `lienthong broker start`)" if settings.uses_embedded_broker else "")
        ) from None


def cmd_apply(args: argparse.Namespace) -> int:
    with _admin() as admin:
        changes = admin.apply()
        for line in changes:
            print(line)
        remaining = [line for d in admin.drift() for line in d.describe()]
    if not changes:
        print(f"no changes: {len(admin.catalogue.topics)} topics match the catalogue")
    for line in remaining:
        print(f"still differs: {line}")
    return 1 if remaining else 0


def cmd_check(args: argparse.Namespace) -> int:
    with _admin() as admin:
        drift = admin.drift()
    problems = [line for d in drift for line in d.describe()]
    for line in problems:
        print(line)
    unverifiable = [d.name for d in drift if d.configs_unverifiable]
    if unverifiable:
        print(f"note: broker reports no configs for {', '.join(unverifiable)}")
    if not problems:
        print(f"ok: {len(drift)} topics match the catalogue (version {admin.catalogue.version})")
    return 1 if problems else 0


def cmd_list(args: argparse.Namespace) -> int:
    from lienthong.cli.main import UsageError
    from lienthong.runtime.topics import CatalogueError, load_catalogue

    settings = load_settings()
    try:
        catalogue = load_catalogue(settings.topics_file)
    except CatalogueError as exc:
        raise UsageError(str(exc)) from None
    for spec in catalogue.topics:
        keep = spec.retention if spec.cleanup == "delete" else "compacted"
        print(f"{settings.topic(spec.name):<24} {spec.partitions:>3}p  {keep:<9} key={spec.key}")
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from lienthong.cli.main import UsageError
    from lienthong.runtime.topics import CatalogueError, load_catalogue, render_markdown

    settings = load_settings()
    try:
        print(render_markdown(load_catalogue(settings.topics_file)), end="")
    except CatalogueError as exc:
        raise UsageError(str(exc)) from None
    return 0
