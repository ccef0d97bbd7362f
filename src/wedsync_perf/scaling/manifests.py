"""Kubernetes objects for the same policy, for teams that let the cluster scale:

* an `autoscaling/v2` HorizontalPodAutoscaler on requests/s per pod (a Pods metric, from
  a Prometheus adapter) and CPU, with the HPA's default behaviour spelled out;
* a KEDA `ScaledObject` whose cron triggers hold a floor on the wedding calendar's days
  (season Saturdays, and each date with weddings booked) — KEDA's cron is only a
  floor, the HPA still takes the maximum of all triggers.

Both are checked against the kubernetes client's models (the HPA fully; the
ScaledObject's metadata — a CRD has no model there) before they are written.

`scale_deployment` actuates a decision through the scale subresource, dry-run unless
told otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from wedsync_perf.errors import InvalidValue

__all__ = ["hpa_manifest", "keda_scaled_object", "scale_deployment", "validate"]


def hpa_manifest(
    deployment: str,
    *,
    namespace: str = "default",
    min_replicas: int = 2,
    max_replicas: int = 50,
    rps_per_pod: float = 630.0,
    cpu_utilisation: int = 70,
) -> dict[str, Any]:
    if not 1 <= min_replicas <= max_replicas:
        raise InvalidValue(
            "min_replicas/max_replicas",
            (min_replicas, max_replicas),
            "1 <= min_replicas <= max_replicas",
        )
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": deployment, "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "wedsync-perf"}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "minReplicas": min_replicas,
            "maxReplicas": max_replicas,
            "metrics": [
                {"type": "Pods", "pods": {
                    "metric": {"name": "wedsync_http_requests_per_second"},
                    "target": {"type": "AverageValue", "averageValue": f"{rps_per_pod:g}"}}},
                {"type": "Resource", "resource": {
                    "name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu_utilisation}}},
            ],
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 15},
                    {"type": "Pods", "value": 4, "periodSeconds": 15}]},
                "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Max", "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 15}]},
            },
        },
    }  # fmt: skip


def keda_scaled_object(
    deployment: str,
    *,
    namespace: str = "default",
    min_replicas: int = 2,
    max_replicas: int = 50,
    wedding_day_floor: int = 10,
    season_months: tuple[int, int] = (5, 10),
    booked_dates: Iterable[date] = (),
    timezone: str = "Europe/London",
    prometheus_url: str = "http://prometheus.monitoring:9090",
    rps_per_pod: float = 630.0,
) -> dict[str, Any]:
    """Cron floors: 07:00–22:00 on season Saturdays, and on each booked date outside
    them; a Prometheus trigger on requests/s does the rest."""
    start, end = season_months
    months = f"{start}-{end}" if start <= end else f"{start}-12,1-{end}"
    triggers: list[dict[str, Any]] = [
        {"type": "cron", "name": "season-saturdays", "metadata": {
            "timezone": timezone, "start": f"0 7 * {months} 6", "end": f"0 22 * {months} 6",
            "desiredReplicas": str(wedding_day_floor)}},
    ]  # fmt: skip
    for day in sorted(set(booked_dates)):
        if day.weekday() == 5 and (start <= day.month <= end if start <= end else True):
            continue  # already covered by the Saturday trigger
        triggers.append({"type": "cron", "name": f"weddings-{day:%Y-%m-%d}", "metadata": {
            "timezone": timezone, "start": f"0 7 {day.day} {day.month} *",
            "end": f"0 22 {day.day} {day.month} *", "desiredReplicas": str(wedding_day_floor)}})  # fmt: skip
    triggers.append({"type": "prometheus", "name": "requests-per-second", "metadata": {
        "serverAddress": prometheus_url,
        "query": "sum(rate(wedsync_http_requests_total[1m]))",
        "threshold": f"{rps_per_pod:g}"}})  # fmt: skip
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": deployment, "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "wedsync-perf"}},
        "spec": {"scaleTargetRef": {"name": deployment}, "minReplicaCount": min_replicas,
                 "maxReplicaCount": max_replicas, "triggers": triggers},
    }  # fmt: skip


def validate(manifest: dict[str, Any]) -> Any:
    """Deserialize into the kubernetes client's model (raises `InvalidValue`, a
    ValueError, on a missing required field or a bad value); returns the model object.
    For a KEDA ScaledObject (a CRD, no model in the client) the metadata is checked by
    the client and the spec's required fields here."""
    from kubernetes.client import V1ObjectMeta, V2HorizontalPodAutoscaler

    kind = manifest.get("kind")
    if kind == "HorizontalPodAutoscaler":
        return _from_dict(V2HorizontalPodAutoscaler, manifest, "a HorizontalPodAutoscaler")
    if kind == "ScaledObject":
        spec = manifest.get("spec") or {}
        if not spec.get("scaleTargetRef", {}).get("name"):
            raise InvalidValue(
                "spec.scaleTargetRef.name",
                spec.get("scaleTargetRef", {}).get("name"),
                "the name of the workload to scale",
            )
        for i, trigger in enumerate(spec.get("triggers") or ()):
            if not trigger.get("type") or not isinstance(trigger.get("metadata"), dict):
                raise InvalidValue(
                    f"spec.triggers[{i}]", trigger, "a trigger with a type and metadata"
                )
        return _from_dict(V1ObjectMeta, manifest.get("metadata"), "ScaledObject metadata")
    raise InvalidValue("kind", kind, "HorizontalPodAutoscaler or ScaledObject")


def _from_dict(model: Any, data: Any, what: str) -> Any:
    """The client's validation errors, as the library's."""
    try:
        return model.from_dict(data)
    except ValueError as exc:  # pydantic's ValidationError among them
        raise InvalidValue("manifest", type(data).__name__, f"{what}: {exc}") from exc


def scale_deployment(
    name: str, replicas: int, *, namespace: str = "default", dry_run: bool = True
) -> Any:
    """Set `replicas` through the Deployment's scale subresource (kube config from the
    usual places: in-cluster, else ~/.kube/config). Dry-run by default: the API server
    validates and answers, nothing changes."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    body = {"spec": {"replicas": replicas}}
    return client.AppsV1Api().patch_namespaced_deployment_scale(
        name, namespace, body, dry_run="All" if dry_run else None
    )
