"""SLA configs and business calendars: matching a task to its config, reading and managing configs.

Writes (``sla_config_create``/``sla_config_update``, ``business_calendar_holidays_fill``) are atomic and raise
``ValidationFailed`` for bad input and ``SLAConfigConflict`` (409) for a tie with a stored active config;
reads raise ``NotFound``/``PermissionDenied``. Defaults come from ``sla.defaults``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from polaris.access import require_admin, require_staff
from polaris.accounts.models import User
from polaris.audit.services import audit_record, audit_snapshot
from polaris.errors import Conflict, NotFound, ValidationFailed

from .defaults import default_pause_states, default_warning_percentages
from .models import BusinessCalendar, SLAConfig

CONFIG_FIELDS = (
    "name",
    "service_area",
    "task_type",
    "target_minutes",
    "warning_percentages",
    "pause_states",
    "calendar",
    "active",
)


CONFIG_AUDITED = (*(f for f in CONFIG_FIELDS if f != "calendar"), "calendar_id")
CALENDAR_AUDITED = ("name", "time_zone", "working_hours", "holidays", "country_code", "subdivision")


def sla_config_snapshot(config: SLAConfig) -> dict[str, Any]:
    return audit_snapshot(config, CONFIG_AUDITED)


def business_calendar_snapshot(calendar: BusinessCalendar) -> dict[str, Any]:
    return audit_snapshot(calendar, CALENDAR_AUDITED)


class SLAConfigConflict(Conflict):
    """An active SLA config already covers the same service area and task type.

    A conflict with stored state, not bad input: 409. ``details.conflicting_config`` names it when known."""

    error_code = "SLA_CONFIG_CONFLICT"


# --- Reads ---------------------------------------------------------------------------------------------


def sla_config_match(*, task_type: str, service_area: str) -> SLAConfig | None:
    """The most specific active config for a task: area+type, then type, then area, then any."""
    candidates = SLAConfig.objects.select_related("calendar").filter(
        Q(task_type=task_type) | Q(task_type=""),
        Q(service_area=service_area) | Q(service_area=""),
        active=True,
    )
    return max(candidates, key=lambda config: config.specificity, default=None)


def sla_configs_match(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], SLAConfig | None]:
    """``sla_config_match`` for many ``(task_type, service_area)`` pairs at once, in one query (the
    candidates of every pair), for a batch of tasks created together (a plan made from a template)."""
    wanted = set(pairs)
    if not wanted:
        return {}
    candidates = list(
        SLAConfig.objects.select_related("calendar").filter(
            task_type__in={task_type for task_type, _ in wanted} | {""},
            service_area__in={service_area for _, service_area in wanted} | {""},
            active=True,
        )
    )
    return {
        (task_type, service_area): max(
            (
                config
                for config in candidates
                if config.task_type in (task_type, "") and config.service_area in (service_area, "")
            ),
            key=lambda config: config.specificity,
            default=None,
        )
        for task_type, service_area in wanted
    }


def _require_staff(user: User | None) -> None:
    require_staff(user, "Only admins and agency agents may read SLA configs.")


def sla_config_require_admin(user: User | None) -> None:
    """Only admins create or change SLA configs (``None``, the system, may too)."""
    require_admin(user, "Only admins manage SLA configs.")


def sla_config_list(*, user: User | None) -> QuerySet[SLAConfig]:
    _require_staff(user)
    return SLAConfig.objects.select_related("calendar").order_by("name", "id")


def sla_config_get(*, user: User | None, config_id: Any, for_update: bool = False) -> SLAConfig:
    _require_staff(user)
    queryset = SLAConfig.objects.select_related("calendar")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    try:
        pk = int(str(config_id))
        if not 0 < pk < 2**63:  # beyond a bigint the database would refuse the query
            raise ValueError(pk)
        return queryset.get(pk=pk)
    except (ValueError, TypeError, SLAConfig.DoesNotExist):
        raise NotFound("SLA config not found.") from None


# --- Writes --------------------------------------------------------------------------------------------


def _validation_details(exc: ValidationError) -> dict[str, list[str]]:
    if not hasattr(exc, "error_dict"):
        return {"non_field_errors": [str(message) for message in exc.messages]}
    return {
        ("non_field_errors" if field == "__all__" else field): [str(message) for message in messages]
        for field, messages in exc.message_dict.items()
    }


def _active_clash(config: SLAConfig) -> SLAConfig | None:
    """The other active config covering the same service area and task type as ``config``, if any."""
    if not config.active:
        return None
    clashes = SLAConfig.objects.filter(
        active=True, service_area=config.service_area, task_type=config.task_type
    ).exclude(pk=config.pk)
    return clashes.first()


def _tie(clash: SLAConfig | None) -> SLAConfigConflict:
    if clash is None:  # lost a race: the other config committed between the check and the insert
        return SLAConfigConflict(
            "Another active SLA config has the same service area and task type (or the same name)."
        )
    return SLAConfigConflict(
        f"The active config {clash.name!r} already covers service area {clash.service_area or '(any)'!r} "
        f"and task type {clash.task_type or '(any)'!r}.",
        details={"conflicting_config": clash.pk},
    )


def _config_save(config: SLAConfig) -> SLAConfig:
    try:
        config.full_clean()
    except ValidationError as exc:
        details = _validation_details(exc)
        # The model's clean() reports a tie as its only (non-field) error once the fields are valid.
        if set(details) == {"non_field_errors"} and (clash := _active_clash(config)) is not None:
            raise _tie(clash) from None
        raise ValidationFailed(details=details) from None
    try:
        # A savepoint: losing a race on the unique constraint leaves the caller's transaction usable.
        with transaction.atomic():
            config.save()
    except IntegrityError:
        raise _tie(_active_clash(config)) from None
    return config


@transaction.atomic
def sla_config_create(
    *,
    actor: User | None,
    name: str,
    target_minutes: int,
    service_area: str = "",
    task_type: str = "",
    warning_percentages: list[int] | None = None,
    pause_states: list[str] | None = None,
    calendar: BusinessCalendar | None = None,
    active: bool = True,
) -> SLAConfig:
    """Create a config. Raises ``ValidationFailed`` for bad input, ``SLAConfigConflict`` (409) for a tie
    with another active config."""
    sla_config_require_admin(actor)
    config = SLAConfig(
        name=name,
        service_area=service_area,
        task_type=task_type,
        target_minutes=target_minutes,
        warning_percentages=default_warning_percentages()
        if warning_percentages is None
        else warning_percentages,
        pause_states=default_pause_states() if pause_states is None else pause_states,
        calendar=calendar,
        active=active,
    )
    _config_save(config)
    audit_record(actor=actor, action="sla_config.created", obj=config, after=sla_config_snapshot(config))
    return config


@transaction.atomic
def sla_config_update(*, actor: User | None, config_id: Any, **changes: Any) -> SLAConfig:
    """Change a config's fields. Running records keep the snapshot they took at start; only tasks created
    from now on see the change."""
    sla_config_require_admin(actor)
    unknown = set(changes) - set(CONFIG_FIELDS)
    if unknown:
        raise ValidationFailed(details={field: ["Unknown field."] for field in sorted(unknown)})
    config = sla_config_get(user=actor, config_id=config_id, for_update=True)
    before = sla_config_snapshot(config)
    for field, value in changes.items():
        setattr(config, field, value)
    _config_save(config)
    audit_record(
        actor=actor,
        action="sla_config.updated",
        obj=config,
        before=before,
        after=sla_config_snapshot(config),
    )
    return config


@transaction.atomic
def business_calendar_holidays_fill(
    *, calendar: BusinessCalendar, years: list[int], actor: User | None = None
) -> int:
    """Copy the public holidays of the calendar's country (``holidays`` package) for ``years`` into its
    explicit ``holidays`` list, so they show (and can be edited) in the admin. Returns how many were added.

    Records keep working without this: a calendar with a ``country_code`` also skips that country's holidays
    on the fly. Filling makes the dates explicit, and lets an admin remove one that the office works.
    """
    if not calendar.country_code:
        raise ValidationFailed(details={"country_code": ["Set a country code first."]})
    try:
        import holidays

        table = holidays.country_holidays(
            calendar.country_code.upper(), subdiv=calendar.subdivision or None, years=years
        )
    except NotImplementedError:
        raise ValidationFailed(details={"country_code": ["Unknown to the holidays package."]}) from None
    existing = set(calendar.holidays or [])
    added = sorted({day.isoformat() for day in table} - existing)
    before = business_calendar_snapshot(calendar)
    calendar.holidays = sorted(existing | set(added))
    calendar.save(update_fields=["holidays", "updated_at"])
    if added:
        audit_record(
            actor=actor,
            action="business_calendar.updated",
            obj=calendar,
            before=before,
            after=business_calendar_snapshot(calendar),
        )
    return len(added)


def sla_admin_saved(*, obj: SLAConfig | BusinessCalendar, before: dict[str, Any] | None, actor: Any) -> None:
    """Record an admin form's save of an SLA config or calendar (``before``: ``None`` for a creation);
    called by the admin inside the save's transaction."""
    if isinstance(obj, SLAConfig):
        kind, after = "sla_config", sla_config_snapshot(obj)
    else:
        kind, after = "business_calendar", business_calendar_snapshot(obj)
    if before is None:
        audit_record(actor=actor, action=f"{kind}.created", obj=obj, after=after)
    elif after != before:
        audit_record(actor=actor, action=f"{kind}.updated", obj=obj, before=before, after=after)


def sla_admin_snapshot(obj: SLAConfig | BusinessCalendar) -> dict[str, Any]:
    """The stored state of an SLA config or calendar, before an admin form's change."""
    stored = type(obj).objects.get(pk=obj.pk)
    if isinstance(stored, SLAConfig):
        return sla_config_snapshot(stored)
    return business_calendar_snapshot(stored)


@transaction.atomic
def sla_admin_delete(*, obj: SLAConfig | BusinessCalendar, actor: Any) -> None:
    """Delete an SLA config or calendar from the admin, recorded."""
    kind = "sla_config" if isinstance(obj, SLAConfig) else "business_calendar"
    before, pk = sla_admin_snapshot(obj), obj.pk
    obj.delete()
    audit_record(
        actor=actor, action=f"{kind}.deleted", object_type=obj._meta.model_name, object_id=pk, before=before
    )
