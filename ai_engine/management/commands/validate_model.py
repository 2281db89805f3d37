"""Check a model package end to end: card, weights, a real photo through the whole pipeline."""

from __future__ import annotations

import json as json_module
import math
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

DEFAULT_PHOTO = settings.BASE_DIR.parent / "shared" / "data" / "reference" / "retina_cc0.jpg"


class Command(BaseCommand):
    help = (
        "Validate a model package folder: read and check model.json, verify the weights' SHA-256, "
        "load the model, run a photo through quality gate, model and heatmaps, and print a report."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path, help="the package folder (holding model.json)")
        parser.add_argument(
            "--image", type=Path, default=None, help=f"a fundus photo (default: {DEFAULT_PHOTO})"
        )
        parser.add_argument("--eye", choices=["OD", "OS"], default=None)
        parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
        parser.add_argument("--json", action="store_true", help="print the full result as JSON")

    def handle(
        self,
        *args,
        path: Path,
        image: Path | None,
        eye: str | None,
        device: str,
        json: bool,
        **options,
    ) -> None:
        from ai_engine.inference.card import CardError
        from ai_engine.inference.package import ModelPackage, PackageError
        from ai_engine.inference.predict import analyse_images

        photo = image or DEFAULT_PHOTO
        if not photo.is_file():
            raise CommandError(
                f"No photo to test with at {photo}; pass --image PATH to a fundus photo."
            )
        try:
            package = ModelPackage.load(path, device)
        except (CardError, PackageError, OSError) as exc:
            raise CommandError(f"{path}: {exc}") from exc
        card = package.card
        result = analyse_images([photo], [package], device=package.device, eyes=[eye])[0]
        if result.error:
            raise CommandError(f"{photo}: {result.error}")
        problems = self._problems(result, quality_model=card.is_quality_model)
        out = self.stdout
        out.write(
            f"Package     {card.name} {card.version} ({card.task}, {card.architecture}, input {card.input_size}px)"
        )
        out.write(f"Weights     {card.weights.file} sha256 {package.weights_sha256} ✓")
        out.write(
            f"Labels      {', '.join(f'{label.code} ({label.en}, t={label.threshold})' for label in card.labels)}"
        )
        out.write(f"Evidence    {card.evidence or '(none given)'}")
        out.write(f"Intended    {card.intended_use or '(none given)'}")
        if card.demonstration:
            out.write(self.style.WARNING("Demonstration model — not for diagnosis"))
        if not card.validation:
            out.write(self.style.WARNING("The card carries no validation metrics."))
        quality = result.quality
        out.write(f"Photo       {photo} ({result.width}×{result.height})")
        out.write(
            f"Quality     score {quality.score:.2f}, {'gradable' if quality.gradable else 'UNGRADABLE'} {quality.reasons or ''}"
        )
        if quality.model is not None:
            verdict = quality.model
            out.write(
                f"Quality model P({verdict['reject_label']})={verdict['p_reject']:.3f} "
                f"t={verdict['threshold']:.3f}: {'REJECTED' if verdict['rejected'] else 'accepted'}"
            )
        for prediction in result.predictions:
            for finding in prediction.findings:
                mark = "+" if finding.positive else " "
                areas = ", ".join(area.en for area in finding.areas)
                out.write(
                    f"  {mark} {finding.code:<10} p={finding.probability:.3f} t={finding.threshold:.2f} {areas}"
                )
        out.write(
            "Timings     " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.timings.items())
        )
        if json:
            out.write(json_module.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        if problems:
            raise CommandError("; ".join(problems))
        out.write(self.style.SUCCESS(f"{card.name} {card.version} is valid."))

    @staticmethod
    def _problems(result, *, quality_model: bool = False) -> list[str]:
        problems = []
        if quality_model:  # a quality model gives a verdict, never findings
            heuristic_passed = result.quality and (result.quality.gradable or result.quality.model)
            if heuristic_passed and result.quality.model is None:
                problems.append("the quality model gave no verdict on a photo the heuristic passed")
            return problems
        for prediction in result.predictions:
            for finding in prediction.findings:
                if not (0.0 <= finding.probability <= 1.0) or math.isnan(finding.probability):
                    problems.append(
                        f"{finding.code}: probability {finding.probability} is not in [0, 1]"
                    )
        if result.quality and result.quality.gradable and not result.predictions:
            problems.append("the model produced no prediction for a gradable photo")
        return problems
