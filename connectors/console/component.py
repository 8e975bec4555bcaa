"""How ``lienthong up`` starts the monitoring console (registry line ``console``)."""

from __future__ import annotations

from lienthong.runtime.registry import Launch, PlanContext


def plan(context: PlanContext) -> list[Launch]:
    """Started when someone can log in: users configured, or the demo (generated users).

    Deny by default: no health page answers without a credential, so the supervisor watches
    its process only (``health_path=None`` in the registry).
    """
    settings = context.settings
    env = {}
    if context.demo_secrets is not None and settings.console.users_file is None:
        from lienthong.connectors.console.auth import write_demo_users

        users_file = write_demo_users(settings.run_dir / "demo")
        env["LIENTHONG_CONSOLE__USERS_FILE"] = str(users_file)
    if settings.console.users_file is None and not settings.demo.enabled:
        return []
    return [Launch(env=env)]
