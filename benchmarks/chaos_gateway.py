"""Gateway chaos at full scale: 50 agencies post for 60 s; the gateway is SIGKILLed at 20 s.

Starts a broker (``LIENTHONG_BOOTSTRAP``, else the embedded Tansu), creates the catalogue
topics under a fresh prefix and runs ``lienthong.simulators.gateway_load.run_load``: every
202 must be on dossier-events (exactly once unless its first attempt went unanswered and a
retry published it again), every refusal a problem+json body. Prints the figures as JSON and
exits 1 if any claim fails.

Run:  python benchmarks/chaos_gateway.py [AGENCIES] [SECONDS] [KILL_AT_S]   (50 60 20)
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lienthong.config import load_settings  # noqa: E402
from lienthong.runtime.topics import TopicAdmin  # noqa: E402
from lienthong.simulators.gateway_load import run_load  # noqa: E402
from tests.support.broker import resolve_broker  # noqa: E402


def main() -> int:
    args = [float(a) for a in sys.argv[1:]]
    agencies = int(args[0]) if args else 50
    seconds = args[1] if len(args) > 1 else 60.0
    kill_at = args[2] if len(args) > 2 else 20.0
    work = Path(tempfile.mkdtemp(prefix="chaos-gateway-"))
    try:
        with resolve_broker(work / "broker") as (bootstrap, how):
            env = {
                "LIENTHONG_BOOTSTRAP": bootstrap,
                "LIENTHONG_TOPIC_PREFIX": f"cg{uuid.uuid4().hex[:8]}.",
                "LIENTHONG_RUN_DIR": str(work / "run"),
                "LIENTHONG_LOG_LEVEL": "INFO",
            }
            settings = load_settings(environ=env)
            with TopicAdmin(settings) as admin:
                admin.apply()
            plan = f"{agencies} agencies, {seconds} s, kill at {kill_at} s"
            print(f"broker {bootstrap} ({how}); {plan}")
            report = run_load(
                settings, env, work, agencies=agencies, duration_s=seconds, kill_at_s=kill_at
            )
            figures = report.figures()
            print(json.dumps(figures, indent=2, ensure_ascii=False))
            return 1 if figures["problems"] else 0
    finally:
        if not os.environ.get("KEEP_RUN_DIR"):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
