from django.db import migrations

from core.roles import sync_role_groups


class Migration(migrations.Migration):
    """Give the role groups the AI engine's permissions (see core.roles.ROLE_PERMISSIONS)."""

    dependencies = [("ai_engine", "0001_initial"), ("clinic", "0002_role_groups")]

    operations = [migrations.RunPython(sync_role_groups, migrations.RunPython.noop)]
