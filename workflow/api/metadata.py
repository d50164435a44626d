"""The state machines, event types and roles, introspected from the code (nothing restated by hand)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from outbox.events import event_types_registered
from polaris.accounts.models import User
from workflow.machines import machine_describe
from workflow.models import ActionPlan, Task, TaskPriority


class MachineTransitionSerializer(serializers.Serializer):
    name = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]  # the field is named "source"
    target = serializers.CharField()
    guards = serializers.ListField(child=serializers.CharField())


class MachineSerializer(serializers.Serializer):
    states = serializers.ListField(child=serializers.CharField())
    initial_state = serializers.CharField()
    transitions = MachineTransitionSerializer(many=True)


class MachinesSerializer(serializers.Serializer):
    task = MachineSerializer()
    action_plan = MachineSerializer()


class MetadataSerializer(serializers.Serializer):
    machines = MachinesSerializer()
    event_types = serializers.ListField(child=serializers.CharField())
    roles = serializers.ListField(child=serializers.CharField())
    priorities = serializers.ListField(child=serializers.CharField())


def metadata_describe() -> dict:
    return {
        "machines": {"task": machine_describe(Task), "action_plan": machine_describe(ActionPlan)},
        "event_types": event_types_registered(),
        "roles": list(User.Role.values),
        "priorities": list(TaskPriority.values),
    }


class MetadataView(APIView):
    @extend_schema(
        tags=["metadata"],
        summary="State machines (states, transitions, guards), event types and roles",
        responses=MetadataSerializer,
    )
    def get(self, request: Request) -> Response:
        return Response(MetadataSerializer(metadata_describe()).data)
