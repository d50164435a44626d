"""Input and output shapes of the routing API (rules, worker profiles, suggestions, routes, workload)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from polaris.accounts.models import Agency
from polaris.api.strict import StrictFieldsMixin
from workflow.api.serializers import AgencyField, ScopedUserField
from workflow.models import TaskPriority

from ..models import MAX_CANDIDATES, MAX_MATCH_VALUES, MAX_SKILLS, RoutingStrategy
from ..workload import AGE_BUCKETS


def _slugs(help_text: str, limit: int = MAX_MATCH_VALUES) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.SlugField(max_length=64), required=False, max_length=limit, help_text=help_text
    )


@extend_schema_serializer(component_name="RoutingRuleRequest")
class RuleInputSerializer(StrictFieldsMixin, serializers.Serializer):
    agency = AgencyField(
        queryset=Agency.objects.all(),
        required=False,
        help_text="The agency the rule routes for (admins: required; a supervisor's defaults to their own).",
    )
    name = serializers.CharField(max_length=200)
    enabled = serializers.BooleanField(required=False)
    order = serializers.IntegerField(required=False, min_value=0, max_value=100_000, help_text="Lower first.")
    match_task_types = _slugs("Task types the rule takes (empty: any).")
    match_service_areas = _slugs("Service areas the rule takes (empty: any).")
    match_priorities = serializers.ListField(
        child=serializers.ChoiceField(choices=TaskPriority.choices),
        required=False,
        max_length=4,
        help_text="Priorities the rule takes (empty: any).",
    )
    strategy = serializers.ChoiceField(choices=RoutingStrategy.choices, required=False)
    candidates = serializers.ListField(
        child=ScopedUserField(),
        required=False,
        max_length=MAX_CANDIDATES,
        help_text="Who may be chosen (staff of the rule's agency); empty: the agency's agents.",
    )
    use_skills = serializers.BooleanField(required=False)
    client_affinity = serializers.BooleanField(required=False)
    capacity = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=100_000, help_text="Open tasks per worker."
    )


@extend_schema_serializer(component_name="RoutingRule")
class RuleOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    agency = serializers.UUIDField(source="agency_id")
    name = serializers.CharField()
    enabled = serializers.BooleanField()
    order = serializers.IntegerField()
    match_task_types = serializers.ListField(child=serializers.CharField())
    match_service_areas = serializers.ListField(child=serializers.CharField())
    match_priorities = serializers.ListField(child=serializers.CharField())
    strategy = serializers.ChoiceField(choices=RoutingStrategy.choices)
    candidates = serializers.SerializerMethodField()
    use_skills = serializers.BooleanField()
    client_affinity = serializers.BooleanField()
    capacity = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_candidates(self, rule: Any) -> list[int]:
        return sorted(user.pk for user in rule.candidates.all())


class RuleListQuerySerializer(serializers.Serializer):
    page = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000)
    agency = serializers.UUIDField(required=False, help_text="Only this agency's rules (admins).")


@extend_schema_serializer(component_name="WorkerProfileRequest")
class ProfileInputSerializer(StrictFieldsMixin, serializers.Serializer):
    away = serializers.BooleanField(required=False)
    delegate = ScopedUserField(
        required=False, allow_null=True, help_text="Who takes the worker's routed work while they are away."
    )
    service_areas = _slugs("Service areas the worker covers (empty: any).", MAX_SKILLS)
    task_types = _slugs("Task types the worker takes (empty: any).", MAX_SKILLS)
    capacity = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=100_000, help_text="Open tasks at most."
    )


@extend_schema_serializer(component_name="WorkerProfile")
class ProfileOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="user_id")
    away = serializers.BooleanField()
    delegate = serializers.IntegerField(source="delegate_id", allow_null=True)
    service_areas = serializers.ListField(child=serializers.CharField())
    task_types = serializers.ListField(child=serializers.CharField())
    capacity = serializers.IntegerField(allow_null=True)
    open = serializers.IntegerField(help_text="Open tasks (the routing counter).")
    weighted_load = serializers.IntegerField()


class ReasonSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable: RULE_MATCHED, LOAD, CLIENT_AFFINITY, AWAY, …")
    message = serializers.CharField(help_text="The same for people.")

    def to_representation(self, instance: Any) -> dict[str, Any]:
        # The figures behind a reason (loads, capacities, ids) travel with it, as on the event.
        return dict(instance)


class SuggestionSerializer(serializers.Serializer):
    user = serializers.IntegerField(source="user_id")
    username = serializers.CharField()
    score = serializers.FloatField(help_text="Higher first; client affinity scores 1000.")
    reasons = ReasonSerializer(many=True)


@extend_schema_serializer(component_name="AssigneeSuggestions")
class SuggestionsSerializer(serializers.Serializer):
    task = serializers.UUIDField()
    rule = serializers.UUIDField(allow_null=True)
    strategy = serializers.CharField(allow_null=True)
    suggestions = SuggestionSerializer(many=True, help_text="Eligible workers, best first.")
    excluded = SuggestionSerializer(many=True, help_text="Candidates who may not take it, and why.")
    reasons = ReasonSerializer(many=True, help_text="About the decision as a whole.")


@extend_schema_serializer(component_name="RouteResult")
class RouteResultSerializer(serializers.Serializer):
    task = serializers.UUIDField()
    assigned = serializers.BooleanField()
    assignee = serializers.IntegerField(allow_null=True)
    rule = serializers.UUIDField(allow_null=True)
    strategy = serializers.CharField(allow_null=True)
    reasons = ReasonSerializer(many=True)
    event = serializers.UUIDField(allow_null=True, help_text="TaskAssigned or TaskRoutingFailed; null: none.")
    version = serializers.IntegerField(help_text="The task's version after the route.")


class WorkloadQuerySerializer(serializers.Serializer):
    agency = serializers.UUIDField(required=False, help_text="Admins: the agency (required).")


class WorkerWorkloadSerializer(serializers.Serializer):
    user = serializers.IntegerField()
    username = serializers.CharField()
    role = serializers.CharField()
    open = serializers.IntegerField()
    weighted_load = serializers.IntegerField()
    capacity = serializers.IntegerField(allow_null=True)
    overdue = serializers.IntegerField()
    at_risk = serializers.IntegerField()
    oldest_open_age_seconds = serializers.IntegerField(allow_null=True)
    away = serializers.BooleanField()
    delegate = serializers.IntegerField(allow_null=True)


class UnassignedSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    oldest_age_seconds = serializers.IntegerField(allow_null=True)


for _bucket, _ in AGE_BUCKETS:
    UnassignedSerializer._declared_fields[_bucket] = serializers.IntegerField(
        help_text=f"Unassigned open tasks aged {_bucket.replace('_', ' ')}."
    )


class ServiceAreaWorkloadSerializer(serializers.Serializer):
    service_area = serializers.CharField()
    open = serializers.IntegerField()
    unassigned = serializers.IntegerField()
    overdue = serializers.IntegerField()


@extend_schema_serializer(component_name="Workload")
class WorkloadSerializer(serializers.Serializer):
    agency = serializers.UUIDField()
    generated_at = serializers.DateTimeField()
    workers = WorkerWorkloadSerializer(many=True)
    unassigned = UnassignedSerializer()
    service_areas = ServiceAreaWorkloadSerializer(many=True)
