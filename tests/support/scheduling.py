"""``xdist_group`` marks that hold under pytest 9 (``make test``: ``-n 4 --dist loadgroup``).

Why: pytest-xdist 3.8 tells its controller a test's group by rewriting ``item._nodeid`` on
the worker, an attribute pytest 9 no longer reads, so every ``xdist_group`` mark is silently
ignored and grouped tests run on any worker. Here the first worker writes ``{node id: group}``
to a file named by the controller, and the controller's scheduler groups by that file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

GROUPS_KEY = "lienthong_xdist_groups"  # workerinput key: where the worker writes the groups


def groups_path() -> Path:
    """The controller's groups file (one per pytest run: named by the controller's pid)."""
    return Path(tempfile.gettempdir()) / f"lienthong-xdist-groups-{os.getpid()}.json"


def groups_of(items: Iterable[pytest.Item]) -> dict[str, str]:
    """Node id -> group name, as xdist would name it, for every test with an xdist_group."""
    out: dict[str, str] = {}
    for item in items:
        names = {
            str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
            for mark in item.iter_markers("xdist_group")
        }
        if names:
            out[item.nodeid] = "_".join(sorted(names))
    return out


def write_groups(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the first xdist worker: write the groups where the controller will look."""
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if not workerinput or GROUPS_KEY not in workerinput or workerinput.get("workerid") != "gw0":
        return
    target = Path(workerinput[GROUPS_KEY])
    partial = target.with_suffix(".tmp")
    partial.write_text(json.dumps(groups_of(items)), encoding="utf-8")
    os.replace(partial, target)


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's load-group scheduler, reading the groups from the file instead of node ids."""
    from xdist.scheduler import LoadGroupScheduling

    path = groups_path()

    class FileGroupScheduling(LoadGroupScheduling):  # type: ignore[misc]
        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            # Called only once every worker has collected, so gw0 has written the file.
            if self.groups is None:
                self.groups = json.loads(path.read_text(encoding="utf-8"))
            assert self.groups is not None
            return self.groups.get(nodeid) or super()._split_scope(nodeid)

    return FileGroupScheduling(config, log)
