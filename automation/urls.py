from django.urls import re_path

from .views import AlertAcknowledgeApi, AlertListApi, TriggerDryRunApi, TriggerListApi

# Trailing slash optional, as on every workflow endpoint.
urlpatterns = [
    re_path(r"^triggers/?$", TriggerListApi.as_view(), name="trigger-list"),
    re_path(
        r"^triggers/(?P<trigger_id>[0-9]+)/dry-run/?$", TriggerDryRunApi.as_view(), name="trigger-dry-run"
    ),
    re_path(r"^alerts/?$", AlertListApi.as_view(), name="alert-list"),
    re_path(
        r"^alerts/(?P<alert_id>[0-9]+)/acknowledge/?$",
        AlertAcknowledgeApi.as_view(),
        name="alert-acknowledge",
    ),
]
