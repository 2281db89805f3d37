"""Retraining from an existing package: its card as the model's definition, the clinic's own
exported data mixed with public data at a stated ratio, and the lineage the new card records.

Plain Python/torch (no Django): ``--init NAME`` resolves bundled packages here; the management
command resolves registered package names before it gets here.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ai_engine.inference.card import CardError, ModelCard, load_card
from ai_engine.inference.package import file_sha256

from .data import DatasetError, LabelledSet
from .labels import LabelError, TrainLabel

BUNDLED_PACKAGES = Path(__file__).resolve().parents[1] / "packages"
# The ``dataset`` value of every row of a clinic export (manage.py export_training_set).
CLINIC_SOURCE = "clinic"
PUBLIC = "public"


@dataclass(frozen=True)
class ParentPackage:
    """The package a run fine-tunes: its folder, card and (checked) weights file."""

    folder: Path
    card: ModelCard
    weights: Path
    sha256: str

    def labels(self) -> list[TrainLabel]:
        """The card's outputs as training labels; the data may spell them by code or alias."""
        return [
            TrainLabel(label.code, label.code, label.zh, label.en, label.referable, label.normal)
            for label in self.card.labels
        ]

    def record(self) -> dict[str, str]:
        return {
            "name": self.card.name,
            "version": self.card.version,
            "weights_sha256": self.sha256,
        }


def is_package(init: str) -> bool:
    """``--init`` names a package (a folder with model.json, or a bundled package's name)."""
    path = Path(init)
    if path.is_dir():
        return True
    return not path.exists() and (BUNDLED_PACKAGES / init / "model.json").is_file()


def read_parent(init: str) -> ParentPackage:
    """The package ``init`` names, its weights checked against the card's sha256."""
    folder = Path(init)
    if not folder.is_dir():
        folder = BUNDLED_PACKAGES / init
    try:
        card = load_card(folder)
    except CardError as exc:
        raise DatasetError(f"--init {init}: {exc}") from None
    weights = folder / card.weights.file
    if not weights.is_file():
        raise DatasetError(f"--init {init}: the weights file {weights} is missing")
    sha256 = file_sha256(weights)
    if sha256 != card.weights.sha256:
        raise DatasetError(
            f"--init {init}: {weights.name} does not match the card's sha256 "
            f"({sha256[:12]}… vs {card.weights.sha256[:12]}…); the package was changed"
        )
    if card.is_quality_model:
        raise DatasetError(f"--init {init}: a quality model cannot be retrained this way")
    return ParentPackage(folder, card, weights, sha256)


def inherit(config: Any, parent: ParentPackage, defaults: Any) -> Any:
    """The config with the parent's architecture, task and preprocessing: a value the user
    left at its default is taken from the card, one that contradicts the card is refused.
    The input size and mean/std follow the card unless given."""
    card = parent.card
    wanted = {
        "arch": card.architecture,
        "task": card.task,
        "preprocessing": list(card.preprocessing),
    }
    changes: dict[str, Any] = {}
    for name, value in wanted.items():
        given = getattr(config, name)
        if given == value:
            continue
        if given != getattr(defaults, name):
            raise DatasetError(
                f"--init {card.name}: its card says {name} {value!r}; drop the {name} option "
                "(a fine-tuned package keeps its parent's model)"
            )
        changes[name] = value
    if config.input_size == defaults.input_size:
        changes["input_size"] = card.input_size  # a size given on purpose is kept
    changes["arch_kwargs"] = {**card.architecture_kwargs, **config.arch_kwargs}
    changes["mean"] = config.mean or list(card.mean)
    changes["std"] = config.std or list(card.std)
    return replace(config, **changes)


def check_labels(parent: ParentPackage, labels: list[TrainLabel] | None) -> list[TrainLabel]:
    """``--labels`` may rename how the data spells the outputs, never change them."""
    own = parent.labels()
    if labels is None:
        return own
    if [label.code for label in labels] != [label.code for label in own]:
        raise LabelError(
            f"--labels gives the codes {[lb.code for lb in labels]}, but {parent.card.name} "
            f"outputs {[lb.code for lb in own]}; map the data's names onto them "
            f"(e.g. {','.join(f'NAME={lb.code}' for lb in own)})"
        )
    # The card's texts stay; the names say how this data spells each output.
    return [replace(label, name=given.name) for label, given in zip(own, labels, strict=True)]


def parse_mix(text: str) -> dict[str, float]:
    """``clinic=1,public=3`` → {"clinic": 1.0, "public": 3.0}."""
    mix: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",")):
        key, sep, value = item.partition("=")
        key = key.strip()
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if not sep or key not in (CLINIC_SOURCE, PUBLIC) or weight <= 0 or key in mix:
            raise ValueError(f"expected clinic=W,public=W with positive weights (got {text!r})")
        mix[key] = weight
    if set(mix) != {CLINIC_SOURCE, PUBLIC}:
        raise ValueError(f"expected clinic=W,public=W with positive weights (got {text!r})")
    return {CLINIC_SOURCE: mix[CLINIC_SOURCE], PUBLIC: mix[PUBLIC]}


def source_of(source: str) -> str:
    return CLINIC_SOURCE if source == CLINIC_SOURCE else PUBLIC


def source_counts(labelled: LabelledSet) -> dict[str, dict[str, Any]]:
    """Photos and patients per side (clinic / public), with the public datasets by name."""
    counts: dict[str, dict[str, Any]] = {}
    for side in (CLINIC_SOURCE, PUBLIC):
        chosen = [s for s in labelled.samples if source_of(s.source) == side]
        if not chosen:
            continue
        datasets: dict[str, int] = defaultdict(int)
        for sample in chosen:
            datasets[sample.source] += 1
        counts[side] = {
            "photos": len(chosen),
            "patients": len({s.patient for s in chosen}),
            "datasets": dict(sorted(datasets.items())),
        }
    return counts


def apply_mix(labelled: LabelledSet, mix: dict[str, float], seed: int) -> LabelledSet:
    """Whole patients of the larger side left out (in a seeded order) until clinic : public
    photos match the mix as closely as whole patients allow; the smaller side is kept whole."""
    by_side: dict[str, dict[str, list[int]]] = {CLINIC_SOURCE: {}, PUBLIC: {}}
    for i, sample in enumerate(labelled.samples):
        by_side[source_of(sample.source)].setdefault(sample.patient, []).append(i)
    sizes = {side: sum(len(v) for v in groups.values()) for side, groups in by_side.items()}
    missing = [side for side, n in sizes.items() if n == 0]
    if missing:
        raise DatasetError(
            f"--mix needs clinic and public data; no {missing[0]} photos were given "
            f"(clinic rows have dataset={CLINIC_SOURCE}, from manage.py export_training_set)"
        )
    targets = {
        CLINIC_SOURCE: min(sizes[CLINIC_SOURCE], sizes[PUBLIC] * mix[CLINIC_SOURCE] / mix[PUBLIC]),
        PUBLIC: min(sizes[PUBLIC], sizes[CLINIC_SOURCE] * mix[PUBLIC] / mix[CLINIC_SOURCE]),
    }
    rng = np.random.default_rng(seed)
    kept: list[int] = []
    for side in (CLINIC_SOURCE, PUBLIC):
        patients = sorted(by_side[side])
        rng.shuffle(patients)
        count = 0
        for patient in patients:
            if count >= round(targets[side]):
                break
            kept.extend(by_side[side][patient])
            count += len(by_side[side][patient])
    kept.sort()
    mixed = labelled.subset(kept)
    mixed.dropped = dict(labelled.dropped)
    left_out = len(labelled.samples) - len(kept)
    if left_out:
        mixed.dropped[f"left out by --mix clinic={mix[CLINIC_SOURCE]:g},public={mix[PUBLIC]:g}"] = (
            left_out
        )
    return mixed


def lineage_record(
    *,
    parent: ParentPackage | None,
    available: dict[str, dict[str, Any]],
    used: dict[str, dict[str, Any]],
    mix: dict[str, float] | None,
) -> dict[str, Any]:
    """The card's ``lineage``: parent package, each data source with counts, and the mix."""
    sources = []
    for side in (CLINIC_SOURCE, PUBLIC):
        if side not in available:
            continue
        sources.append(
            {
                "source": side,
                "datasets": available[side]["datasets"],
                "photos_available": available[side]["photos"],
                "patients_available": available[side]["patients"],
                "photos_used": used.get(side, {}).get("photos", 0),
                "patients_used": used.get(side, {}).get("patients", 0),
            }
        )
    total = sum(s["photos_used"] for s in sources) or 1
    return {
        "parent": parent.record() if parent else None,
        "data_sources": sources,
        "mix": (
            {
                "requested": dict(mix),
                "achieved": {s["source"]: round(s["photos_used"] / total, 4) for s in sources},
            }
            if mix
            else None
        ),
    }


def learning_fields(
    labelled: LabelledSet,
    seen: list[int],
    *,
    parent: ParentPackage | None,
    main_condition: str,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """The card fields the promotion gate reads (ai_engine.learning): the salted patient keys
    of the clinic-export rows among ``seen`` (training and validation: both shaped the
    weights or the thresholds), the training date, and the condition a promotion must improve.
    Public rows are never listed: their patient column is the dataset's own, not a clinic key."""
    keys = sorted({labelled.samples[i].patient for i in seen} & _clinic_patients(labelled))
    day = today or dt.datetime.now(dt.UTC).date()
    return {
        "trained_on_keys": keys,
        "trained_at": day.isoformat(),
        "main_condition": main_condition or (parent.card.main_condition if parent else ""),
    }


def _clinic_patients(labelled: LabelledSet) -> set[str]:
    return {s.patient for s in labelled.samples if s.source == CLINIC_SOURCE}


def lineage_text(lineage: dict[str, Any]) -> str:
    """One sentence for the card's training_data."""
    parts = []
    parent = lineage.get("parent")
    if parent:
        parts.append(
            f"Fine-tuned from {parent['name']} {parent['version']} "
            f"(weights sha256 {parent['weights_sha256'][:16]}…)."
        )
    sources = ", ".join(
        f"{s['source']} {s['photos_used']} of {s['photos_available']} photos "
        f"({s['patients_used']} patients)"
        for s in lineage.get("data_sources", [])
    )
    if sources:
        parts.append(f"Data sources: {sources}.")
    if any(s["source"] == CLINIC_SOURCE for s in lineage.get("data_sources", [])):
        parts.append(
            "The clinic photos are its own signed reviews (manage.py export_training_set, "
            "patients under salted keys); they and this package stay in the clinic."
        )
    mix = lineage.get("mix")
    if mix:
        requested = ":".join(f"{v:g}" for v in mix["requested"].values())
        parts.append(f"Mix clinic:public requested {requested} (by photos, whole patients).")
    return " ".join(parts)
