"""Argument helpers shared by the train/evaluate/import management commands (no Django)."""

from __future__ import annotations

import argparse
import json
import shlex
from typing import Any


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"drop_rate\": 0.2}'")
    return value


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected COLUMN=VALUE (got {text!r})")
    return key.strip(), value.strip()


def single_or_list(values: str | list[str]) -> str | list[str]:
    """One value as itself (as recorded in earlier cards' recipes), several as a list; a string
    (``call_command(data=...)``) is one value."""
    if isinstance(values, str):
        return values
    return values[0] if len(values) == 1 else list(values)


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def mix_ratio(text: str) -> dict[str, float]:
    from .lineage import parse_mix

    try:
        return parse_mix(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def float_triple(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected three numbers like 0.5,0.5,0.5 (got {text!r})"
        ) from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three numbers like 0.5,0.5,0.5 (got {text!r})")
    return values


def reproducing_command(
    parser: argparse.ArgumentParser, options: dict[str, Any], prefix: str, skip: set[str]
) -> str:
    """The command line that gives these options: every option that differs from its default."""
    words = [prefix]
    for action in parser._actions:  # noqa: SLF001 - argparse has no public list of actions
        if not action.option_strings or action.dest in skip or action.dest not in options:
            continue
        value = options[action.dest]
        if value == action.default or action.dest == "help":
            continue
        flag = max(action.option_strings, key=len)
        if isinstance(action, argparse.BooleanOptionalAction):
            words.append(flag if value else flag.replace("--", "--no-", 1))
        elif action.nargs == 0:
            words.append(flag)
        elif isinstance(value, list) and action.type in (key_value,):
            words.extend(f"{flag} {shlex.quote(f'{k}={v}')}" for k, v in value)
        elif isinstance(value, list) and isinstance(action, argparse._AppendAction):  # noqa: SLF001
            words.extend(f"{flag} {shlex.quote(str(v))}" for v in value)  # --data A --data B
        elif isinstance(value, list):
            words.append(f"{flag} {shlex.quote(','.join(str(v) for v in value))}")
        elif isinstance(value, dict) and action.type is mix_ratio:
            words.append(f"{flag} " + ",".join(f"{k}={v:g}" for k, v in value.items()))
        elif isinstance(value, dict):
            words.append(f"{flag} {shlex.quote(json.dumps(value, separators=(',', ':')))}")
        else:
            words.append(f"{flag} {shlex.quote(str(value))}")
    return " ".join(words)


# Options that do not change what a run computes: left out of the card's reproducing command.
NOT_IN_COMMAND = {
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
}


def add_train_arguments(parser: argparse.ArgumentParser, cache_dir: str) -> None:
    """``train_model``'s options (the management command and ``python -m ai_engine.training``)."""
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        required=True,
        action="append",
        help="a CSV file or a folder with one sub-folder per class; repeat to pool several "
        "sources (each CSV's paths relative to its own folder)",
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
        "--label-column",
        type=comma_list,
        default=["label"],
        help="CSV column holding the label (default: label); with several --data, one for all "
        "or one per dataset, comma-separated (e.g. dme,maculopathy)",
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
        help="keep CSV rows with COLUMN=VALUE, or COLUMN!=VALUE (repeatable)",
    )
    data.add_argument(
        "--mix",
        type=mix_ratio,
        default=None,
        help="clinic : public photos in the pooled data, e.g. clinic=1,public=3 (clinic rows: "
        "dataset=clinic from manage.py export_training_set); whole patients of the larger side "
        "are left out until the ratio holds",
    )
    data.add_argument(
        "--main-condition",
        default="",
        help="the condition a promotion of this package must improve (card main_condition, "
        "e.g. dr, glaucoma); default: --init's card's, else the clinic's setting",
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
        "safetensors file's metadata (arch, timm_kwargs, mean, std, source) is applied. Or a "
        "model package (its folder, or the name of a bundled or registered package) to "
        "fine-tune: its card gives the architecture, labels, preprocessing, mean and std, and "
        "the new card records it as the parent",
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
    model.add_argument("--cam-method", choices=["gradcam", "gradcam++", "layercam"], default=None)
    model.add_argument(
        "--cam-layers",
        type=comma_list,
        default=None,
        help="CAM target layers (default: found for the architecture)",
    )
    recipe = parser.add_argument_group("recipe")
    recipe.add_argument("--epochs", type=int, default=30, help="epochs in all, phase 1 included")
    recipe.add_argument(
        "--phase1-epochs",
        type=int,
        default=3,
        help="epochs with the backbone frozen (0 from scratch)",
    )
    recipe.add_argument("--lr1", type=float, default=1e-3, help="phase 1 (head only) learning rate")
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
        "--sensitivity-target",
        type=float,
        default=0.9,
        help="DR grading: the referable threshold on P(grade >= referable_from) is the highest "
        "whose validation sensitivity reaches this (default 0.9)",
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
    run.add_argument("--fp32", action="store_true", help="save float32 weights (default float16)")
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
    run.add_argument("--cache-dir", default=cache_dir)
    run.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")
    run.add_argument("--keep-checkpoint", action="store_true")
    run.add_argument("--no-progress", action="store_true")


def train_config(options: dict[str, Any], command: str):
    """The :class:`~ai_engine.training.trainer.TrainConfig` for parsed ``train_model`` options."""
    from .trainer import TrainConfig

    return TrainConfig(
        data=single_or_list(options["data"]),
        out=options["out"],
        task=options["task"],
        labels=options["labels"],
        images=options["images"],
        label_column=single_or_list(
            comma_list(options["label_column"])
            if isinstance(options["label_column"], str)
            else options["label_column"]
        ),
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
        sensitivity_target=options["sensitivity_target"],
        val_fraction=options["val_fraction"],
        test_fraction=options["test_fraction"],
        patience=options["patience"],
        seed=options["seed"],
        mix=options.get("mix"),
        main_condition=options.get("main_condition") or "",
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
