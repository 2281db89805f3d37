"""Wrap an external timm-compatible checkpoint into a model package with a draft card."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ai_engine.training.cli import comma_list, float_triple, json_object


class Command(BaseCommand):
    # Offline tooling: no need for URL/template checks (and no failure when they are broken).
    requires_system_checks: list[str] = []
    help = (
        "Wrap a timm-compatible .pth/.safetensors state_dict (module./model. prefixes are "
        "stripped; loaded with weights_only) into a package. Example, a RETFound fine-tune: "
        "manage.py import_model ckpt.pth --arch vit_large_patch16_224 --arch-kwargs "
        '\'{"global_pool": "avg"}\' --task multiclass --labels AMD,CSC,DR,normal=N,RP,RVO '
        "--out var/models/retfound. The card is marked demonstration until you add validation."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("checkpoint", type=Path)
        parser.add_argument("--arch", required=True, help="timm architecture name")
        parser.add_argument(
            "--labels", required=True, help="outputs in order, e.g. N,D,G,C,A,H,M,O"
        )
        parser.add_argument(
            "--task", choices=["multilabel", "multiclass", "binary"], default="multilabel"
        )
        parser.add_argument("--out", type=Path, required=True)
        parser.add_argument("--arch-kwargs", type=json_object, default={})
        parser.add_argument(
            "--input-size", type=int, default=None, help="default: the architecture's"
        )
        parser.add_argument(
            "--mean", type=float_triple, default=None, help="e.g. 0.485,0.456,0.406"
        )
        parser.add_argument("--std", type=float_triple, default=None)
        parser.add_argument(
            "--preprocessing",
            type=comma_list,
            default=["fundus_crop", "pad_square", "resize", "normalize"],
        )
        parser.add_argument("--name", default="")
        parser.add_argument("--model-version", default="0.1.0")
        parser.add_argument(
            "--cam-method", choices=["gradcam", "gradcam++", "layercam"], default=None
        )
        parser.add_argument("--cam-layers", type=comma_list, default=None)
        parser.add_argument(
            "--training-data", default="", help="describe the training data for the card"
        )
        parser.add_argument("--fp16", action="store_true", help="save float16 weights")

    def handle(self, *args, **options) -> None:
        from ai_engine.inference.card import CardError
        from ai_engine.training.importer import ImportConfig, ImportError_, import_checkpoint
        from ai_engine.training.labels import LabelError
        from ai_engine.training.nets import NetError

        config = ImportConfig(
            checkpoint=str(options["checkpoint"]),
            arch=options["arch"],
            labels=options["labels"],
            out=str(options["out"]),
            task=options["task"],
            arch_kwargs=options["arch_kwargs"],
            input_size=options["input_size"],
            mean=options["mean"],
            std=options["std"],
            preprocessing=options["preprocessing"],
            name=options["name"],
            version=options["model_version"],
            cam_method=options["cam_method"],
            cam_layers=options["cam_layers"],
            fp16=options["fp16"],
            training_data=options["training_data"],
        )
        try:
            card = import_checkpoint(config)
        except (ImportError_, LabelError, NetError, CardError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {options['out']} ({card.name} {card.version}, {card.architecture}, "
                f"{len(card.labels)} labels, CAM {card.cam.method} on {', '.join(card.cam.target_layers)})."
            )
        )
        self.stdout.write(
            "Next: fill in training_data in model.json, run evaluate_model for figures, then "
            f"validate_model {options['out']} and register_model {options['out']} (then shadow_model, promote_model)."
        )
