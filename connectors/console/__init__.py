"""The monitoring console in the browser: live figures, overdue dossiers, dead letters, health.

``view`` and ``auth`` are plain Python (unit-tested); ``feed`` reads the bus's topics into
memory; ``app`` is the aiohttp adapter (``lienthong run console``).
"""
