from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AiEngineConfig(AppConfig):
    name = "ai_engine"
    verbose_name = _("AI engine")
