from django.db import migrations

CLUSTERS = ("default", "ai")


def create_schedules(apps, schema_editor) -> None:
    Schedule = apps.get_model("django_q", "Schedule")
    for cluster in CLUSTERS:
        Schedule.objects.update_or_create(
            name=f"clinic.heartbeat.{cluster}",
            defaults={
                "func": "clinic.tasks.heartbeat",
                "args": repr((cluster,)),
                "schedule_type": "I",  # Schedule.MINUTES
                "minutes": 1,
                "repeats": -1,
                # A named cluster runs only its own schedules; the default one runs unnamed ones.
                "cluster": None if cluster == "default" else cluster,
            },
        )


def delete_schedules(apps, schema_editor) -> None:
    apps.get_model("django_q", "Schedule").objects.filter(name__startswith="clinic.heartbeat.").delete()


class Migration(migrations.Migration):
    """Each task cluster writes a heartbeat every minute; /healthz reports stale ones."""

    dependencies = [
        ("clinic", "0005_worker_heartbeat"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_schedules, delete_schedules)]
