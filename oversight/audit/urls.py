from django.urls import path, re_path

from oversight.audit import trust_views, views

app_name = "audit"
urlpatterns = [
    re_path(r"^$", views.audit_list, name="list"),
    re_path(r"^export\.(?P<fmt>csv|jsonl)$", views.audit_export, name="export"),
    path("public-key.pem", trust_views.public_key, name="public-key"),
    path("checkpoints.jsonl", trust_views.checkpoints_jsonl, name="checkpoints"),
    path("verifications/", trust_views.verification_start_view, name="verify"),
    path("verifications/<int:pk>/", trust_views.verification_progress, name="verification"),
    path("events/<int:seq>/", trust_views.event_detail, name="event"),
    path("bundle/", trust_views.bundle_download, name="bundle"),
]
