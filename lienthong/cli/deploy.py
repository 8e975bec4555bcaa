"""``lienthong deploy render|secrets``: production deployment files from the catalogues.

``render`` writes the Compose, systemd or Kubernetes files derived from
``deploy/components.toml`` and ``deploy/topics.toml`` (``--check`` compares instead, for CI);
``secrets`` creates the secrets a single machine needs, 0600 and outside git. See
docs/deployment.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lienthong.deploy.catalogue import Components
    from lienthong.runtime.topics import Catalogue


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "deploy", help="render deployment files (compose, systemd, k8s) and secrets"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    render = actions.add_parser("render", help="write the files of one target")
    render.add_argument("--target", required=True, choices=("compose", "systemd", "k8s"))
    render.add_argument("--out", required=True, type=Path, help="directory to write into")
    render.add_argument(
        "--check", action="store_true", help="compare with --out instead; exit 1 on drift"
    )
    _catalogue_args(render)
    render.set_defaults(func=cmd_render)
    secrets = actions.add_parser("secrets", help="create missing secrets (0600) in a directory")
    secrets.add_argument("--target", required=True, choices=("compose", "systemd"))
    secrets.add_argument("--out", required=True, type=Path, help="e.g. deploy/compose/secrets")
    secrets.add_argument(
        "--rotate",
        action="append",
        default=[],
        metavar="NAME",
        help="replace this broker user's password, or 'tls' (repeatable)",
    )
    secrets.add_argument(
        "--broker-host",
        action="append",
        default=[],
        metavar="HOST",
        help="extra DNS name or IP in the broker certificate (repeatable)",
    )
    _catalogue_args(secrets)
    secrets.set_defaults(func=cmd_secrets)


def _catalogue_args(parser: argparse.ArgumentParser) -> None:
    from lienthong.deploy.catalogue import DEFAULT_FILE, TOPICS_FILE

    parser.add_argument("--components", type=Path, default=DEFAULT_FILE, help="component catalogue")
    parser.add_argument("--topics", type=Path, default=TOPICS_FILE, help="topic catalogue")


def _load(args: argparse.Namespace) -> tuple[Components, Catalogue]:
    from lienthong.cli.main import UsageError
    from lienthong.deploy.catalogue import load_both
    from lienthong.runtime.topics import CatalogueError

    try:
        return load_both(args.components, args.topics)
    except CatalogueError as exc:
        raise UsageError(str(exc)) from None


def cmd_render(args: argparse.Namespace) -> int:
    from lienthong.deploy import render

    components, topics = _load(args)
    files = render.render(args.target, components, topics)
    if args.check:
        problems = render.drift(files, args.out, args.target)
        for line in problems:
            print(line)
        if problems:
            print(f"re-render: lienthong deploy render --target {args.target} --out {args.out}")
            return 1
        print(f"{args.out}: {len(files)} files match the catalogues")
        return 0
    written = render.write(files, args.out)
    print(f"{args.out}: wrote {len(written)} files for {args.target}")
    return 0


def cmd_secrets(args: argparse.Namespace) -> int:
    from lienthong.cli.main import UsageError
    from lienthong.deploy.secrets import generate

    components, _ = _load(args)
    hosts = ["kafka", "localhost", *args.broker_host]
    try:
        report = generate(
            components,
            args.out,
            env_files=args.target == "systemd",
            hosts=hosts,
            rotate=args.rotate,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for label, names in (("created", report.created), ("rotated", report.rotated)):
        for name in names:
            print(f"{label}: {args.out / name}")
    print(f"kept {len(report.kept)} existing secrets in {args.out}")
    for name in report.missing_external:
        print(f"provide (outside system's secret): {args.out}/{name}")
    if report.rotated:
        print("rotated secrets take effect after the steps in docs/deployment.md, 'Rotation'")
    return 0
