from django.db import migrations

from core.roles import sync_role_groups


class Migration(migrations.Migration):
    """Administrators no longer write or sign reviews; they read webhook deliveries and heartbeats."""

    dependencies = [
        ("clinic", "0006_heartbeat_schedules"),
        ("ai_engine", "0002_role_permissions"),
        ("reports", "0002_role_permissions"),
        ("patients", "0002_patient_account"),
    ]

    operations = [migrations.RunPython(sync_role_groups, migrations.RunPython.noop)]
