from django.urls import path

from screening import api

urlpatterns = [
    path("records/", api.RecordListCreateApi.as_view(), name="records"),
    path("records/<int:record_id>/", api.RecordDetailApi.as_view(), name="record-detail"),
    path("records/<int:record_id>/assign/", api.RecordAssignApi.as_view(), name="record-assign"),
    path("images/<int:image_id>/file/", api.ImageFileApi.as_view(), name="image-file"),
    path(
        "records/<int:record_id>/reviews/", api.ReviewListDraftApi.as_view(), name="record-reviews"
    ),
    path(
        "records/<int:record_id>/reviews/amend/",
        api.ReviewAmendApi.as_view(),
        name="record-reviews-amend",
    ),
    path("reviews/<int:review_id>/sign/", api.ReviewSignApi.as_view(), name="review-sign"),
]
