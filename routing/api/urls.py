"""Routes of the routing API under ``/api/workflow/`` (with or without a trailing slash)."""

from django.urls import re_path

from .rules import RuleDetailView, RuleListView
from .tasks import AssigneeSuggestionsView, TaskRouteView
from .users import WorkerProfileView
from .workload import WorkloadView

ID = r"(?P<{}>[^/]+)"

urlpatterns = [
    re_path(r"^routing-rules/?$", RuleListView.as_view(), name="routing-rule-list"),
    re_path(
        rf"^routing-rules/{ID.format('rule_id')}/?$", RuleDetailView.as_view(), name="routing-rule-detail"
    ),
    re_path(
        rf"^tasks/{ID.format('task_id')}/assignee-suggestions/?$",
        AssigneeSuggestionsView.as_view(),
        name="task-assignee-suggestions",
    ),
    re_path(rf"^tasks/{ID.format('task_id')}/route/?$", TaskRouteView.as_view(), name="task-route"),
    re_path(rf"^users/{ID.format('user_id')}/?$", WorkerProfileView.as_view(), name="worker-profile"),
    re_path(r"^workload/?$", WorkloadView.as_view(), name="workload"),
]
