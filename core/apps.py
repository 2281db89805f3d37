from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    """The foundation every app stands on; it imports none of them (see README "Architecture")."""

    name = "core"
    verbose_name = _("Audit log")
