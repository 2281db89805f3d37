"""Third-party apps named in the reader's language in the admin (they name themselves in English:
"Axes", "Django Q2"); their models' names come from our catalogue.

Kept out of clinic/apps.py: Django picks an app's config automatically only when its apps module
holds exactly one AppConfig.
"""

from __future__ import annotations

from axes.apps import AppConfig as AxesAppConfig
from django.utils.translation import gettext_lazy as _
from django_q.apps import DjangoQConfig


class SignInLockoutsConfig(AxesAppConfig):
    verbose_name = _("Sign-in lockouts")


class TaskQueueConfig(DjangoQConfig):
    verbose_name = _("Task queue")
