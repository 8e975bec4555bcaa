"""Turn a child program's plain-text output into the bus's JSON log lines.

The embedded broker is a third-party binary that prints plain text; operators should still
grep one format across every component, so its output is piped through this relay, which
writes one JSON object per line (timestamp, level, component, logger, event). It exits when
the program closes its output, i.e. when the program exits.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_LEVEL = re.compile(r"\b(TRACE|DEBUG|INFO|WARN|WARNING|ERROR)\b")


def to_json_line(line: str, component: str, logger: str) -> str | None:
    text = _ANSI.sub("", line).rstrip()
    if not text:
        return None
    match = _LEVEL.search(text[:60])
    level = (match.group(1) if match else "INFO").lower()
    level = {"warn": "warning", "trace": "debug"}.get(level, level)
    return json.dumps(
        {
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "level": level,
            "component": component,
            "logger": logger,
            "event": text,
        },
        ensure_ascii=False,
    )


def relay(source: TextIO, sink: TextIO, component: str, logger: str) -> None:
    for line in source:
        rendered = to_json_line(line, component, logger)
        if rendered is not None:
            sink.write(rendered + "\n")
            sink.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lienthong-logrelay")
    parser.add_argument("--component", required=True)
    parser.add_argument("--logger", required=True)
    args = parser.parse_args(argv)
    relay(sys.stdin, sys.stdout, args.component, args.logger)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
