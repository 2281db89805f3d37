"""Create the first administrator (not a superuser) and the demo doctor and technician, once, on a
development setup."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.roles import Role, role_assign

FIRST_USERS = (
    ("admin", Role.ADMINISTRATOR, "管理员 Admin"),
    ("doctor", Role.DOCTOR, "李医生 Dr. Li"),
    ("tech", Role.TECHNICIAN, "王技师 Tech Wang"),
)


def credentials_file() -> Path:
    return settings.VAR_DIR / "first-run-credentials.txt"


class Command(BaseCommand):
    help = (
        "Create the first administrator and demo doctor/technician accounts with random passwords, "
        "printed once and kept in var/first-run-credentials.txt (mode 600). Development only."
    )

    def handle(self, *args, **options) -> None:
        if settings.IS_PRODUCTION:
            raise CommandError(
                "bootstrap_users is for development set-ups only. In production create the first "
                "administrator with `manage.py createsuperuser`."
            )
        User = get_user_model()
        existing = set(
            User.objects.filter(username__in=[u for u, _r, _n in FIRST_USERS]).values_list(
                "username", flat=True
            )
        )
        created: list[tuple[str, str, str]] = []
        with transaction.atomic():
            for username, role, display_name in FIRST_USERS:
                if username in existing:
                    continue
                password = secrets.token_urlsafe(12)
                first_name = display_name
                user = User.objects.create_user(
                    username=username, password=password, first_name=first_name
                )
                # The administrator is not a superuser: a superuser holds every permission,
                # and roles are granted by superusers only (`manage.py createsuperuser`).
                role_assign(user=user, role=role)
                created.append((username, str(role), password))
        if not created:
            self.stdout.write(
                f"First users already exist; their first-run passwords are in {credentials_file()}."
            )
            return
        lines = [f"{role:<14} {username:<10} {password}" for username, role, password in created]
        path = credentials_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        self.stdout.write(
            self.style.SUCCESS(
                f"Created these accounts (shown once; also saved in {path}, mode 600):"
            )
        )
        for line in lines:
            self.stdout.write(f"  {line}")
        self.stdout.write("Change them at /admin/password_change/ after the first login.")
        self.stdout.write(
            "To grant roles (e.g. a new doctor), create a superuser: "
            "`python manage.py createsuperuser` (break-glass; see README, Roles)."
        )
