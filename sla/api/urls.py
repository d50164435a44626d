"""Routes of the SLA API under ``/api/workflow/``."""

from django.urls import re_path

from sla.api.sla_configs import SLAConfigDetailView, SLAConfigListCreateView

# Trailing slash optional, as on every workflow endpoint.
urlpatterns = [
    re_path(r"^sla-configs/?$", SLAConfigListCreateView.as_view(), name="sla-config-list"),
    re_path(r"^sla-configs/(?P<config_id>[^/]+)/?$", SLAConfigDetailView.as_view(), name="sla-config-detail"),
]
