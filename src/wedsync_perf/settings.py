"""Library settings, read once from `WEDSYNC_PERF_*` environment variables.

`load_settings()` is the entry point: it turns pydantic's validation errors into a
`ConfigError` naming the environment variable, so a bad deployment stops at start-up
with a line an operator can act on instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import platformdirs
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from wedsync_perf.errors import ConfigError
from wedsync_perf.keys import PREFIX_PATTERN

__all__ = ["PerfSettings", "env_var_for", "load_settings"]

_S = TypeVar("_S", bound=BaseSettings)


def _default_data_dir() -> Path:
    return Path(platformdirs.user_cache_dir("wedsync-perf"))


class PerfSettings(BaseSettings):
    """Settings of the performance layer itself (not of the app it instruments)."""

    model_config = SettingsConfigDict(env_prefix="WEDSYNC_PERF_", extra="ignore", frozen=True)

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where embedded servers keep their data between runs.",
    )
    season_start_month: int = Field(5, ge=1, le=12, description="First month of wedding season.")
    season_end_month: int = Field(10, ge=1, le=12, description="Last month of wedding season.")
    slo_ms: float = Field(200.0, gt=0, description="Latency objective for every route (ms).")
    critical_slo_ms: float = Field(
        100.0, gt=0, description="Latency objective for critical routes on wedding days (ms)."
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token for /metrics and /perf/stats; unset turns them off.",
    )
    slo_file: Path | None = Field(
        None, description="SLO definitions (TOML); unset: built from SLO_MS and CRITICAL_SLO_MS."
    )
    alertmanager_url: str | None = Field(
        None, description="Alertmanager base URL: alerts go to its v2 API (it groups, silences)."
    )
    alert_webhook_url: str | None = Field(
        None, description="Webhook for alerts when no Alertmanager (JSON, HMAC-signed)."
    )
    alert_webhook_secret: SecretStr | None = Field(
        None, description="Key of the webhook's X-Wedsync-Signature (HMAC-SHA256)."
    )
    alert_webhook_format: Literal["json", "slack"] = Field(
        "json", description="json, or slack for an incoming-webhook {text} body."
    )
    window_s: float = Field(10.0, ge=1, le=300, description="Width of a measurement window (s).")
    retention_s: float = Field(3600.0, ge=60, le=86400, description="Windows kept in memory (s).")
    max_series: int = Field(1000, ge=10, le=100_000, description="Series cap; beyond it, overflow.")
    flush_interval_s: float = Field(
        5.0, gt=0, le=60, description="How often each process publishes to the fleet view (s)."
    )
    cache_secret: SecretStr | None = Field(
        None,
        min_length=16,
        description="HMAC secret for cache key names; required with Redis (same in every process).",
    )
    cache_keys: SecretStr | None = Field(
        None,
        description="AES-256 keys (base64, comma-separated, newest first) for sensitive data; "
        "unset means sensitive data classes are not cached.",
    )
    cache_local_entries: int = Field(
        10_000, ge=0, le=1_000_000, description="In-process tier size."
    )
    cache_timeout_ms: float = Field(100.0, gt=0, le=5000, description="Per Redis call (ms).")
    redis_prefix: str = Field(
        "wsp", pattern=PREFIX_PATTERN, description="Prefix of every Redis key and channel."
    )
    redis_max_connections: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="Redis connections per process; unset: the admission limit plus a few.",
    )
    redis_pool_timeout_ms: float = Field(
        50.0, ge=0, le=5000, description="Wait for a free Redis connection, then a miss (ms)."
    )
    redis_connect_timeout_ms: float = Field(
        250.0, gt=0, le=10_000, description="Bound on opening a Redis connection (ms)."
    )
    redis_socket_timeout_ms: float = Field(
        250.0, gt=0, le=60_000, description="Bound on one Redis reply (ms)."
    )
    redis_health_check_s: float = Field(
        10.0, ge=0, le=3600, description="PING a Redis connection idle this long before use."
    )
    redis_breaker_cooldown_s: float = Field(
        1.0, gt=0, le=60, description="After Redis failed, how long every user skips it (s)."
    )
    fleet: str = Field(
        "default", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Fleet name (one per deployment)."
    )

    @field_validator("critical_slo_ms")
    @classmethod
    def _critical_not_looser(cls, value: float, info: ValidationInfo) -> float:
        slo = info.data.get("slo_ms")
        if slo is not None and value > slo:
            raise ValueError(f"must not exceed WEDSYNC_PERF_SLO_MS ({slo:g} ms)")
        return value


def env_var_for(settings_cls: type[BaseSettings], field: str) -> str:
    """The environment variable that sets `field` of `settings_cls`."""
    info = settings_cls.model_fields.get(field)
    if info is None and field.upper() == field:  # pydantic reports the alias it read
        return field
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices) and alias.choices and isinstance(alias.choices[0], str):
        return alias.choices[0].upper()
    if isinstance(alias, str):
        return alias.upper()
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    return f"{prefix}{field}".upper()


def load_settings(settings_cls: type[_S], **overrides: Any) -> _S:
    """Build `settings_cls` from the environment, raising `ConfigError` on bad input.

    Values are never echoed back: a URL may carry a password.
    """
    try:
        return settings_cls(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(part) for part in first.get("loc", ())]
        prefix = str(settings_cls.model_config.get("env_prefix", ""))
        variable = env_var_for(settings_cls, loc[0]) if loc else f"{prefix}*".upper()
        raise ConfigError(variable, str(first.get("msg", "invalid value"))) from None
