"""Train a timm model on a fundus dataset and write a model package (see ai_engine.training).

A thin wrapper: the options and the run live in :mod:`ai_engine.training.cli` and
:mod:`ai_engine.training.trainer`, which ``python -m ai_engine.training`` runs without Django.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ai_engine.training.cli import (
    NOT_IN_COMMAND,
    add_train_arguments,
    reproducing_command,
    train_config,
)


class Command(BaseCommand):
    # Offline tooling: no need for URL/template checks (and no failure when they are broken).
    requires_system_checks: list[str] = []
    help = (
        "Train a timm model on a CSV (our labels.csv layout, ODIR-5K full_df.csv, or file,label) "
        "or a folder-per-class dataset, with a patient-level split, and write a model package "
        "whose card carries the held-out metrics. Example: manage.py train_model --data "
        "../shared/data/fundus/labels.csv --where dataset=odir --task multiclass --labels "
        "normal,cataract,glaucoma --arch resnet18 --out var/models/my-model. Fine-tune a package on "
        "a clinic export mixed with public data: --init ophai-screening --data EXPORT/labels.csv "
        "--data ../shared/data/fundus/labels.csv --mix clinic=1,public=3"
    )

    def add_arguments(self, parser) -> None:
        add_train_arguments(parser, str(settings.BASE_DIR / "var" / "cache" / "training"))

    def handle(self, *args, **options) -> None:
        from ai_engine.training.run import TRAINING_ERRORS, run_training

        command = reproducing_command(
            self.create_parser("manage.py", "train_model"),
            options,
            "python manage.py train_model",
            skip=NOT_IN_COMMAND,
        )
        if options["init"]:
            options["init"] = registered_package_folder(options["init"])
        check_main_condition(options.get("main_condition") or "")
        config = train_config(options, command)
        if Path(config.out).joinpath("model.json").exists() and not config.resume:
            self.stdout.write(f"note: overwriting the package in {config.out}")
        try:
            summary = run_training(config, log=self.stdout.write)
        except TRAINING_ERRORS as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(summary))


def check_main_condition(code: str) -> None:
    """``--main-condition`` names a condition the promotion gate compares on."""
    from ai_engine.conditions import AGREEMENT_CATEGORIES

    codes = [category.code for category in AGREEMENT_CATEGORIES]
    if code and code not in codes:
        raise CommandError(f"--main-condition {code!r}: expected one of {', '.join(codes)}")


def registered_package_folder(init: str) -> str:
    """``--init NAME`` of a registered package (the active version first) → its folder; a
    path, or a name only the bundled packages have, is passed on as it is."""
    from ai_engine.models import ModelPackage, PackageState

    if Path(init).exists():
        return init
    versions = ModelPackage.objects.filter(name=init).order_by("-registered_at")
    package = versions.filter(state=PackageState.ACTIVE).first() or versions.first()
    return package.path if package is not None else init
