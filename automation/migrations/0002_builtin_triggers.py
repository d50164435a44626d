"""Built-in triggers: an intake completed starts an assessment; an activated plan raises an alert.

Both are ordinary rows, editable (or disableable) in the admin. They are keyed by name: installing
never duplicates them, and reversing the migration deletes them by name.
"""

from django.db import migrations

BUILTIN_TRIGGERS = [
    {
        "name": "Intake completed → assessment",
        "description": "When an intake task is completed, create a high-priority assessment task for the same "
        "client, agency, plan and service area.",
        "event_type": "TaskStateChanged",
        "predicate": 'task_type == "intake" and new_state == "completed"',
        "actions": [
            {
                "type": "create_task",
                "params": {"task_type": "assessment", "title": "Assessment: $title", "priority": "high"},
            }
        ],
        "position": 10,
    },
    {
        "name": "Action plan activated → alert",
        "description": "Tell the agency (and admins) when an action plan goes live.",
        "event_type": "ActionPlanActivated",
        "predicate": "",
        "actions": [
            {"type": "emit_alert", "params": {"severity": "info", "message": "Action plan activated: $title"}}
        ],
        "position": 20,
    },
]


def install(apps, schema_editor):
    Trigger = apps.get_model("automation", "Trigger")
    for fields in BUILTIN_TRIGGERS:
        defaults = {key: value for key, value in fields.items() if key != "name"}
        Trigger.objects.get_or_create(name=fields["name"], defaults=defaults)


def uninstall(apps, schema_editor):
    Trigger = apps.get_model("automation", "Trigger")
    Trigger.objects.filter(name__in=[fields["name"] for fields in BUILTIN_TRIGGERS]).delete()


class Migration(migrations.Migration):
    dependencies = [("automation", "0001_triggers_alerts_webhooks")]

    operations = [migrations.RunPython(install, uninstall)]
