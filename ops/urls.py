"""The operations routes: the stats API, ``/healthz``, ``/readyz``, ``/metrics`` (mounted by polaris.urls)."""

from django.urls import path, re_path

from . import health, metrics, views

urlpatterns = [
    re_path(r"^api/workflow/stats/?$", views.WorkflowStatsView.as_view(), name="workflow-stats"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="prometheus-metrics"),
]
