"""My settings: a staff user's own preferences (the acuity notation)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from core.models import StaffProfile, VaNotation
from core.profiles import is_staff_member, staff_profile_set_va_notation
from core.web import add_service_errors


class MySettingsForm(forms.Form):
    va_notation = forms.ChoiceField(
        label=_lazy("Visual acuity notation"),
        choices=[],
        required=False,
        widget=forms.RadioSelect,
        help_text=_lazy(
            "Acuity can be entered in either notation; this is how it is shown to you."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        clinic_default = dict(VaNotation.choices)[settings.VA_NOTATION]
        self.fields["va_notation"].choices = [
            ("", _("The clinic's default: %(notation)s") % {"notation": clinic_default}),
            *VaNotation.choices,
        ]


@login_required
def my_settings(request: HttpRequest) -> HttpResponse:
    if not is_staff_member(request.user):
        raise PermissionDenied
    profile = StaffProfile.objects.filter(user=request.user).first()
    form = MySettingsForm(
        request.POST or None,
        initial={"va_notation": profile.va_notation if profile is not None else ""},
    )
    if request.method == "POST" and form.is_valid():
        try:
            staff_profile_set_va_notation(
                actor=request.user, va_notation=form.cleaned_data["va_notation"]
            )
        except forms.ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Your settings were saved."))
            return redirect("pages:my-settings")
    return render(request, "clinic/my_settings.html", {"form": form})
