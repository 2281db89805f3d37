from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from clinic.management.commands.backup import call_drill


class Command(BaseCommand):
    help = "Restore a backup folder into a scratch database and folder and verify row counts and file checksums."

    def add_arguments(self, parser) -> None:
        parser.add_argument("backup", type=Path)

    def handle(self, *args, backup: Path, **options) -> None:
        if not (backup / "manifest.json").is_file():
            raise CommandError(f"{backup} is not a backup folder (no manifest.json).")
        call_drill(self, backup)
