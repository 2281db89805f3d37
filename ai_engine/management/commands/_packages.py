"""Shared by the package commands: one registered package named by NAME and VERSION."""

from __future__ import annotations

from django.core.management.base import CommandError

from ai_engine.models import ModelPackage


def registered_packages() -> str:
    """ "name version, ..." of every registered package, for an error that names the choices."""
    return (
        ", ".join(f"{p.name} {p.version}" for p in ModelPackage.objects.order_by("name")) or "none"
    )


def named_package(name: str, version: str) -> ModelPackage:
    package = ModelPackage.objects.filter(name=name, version=version).first()
    if package is None:
        raise CommandError(f"No package {name} {version}. Registered: {registered_packages()}.")
    return package


def command_actor(username: str):
    """(user, name) for --by USERNAME; without it, no user and the operating-system login."""
    import getpass

    from django.contrib.auth import get_user_model

    if not username:
        try:
            login = getpass.getuser()
        except (OSError, KeyError):
            login = "unknown"
        return None, f"command ({login})"
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CommandError(f"No active user {username!r}.")
    return user, username
