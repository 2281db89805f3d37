from django.urls import path

from ai_engine import api

urlpatterns = [
    path("records/<int:record_id>/images/", api.ImageUploadApi.as_view(), name="record-images"),
    path(
        "records/<int:record_id>/analyses/",
        api.RecordAnalysesApi.as_view(),
        name="record-analyses",
    ),
    path(
        "records/<int:record_id>/ai-result/",
        api.RecordAiResultApi.as_view(),
        name="record-ai-result",
    ),
    path("analyses/<int:analysis_id>/", api.AnalysisDetailApi.as_view(), name="analysis-detail"),
    path(
        "analyses/<int:analysis_id>/rerun/", api.AnalysisRerunApi.as_view(), name="analysis-rerun"
    ),
    path(
        "findings/<int:finding_id>/heatmap/",
        api.FindingHeatmapApi.as_view(),
        name="finding-heatmap",
    ),
    path("worklist/", api.WorklistApi.as_view(), name="worklist"),
]
