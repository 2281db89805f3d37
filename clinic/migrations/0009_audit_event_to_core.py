"""The audit log's model now belongs to core (core 0001): clinic lets go of it, state only.

Its table, rows and PostgreSQL trigger stay as they are (db_table `clinic_auditevent`). Its
content type is renamed from clinic.auditevent to core.auditevent, so the permissions
(`view_auditevent`, ...) keep their rows and IDs, and every group, user and admin-log entry that
points at them still does. Were a core.auditevent content type already there (post_migrate run
between core 0001 and this migration), the grants move over to its permissions and the old type
goes. Then the role groups that ROLE_PERMISSIONS gives a core permission get it (added, never
taken away): a new database, whose role groups were made while the model was still clinic's,
ends up as it did before.
"""

from django.conf import settings
from django.db import migrations

from core.roles import ROLE_PERMISSIONS

MODEL = "auditevent"


def move_content_type(apps, old_label: str, new_label: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    LogEntry = apps.get_model("admin", "LogEntry")
    GroupPermission = apps.get_model("auth", "Group").permissions.through
    UserPermission = apps.get_model(settings.AUTH_USER_MODEL).user_permissions.through

    old = ContentType.objects.filter(app_label=old_label, model=MODEL).first()
    if old is None:
        return
    new = ContentType.objects.filter(app_label=new_label, model=MODEL).first()
    if new is None:
        old.app_label = new_label
        old.save(update_fields=["app_label"])
        return
    for permission in Permission.objects.filter(content_type=old):
        target, _created = Permission.objects.get_or_create(
            content_type=new, codename=permission.codename, defaults={"name": permission.name}
        )
        for group_id in GroupPermission.objects.filter(permission=permission).values_list(
            "group_id", flat=True
        ):
            GroupPermission.objects.get_or_create(group_id=group_id, permission=target)
        for user_id in UserPermission.objects.filter(permission=permission).values_list(
            "user_id", flat=True
        ):
            UserPermission.objects.get_or_create(user_id=user_id, permission=target)
    LogEntry.objects.filter(content_type=old).update(content_type=new)
    old.delete()


def grant_core_role_permissions(apps) -> None:
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, entries in ROLE_PERMISSIONS.items():
        codenames = [entry.split(".", 1)[1] for entry in entries if entry.startswith("core.")]
        group = Group.objects.filter(name=str(role)).first()
        if group is None or not codenames:
            continue
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="core", codename__in=codenames)
        )


def forwards(apps, schema_editor) -> None:
    move_content_type(apps, "clinic", "core")
    grant_core_role_permissions(apps)


def backwards(apps, schema_editor) -> None:
    move_content_type(apps, "core", "clinic")


class Migration(migrations.Migration):
    dependencies = [
        ("clinic", "0008_audit_view_original"),
        ("core", "0001_audit_event"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditEvent")],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
