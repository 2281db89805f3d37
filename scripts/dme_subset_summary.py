"""One English and one Chinese sentence for a DME card from scripts/dme_subset_check.sh's reports.

    .venv/bin/python scripts/dme_subset_summary.py var/runs/ophai-dme-subset

Reads OUT/{by-dr,known-dr,dr-camera}/evaluation.json and prints the DME AUC (95% CI, n) within
dme/ rows whose DR is known, within dr_camera/, and how well P(DME) tells DR "unknown" from the
known values among the DME-positive photos (0.5: not at all), for the card's evidence lines.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def figures(path: Path) -> dict:
    report = json.loads((path / "evaluation.json").read_text(encoding="utf-8"))["packages"][0]
    return report


def auc_text(report: dict) -> tuple[str, int, int]:
    metrics = report["metrics"]
    entry = metrics["per_label"]["DME"]
    ci = metrics["ci95"]["per_label"]["DME"].get("auc")
    auc = "—" if entry["auc"] is None else f"{entry['auc']:.2f}"
    span = f", 95% CI {ci[0]:.2f}–{ci[1]:.2f}" if ci else ""
    return auc + span, metrics["n_images"], entry["n_positive"]


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    out = Path(sys.argv[1])
    try:
        known, camera, by_dr = (figures(out / n) for n in ("known-dr", "dr-camera", "by-dr"))
    except (OSError, KeyError, ValueError) as exc:
        print(f"cannot read the reports under {out}: {exc}", file=sys.stderr)
        return 1
    known_auc, known_n, known_pos = auc_text(known)
    camera_auc, camera_n, camera_pos = auc_text(camera)
    unknown = by_dr.get("per_value", {}).get("groups", {}).get("unknown", {})
    subset = (unknown.get("per_label", {}).get("DME", {}).get("subset_auc") or {}).get("positives")
    subset_text = "—" if subset is None else f"{subset:.2f}"
    print(
        f"DME AUC within dme/ test rows whose DR grade is known {known_auc.split(',')[0]} "
        f"({known_auc.partition(', ')[2] or 'no CI'}; {known_pos} DME of {known_n} eyes) and on "
        f"dr_camera/ test photos {camera_auc.split(',')[0]} "
        f"({camera_auc.partition(', ')[2] or 'no CI'}; {camera_pos} DME of {camera_n} eyes); "
        f"among DME-positive dme/ test photos P(DME) separates DR 'unknown' from known DR with "
        f"AUC {subset_text} (0.5 = the subset is not recognised)"
    )
    print(
        f"dme/ 测试集中 DR 分级已知的眼上 DME AUC {known_auc.split(',')[0]}"
        f"（{known_auc.partition(', ')[2] or 'no CI'}；{known_n} 只眼中 {known_pos} 只 DME），"
        f"dr_camera/ 测试照片上 {camera_auc.split(',')[0]}"
        f"（{camera_auc.partition(', ')[2] or 'no CI'}；{camera_n} 只眼中 {camera_pos} 只 DME）；"
        f"在 dme/ 测试集 DME "
        f"阳性照片中，P(DME) 区分 DR“未知”与已知分级的 AUC 为 {subset_text}（0.5 表示模型未识别该子集）"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
