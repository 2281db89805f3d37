from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from clinic.backups import backup_create, restore_drill


class Command(BaseCommand):
    help = "Back up the database and media into a folder with a manifest; --verify runs the restore drill on it."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--to", type=Path, default=None, help="where to write (default: var/backups)"
        )
        parser.add_argument(
            "--verify", action="store_true", help="restore it into a scratch database and compare"
        )

    def handle(self, *args, to: Path | None, verify: bool, **options) -> None:
        destination = to or settings.VAR_DIR / "backups"
        try:
            folder = backup_create(destination=destination)
        except (OSError, RuntimeError) as exc:
            raise CommandError(f"Backup failed: {exc}") from exc
        self.stdout.write(f"Backup written to {folder}")
        if verify:
            call_drill(self, folder)


def call_drill(command: BaseCommand, folder: Path) -> None:
    result = restore_drill(backup=folder)
    command.stdout.write(
        f"Restore drill: {result.tables_checked} tables, {result.rows_expected} rows, {result.files_checked} files checked"
    )
    if not result.ok:
        raise CommandError("Restore drill FAILED:\n  " + "\n  ".join(result.problems))
    command.stdout.write(
        command.style.SUCCESS("Restore drill passed: row counts and file checksums match.")
    )
