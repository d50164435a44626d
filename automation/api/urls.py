"""``/api/workflow/…`` for triggers, alerts and webhooks (included by ``polaris/urls.py``)."""

from django.urls import re_path

from .alerts import AlertAcknowledgeView, AlertListView
from .triggers import TriggerBacktestView, TriggerDetailView, TriggerDryRunView, TriggerListView
from .webhook_endpoints import (
    WebhookDeliveryRedeliverView,
    WebhookEndpointDeliveriesView,
    WebhookEndpointDetailView,
    WebhookEndpointListView,
    WebhookEndpointRotateSecretView,
    WebhookEndpointTestView,
)

ENDPOINT = r"^webhook-endpoints/(?P<endpoint_id>[0-9]{1,18})"

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
    re_path(r"^webhook-endpoints/?$", WebhookEndpointListView.as_view(), name="webhook-endpoint-list"),
    re_path(rf"{ENDPOINT}/?$", WebhookEndpointDetailView.as_view(), name="webhook-endpoint-detail"),
    re_path(
        rf"{ENDPOINT}/rotate-secret/?$",
        WebhookEndpointRotateSecretView.as_view(),
        name="webhook-endpoint-rotate",
    ),
    re_path(rf"{ENDPOINT}/test/?$", WebhookEndpointTestView.as_view(), name="webhook-endpoint-test"),
    re_path(
        rf"{ENDPOINT}/deliveries/?$",
        WebhookEndpointDeliveriesView.as_view(),
        name="webhook-endpoint-deliveries",
    ),
    re_path(
        r"^webhook-deliveries/(?P<delivery_id>[0-9]{1,18})/redeliver/?$",
        WebhookDeliveryRedeliverView.as_view(),
        name="webhook-delivery-redeliver",
    ),
]
