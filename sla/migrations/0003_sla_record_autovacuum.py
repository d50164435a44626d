"""Vacuum SLA records promptly: every breach or stop moves a row out of the scan's partial indexes, and the
scan steps over the dead index entries until vacuum removes them. PostgreSQL's default (20 % of the table
dead) would wait for 200,000 dead rows at a million records; 1 % plus 1,000 keeps the scan O(due)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("sla", "0002_default_sla_configs")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE sla_slarecord SET (autovacuum_vacuum_scale_factor = 0.01, "
            "autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.02)",
            "ALTER TABLE sla_slarecord RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, "
            "autovacuum_analyze_scale_factor)",
        )
    ]
