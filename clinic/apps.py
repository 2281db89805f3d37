from axes.apps import AppConfig as AxesAppConfig
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _
from django_q.apps import DjangoQConfig


class ClinicConfig(AppConfig):
    name = "clinic"
    verbose_name = _("Clinic")

    def ready(self) -> None:
        # Sign-ins happen inside django.contrib.auth; its signals are the only place to see them.
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from clinic.lockout import audit_sign_in, audit_sign_in_failure

        user_logged_in.connect(audit_sign_in, dispatch_uid="clinic.audit_sign_in")
        user_login_failed.connect(
            audit_sign_in_failure, dispatch_uid="clinic.audit_sign_in_failure"
        )


# Third-party apps, named in the reader's language in the admin (they name themselves in
# English: "Axes", "Django Q2"). Their models' names come from our catalogue.
class SignInLockoutsConfig(AxesAppConfig):
    verbose_name = _("Sign-in lockouts")


class TaskQueueConfig(DjangoQConfig):
    verbose_name = _("Task queue")
