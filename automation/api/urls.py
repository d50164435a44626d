"""``/api/workflow/…`` for triggers and alerts (included by ``ops/urls.py``)."""

from django.urls import re_path

from .alerts import AlertAcknowledgeView, AlertListView
from .triggers import TriggerBacktestView, TriggerDetailView, TriggerDryRunView, TriggerListView

# Trailing slash optional, as on every workflow endpoint.
urlpatterns = [
    re_path(r"^triggers/?$", TriggerListView.as_view(), name="trigger-list"),
    re_path(r"^triggers/(?P<trigger_id>[0-9]+)/?$", TriggerDetailView.as_view(), name="trigger-detail"),
    re_path(
        r"^triggers/(?P<trigger_id>[0-9]+)/backtest/?$",
        TriggerBacktestView.as_view(),
        name="trigger-backtest",
    ),
    re_path(
        r"^triggers/(?P<trigger_id>[0-9]+)/dry-run/?$", TriggerDryRunView.as_view(), name="trigger-dry-run"
    ),
    re_path(r"^alerts/?$", AlertListView.as_view(), name="alert-list"),
    re_path(
        r"^alerts/(?P<alert_id>[0-9]+)/acknowledge/?$",
        AlertAcknowledgeView.as_view(),
        name="alert-acknowledge",
    ),
]
