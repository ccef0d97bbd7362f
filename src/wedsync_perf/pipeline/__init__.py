"""The request pipeline's own stages: the route table and its classifier, then
authentication and rate limiting. With monitoring, admission control and the HTTP
response cache they make one pass per request, top to bottom (README, "A request's
path")."""

from wedsync_perf.pipeline.access import (
    TENANT_KEY,
    AccessMiddleware,
    ApiKeyAuthenticator,
    Authenticate,
    FailureLimit,
    Tenant,
    hash_key,
    tenant_of,
)
from wedsync_perf.pipeline.deadline import DeadlineMiddleware, Deadlines
from wedsync_perf.pipeline.limits import LimitsMiddleware, RequestLimits
from wedsync_perf.pipeline.ratelimit import RateLimiter
from wedsync_perf.pipeline.routing import (
    PARAMS_KEY,
    ROUTE_KEY,
    CacheRule,
    ClassifierMiddleware,
    ResolvedRoute,
    RouteTable,
    path_params,
    resolved_route,
    template_regex,
)

__all__ = [
    "PARAMS_KEY",
    "ROUTE_KEY",
    "TENANT_KEY",
    "AccessMiddleware",
    "ApiKeyAuthenticator",
    "Authenticate",
    "CacheRule",
    "ClassifierMiddleware",
    "DeadlineMiddleware",
    "Deadlines",
    "FailureLimit",
    "LimitsMiddleware",
    "RateLimiter",
    "RequestLimits",
    "ResolvedRoute",
    "RouteTable",
    "Tenant",
    "hash_key",
    "path_params",
    "resolved_route",
    "template_regex",
    "tenant_of",
]
