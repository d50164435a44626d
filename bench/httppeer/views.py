"""The peer's API as the DRF and django-fsm docs write it: a ModelViewSet, a ModelSerializer, and a
``transition`` action that locks the row (``select_for_update``), runs the fsm method and writes an
audit row in one transaction."""

from django.db import transaction
from django.shortcuts import get_object_or_404
from django_fsm import can_proceed, has_transition_perm
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from .models import AuditEntry, Task

TARGETS = {
    "in_progress": ("start", "unblock"),
    "completed": ("complete",),
    "blocked": ("block",),
    "cancelled": ("cancel",),
}


class TaskSerializer(serializers.ModelSerializer):
    class Meta:
        model = Task
        fields = "__all__"
        read_only_fields = ("state", "version", "created_at", "updated_at")


class TaskViewSet(viewsets.ModelViewSet):
    serializer_class = TaskSerializer

    def get_queryset(self):
        user = self.request.user
        tasks = Task.objects.all()
        if user.role != "admin":
            tasks = tasks.filter(agency_id=user.agency_id)
        return tasks.order_by("-created_at", "id")

    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        target = request.data.get("target_state")
        with transaction.atomic():
            task = get_object_or_404(self.get_queryset().select_for_update(), pk=pk)
            for name in TARGETS.get(target, ()):
                method = getattr(task, name)
                if can_proceed(method) and has_transition_perm(method, request.user):
                    break
            else:
                return Response({"detail": "Transition not allowed."}, status=status.HTTP_400_BAD_REQUEST)
            source = task.state
            method()
            task.version += 1
            task.save()
            AuditEntry.objects.create(
                task=task,
                actor=request.user,
                from_state=source,
                to_state=task.state,
                reason=request.data.get("reason", ""),
            )
        return Response(self.get_serializer(task).data)
