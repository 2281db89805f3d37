"""Choose a DR package's referable operating point on its own validation patients and rewrite
its card (thresholds, figures and evidence lines); the weights stay as they are."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ai_engine.training.cli import comma_list, key_value


class Command(BaseCommand):
    requires_system_checks: list[str] = []
    help = (
        "For a DR grading package: the referable threshold on P(grade >= referable_from) is set "
        "to the highest one whose sensitivity on the package's validation patients (split.json) "
        "reaches --sensitivity; the test patients are then scored at it and model.json's "
        "dr_grading, validation.dr_grading and evidence lines are rewritten (weights untouched). "
        "The datasets default to those in the package's training.json; run it from the folder "
        "train_model ran in, or pass --data."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("package", type=Path, help="package folder")
        parser.add_argument(
            "--data",
            action="append",
            default=[],
            help="a dataset the package was trained on (repeatable; default: training.json's)",
        )
        parser.add_argument(
            "--label-column",
            type=comma_list,
            default=None,
            help="with --data: one label column for all, or one per dataset",
        )
        parser.add_argument("--where", type=key_value, action="append", default=[])
        parser.add_argument(
            "--sensitivity",
            type=float,
            default=0.9,
            help="validation sensitivity the referable threshold must reach (default 0.9)",
        )
        parser.add_argument("--bootstrap", type=int, default=1000)
        parser.add_argument(
            "--dry-run", action="store_true", help="print the new operating point, write nothing"
        )
        parser.add_argument("--device", default="auto")
        parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
        parser.add_argument(
            "--cache-dir", default=str(settings.BASE_DIR / "var" / "cache" / "training")
        )

    def handle(self, *args, **options) -> None:
        if options["threads"]:
            import torch

            torch.set_num_threads(options["threads"])
        from ai_engine.inference.card import CardError
        from ai_engine.inference.package import ModelPackage, PackageError
        from ai_engine.training.data import DatasetError, label_columns_for
        from ai_engine.training.evaluate import (
            DatasetSpec,
            recompute_operating_point,
            training_specs,
        )

        try:
            package = ModelPackage.load(options["package"], options["device"])
            if options["data"]:
                columns = label_columns_for(
                    options["label_column"] or ["label"], len(options["data"])
                )
                specs = [
                    DatasetSpec(data=data, label_column=column, where=dict(options["where"]))
                    for data, column in zip(options["data"], columns, strict=True)
                ]
            else:
                specs = training_specs(package, "validation")
            result = recompute_operating_point(
                package,
                specs,
                target=options["sensitivity"],
                cache_dir=options["cache_dir"],
                rounds=options["bootstrap"],
                write=not options["dry_run"],
            )
        except (CardError, PackageError, DatasetError) as exc:
            raise CommandError(str(exc)) from exc
        grading = result.card["dr_grading"]
        point = grading["operating_point"]
        figures = result.card["validation"]["dr_grading"]
        ref, ci = figures["referable"], figures["ci95"].get("referable", {})

        def span(key: str) -> str:
            return f" ({ci[key][0]:.3f}–{ci[key][1]:.3f})" if ci.get(key) else ""

        self.stdout.write(
            f"validation: {point['n_images']} eyes ({point['n_positive']} referable); threshold "
            f"{result.previous_threshold} → {grading['referable_threshold']} on P(grade >= "
            f"{grading['referable_from']}): sensitivity {point['sensitivity']:.3f}, specificity "
            f"{point['specificity']:.3f} (target {point['sensitivity_target']:g})"
        )
        self.stdout.write(
            f"test: {figures['n_images']} eyes of {figures['n_patients']} patients "
            f"({ref['n_positive']} referable): AUC "
            + ("—" if ref["auc"] is None else f"{ref['auc']:.3f}")
            + f"{span('auc')}, sensitivity {ref['sensitivity']:.3f}{span('sensitivity')}, "
            f"specificity {ref['specificity']:.3f}{span('specificity')}, QWK "
            f"{figures['qwk']:.3f}"
        )
        self.stdout.write(f"evidence: {result.card['evidence_en']}")
        if options["dry_run"]:
            self.stdout.write("dry run: model.json not written")
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Wrote {options['package'] / 'model.json'} (weights unchanged, sha256 checked)."
                )
            )
