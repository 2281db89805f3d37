from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from ai_engine.management.commands._packages import command_actor
from ai_engine.models import ModelPackage
from ai_engine.services import package_rollback
from core.audit import audit_source


class Command(BaseCommand):
    help = (
        "Undo the latest promotion (of NAME, if given): rollback_model [NAME] [--reason TEXT]. "
        "The packages of that name get back the states they had before it; recorded and audited."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", nargs="?", default="")
        parser.add_argument("--by", default="", help="the user making the change (audited)")
        parser.add_argument("--reason", default="")

    def handle(self, *args, name: str, reason: str, by: str, **options) -> None:
        actor, actor_name = command_actor(by)
        with audit_source("command"):
            try:
                record = package_rollback(
                    name=name, reason=reason, actor=actor, actor_name=actor_name
                )
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
            except PermissionDenied as exc:
                raise CommandError(f"{actor_name}: {exc}") from exc
        active = ModelPackage.objects.filter(pk__in=record.new_active).order_by("name", "version")
        self.stdout.write(
            f"Rolled back; active now: {', '.join(str(p) for p in active) or 'none'} "
            f"(record {record.pk})."
        )
