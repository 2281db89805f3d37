from django.db import migrations

SCHEDULE_NAME = "ai_engine.reconcile_analyses"


def create_schedule(apps, schema_editor) -> None:
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={
            "func": "ai_engine.tasks.reconcile_analyses",
            "schedule_type": "I",  # Schedule.MINUTES
            "minutes": 2,
            "repeats": -1,
        },
    )


def delete_schedule(apps, schema_editor) -> None:
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE_NAME).delete()


class Migration(migrations.Migration):
    """Every 2 minutes the default cluster bounds stuck or lost AI work (see services.analyses_reconcile)."""

    dependencies = [
        ("ai_engine", "0002_role_permissions"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
