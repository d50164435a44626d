"""The report routes (mounted under ``/api/workflow/`` by polaris.urls); trailing slash optional."""

from django.urls import re_path

from . import views

urlpatterns = [
    re_path(
        r"^reports/sla-attainment/?$", views.SLAAttainmentReportView.as_view(), name="report-sla-attainment"
    ),
    re_path(r"^reports/throughput/?$", views.ThroughputReportView.as_view(), name="report-throughput"),
    re_path(
        r"^reports/backlog-aging/?$", views.BacklogAgingReportView.as_view(), name="report-backlog-aging"
    ),
    re_path(r"^reports/time-in-state/?$", views.TimeInStateReportView.as_view(), name="report-time-in-state"),
]
