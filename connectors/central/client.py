"""HTTP client of the central systems (aiohttp): one delivery attempt, one status read.

Retries and their back-off are the connector's (they are persisted per request on
``central-requests``); this module only says what one call returned or why it failed.
"""

from __future__ import annotations

from typing import Any

from lienthong.config import CentralAdapterSettings


class Remote:
    """HTTP client of the central systems (aiohttp)."""

    def __init__(self, cfg: CentralAdapterSettings) -> None:
        from aiohttp import ClientSession, ClientTimeout

        self.cfg = cfg
        self.session = ClientSession(timeout=ClientTimeout(total=cfg.timeout_s))

    async def post(self, base: str, body: dict[str, Any]) -> dict[str, Any]:
        """One delivery attempt; raises on network errors, timeouts and non-2xx."""
        async with self.session.post(
            f"{base}/requests", json=body, headers={"Idempotency-Key": body["correlation_id"]}
        ) as response:
            if response.status >= 300:
                raise RemoteError(response.status, await response.text())
            return dict(await response.json())

    async def get(self, base: str, cid: str) -> dict[str, Any] | None:
        async with self.session.get(f"{base}/requests/{cid}") as response:
            if response.status == 404:
                return None
            if response.status >= 300:
                raise RemoteError(response.status, await response.text())
            return dict(await response.json())

    async def close(self) -> None:
        await self.session.close()


class RemoteError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text[:200]}")
        self.status = status
