"""Default SLA configs: intake 60, assessment 240, review 120 minutes (24x7, warn at 75 %, pause when blocked)."""

from django.db import migrations

DEFAULTS = [
    ("Intake (default)", "intake", 60),
    ("Assessment (default)", "assessment", 240),
    ("Review (default)", "review", 120),
]


def create_defaults(apps, schema_editor):
    SLAConfig = apps.get_model("sla", "SLAConfig")
    for name, task_type, minutes in DEFAULTS:
        if SLAConfig.objects.filter(active=True, service_area="", task_type=task_type).exists():
            continue
        SLAConfig.objects.get_or_create(
            name=name,
            defaults={
                "task_type": task_type,
                "service_area": "",
                "target_minutes": minutes,
                "warning_percentages": [75],
                "pause_states": ["blocked"],
                "active": True,
            },
        )


def remove_defaults(apps, schema_editor):
    SLAConfig = apps.get_model("sla", "SLAConfig")
    SLAConfig.objects.filter(name__in=[name for name, _, _ in DEFAULTS], records__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("sla", "0001_sla_configs_calendars_records")]

    operations = [migrations.RunPython(create_defaults, remove_defaults)]
