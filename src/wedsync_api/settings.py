"""Settings of the reference API. Standard names where they exist (`DATABASE_URL`,
`REDIS_URL`), `WEDSYNC_API_*` for the rest."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AliasChoices, Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wedsync_perf.settings import load_settings

__all__ = ["ApiSettings", "load_api_settings"]

_DB_SCHEMES = ("postgresql://", "postgres://")
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEDSYNC_API_", extra="ignore", frozen=True)

    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
        description="PostgreSQL URL; unset means an embedded server.",
    )
    redis_url: str | None = Field(
        None,
        validation_alias=AliasChoices("REDIS_URL", "redis_url"),
        description="Redis URL; unset means in-process rate limiting and no Redis check.",
    )
    pool_min_size: int = Field(0, ge=0, le=100)
    pool_max_size: int = Field(10, ge=2, le=500)
    pool_reserved_critical: int = Field(
        2, ge=0, description="Connections only critical (wedding-day) requests may use."
    )
    pool_max_bulk: int | None = Field(
        None, ge=1, description="Most connections bulk work may hold (default: half the rest)."
    )
    pool_validate_idle_ms: float = Field(
        1000, ge=0, description="Ping connections idle this long before use (0 = always)."
    )
    pool_acquire_timeout_ms: float = Field(
        2000, gt=0, le=60_000, description="Wait for a connection before answering 503."
    )
    replica_urls: str = Field(
        "",
        description="Comma-separated PostgreSQL URLs of streaming replicas for reads "
        "(needs REDIS_URL: write positions are shared through Redis).",
    )
    replica_max_lag_ms: float = Field(
        5_000, gt=0, description="Replicas further behind the primary than this get no reads."
    )
    statement_timeout_ms: int = Field(
        5_000,
        ge=100,
        description="Server-side cap on a critical or standard statement (ms); standard"
        " requests' client-side bound is this plus 1 s.",
    )
    critical_statement_timeout_ms: int = Field(
        2_000,
        ge=100,
        description="Client-side bound on a critical (wedding-day) statement (ms): asyncpg"
        " cancels it and the request answers 503 (timeline reads take milliseconds).",
    )
    bulk_statement_timeout_ms: int = Field(
        60_000,
        ge=100,
        description="Server-side cap on a bulk statement (an import's COPY), set when the"
        " bulk lane hands out a connection; its client-side bound is this plus 1 s.",
    )
    idle_in_transaction_timeout_ms: int = Field(
        10_000,
        ge=0,
        description="The server ends a session idle inside a transaction this long (0 = off):"
        " a client that stalls mid-transaction cannot hold locks indefinitely.",
    )
    rate_limit: str = Field(
        "1200/minute",
        description="Per-API-key limit, `limits` notation (e.g. `100/second`).",
    )
    import_max_rows: int = Field(100_000, ge=1)
    import_max_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    warm_ahead_hours: int = Field(
        0,
        ge=0,
        le=72,
        description="Warm the cache for wedding days starting within this many hours (0 = off).",
    )
    warm_dates: str = Field(
        "",
        description="Comma-separated wedding days (YYYY-MM-DD) to warm before serving.",
    )
    layer: Literal["on", "off"] = Field(
        "on",
        description="off: the same API without the performance layer's cache, pool lanes"
        " and admission control (monitoring stays) — what bench-e2e compares against.",
    )
    admission: bool = Field(
        True, description="Priority admission control: shed bulk, then standard, under overload."
    )
    admission_initial_limit: int = Field(
        64, ge=4, le=10_000, description="Starting in-flight limit (it adapts to latency)."
    )
    admission_critical_floor: int = Field(
        32, ge=1, le=10_000,
        description="Critical requests always admitted while fewer are in flight (keep it"
        " above the pool size, so a slow database cannot fill it alone).",
    )  # fmt: skip
    admission_critical_wait_ms: float = Field(
        500, gt=0, le=60_000,
        description="Longest a critical request waits for room before 503 (20 ms once the"
        " queue has not emptied for 100 ms).",
    )  # fmt: skip
    deadline_critical_ms: float = Field(
        5_000, gt=0, le=600_000, description="Overall deadline of a critical request (503 after)."
    )
    deadline_standard_ms: float = Field(
        10_000, gt=0, le=600_000, description="Overall deadline of a standard request."
    )
    deadline_bulk_ms: float = Field(
        60_000, gt=0, le=3_600_000, description="Overall deadline of a bulk request (imports)."
    )
    vendor_systems: str = Field(
        "",
        description="Comma-separated base URLs of the vendor-integration gateway's replicas;"
        " set, /weddings/{id}/vendors/live asks each vendor's system for its status.",
    )
    vendor_deadline_ms: float = Field(
        800, gt=0, le=10_000, description="One deadline for all vendors."
    )
    inject: Literal["", "slow-timeline"] = Field(
        "",
        description="Fault injection for demos: slow-timeline adds 250 ms to every timeline"
        " request (to watch an SLO burn and an alert fire).",
    )
    auth_cache_seconds: float = Field(
        30.0, ge=0, description="How long a resolved API key is trusted before re-checking."
    )
    auth_unknown_cache_seconds: float = Field(
        5.0, ge=0, le=300,
        description="How long a key that was not found is answered 401 without a lookup.",
    )  # fmt: skip
    auth_failure_limit: str = Field(
        "30/minute",
        description="Failed authentications per client address (`limits` notation); past it,"
        " keys not already known answer 429 without a lookup.",
    )
    body_max_bytes: int = Field(
        1024 * 1024, ge=0, description="Request body cap of every route but imports (413)."
    )
    header_max_bytes: int = Field(
        32 * 1024, ge=1024, description="Total size of a request's header names and values (431)."
    )
    header_max_count: int = Field(100, ge=10, description="Header lines a request may have (431).")

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(_DB_SCHEMES):
            raise ValueError(f"must start with one of {', '.join(_DB_SCHEMES)}")
        return value or None

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and value and not value.startswith(_REDIS_SCHEMES):
            raise ValueError(f"must start with one of {', '.join(_REDIS_SCHEMES)}")
        return value or None

    @field_validator("replica_urls")
    @classmethod
    def _replica_schemes(cls, value: str, info: ValidationInfo) -> str:
        for url in _split(value):
            if not url.startswith(_DB_SCHEMES):
                raise ValueError(f"each URL must start with one of {', '.join(_DB_SCHEMES)}")
        if _split(value) and not info.data.get("redis_url"):
            raise ValueError("replicas need REDIS_URL (write positions are shared through Redis)")
        return value

    @property
    def replicas(self) -> list[str]:
        return _split(self.replica_urls)

    @property
    def vendor_urls(self) -> list[str]:
        return _split(self.vendor_systems)

    @field_validator("pool_reserved_critical")
    @classmethod
    def _reserve_fits(cls, value: int, info: ValidationInfo) -> int:
        size = info.data.get("pool_max_size")
        if size is not None and value >= size:
            raise ValueError(f"must be below WEDSYNC_API_POOL_MAX_SIZE ({size})")
        return value

    @field_validator("warm_dates")
    @classmethod
    def _dates(cls, value: str) -> str:
        try:
            _parse_dates(value)
        except ValueError:
            raise ValueError("expected comma-separated dates like 2027-06-12") from None
        return value

    @property
    def warm_days(self) -> list[date]:
        return _parse_dates(self.warm_dates)

    @field_validator("rate_limit", "auth_failure_limit")
    @classmethod
    def _rate_limit_syntax(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError("expected a limit like '1200/minute' or '50/second'") from None
        return value


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _parse_dates(value: str) -> list[date]:
    return [date.fromisoformat(part) for part in _split(value)]


def load_api_settings(**overrides: object) -> ApiSettings:
    """`ApiSettings` from the environment; `ConfigError` names the bad variable."""
    return load_settings(ApiSettings, **overrides)
