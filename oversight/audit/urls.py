from django.urls import re_path

from oversight.audit import views

app_name = "audit"
urlpatterns = [
    re_path(r"^$", views.audit_list, name="list"),
    re_path(r"^export\.(?P<fmt>csv|jsonl)$", views.audit_export, name="export"),
]
