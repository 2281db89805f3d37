"""Train a timm model on a fundus dataset and write a model package (see ai_engine.training)."""

from __future__ import annotations

import argparse
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ai_engine.training.cli import (
    comma_list,
    float_triple,
    json_object,
    key_value,
    reproducing_command,
)


class Command(BaseCommand):
    # Offline tooling: no need for URL/template checks (and no failure when they are broken).
    requires_system_checks: list[str] = []
    help = (
        "Train a timm model on a CSV (our labels.csv layout, ODIR-5K full_df.csv, or file,label) "
        "or a folder-per-class dataset, with a patient-level split, and write a model package "
        "whose card carries the held-out metrics. Example: manage.py train_model --data "
        "../shared/data/fundus/labels.csv --where dataset=odir --task multiclass --labels "
        "normal,cataract,glaucoma --arch resnet18 --out var/models/my-model"
    )

    def add_arguments(self, parser) -> None:
        data = parser.add_argument_group("data")
        data.add_argument(
            "--data", required=True, help="a CSV file or a folder with one sub-folder per class"
        )
        data.add_argument(
            "--images",
            default=None,
            help="folder the CSV's image paths are relative to (default: the CSV's folder)",
        )
        data.add_argument(
            "--task", choices=["multilabel", "multiclass", "binary"], default="multiclass"
        )
        data.add_argument(
            "--labels",
            default=None,
            help="outputs, in order: names as in the data, optionally name=CODE (e.g. normal,cataract,glaucoma or 2=dr2)",
        )
        data.add_argument(
            "--label-column", default="label", help="CSV column holding the label (default: label)"
        )
        data.add_argument(
            "--positive",
            type=comma_list,
            default=None,
            help="binary: label values counted as positive, e.g. 2,3,4",
        )
        data.add_argument(
            "--where",
            type=key_value,
            action="append",
            default=[],
            help="keep CSV rows with COLUMN=VALUE (repeatable)",
        )
        data.add_argument("--val-fraction", type=float, default=0.2)
        data.add_argument(
            "--test-fraction",
            type=float,
            default=0.0,
            help="held-out test patients; 0 reports validation figures",
        )
        model = parser.add_argument_group("model")
        model.add_argument("--arch", default="resnet18", help="any timm architecture name")
        model.add_argument(
            "--arch-kwargs",
            type=json_object,
            default={},
            help="JSON keyword arguments for timm.create_model",
        )
        model.add_argument("--input-size", type=int, default=224)
        model.add_argument(
            "--preprocessing",
            type=comma_list,
            default=["fundus_crop", "pad_square", "resize", "normalize"],
        )
        model.add_argument(
            "--init",
            default=None,
            help="local .pth/.safetensors weights to start from (nothing is downloaded); a "
            "safetensors file's metadata (arch, timm_kwargs, mean, std, source) is applied",
        )
        model.add_argument(
            "--bn-init",
            choices=["recalibrate", "freeze", "keep"],
            default="recalibrate",
            help="with --init: recalibrate BatchNorm on training photos before the first step "
            "(eval function unchanged; needed for folded BN), keep it frozen in eval mode, or "
            "keep it as loaded",
        )
        model.add_argument(
            "--mean",
            type=float_triple,
            default=None,
            help="input mean (default: --init's or timm's)",
        )
        model.add_argument(
            "--std", type=float_triple, default=None, help="input std (default: --init's or timm's)"
        )
        model.add_argument(
            "--cam-method", choices=["gradcam", "gradcam++", "layercam"], default=None
        )
        model.add_argument(
            "--cam-layers",
            type=comma_list,
            default=None,
            help="CAM target layers (default: found for the architecture)",
        )
        recipe = parser.add_argument_group("recipe")
        recipe.add_argument(
            "--epochs", type=int, default=30, help="epochs in all, phase 1 included"
        )
        recipe.add_argument(
            "--phase1-epochs",
            type=int,
            default=3,
            help="epochs with the backbone frozen (0 from scratch)",
        )
        recipe.add_argument(
            "--lr1", type=float, default=1e-3, help="phase 1 (head only) learning rate"
        )
        recipe.add_argument(
            "--lr2", type=float, default=1e-5, help="phase 2 (whole network) learning rate"
        )
        recipe.add_argument("--weight-decay", type=float, default=0.05)
        recipe.add_argument("--warmup-epochs", type=float, default=1.0)
        recipe.add_argument("--batch-size", type=int, default=32)
        recipe.add_argument("--loss", choices=["focal", "bce", "ce"], default="focal")
        recipe.add_argument("--focal-gamma", type=float, default=2.0)
        recipe.add_argument("--label-smoothing", type=float, default=0.0)
        recipe.add_argument(
            "--oversample",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="median-frequency oversampling (else class-weighted loss)",
        )
        recipe.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True)
        recipe.add_argument(
            "--photometric",
            type=float,
            default=1.0,
            help="scale of the brightness/contrast/gamma jitter (0: flips, rotation, scale only)",
        )
        recipe.add_argument(
            "--rotate", type=float, default=180.0, help="rotation ± degrees (180: any angle)"
        )
        recipe.add_argument("--mixup", type=float, default=0.0, help="mixup Beta α (0: off)")
        recipe.add_argument("--cutmix", type=float, default=0.0, help="CutMix Beta α (0: off)")
        recipe.add_argument(
            "--budget-minutes",
            type=float,
            default=None,
            help="wall-clock budget for the whole run: after epoch 1 the schedule is fitted to "
            "it (--epochs is the upper bound) and the run always ends with a scored package",
        )
        recipe.add_argument(
            "--tune-offsets",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="multiclass: tune per-class logit offsets on validation for macro-F1 (folded into the bias)",
        )
        recipe.add_argument(
            "--ema", type=float, default=0.0, help="EMA decay of the weights (e.g. 0.99); 0 = off"
        )
        recipe.add_argument(
            "--patience",
            type=int,
            default=8,
            help="early stopping: epochs without a better validation macro-F1",
        )
        recipe.add_argument("--seed", type=int, default=0)
        run = parser.add_argument_group("run")
        run.add_argument("--out", required=True, help="package folder to write")
        run.add_argument("--name", default="", help="card name (default: the --out folder's name)")
        run.add_argument("--model-version", default="0.1.0", help="card version")
        run.add_argument("--device", default="auto", help="auto, cpu or cuda")
        run.add_argument("--threads", type=int, default=None, help="torch CPU threads")
        run.add_argument(
            "--fp32", action="store_true", help="save float32 weights (default float16)"
        )
        run.add_argument(
            "--intended-use",
            default="Demonstration — not for diagnosis.",
            help="the card's intended-use line",
        )
        run.add_argument(
            "--no-demonstration",
            action="store_true",
            help="do not mark the card as a demonstration model",
        )
        run.add_argument(
            "--cache-dir", default=str(settings.BASE_DIR / "var" / "cache" / "training")
        )
        run.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")
        run.add_argument("--keep-checkpoint", action="store_true")
        run.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options) -> None:
        from ai_engine.inference.card import CardError
        from ai_engine.inference.package import PackageError
        from ai_engine.training.data import DatasetError
        from ai_engine.training.labels import LabelError
        from ai_engine.training.nets import NetError
        from ai_engine.training.trainer import TrainConfig, Trainer, TrainingError

        command = reproducing_command(
            self.create_parser("manage.py", "train_model"),
            options,
            "python manage.py train_model",
            skip={
                "resume",
                "device",
                "threads",
                "cache_dir",
                "no_progress",
                "keep_checkpoint",
                "verbosity",
                "settings",
                "pythonpath",
                "traceback",
                "no_color",
                "force_color",
                "skip_checks",
            },
        )
        config = TrainConfig(
            data=options["data"],
            out=options["out"],
            task=options["task"],
            labels=options["labels"],
            images=options["images"],
            label_column=options["label_column"],
            positive=options["positive"],
            where=dict(options["where"]),
            arch=options["arch"],
            arch_kwargs=options["arch_kwargs"],
            input_size=options["input_size"],
            preprocessing=options["preprocessing"],
            init=options["init"],
            bn_init=options["bn_init"],
            mean=options["mean"],
            std=options["std"],
            rotate=options["rotate"],
            mixup=options["mixup"],
            cutmix=options["cutmix"],
            budget_minutes=options["budget_minutes"],
            intended_use=options["intended_use"],
            epochs=options["epochs"],
            phase1_epochs=options["phase1_epochs"],
            lr1=options["lr1"],
            lr2=options["lr2"],
            weight_decay=options["weight_decay"],
            warmup_epochs=options["warmup_epochs"],
            batch_size=options["batch_size"],
            loss=options["loss"],
            focal_gamma=options["focal_gamma"],
            label_smoothing=options["label_smoothing"],
            oversample=options["oversample"],
            augment=options["augment"],
            photometric=options["photometric"],
            ema=options["ema"],
            tune_offsets=options["tune_offsets"],
            val_fraction=options["val_fraction"],
            test_fraction=options["test_fraction"],
            patience=options["patience"],
            seed=options["seed"],
            device=options["device"],
            threads=options["threads"],
            name=options["name"],
            version=options["model_version"],
            cam_method=options["cam_method"],
            cam_layers=options["cam_layers"],
            fp16=not options["fp32"],
            demonstration=not options["no_demonstration"],
            command=command,
            cache_dir=options["cache_dir"],
            resume=options["resume"],
            keep_checkpoint=options["keep_checkpoint"],
            progress=not options["no_progress"],
        )
        if Path(config.out).joinpath("model.json").exists() and not config.resume:
            self.stdout.write(f"note: overwriting the package in {config.out}")
        try:
            result = Trainer(config, log=self.stdout.write).run()
        except (DatasetError, LabelError, NetError, TrainingError, CardError, PackageError) as exc:
            raise CommandError(str(exc)) from exc
        metrics = result.metrics
        self.stdout.write(
            self.style.SUCCESS(
                f"Trained in {result.seconds / 60:.1f} min: {result.package} — held-out "
                f"({metrics['split']}, {metrics['n_images']} images) macro-F1 {metrics['macro_f1']:.3f}"
            )
        )
