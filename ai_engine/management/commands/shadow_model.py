from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ai_engine.management.commands._packages import named_package
from ai_engine.models import PackageState
from ai_engine.services import package_set_state
from core.audit import audit_source


class Command(BaseCommand):
    help = (
        "Run a registered package in shadow mode: shadow_model NAME VERSION [--off]. It analyses "
        "every new photo beside the active packages; its findings are stored, never shown, and the "
        "statistics page compares them with the doctors' signed reviews."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("version")
        parser.add_argument("--off", action="store_true", help="stop the shadow runs (inactive)")

    def handle(self, *args, name: str, version: str, off: bool, **options) -> None:
        package = named_package(name, version)
        if off and not package.is_shadow:
            raise CommandError(f"{package} is {package.state}, not in shadow mode.")
        state = PackageState.INACTIVE if off else PackageState.SHADOW
        with audit_source("command"):
            try:
                package = package_set_state(package=package, state=state)
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(f"{package} is now {package.state}.")
