"""Export the clinic's signed reviews as a training set (see ai_engine.training_export)."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ai_engine.training_export import training_set_export
from core.audit import audit_source


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--since {text!r}: expected a date like 2026-01-31") from None


class Command(BaseCommand):
    help = (
        "Export every gradable photo of a signed review (an amended review: its latest signed "
        "version) into a new folder: sanitised photos under hashed names, labels.csv for "
        "train_model (label: normal/cataract/glaucoma, dr_grade, dme), manifest.json with "
        "counts. No names, phone numbers, ID numbers or patient IDs; patients are keyed by a "
        "salted hash (AI_TRAINING_KEY_SALT). Example: manage.py export_training_set --since "
        "2026-01-01 --out var/exports/2026-12"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since",
            type=str,
            default=None,
            help="only reviews whose latest signed version was signed on or after this date "
            "(YYYY-MM-DD); default: all",
        )
        parser.add_argument("--out", required=True, help="a new (or empty) folder to write")
        parser.add_argument(
            "--actor",
            default=None,
            help="username recorded in the audit log as the one who asked for the export",
        )

    def handle(self, *args, out: str, since: str | None, actor: str | None, **options) -> None:
        user = None
        if actor:
            user = get_user_model().objects.filter(username=actor).first()
            if user is None:
                raise CommandError(f"--actor {actor}: no such user")
        with audit_source("command"):
            try:
                export = training_set_export(
                    out=out, actor=user, since=_date(since) if since else None
                )
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
        manifest = export.manifest
        skipped = sum(manifest["skipped_photos"].values())
        self.stdout.write(
            self.style.SUCCESS(
                f"Exported {manifest['photos']} photos of {manifest['patients']} patients "
                f"({manifest['screenings']} signed screenings, {skipped} photos left out) to "
                f"{export.folder}; see manifest.json"
            )
        )
