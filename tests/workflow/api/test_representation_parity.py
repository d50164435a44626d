"""The task and event representations render their dicts directly (no per-response field copies); this pins
them to what their declared fields (the schema) would render through DRF's generic path."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework import serializers
from rest_framework.test import APIRequestFactory

from outbox.models import OutboxEvent
from workflow import extensions
from workflow.api.serializers import EventSerializer, TaskSerializer
from workflow.models import Task

pytestmark = pytest.mark.django_db


def generic(serializer_class, instance, context):
    """What DRF's ``Serializer.to_representation`` renders from the declared fields, plus the extensions."""
    serializer = serializer_class(instance, context=context)
    data = serializers.Serializer.to_representation(serializer, instance)
    if serializer_class is TaskSerializer:
        for name, render in extensions.task_fields.items():
            data[name] = render(instance, context["request"].user)
        if context["request"].user.is_client_role:  # a client's view leaves the staff-only fields out
            for name in STAFF_ONLY:
                del data[name]
    return dict(data)


STAFF_ONLY = ("blocked_reason_internal", "staff_notes")


def request_for(user):
    request = APIRequestFactory().get("/")
    request.user = user
    return request


@pytest.mark.parametrize("persona", ["agent", "client_user", "admin_user"])
def test_a_task_renders_as_its_declared_fields_would(request, persona, make_task, make_plan, agent):
    user = request.getfixturevalue(persona)
    plan = make_plan()
    sparse = make_task(assignee=None)
    full = make_task(action_plan=plan, due_at=timezone.now() + timedelta(days=2), description="Keys")
    context = {"request": request_for(user)}
    for task in (Task.objects.get(pk=sparse.pk), Task.objects.get(pk=full.pk)):
        fast = TaskSerializer(task, context=context).data
        assert fast == generic(TaskSerializer, task, context)
        declared = [
            name for name in TaskSerializer().fields if not (user.is_client_role and name in STAFF_ONLY)
        ]
        assert list(fast) == declared  # same keys, same order as the schema
    many = TaskSerializer(Task.objects.order_by("created_at"), many=True, context=context).data
    assert [row["id"] for row in many] == [str(sparse.pk), str(full.pk)]


def test_an_event_renders_as_its_declared_fields_would(make_task, agent):
    task = make_task()
    context = {"request": request_for(agent)}
    for event in OutboxEvent.objects.filter(aggregate_id=task.pk):
        fast = EventSerializer(event, context=context).data
        assert fast == generic(EventSerializer, event, context)
        assert list(fast) == [*EventSerializer().fields]


@pytest.mark.parametrize("persona", ["agent", "client_user", "admin_user"])
@pytest.mark.parametrize("policy", [None, {"count": 1, "role": "supervisor"}])
def test_a_plan_renders_as_its_declared_fields_would(request, persona, policy, make_plan, make_task, agent):
    from workflow.api.plan_serializers import (
        ActionPlanDetailSerializer,
        ActionPlanSerializer,
        TaskSummarySerializer,
    )
    from workflow.models import ActionPlan

    user = request.getfixturevalue(persona)
    plan = make_plan()
    ActionPlan.objects.filter(pk=plan.pk).update(approval_policy=policy)
    first = make_task(action_plan=plan, due_at=timezone.now() + timedelta(days=2))
    waiting = make_task(action_plan=plan, assignee=None)
    Task.objects.filter(pk=waiting.pk).update(waiting_on=[first.pk])
    context = {"request": request_for(user)}
    plan = ActionPlan.objects.prefetch_related("tasks", "approvals").get(pk=plan.pk)
    for serializer_class in (ActionPlanSerializer, ActionPlanDetailSerializer):
        fast = serializer_class(plan, context=context).data
        generic_path = serializers.Serializer.to_representation(serializer_class(plan, context=context), plan)
        assert fast == dict(generic_path)
        assert list(fast) == [*serializer_class().fields]
    for task in plan.tasks.all():
        summary = serializers.Serializer.to_representation(TaskSummarySerializer(task), task)
        assert TaskSummarySerializer(task).data == summary
        assert list(TaskSummarySerializer(task).data) == [*TaskSummarySerializer().fields]
    tasks = ActionPlanDetailSerializer(plan, context=context).data["tasks"]
    assert [row["waiting_on"] for row in tasks] == [[], [str(first.pk)]]
