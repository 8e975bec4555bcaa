"""Package exports loaded on first use (PEP 562), for connector packages with a heavy loop.

Why: ``lienthong up`` imports each component's ``component.py`` (its start plan) and importing a
submodule runs its package's ``__init__``. An ``__init__`` that imported its connector eagerly
would pull aiohttp, the Kafka loop and the event models into the supervisor just to learn what
to start. With these exports ``from lienthong.connectors.portal import run`` works as before,
and ``lienthong.connectors.portal.component`` costs nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: name -> ``"submodule"`` or ``"module:attr"``.

    A relative ``submodule`` is under ``package``; ``"module:attr"`` names an absolute module
    and the attribute to take (an alias). Submodules themselves resolve as attributes too.
    """

    def __getattr__(name: str) -> Any:
        where = names.get(name)
        if where is None:
            try:
                return importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{package}.{name}":
                    raise
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        module, _, attr = where.partition(":")
        if not attr:
            module, attr = f"{package}.{module}", name
        return getattr(importlib.import_module(module), attr)

    return __getattr__
