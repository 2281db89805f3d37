"""``python -m ai_engine.training --data … --out …``: train_model without Django (a GPU host
needs only torch, timm and the repository; same options as ``manage.py train_model``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli import NOT_IN_COMMAND, add_train_arguments, reproducing_command, train_config
from .run import TRAINING_ERRORS, run_training


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ai_engine.training", description="Train a model package (no Django)."
    )
    cache = Path(__file__).resolve().parents[2] / "var" / "cache" / "training"
    add_train_arguments(parser, str(cache))
    options = vars(parser.parse_args(argv))
    command = reproducing_command(parser, options, "python manage.py train_model", NOT_IN_COMMAND)
    try:
        print(run_training(train_config(options, command)))
    except TRAINING_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
