from django.urls import path

from ai_engine import views

app_name = "ai_engine"
urlpatterns = [
    path("records/<int:record_id>/status", views.record_status, name="record-status"),
    path("findings/<int:finding_id>/heatmap", views.heatmap_file, name="heatmap-file"),
    path("models/<int:package_id>/", views.model_card, name="model-card"),
    path("analyses/<int:analysis_id>/rerun", views.rerun, name="rerun"),
]
