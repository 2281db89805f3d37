from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


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
