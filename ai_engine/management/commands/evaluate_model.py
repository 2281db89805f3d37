"""Score one package (or two side by side) on a labelled dataset: JSON, ROC and confusion PNGs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ai_engine.training.cli import comma_list, key_value


class Command(BaseCommand):
    # Offline tooling: no need for URL/template checks (and no failure when they are broken).
    requires_system_checks: list[str] = []
    help = (
        "Evaluate a model package on a dataset (same formats as train_model) at the card's "
        "thresholds: per-label precision/recall/F1/AUC, sensitivity/specificity, macro-F1, "
        "confusion matrices, calibration (ECE); for a DR grading card also the quadratic "
        "weighted kappa, referable and vision-threatening AUC and sensitivity/specificity at "
        "the card's operating point (95% CIs), overall and per source; writes evaluation.json, "
        "roc.png and confusion-N.png to --out. --compare PACKAGE2 evaluates a second package "
        "on the same photos."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("package", type=Path, help="package folder")
        parser.add_argument(
            "datasets",
            nargs="+",
            metavar="dataset",
            help="one or more CSV files or folders with one sub-folder per class (pooled; "
            "figures are also given per source)",
        )
        parser.add_argument(
            "--compare", type=Path, default=None, help="a second package to compare"
        )
        parser.add_argument("--out", type=Path, required=True, help="folder for the report")
        parser.add_argument("--images", default=None)
        parser.add_argument(
            "--label-column",
            type=comma_list,
            default=["label"],
            help="CSV column holding the label: one for all datasets or one per dataset, "
            "comma-separated (e.g. dme,maculopathy)",
        )
        parser.add_argument("--positive", type=comma_list, default=None)
        parser.add_argument(
            "--where",
            type=key_value,
            action="append",
            default=[],
            help="keep CSV rows with COLUMN=VALUE or COLUMN!=VALUE (repeatable; every dataset "
            "must have the column), e.g. --where 'dr!=unknown'",
        )
        parser.add_argument(
            "--group-by",
            default=None,
            metavar="COLUMN",
            help="also give the figures per value of this CSV column (e.g. dr: none / npdr / "
            "pdr / unknown), with each label's mean probability among positives and negatives",
        )
        parser.add_argument(
            "--split",
            choices=["all", "validation", "test"],
            default="all",
            help="only the patients of this split in the (first) package's split.json",
        )
        parser.add_argument("--device", default="auto")
        parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
        parser.add_argument(
            "--predictions",
            type=Path,
            default=None,
            help="write FILE.csv: one row per photo (file, true label, each label's "
            "probability, decision) of the first package",
        )
        parser.add_argument(
            "--cam-sheet",
            type=Path,
            default=None,
            help="write a PNG contact sheet: photos of each label beside their CAM",
        )
        parser.add_argument(
            "--cam-per-label", type=int, default=20, help="photos per label on the CAM sheet"
        )
        parser.add_argument(
            "--tta",
            choices=["card", "none", "hflip"],
            default="card",
            help="test-time flips: as the card says (default), none, or hflip; compare on the "
            "validation split before writing one into a card",
        )
        parser.add_argument(
            "--bootstrap", type=int, default=1000, help="bootstrap rounds for the 95%% intervals"
        )
        parser.add_argument(
            "--cache-dir", default=str(settings.BASE_DIR / "var" / "cache" / "training")
        )

    def handle(self, *args, **options) -> None:
        if options["threads"]:
            import torch

            torch.set_num_threads(options["threads"])
        from ai_engine.inference.card import CardError
        from ai_engine.inference.package import ModelPackage, PackageError
        from ai_engine.training.camsheet import cam_sheet
        from ai_engine.training.data import DatasetError, label_columns_for
        from ai_engine.training.evaluate import (
            DatasetSpec,
            evaluate_package,
            write_predictions,
            write_report,
        )

        try:
            columns = label_columns_for(options["label_column"], len(options["datasets"]))
        except DatasetError as exc:
            raise CommandError(str(exc)) from exc
        specs = [
            DatasetSpec(
                data=data,
                images=options["images"],
                label_column=column,
                positive=options["positive"],
                where=dict(options["where"]),
                split=options["split"],
            )
            for data, column in zip(options["datasets"], columns, strict=True)
        ]
        paths = [options["package"]] + ([options["compare"]] if options["compare"] else [])
        try:
            packages = [ModelPackage.load(path, options["device"]) for path in paths]
            if options["tta"] != "card":
                tta = () if options["tta"] == "none" else (options["tta"],)
                packages = [replace(p, card=replace(p.card, tta=tta)) for p in packages]
            reports = [
                evaluate_package(
                    package,
                    specs,
                    cache_dir=options["cache_dir"],
                    split_from=packages[0],
                    rounds=options["bootstrap"],
                    group_by=options["group_by"],
                )
                for package in packages
            ]
        except (CardError, PackageError, DatasetError) as exc:
            raise CommandError(str(exc)) from exc
        result = write_report(reports, options["out"])
        self._table(result)
        first, card = reports[0], packages[0].card
        if options["predictions"]:
            rows = write_predictions(
                first,
                [label.code for label in card.labels],
                card.task,
                [label.threshold for label in card.labels],
                options["predictions"],
                card.dr_grading,
            )
            self.stdout.write(f"Wrote {rows} predictions to {options['predictions']}.")
        if options["cam_sheet"]:
            shown = cam_sheet(
                packages[0],
                first.squares,
                first.targets,
                first.probs,
                options["cam_sheet"],
                per_label=options["cam_per_label"],
            )
            counts = ", ".join(f"{code} {n}" for code, n in shown.items())
            self.stdout.write(f"Wrote the CAM sheet ({counts}) to {options['cam_sheet']}.")
        self.stdout.write(
            self.style.SUCCESS(f"Wrote {options['out'] / 'evaluation.json'} and figures.")
        )

    def _table(self, result) -> None:
        out = self.stdout
        for report in result["packages"]:
            m = report["metrics"]
            package = report["package"]
            out.write(
                f"\n{package['name']} {package['version']} — {m['n_images']} images of "
                f"{m['n_patients']} patients ({report['dataset']['split']}); decision: {m['decision']}"
            )
            out.write(
                f"  {'label':<10}{'n+':>6}{'prec':>8}{'recall':>8}{'F1':>8}{'AUC':>8}{'sens':>8}{'spec':>8}"
            )
            for code, e in m["per_label"].items():
                auc = "—" if e["auc"] is None else f"{e['auc']:.3f}"
                out.write(
                    f"  {code:<10}{e['n_positive']:>6}{e['precision']:>8.3f}{e['recall']:>8.3f}"
                    f"{e['f1']:>8.3f}{auc:>8}{e['sensitivity']:>8.3f}{e['specificity']:>8.3f}"
                )
            macro_auc = "—" if m["macro_auc"] is None else f"{m['macro_auc']:.3f}"
            base = m["majority_baseline"]
            out.write(
                f"  macro-F1 {m['macro_f1']:.3f} (majority baseline {base['macro_f1']:.3f}, "
                f"{base['predicts']}), macro-AUC {macro_auc}, ECE {m['ece']:.3f}"
            )
            ci = m["ci95"]
            out.write(
                f"  95% CI ({ci['rounds']} bootstrap rounds over {ci['unit']}s): macro-F1 "
                f"{ci['macro_f1'][0]:.3f}–{ci['macro_f1'][1]:.3f}; "
                + "; ".join(
                    f"{code} F1 {v['f1'][0]:.3f}–{v['f1'][1]:.3f}"
                    + (f", AUC {v['auc'][0]:.3f}–{v['auc'][1]:.3f}" if "auc" in v else "")
                    + (
                        f", sensitivity {v['sensitivity'][0]:.3f}–{v['sensitivity'][1]:.3f}, "
                        f"specificity {v['specificity'][0]:.3f}–{v['specificity'][1]:.3f}"
                        if len(ci["per_label"]) == 1
                        else ""
                    )
                    for code, v in ci["per_label"].items()
                )
            )
            if "dr_grading" in m:
                self._grading(m["dr_grading"], "  ")
            for group, g in report["per_source"].items():
                g_auc = "—" if g["macro_auc"] is None else f"{g['macro_auc']:.3f}"
                out.write(
                    f"  source {group}: {g['n_images']} images, macro-F1 {g['macro_f1']:.3f}, "
                    f"macro-AUC {g_auc}"
                )
                if "dr_grading" in g:
                    self._grading(g["dr_grading"], "    ")
            if "per_value" in report:
                column = report["per_value"]["column"]
                for value, g in report["per_value"]["groups"].items():
                    labels = "; ".join(
                        f"{code} n+ {g['n_per_label'][code]}, AUC "
                        + ("—" if e["auc"] is None else f"{e['auc']:.3f}")
                        + ", mean p (positives "
                        + ("—" if e["mean_p_positive"] is None else f"{e['mean_p_positive']:.3f}")
                        + ", negatives "
                        + ("—" if e["mean_p_negative"] is None else f"{e['mean_p_negative']:.3f}")
                        + "), AUC of this value against the others (positives "
                        + self._auc(e["subset_auc"]["positives"])
                        + ", negatives "
                        + self._auc(e["subset_auc"]["negatives"])
                        + ")"
                        for code, e in g["per_label"].items()
                    )
                    out.write(f"  {column}={value}: {g['n_images']} images; {labels}")
                    if "dr_grading" in g:
                        self._grading(g["dr_grading"], "    ")
        if "comparison" in result:
            c = result["comparison"]
            out.write(
                f"\nsecond − first: macro-F1 {c['macro_f1']:+.3f}"
                + (f", macro-AUC {c['macro_auc']:+.3f}" if c["macro_auc"] is not None else "")
            )

    def _grading(self, g, indent: str) -> None:
        """The ICDR lines: QWK, referable and vision-threatening figures with CIs, grades."""
        ci = g["ci95"]

        def span(values) -> str:
            return f" ({values[0]:.3f}–{values[1]:.3f})" if values else ""

        def auc(value) -> str:
            return "—" if value is None else f"{value:.3f}"

        self.stdout.write(
            f"{indent}DR: QWK {g['qwk']:.3f}{span(ci.get('qwk'))}, grade accuracy "
            f"{g['grade_accuracy']:.3f}, {g['n_images']} images"
        )
        for name in ("referable", "vision_threatening"):
            e, c = g[name], ci.get(name, {})
            self.stdout.write(
                f"{indent}{name.replace('_', '-')} (grade >= {e['from_grade']}, "
                f"{e['n_positive']}+/{e['n_negative']}-): AUC {auc(e['auc'])}{span(c.get('auc'))}; "
                f"at {e['decision']}: sensitivity {e['sensitivity']:.3f}"
                f"{span(c.get('sensitivity'))}, specificity {e['specificity']:.3f}"
                f"{span(c.get('specificity'))}"
            )
        matrix = g["confusion_matrix"]["matrix"]
        self.stdout.write(
            f"{indent}grades (rows true, columns argmax): "
            + " | ".join(" ".join(f"{n:>4}" for n in row) for row in matrix)
        )

    @staticmethod
    def _auc(value) -> str:
        return "—" if value is None else f"{value:.3f}"
