from django.urls import re_path

from .api import SLAConfigDetailApi, SLAConfigListCreateApi

# Trailing slash optional, as on every workflow endpoint.
urlpatterns = [
    re_path(r"^sla-configs/?$", SLAConfigListCreateApi.as_view(), name="sla-config-list"),
    re_path(r"^sla-configs/(?P<config_id>[^/]+)/?$", SLAConfigDetailApi.as_view(), name="sla-config-detail"),
]
