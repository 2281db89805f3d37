from django.db import migrations

from core.roles import sync_role_groups


class Migration(migrations.Migration):
    """Create the administrator, doctor, technician and patient groups with their permissions."""

    dependencies = [
        ("clinic", "0001_audit_event"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("patients", "0001_initial"),
        ("screening", "0001_initial"),
    ]

    operations = [migrations.RunPython(sync_role_groups, migrations.RunPython.noop)]
