"""Permission-checked delivery of fundus photos (the web UI's pages come with their issue)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404

from clinic.media import private_file_response
from screening.models import FundusImage
from screening.services import image_record_view
from screening.thumbnails import thumbnail_for


@login_required
def fundus_image_file(request: HttpRequest, image_id: int) -> HttpResponse:
    if not request.user.has_perm("screening.view_fundusimage"):
        raise PermissionDenied
    image = get_object_or_404(FundusImage.objects.select_related("record__patient"), pk=image_id)
    if request.GET.get("size") == "thumb":
        # Previews appear on pages whose opening is already audited.
        return private_file_response(thumbnail_for(image))
    image_record_view(actor=request.user, image=image)
    return private_file_response(image.file.name)
