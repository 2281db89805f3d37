"""Run a package over a folder of unlabelled photos (e.g. full-resolution camera photos) through
the real inference preprocessing and print what it answers: a plausibility check."""

from __future__ import annotations

import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    requires_system_checks: list[str] = []
    help = (
        "Grade every photo in FOLDER with PACKAGE (decode, fundus detection and the card's "
        "preprocessing as in the product) and print one line per photo and the distribution: "
        "for a DR grading card the grades, the spread of P(referable) and the referable count at "
        "the card's operating point. Example: manage.py grade_folder /work/runs/ophai-dr "
        "../shared/data/highres --csv var/highres-grades.csv"
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("package", type=Path)
        parser.add_argument("folder", type=Path)
        parser.add_argument("--csv", type=Path, default=None, help="write one row per photo")
        parser.add_argument("--device", default="auto")
        parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")

    def handle(self, *args, **options) -> None:
        if options["threads"]:
            import torch

            torch.set_num_threads(options["threads"])
        from ai_engine.inference.card import CardError
        from ai_engine.inference.package import ModelPackage, PackageError
        from ai_engine.training.data import DatasetError
        from ai_engine.training.evaluate import grade_folder
        from ai_engine.training.metrics import probability_from, referable_decisions

        try:
            package = ModelPackage.load(options["package"], options["device"])
            result = grade_folder(package, options["folder"])
        except (CardError, PackageError, DatasetError) as exc:
            raise CommandError(str(exc)) from exc
        card = package.card
        codes = [label.code for label in card.labels]
        grading = card.dr_grading
        header = ["file"] + [f"p_{code}" for code in codes]
        rows = [
            [path.name] + [f"{p:.4f}" for p in probs]
            for path, probs in zip(result.files, result.probs, strict=True)
        ]
        if grading is not None:
            p_ref = probability_from(result.probs, grading["referable_from"])
            referable = referable_decisions(
                result.probs, grading["referable_from"], grading.get("referable_threshold")
            )
            header += ["grade", "p_referable", "referable"]
            for row, probs, p, decided in zip(rows, result.probs, p_ref, referable, strict=True):
                row += [codes[int(probs.argmax())], f"{p:.4f}", "yes" if decided else "no"]
        for row in rows:
            self.stdout.write("  ".join(row))
        for name, why in result.failed.items():
            self.stdout.write(f"{name}: not graded ({why})")
        s = result.summary
        self.stdout.write(f"{s['n_photos']} photos graded, {s['n_failed']} unreadable")
        if grading is not None:
            q = s["p_referable"]
            self.stdout.write(
                "grades: " + ", ".join(f"{code} {n}" for code, n in s["grades"].items())
            )
            self.stdout.write(
                f"P(referable): min {q['min']:.3f}, quartiles {q['q25']:.3f} / {q['median']:.3f} "
                f"/ {q['q75']:.3f}, max {q['max']:.3f} (sd {q['sd']:.3f}); referable "
                f"{s['referable']} of {s['n_photos']} at {s['rule']}"
            )
            if s["distinct_grades"] == 1:
                self.stdout.write(
                    self.style.WARNING("every photo got the same grade: not plausible")
                )
        else:
            for code in codes:
                q = s["p"][code]
                self.stdout.write(
                    f"{code}: positive {s['positive'][code]} of {s['n_photos']}; p min "
                    f"{q['min']:.3f}, median {q['median']:.3f}, max {q['max']:.3f} (sd {q['sd']:.3f})"
                )
        if options["csv"]:
            options["csv"].parent.mkdir(parents=True, exist_ok=True)
            with options["csv"].open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(header)
                writer.writerows(rows)
            self.stdout.write(f"Wrote {len(rows)} rows to {options['csv']}.")
