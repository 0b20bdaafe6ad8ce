"""Mounted at ``inbox/`` by the project's urls: each person's own notifications."""

from django.urls import path

from oversight.notifications import views

app_name = "inbox"
urlpatterns = [
    path("", views.inbox_view, name="list"),
    path("<int:item_id>/read/", views.inbox_read_view, name="read"),
    path("read-all/", views.inbox_read_all_view, name="read_all"),
]
