from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ai_engine.management.commands._packages import command_actor, registered_packages
from ai_engine.models import ModelPackage
from ai_engine.services import package_set_active
from core.audit import audit_source


class Command(BaseCommand):
    help = (
        "Enable or disable a registered model package: activate_model NAME VERSION [--off]. "
        "While another diagnosis package is active, a diagnosis package is switched on only "
        "through promote_model or with --override --reason TEXT (recorded and audited as a "
        "gate override). Without arguments, lists packages."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", nargs="?")
        parser.add_argument("version", nargs="?")
        parser.add_argument("--off", action="store_true", help="deactivate instead")
        parser.add_argument(
            "--override",
            action="store_true",
            help="activate without the promotion gate (needs --reason; audited as an override)",
        )
        parser.add_argument("--reason", default="", help="why the gate is overridden")
        parser.add_argument("--by", default="", help="the user making the change (audited)")

    def handle(
        self,
        *args,
        name: str | None,
        version: str | None,
        off: bool,
        override: bool,
        reason: str,
        by: str,
        **options,
    ) -> None:
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
            raise CommandError(
                "Name one registered package (name and version). "
                f"Registered: {registered_packages()}."
            )
        if override and (off or not reason.strip()):
            raise CommandError("--override activates a package: give --reason TEXT, not --off.")
        actor, actor_name = command_actor(by)
        with audit_source("command"):
            try:
                package = package_set_active(
                    package=packages.get(),
                    active=not off,
                    actor=actor,
                    reason=reason if override else "",
                    actor_name=actor_name,
                )
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(
            f"{package.name} {package.version} is now {'active' if package.is_active else 'inactive'}."
        )
