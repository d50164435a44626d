"""Which config applies to a task: the most specific active one; ties are refused three ways."""

import importlib

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from polaris.errors import ValidationFailed
from sla.configs import SLAConfigConflict, sla_config_match
from sla.models import BusinessCalendar, SLAConfig, SLARecord


def test_default_configs_arrive_by_data_migration(db):
    # Run the migration's function (a transactional test elsewhere may have flushed its rows); twice, to
    # show it is idempotent.
    from django.apps import apps

    migration = importlib.import_module("sla.migrations.0002_default_sla_configs")
    migration.create_defaults(apps, None)
    migration.create_defaults(apps, None)
    defaults = {c.task_type: c.target_minutes for c in SLAConfig.objects.filter(active=True, service_area="")}
    assert defaults == {"intake": 60, "assessment": 240, "review": 120}


def test_the_migrations_frozen_defaults_match_sla_defaults(db):
    """The data migration keeps its own copy (migrations must not follow later code); it must still say what
    ``sla.defaults`` says, warnings and pause states included."""
    from django.apps import apps

    from sla.defaults import DEFAULT_CONFIGS, DEFAULT_PAUSE_STATES, DEFAULT_WARNING_PERCENTAGES

    migration = importlib.import_module("sla.migrations.0002_default_sla_configs")
    assert tuple(migration.DEFAULTS) == DEFAULT_CONFIGS
    migration.create_defaults(apps, None)
    for name, task_type, minutes in DEFAULT_CONFIGS:
        config = SLAConfig.objects.get(name=name)
        assert (config.task_type, config.service_area, config.target_minutes) == (task_type, "", minutes)
        assert config.warning_percentages == list(DEFAULT_WARNING_PERCENTAGES)
        assert config.pause_states == list(DEFAULT_PAUSE_STATES)


def test_most_specific_active_config_wins(make_config, intake_config):
    anything = make_config(name="anything", target_minutes=1000)
    housing = make_config(name="housing", service_area="housing", target_minutes=500)
    housing_intake = make_config(name="housing intake", service_area="housing", task_type="intake")

    assert sla_config_match(task_type="intake", service_area="housing") == housing_intake
    assert sla_config_match(task_type="intake", service_area="legal") == intake_config  # type beats area
    assert sla_config_match(task_type="home-visit", service_area="housing") == housing
    assert sla_config_match(task_type="home-visit", service_area="legal") == anything


def test_inactive_configs_do_not_match(make_config):
    make_config(name="old", task_type="home-visit", active=False)
    assert sla_config_match(task_type="home-visit", service_area="") is None


def test_the_record_uses_the_matching_config(make_task, make_config):
    specific = make_config(
        name="housing intake", service_area="housing", task_type="intake", target_minutes=15
    )
    task = make_task(service_area="housing")
    assert SLARecord.objects.get(task=task).config == specific


def test_a_tie_is_refused_by_clean(intake_config):
    duplicate = SLAConfig(name="intake again", task_type="intake", target_minutes=30)
    with pytest.raises(ValidationError, match="already covers"):
        duplicate.full_clean()


def test_a_tie_is_refused_by_the_service(make_config, intake_config):
    with pytest.raises(SLAConfigConflict) as caught:
        make_config(name="intake again", task_type="intake")
    assert "already covers" in caught.value.message
    assert caught.value.details == {"conflicting_config": intake_config.pk}


def test_a_tie_is_refused_by_the_database(intake_config):
    with pytest.raises(IntegrityError), transaction.atomic():
        SLAConfig.objects.create(name="intake again", task_type="intake", target_minutes=30)


def test_an_inactive_duplicate_is_allowed(make_config, intake_config):
    make_config(name="intake draft", task_type="intake", active=False)
    assert SLAConfig.objects.filter(task_type="intake").count() == 2


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"warning_percentages": [0]}, "warning_percentages"),
        ({"warning_percentages": [50, 50]}, "warning_percentages"),
        ({"warning_percentages": [100]}, "warning_percentages"),
        ({"pause_states": ["completed"]}, "pause_states"),
        ({"target_minutes": 0}, "target_minutes"),
    ],
)
def test_bad_fields_are_refused(make_config, fields, field):
    with pytest.raises(ValidationFailed) as caught:
        make_config(task_type="home-visit", **fields)
    assert field in caught.value.details


def test_calendar_validation_reports_the_field(db):
    calendar = BusinessCalendar(name="bad", time_zone="Nowhere/Special")
    with pytest.raises(ValidationError) as caught:
        calendar.full_clean()
    assert "time_zone" in caught.value.message_dict
