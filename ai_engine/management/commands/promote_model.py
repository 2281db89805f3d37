from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from ai_engine.learning import comparison_lines
from ai_engine.management.commands._packages import command_actor, named_package
from ai_engine.services import package_promote
from core.audit import audit_source


class Command(BaseCommand):
    help = (
        "Make NAME VERSION the active package of its name if, on the clinic's signed cases it "
        "never trained on, it is not worse than the active one by more than AI_PROMOTION_MARGIN "
        "on any condition and better on the main one: promote_model NAME VERSION --reason TEXT "
        "[--override --confirm]. Prints the comparison; records and audits the promotion."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("version")
        parser.add_argument("--by", default="", help="the user making the change (audited)")
        parser.add_argument("--reason", default="", help="why (stored with the promotion)")
        parser.add_argument(
            "--override",
            action="store_true",
            help="promote although the gate refuses (audited as an override; needs --confirm)",
        )
        parser.add_argument("--confirm", action="store_true", help="confirms --override")

    def handle(
        self,
        *args,
        name: str,
        version: str,
        reason: str,
        override: bool,
        confirm: bool,
        by: str,
        **options,
    ) -> None:
        if not reason.strip():
            raise CommandError("--reason is required: say why this model should become active.")
        if override and not confirm:
            raise CommandError("--override promotes a model the gate refused: add --confirm.")
        package = named_package(name, version)
        actor, actor_name = command_actor(by)
        with audit_source("command"):
            try:
                record, gate = package_promote(
                    package=package,
                    reason=reason,
                    override=override,
                    actor=actor,
                    actor_name=actor_name,
                )
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
            except PermissionDenied as exc:
                raise CommandError(f"{actor_name}: {exc}") from exc
        for line in comparison_lines(gate.to_dict()):
            self.stdout.write(line)
        if record is None:
            raise CommandError(
                f"{package} was not promoted; nothing changed. "
                "Use --override --confirm with a --reason to promote it anyway (audited)."
            )
        note = " (gate overridden)" if record.override else ""
        self.stdout.write(f"{package} is now active{note}; promotion record {record.pk}.")
