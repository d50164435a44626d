"""``/api/workflow/audit`` (included by ``polaris/urls.py``); trailing slash optional."""

from django.urls import re_path

from .views import AuditListView

urlpatterns = [re_path(r"^audit/?$", AuditListView.as_view(), name="audit-list")]
