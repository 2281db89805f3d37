from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ai_engine.management.commands._packages import command_actor
from ai_engine.models import ModelPackage
from ai_engine.services import package_register, packages_install
from core.audit import audit_source


class Command(BaseCommand):
    help = (
        "Register model package folders (model.json + weights) after checking card and SHA-256; "
        "--activate makes them analyse new photos (while another diagnosis package is active, "
        "only with --override --reason TEXT, audited as a gate override; promote_model is the "
        "gated way). With --bundled, registers every package under AI_MODEL_DIRS."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="*", type=Path, help="package folders")
        parser.add_argument(
            "--bundled", action="store_true", help="register the packages in AI_MODEL_DIRS"
        )
        parser.add_argument(
            "--activate", action="store_true", help="activate the registered packages"
        )
        parser.add_argument(
            "--activate-if-none",
            action="store_true",
            help="activate them only when no diagnosis package is active yet (what `make run` does)",
        )
        parser.add_argument(
            "--override",
            action="store_true",
            help="with --activate: activate without the promotion gate (needs --reason; audited)",
        )
        parser.add_argument("--reason", default="", help="why the gate is overridden")
        parser.add_argument("--by", default="", help="the user making the change (audited)")

    def handle(
        self,
        *args,
        paths: list[Path],
        bundled: bool,
        activate: bool,
        activate_if_none: bool,
        override: bool,
        reason: str,
        by: str,
        **options,
    ) -> None:
        if override and not (activate and reason.strip()):
            raise CommandError("--override goes with --activate and a --reason TEXT.")
        folders = list(paths)
        bundled_folders: list[Path] = []
        if bundled:
            for root in map(Path, settings.AI_MODEL_DIRS):
                if root.is_dir():
                    bundled_folders.extend(sorted(p.parent for p in root.glob("*/model.json")))
            folders.extend(bundled_folders)
        if not folders:
            self.stdout.write(
                "No model packages to register."
                + (" (AI_MODEL_DIRS holds none.)" if bundled else "")
            )
            return
        # "none" means no diagnosis package: an active quality model alone diagnoses nothing.
        # A fresh installation: nothing to be worse than, so no gate (--activate then too).
        installing = (
            (activate_if_none or activate)
            and not override
            and not any(not p.is_quality_model for p in ModelPackage.objects.filter(state="active"))
        )
        # On a fresh machine only the default bundled packages start active (when one is there).
        defaults = set(settings.AI_DEFAULT_PACKAGES)
        names = {folder: _card_name(folder) for folder in bundled_folders}
        only_defaults = bool(defaults & set(names.values()))
        actor, actor_name = command_actor(by)
        installed: list[ModelPackage] = []
        with audit_source("command"):
            for folder in folders:
                try:
                    package = package_register(
                        path=folder,
                        activate=activate and not installing,
                        actor=actor,
                        reason=reason if override else "",
                        actor_name=actor_name,
                    )
                except ValidationError as exc:
                    raise CommandError(f"{folder}: {' '.join(exc.messages)}") from exc
                if installing and (
                    activate
                    or not only_defaults
                    or folder not in names
                    or names[folder] in defaults
                ):
                    installed.append(package)
                self._registered(package)
            if installed:
                # The first installation, not a change of the active set: no gate to pass.
                packages_install(packages=installed, actor=actor)
                for package in installed:
                    self.stdout.write(f"Activated {package.name} {package.version}")

    def _registered(self, package: ModelPackage) -> None:
        demo = " [demonstration model — not for diagnosis]" if package.demonstration else ""
        self.stdout.write(f"Registered {package.name} {package.version} ({package.state}){demo}")


def _card_name(folder: Path) -> str | None:
    """The card's name, or None when model.json cannot be read (registering then says why)."""
    try:
        return json.loads((folder / "model.json").read_text(encoding="utf-8")).get("name")
    except (OSError, ValueError, AttributeError):
        return None
