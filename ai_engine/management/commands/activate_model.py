from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ai_engine.models import ModelPackage
from ai_engine.services import package_set_active
from core.audit import audit_source


class Command(BaseCommand):
    help = "Enable or disable a registered model package: activate_model NAME VERSION [--off]. Without arguments, lists packages."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", nargs="?")
        parser.add_argument("version", nargs="?")
        parser.add_argument("--off", action="store_true", help="deactivate instead")

    def handle(self, *args, name: str | None, version: str | None, off: bool, **options) -> None:
        if not name:
            for package in ModelPackage.objects.order_by("name", "version"):
                flag = f"{package.state:<8}"
                demo = " (demonstration)" if package.demonstration else ""
                self.stdout.write(f"{flag} {package.name} {package.version}{demo}  {package.path}")
            return
        packages = ModelPackage.objects.filter(name=name)
        if version:
            packages = packages.filter(version=version)
        if packages.count() != 1:
            known = (
                ", ".join(f"{p.name} {p.version}" for p in ModelPackage.objects.order_by("name"))
                or "none"
            )
            raise CommandError(
                f"Name one registered package (name and version). Registered: {known}."
            )
        with audit_source("command"):
            try:
                package = package_set_active(package=packages.get(), active=not off)
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(
            f"{package.name} {package.version} is now {'active' if package.is_active else 'inactive'}."
        )
