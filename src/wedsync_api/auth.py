"""The reference API's authentication: an `X-API-Key` header, looked up by its SHA-256
in `api_keys` (see `Services._lookup_key`). Checking the key and the rate limit is the
library's `AccessMiddleware`; routes read the tenant it found."""

from __future__ import annotations

from wedsync_perf.pipeline import Tenant, hash_key

__all__ = ["API_KEY_HEADER", "Tenant", "hash_key"]

API_KEY_HEADER = "X-API-Key"
