"""Make the sanitised copy of every photo stored before copies existed (run once after the
upgrade; safe to run again). Photos whose original is missing or unreadable are listed and
skipped; the command then exits with an error so that a script notices."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from screening.models import FundusImage
from screening.services import image_sanitize


class Command(BaseCommand):
    help = "Make sanitised copies (pixels re-encoded, no metadata) of photos that have none."

    def handle(self, *args, **options) -> None:
        made, problems = 0, []
        pending = FundusImage.objects.filter(sanitized_file="").order_by("pk")
        for image in pending.iterator(chunk_size=100):
            try:
                image_sanitize(image=image)
            except FileNotFoundError:
                problems.append(f"photo {image.pk}: the original {image.file.name} is missing")
            except ValidationError as exc:
                problems.append(f"photo {image.pk}: {' '.join(exc.messages)}")
            else:
                made += 1
        self.stdout.write(f"Sanitised copies made: {made}; skipped: {len(problems)}")
        if problems:
            raise CommandError("Some photos have no sanitised copy:\n  " + "\n  ".join(problems))
