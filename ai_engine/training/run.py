"""Run a training from a :class:`TrainConfig` and summarise it (shared by the management
command and ``python -m ai_engine.training``)."""

from __future__ import annotations

from collections.abc import Callable

from ai_engine.inference.card import CardError
from ai_engine.inference.package import PackageError

from .data import DatasetError
from .labels import LabelError
from .nets import NetError
from .trainer import TrainConfig, Trainer, TrainingError

TRAINING_ERRORS = (DatasetError, LabelError, NetError, TrainingError, CardError, PackageError)


def run_training(config: TrainConfig, log: Callable[[str], None] = print) -> str:
    """Train, write the package, and return the one-line summary."""
    result = Trainer(config, log=log).run()
    metrics = result.metrics
    return (
        f"Trained in {result.seconds / 60:.1f} min: {result.package} — held-out "
        f"({metrics['split']}, {metrics['n_images']} images) macro-F1 {metrics['macro_f1']:.3f}"
    )
