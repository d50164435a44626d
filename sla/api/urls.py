"""Routes of the SLA API under ``/api/workflow/``."""

from django.urls import re_path

from sla.api.repairs import SLARepairDetailView, SLARepairListCreateView, TaskSLAHistoryView
from sla.api.sla_configs import SLAConfigDetailView, SLAConfigListCreateView

# Trailing slash optional, as on every workflow endpoint.
urlpatterns = [
    re_path(r"^sla-configs/?$", SLAConfigListCreateView.as_view(), name="sla-config-list"),
    re_path(r"^sla-configs/(?P<config_id>[^/]+)/?$", SLAConfigDetailView.as_view(), name="sla-config-detail"),
    re_path(r"^sla-repairs/?$", SLARepairListCreateView.as_view(), name="sla-repair-list"),
    re_path(r"^sla-repairs/(?P<repair_id>[^/]+)/?$", SLARepairDetailView.as_view(), name="sla-repair-detail"),
    re_path(
        r"^tasks/(?P<task_id>[^/]+)/sla-history/?$", TaskSLAHistoryView.as_view(), name="task-sla-history"
    ),
]
