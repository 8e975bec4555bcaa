"""Canonical JSON: the one byte form that is hashed and signed (receipts, chain, checkpoints).

Hashes and signatures are over bytes, so a record must have exactly one byte form: keys sorted,
no insignificant whitespace, UTF-8 (Vietnamese text kept as is, not ``\\u`` escaped), no floats
(their text form is not unique across languages) and no NaN. A third party reproduces it with
any JSON library that sorts keys, or checks the stored bytes directly with openssl.
"""

from __future__ import annotations

import json
from typing import Any


def _reject_floats(value: Any, path: str = "$") -> None:
    if isinstance(value, float):
        raise TypeError(f"{path}: floats are not allowed in canonical JSON; use a string or int")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path}: object keys must be strings")
            _reject_floats(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _reject_floats(item, f"{path}[{index}]")


def canonical_json(value: Any) -> bytes:
    """The canonical UTF-8 bytes of a JSON-compatible value (see module docstring)."""
    _reject_floats(value)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
