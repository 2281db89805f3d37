"""Run several trainings side by side (one process per job) and print their figures in one table.

    .venv/bin/python bench/train_jobs.py JOBS.txt --out var/runs/compare [--parallel 4]
        [--common "--data ../shared/data/fundus/labels.csv --where dataset=odir ..."]

JOBS.txt holds one job per line, ``NAME: train_model arguments`` (``#`` starts a comment);
``--common`` arguments go before each job's own. Each job writes its package to OUT/NAME and
its log to OUT/NAME.log; on one GPU the jobs share the device (each holds its own cache and
model), on the CPU give each job ``--threads``. The table (also OUT/table.md) has the
validation figure the package was chosen by and the held-out test figures with their
bootstrap 95% intervals. A job that fails is listed with its exit code; the others go on.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def read_jobs(path: Path) -> list[tuple[str, list[str]]]:
    jobs = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, args = line.partition(":")
        if not sep or not name.strip().replace("-", "").replace("_", "").isalnum():
            raise SystemExit(f"{path}:{number}: expected 'NAME: arguments' (got {raw!r})")
        jobs.append((name.strip(), shlex.split(args)))
    if not jobs:
        raise SystemExit(f"{path}: no jobs")
    return jobs


def row(name: str, out: Path, code: int | None, minutes: float) -> dict[str, str]:
    card_path, training_path = out / name / "model.json", out / name / "training.json"
    if code != 0 or not card_path.is_file():
        return {"job": name, "status": f"failed ({code}), see {name}.log", "min": f"{minutes:.1f}"}
    card = json.loads(card_path.read_text(encoding="utf-8"))
    training = json.loads(training_path.read_text(encoding="utf-8"))
    config = training["config"]
    v = card["validation"]
    ci = v.get("ci95", {})
    best_val = max((h["val_macro_f1"] for h in training["history"]), default=float("nan"))

    def with_ci(value: float | None, interval: list[float] | None) -> str:
        if value is None:
            return "—"
        return f"{value:.3f}" + (f" [{interval[0]:.2f}–{interval[1]:.2f}]" if interval else "")

    cells = {
        "job": name,
        "status": "ok",
        "arch": card["architecture"],
        "px": str(card["input_size"]),
        "init": "pretrained" if config.get("init") else "scratch",
        "epochs": f"{v.get('epochs_run', '?')} (best {v.get('best_epoch', '?')})",
        "val F1": f"{best_val:.3f}",
        f"{v['split']} macro-F1": with_ci(v["macro_f1"], ci.get("macro_f1")),
    }
    grading = v.get("dr_grading")
    if grading:  # DR: the screening figures instead of five per-grade columns
        ref, ref_ci = grading["referable"], grading["ci95"].get("referable", {})
        cells["referable AUC"] = with_ci(ref["auc"], ref_ci.get("auc"))
        cells["threshold"] = str(ref["threshold"])
        cells["sens"] = with_ci(ref["sensitivity"], ref_ci.get("sensitivity"))
        cells["spec"] = with_ci(ref["specificity"], ref_ci.get("specificity"))
        cells["QWK"] = with_ci(grading["qwk"], grading["ci95"].get("qwk"))
        vt_ci = grading["ci95"].get("vision_threatening", {})
        cells["VT AUC"] = with_ci(grading["vision_threatening"]["auc"], vt_ci.get("auc"))
    else:
        for code, entry in v["per_label"].items():
            label_ci = ci.get("per_label", {}).get(code, {})
            cells[f"{code} F1"] = with_ci(entry["f1"], None)
            cells[f"{code} AUC"] = with_ci(entry["auc"], label_ci.get("auc"))
            if len(v["per_label"]) == 1:  # binary: the figures at its threshold
                cells["sens"] = with_ci(entry["sensitivity"], label_ci.get("sensitivity"))
                cells["spec"] = with_ci(entry["specificity"], label_ci.get("specificity"))
    cells["n"] = str(v["n_images"])
    cells["min"] = f"{minutes:.1f}"
    return cells


def table(rows: list[dict[str, str]]) -> str:
    columns = list(dict.fromkeys(key for r in rows for key in r))
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(r.get(c, "") for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jobs", type=Path, help="file with one 'NAME: arguments' line per job")
    parser.add_argument("--out", type=Path, required=True, help="folder for packages and logs")
    parser.add_argument("--parallel", type=int, default=0, help="jobs at once (0: all)")
    parser.add_argument("--common", default="", help="train_model arguments for every job")
    parser.add_argument("--python", default=sys.executable, help="interpreter to run manage.py")
    args = parser.parse_args()
    jobs = read_jobs(args.jobs)
    args.out.mkdir(parents=True, exist_ok=True)
    limit = args.parallel or len(jobs)
    common = shlex.split(args.common)
    pending = list(jobs)
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    finished: dict[str, tuple[int, float]] = {}
    while pending or running:
        while pending and len(running) < limit:
            name, own = pending.pop(0)
            command = [
                args.python, str(REPO_ROOT / "manage.py"), "train_model",
                *common, *own, "--out", str(args.out / name), "--name", name, "--no-progress",
            ]  # fmt: skip
            log = (args.out / f"{name}.log").open("w", encoding="utf-8")
            log.write(shlex.join(command) + "\n")
            log.flush()
            running[name] = (
                subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT),
                time.time(),
            )
            print(f"started {name}", flush=True)
        time.sleep(1.0)
        for name, (process, began) in list(running.items()):
            if process.poll() is not None:
                finished[name] = (process.returncode, (time.time() - began) / 60)
                del running[name]
                print(f"finished {name} (exit {process.returncode})", flush=True)
    rows = [row(name, args.out, *finished[name]) for name, _ in jobs]
    text = table(rows)
    (args.out / "table.md").write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0 if all(code == 0 for code, _ in finished.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
