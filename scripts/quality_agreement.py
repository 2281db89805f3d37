"""EyeQ agreement of the quality gate: the heuristic (quality.py), a quality model, and both.

Runs the pipeline's own steps on each EyeQ-graded photo of a trained quality package's
validation and test patients (``split.json``): decode as the worker does, find the fundus, the
heuristic gate, the model's P(good / usable / reject). With ``--choose`` it picks the reject
threshold on VALIDATION (the highest whose reject recall reaches ``--min-recall``, both sources
pooled) and, with ``--write-card``, makes the card a quality model (``role``, ``quality_gate``)
and records the test figures in it. Figures per source with patient-level bootstrap 95 % CIs
(``ai_engine.training.quality_agreement``).

    .venv/bin/python scripts/eyeq_quality_labels.py            # writes var/quality/eyeq_labels.csv
    .venv/bin/python scripts/quality_agreement.py ai_engine/packages/ophai-quality \\
        --choose --min-recall 0.85 --write-card --out var/quality/agreement.json
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ai_engine.inference.card import CardError, parse_card  # noqa: E402
from ai_engine.inference.decode import load_working_copy  # noqa: E402
from ai_engine.inference.package import ModelPackage  # noqa: E402
from ai_engine.inference.predict import WORKING_MIN_SIDES, Predictor  # noqa: E402
from ai_engine.inference.preprocess import detect_fundus  # noqa: E402
from ai_engine.inference.quality import check_quality  # noqa: E402
from ai_engine.training.quality_agreement import (  # noqa: E402
    GRADES,
    choose_reject_threshold,
    gate_agreement,
)

GRADE_NAMES = {
    "good": ("质量良好", "Good quality"),
    "usable": ("质量可用", "Usable quality"),
    "reject": ("质量不可判读", "Ungradable quality"),
}


def score_photos(package: ModelPackage, rows: list[dict[str, str]], images: Path) -> dict:
    """Per photo: the heuristic's verdict and the model's probabilities (pipeline steps)."""
    predictor = Predictor(package)
    codes = [label.code for label in package.card.labels]
    heuristic_refused, probs, forward_ms = [], [], []
    for row in rows:
        photo, _ = load_working_copy(images / row["file"], min_sides=WORKING_MIN_SIDES)
        array = np.asarray(photo)
        geometry = detect_fundus(array)
        heuristic_refused.append(not check_quality(array, geometry).gradable)
        began = time.perf_counter()
        tensor, _ = predictor.prepare(array, geometry)
        probs.append(predictor.probabilities(tensor.unsqueeze(0))[0])
        forward_ms.append((time.perf_counter() - began) * 1000)
    return {
        "codes": codes,
        "heuristic_refused": np.asarray(heuristic_refused),
        "probs": np.asarray(probs),
        "forward_ms": forward_ms,
    }


def figures(rows, scored, threshold: float, rounds: int) -> dict[str, Any]:
    """Heuristic, model and pipeline (heuristic OR model) per source and overall."""
    codes = scored["codes"]
    p_reject = scored["probs"][:, codes.index("reject")]
    predicted = [codes[i] for i in scored["probs"].argmax(axis=1)]
    model_refused = p_reject >= threshold
    truth = [row["quality"] for row in rows]
    patients = [row["patient"] for row in rows]
    sources = [row["dataset"] for row in rows]
    out: dict[str, Any] = {}
    for source in [*sorted(set(sources)), "all"]:
        index = [i for i, s in enumerate(sources) if source in ("all", s)]
        pick = [truth[i] for i in index], [patients[i] for i in index]
        out[source] = {
            "heuristic": gate_agreement(
                pick[0], scored["heuristic_refused"][index], pick[1], rounds=rounds
            ),
            "model": gate_agreement(
                pick[0],
                model_refused[index],
                pick[1],
                [predicted[i] for i in index],
                rounds=rounds,
            ),
            "pipeline": gate_agreement(
                pick[0],
                scored["heuristic_refused"][index] | model_refused[index],
                pick[1],
                rounds=rounds,
            ),
        }
    return out


def _pct(value: float | None, ci: list[float] | None = None) -> str:
    if value is None:
        return "–"
    text = f"{100 * value:.1f} %"
    return text + (f" ({100 * ci[0]:.1f}–{100 * ci[1]:.1f})" if ci else "")


def table(result: dict[str, Any], split: str) -> str:
    lines = [
        f"| {split} set | gate | photos (good/usable/reject) | reject recall | good refused "
        "| usable refused | accuracy reject-vs-not | 3-class accuracy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for source, gates in result.items():
        for gate, f in gates.items():
            counts = f["counts"]
            lines.append(
                f"| {source} | {gate} | {f['n_images']} "
                f"({'/'.join(str(counts[g]['n']) for g in GRADES)}) "
                f"| {counts['reject']['refused']}/{counts['reject']['n']} = "
                f"{_pct(f['reject_recall'], f['ci95']['reject_recall'])} "
                f"| {counts['good']['refused']}/{counts['good']['n']} = "
                f"{_pct(f['false_reject_good'], f['ci95']['false_reject_good'])} "
                f"| {_pct(f['refused_usable'], f['ci95']['refused_usable'])} "
                f"| {_pct(f['binary_accuracy'], f['ci95']['binary_accuracy'])} "
                f"| {_pct(f.get('accuracy'), f['ci95'].get('accuracy'))} |"
            )
    return "\n".join(lines)


EYEQ_LINE = (
    "Quality labels: EyeQ (HzFu/EyeQ@48daee6836b4391b6274cc7c350a92c553800a02, "
    "Label_EyeQ_train/test.csv), licence CC BY-NC-SA 4.0 (non-commercial, share-alike; "
    "attribution: Fu H. et al., Evaluation of Retinal Image Quality Assessment Networks in "
    "Different Color-spaces, MICCAI 2019), joined with fundus/labels.csv by "
    "scripts/eyeq_quality_labels.py into var/quality/eyeq_labels.csv (not committed)."
)


def evidence(figures: dict[str, Any], language: str) -> str:
    """One line of the test figures (both sources pooled) for the card."""
    model, heuristic = figures["model"], figures["heuristic"]

    def cell(f: dict[str, Any], key: str) -> str:
        low, high = f["ci95"][key]
        return f"{f[key]:.2f} ({low:.2f}–{high:.2f})"

    n = model["n_images"]
    if language == "zh":
        return (
            f"图像质量模型（非诊断用）：在 {n} 张留出 EyePACS 照片上（EyeQ 分级），"
            f"不可判读照片检出率 {cell(model, 'reject_recall')}，"
            f"良好照片误拒率 {cell(model, 'false_reject_good')}，"
            f"三分类准确率 {cell(model, 'accuracy')}；"
            f"同一照片上启发式质量门检出率 {cell(heuristic, 'reject_recall')}（95% 置信区间）"
        )
    return (
        f"Image-quality model (not for diagnosis): on {n} held-out EyePACS photos graded by EyeQ, "
        f"reject recall {cell(model, 'reject_recall')}, good photos refused "
        f"{cell(model, 'false_reject_good')}, 3-class accuracy {cell(model, 'accuracy')}; the "
        f"heuristic gate's reject recall on the same photos {cell(heuristic, 'reject_recall')} "
        "(95% CIs)"
    )


def write_card(folder: Path, threshold: float, chosen_on: dict, test: dict, min_recall: float):
    path = folder / "model.json"
    card = json.loads(path.read_text(encoding="utf-8"))
    for label in card["labels"]:
        if label["code"] in GRADE_NAMES:
            label["zh"], label["en"] = GRADE_NAMES[label["code"]]
            label["referable"] = label["normal"] = False
    card["role"] = "quality"
    card["quality_gate"] = {
        "reject_label": "reject",
        "reject_threshold": threshold,
        "chosen_on": {
            "split": "validation",
            "rule": f"highest threshold with reject recall >= {min_recall} (both sources pooled)",
            **chosen_on,
        },
    }
    card.setdefault("validation", {})["eyeq_agreement_test"] = test
    if EYEQ_LINE not in card.get("training_data", ""):
        card["training_data"] = f"{card.get('training_data', '')} {EYEQ_LINE}".strip()
    card["evidence"] = card["evidence_en"] = evidence(test["all"], "en")
    card["evidence_zh"] = evidence(test["all"], "zh")
    try:
        parse_card(card)
    except CardError as exc:
        raise SystemExit(f"the updated card is invalid: {exc}") from None
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


def _brief(gates: dict[str, Any]) -> dict[str, Any]:
    keep = ("n_images", "reject_recall", "false_reject_good", "refused_usable", "binary_accuracy")
    return {
        gate: {k: f[k] for k in (*keep, "accuracy") if k in f} | {"ci95": f["ci95"]}
        for gate, f in gates.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path)
    parser.add_argument("--labels", type=Path, default=Path("var/quality/eyeq_labels.csv"))
    parser.add_argument("--images", type=Path, default=Path("../shared/data/fundus"))
    parser.add_argument("--choose", action="store_true", help="choose the threshold on validation")
    parser.add_argument("--min-recall", type=float, default=0.85)
    parser.add_argument("--write-card", action="store_true")
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("var/quality/agreement.json"))
    args = parser.parse_args(argv)
    split = json.loads((args.package / "split.json").read_text(encoding="utf-8"))
    with args.labels.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    package = ModelPackage.load(args.package, "cpu")
    codes = [label.code for label in package.card.labels]
    if sorted(codes) != sorted(GRADES):
        raise SystemExit(f"{args.package}: labels {codes}, expected {', '.join(GRADES)}")
    parts = {
        name: [row for row in rows if row["patient"] in set(split.get(name) or [])]
        for name in ("validation", "test")
    }
    scored = {name: score_photos(package, part, args.images) for name, part in parts.items()}
    if args.choose:
        val_p = scored["validation"]["probs"][:, codes.index("reject")]
        threshold = choose_reject_threshold(
            [r["quality"] for r in parts["validation"]], val_p, args.min_recall
        )
        # stored with 6 decimals, rounded down so that no photo refused here passes with the card
        threshold = float(min(max(math.floor(threshold * 1e6) / 1e6, 1e-6), 1 - 1e-6))
    else:
        threshold = float((package.card.quality_gate or {}).get("reject_threshold", 0.5))
    result = {name: figures(parts[name], scored[name], threshold, args.rounds) for name in parts}
    forward = scored["validation"]["forward_ms"] + scored["test"]["forward_ms"]
    report = {
        "package": f"{package.card.name} {package.card.version}",
        "weights_sha256": package.weights_sha256,
        "reject_threshold": threshold,
        "min_recall": args.min_recall if args.choose else None,
        "crop_and_forward_ms_median": round(float(np.median(forward)), 1),
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"{report['package']}: reject threshold {threshold:.4f}")
    print(
        f"crop + forward per photo (1 thread here): median {report['crop_and_forward_ms_median']} ms"
    )
    for name in parts:
        print()
        print(table(result[name], name))
    if args.write_card:
        write_card(
            args.package,
            threshold,
            {"figures": _brief(result["validation"]["all"])},
            {source: _brief(gates) for source, gates in result["test"].items()},
            args.min_recall,
        )
        print(f"\n{args.package / 'model.json'}: role quality, reject_threshold {threshold:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
