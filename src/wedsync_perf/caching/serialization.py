"""Values in and out of the cache: JSON-compatible data and pydantic models, via orjson.

Never pickle: a cache is shared state, and whoever can write to Redis must not be able
to run code in every API process by planting a value.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel

from wedsync_perf.errors import CorruptData

__all__ = ["decode", "encode"]

M = TypeVar("M", bound=BaseModel)


def encode(value: Any) -> bytes:
    """orjson bytes; pydantic models are dumped in JSON mode first. Raises TypeError
    for values JSON cannot represent (the caller learns at once, not on read)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError as exc:
        raise TypeError(f"cache values must be JSON-compatible: {exc}") from None


def decode(data: bytes, model: type[M] | None = None) -> Any:
    """Inverse of `encode`; with `model`, validates into that pydantic model. Raises
    ValueError (`CorruptData`, or pydantic's ValidationError) on malformed data (the
    cache turns it into a miss)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CorruptData(f"cached bytes are not JSON: {exc}") from None
    if model is not None:
        return model.model_validate(value)
    return value
