"""Mounted at ``teams/<slug:slug>/notifications/`` by the project's urls."""

from django.urls import path

from oversight.notifications import views

app_name = "notifications"
urlpatterns = [
    path("", views.team_channels_view, name="team"),
    path("test/", views.team_channels_test_view, name="test"),
    path("secret/", views.team_channels_secret_view, name="secret"),
]
