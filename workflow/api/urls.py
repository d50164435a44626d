"""``/api/workflow/…`` for tasks, action plans, saved views, people and metadata (trailing slash or not).

Dispatch, SLA-config, trigger/alert and stats endpoints live in their own url modules under the same prefix.
"""

from django.urls import re_path

from .action_plans import (
    ActionPlanActivateView,
    ActionPlanArchiveView,
    ActionPlanDetailView,
    ActionPlanListCreateView,
)
from .approvals import ActionPlanApprovalsView
from .bulk import TaskBulkView
from .checklists import TaskChecklistItemView, TaskChecklistView
from .clients import ClientEraseView
from .metadata import MetadataView
from .saved_views import SavedViewDetailView, SavedViewListCreateView, SavedViewTasksView
from .tasks import TaskAssignView, TaskDetailView, TaskEventsView, TaskListCreateView, TaskTransitionView
from .users import ClientLinkView, ClientUnlinkView, UserListView

ID = r"(?P<{}>[^/]+)"

urlpatterns = [
    re_path(r"^tasks/?$", TaskListCreateView.as_view(), name="task-list"),
    re_path(r"^tasks/bulk/?$", TaskBulkView.as_view(), name="task-bulk"),
    re_path(rf"^tasks/{ID.format('task_id')}/?$", TaskDetailView.as_view(), name="task-detail"),
    re_path(
        rf"^tasks/{ID.format('task_id')}/transition/?$", TaskTransitionView.as_view(), name="task-transition"
    ),
    re_path(rf"^tasks/{ID.format('task_id')}/assign/?$", TaskAssignView.as_view(), name="task-assign"),
    re_path(rf"^tasks/{ID.format('task_id')}/events/?$", TaskEventsView.as_view(), name="task-events"),
    re_path(
        rf"^tasks/{ID.format('task_id')}/checklist/?$", TaskChecklistView.as_view(), name="task-checklist"
    ),
    re_path(
        rf"^tasks/{ID.format('task_id')}/checklist/{ID.format('item_id')}/?$",
        TaskChecklistItemView.as_view(),
        name="task-checklist-item",
    ),
    re_path(r"^action-plans/?$", ActionPlanListCreateView.as_view(), name="action-plan-list"),
    re_path(
        rf"^action-plans/{ID.format('action_plan_id')}/?$",
        ActionPlanDetailView.as_view(),
        name="action-plan-detail",
    ),
    re_path(
        rf"^action-plans/{ID.format('action_plan_id')}/activate/?$",
        ActionPlanActivateView.as_view(),
        name="action-plan-activate",
    ),
    re_path(
        rf"^action-plans/{ID.format('action_plan_id')}/archive/?$",
        ActionPlanArchiveView.as_view(),
        name="action-plan-archive",
    ),
    re_path(
        rf"^action-plans/{ID.format('action_plan_id')}/approvals/?$",
        ActionPlanApprovalsView.as_view(),
        name="action-plan-approvals",
    ),
    re_path(r"^views/?$", SavedViewListCreateView.as_view(), name="saved-view-list"),
    re_path(rf"^views/{ID.format('view_id')}/?$", SavedViewDetailView.as_view(), name="saved-view-detail"),
    re_path(
        rf"^views/{ID.format('view_id')}/tasks/?$", SavedViewTasksView.as_view(), name="saved-view-tasks"
    ),
    re_path(r"^metadata/?$", MetadataView.as_view(), name="workflow-metadata"),
    re_path(r"^users/?$", UserListView.as_view(), name="workflow-users"),
    re_path(rf"^users/{ID.format('user_id')}/agencies/?$", ClientLinkView.as_view(), name="client-links"),
    re_path(
        rf"^users/{ID.format('user_id')}/agencies/{ID.format('agency_id')}/?$",
        ClientUnlinkView.as_view(),
        name="client-link-detail",
    ),
    re_path(rf"^clients/{ID.format('client_id')}/erase/?$", ClientEraseView.as_view(), name="client-erase"),
]
