"""Write a compact training cache: fundus crops at the training size as JPEG + a manifest."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ai_engine.training.cli import key_value


class Command(BaseCommand):
    # Offline tooling: no need for URL/template checks.
    requires_system_checks: list[str] = []
    help = (
        "Crop every photo of a dataset (a labels CSV or a folder with one sub-folder per class) "
        "to its fundus square at --size px and write JPEGs plus manifest.csv (the source's "
        "columns, file pointing at the crop) to --out; train_model --data OUT reads it. "
        "Example: manage.py build_training_cache ../shared/data/fundus/labels.csv "
        "--where dataset=odir --size 256 --out var/cache/odir-256"
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("dataset", help="a CSV file or a folder with one sub-folder per class")
        parser.add_argument("--size", type=int, default=256, help="side of the crops in pixels")
        parser.add_argument("--out", type=Path, required=True, help="folder to write")
        parser.add_argument(
            "--where",
            type=key_value,
            action="append",
            default=[],
            help="keep CSV rows with COLUMN=VALUE (repeatable)",
        )
        parser.add_argument("--images", default=None, help="folder the CSV's paths are relative to")
        parser.add_argument("--quality", type=int, default=92, help="JPEG quality (default 92)")

    def handle(self, *args, **options) -> None:
        from ai_engine.training.data import DatasetError
        from ai_engine.training.jpeg_cache import build_jpeg_cache

        if not 50 <= options["quality"] <= 100:
            raise CommandError("--quality must be between 50 and 100")
        try:
            summary = build_jpeg_cache(
                options["dataset"],
                options["out"],
                size=options["size"],
                where=dict(options["where"]),
                images=options["images"],
                quality=options["quality"],
            )
        except DatasetError as exc:
            raise CommandError(str(exc)) from exc
        for failure in summary.failed:
            self.stderr.write(f"left out {failure}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {summary.written} crops ({summary.bytes / 2**20:.1f} MiB) and "
                f"{summary.out / 'manifest.csv'}"
                + (f"; {len(summary.failed)} unreadable photos left out" if summary.failed else "")
            )
        )
