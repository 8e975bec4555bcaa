"""Whether ``lienthong simulate --mode replay`` may feed the bus this run directory describes.

Why: a replay sends past event times. Workers on the live clock judge a partition that has
caught up with the simulator by the wall clock, where every replayed dossier is long overdue,
so they would emit hundreds of false overdue notices and apologies that ``verify`` then lists as
alerts the truth does not have. ``lienthong up`` records the workers' clock in ``state.json``;
this module only reads that record (no Kafka, no processes), so the rule is unit-tested.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FIX = "lienthong down && lienthong up --clock replay"


@dataclass(frozen=True)
class ReplayVerdict:
    """``refuse``: stop with ``message`` (exit 2); otherwise ``message`` is a warning or None."""

    refuse: bool
    message: str | None = None


def judge_replay(
    state: Mapping[str, Any] | None, bootstrap: str, *, running: bool, force: bool
) -> ReplayVerdict:
    """The verdict for a replay into ``bootstrap``, given the run state ``up`` wrote.

    ``running``: the state's supervisor is alive. Without a running ``up`` on the same
    bootstrap the workers' clock is unknown (a configured cluster's workers, or workers started
    by hand), so the replay goes ahead with a warning rather than a refusal.
    """
    if state is None or not running or state.get("bootstrap") != bootstrap:
        return ReplayVerdict(
            refuse=False,
            message=(
                f"no running `lienthong up` found for {bootstrap}; the workers must run the "
                'replay clock ([streams] clock = "replay" or `lienthong up --clock replay`), '
                "or they will fire every past deadline"
            ),
        )
    clock = state.get("clock")
    if clock == "replay":
        return ReplayVerdict(refuse=False)
    described = "the live clock" if clock == "live" else "an unrecorded clock (an older `up`)"
    if force:
        return ReplayVerdict(
            refuse=False,
            message=f"--force: replaying into workers on {described}; expect false alerts",
        )
    return ReplayVerdict(
        refuse=True,
        message=(
            f"the workers run {described}; a replay would fire every past deadline. "
            f"Restart with: {FIX} (or pass --force)"
        ),
    )
