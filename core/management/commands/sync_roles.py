from django.apps import apps
from django.core.management.base import BaseCommand

from core.roles import ROLE_PERMISSIONS, sync_role_groups


class Command(BaseCommand):
    help = "Create the role groups (administrator, doctor, technician, patient) and set their permissions."

    def handle(self, *args, **options) -> None:
        sync_role_groups(apps)
        self.stdout.write(f"Role groups in sync: {', '.join(map(str, ROLE_PERMISSIONS))}")
