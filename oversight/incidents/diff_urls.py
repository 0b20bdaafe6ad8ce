from django.urls import path

from oversight.incidents import diff_views

app_name = "behaviour"
urlpatterns = [
    path("", diff_views.behaviour_diff_view, name="diff"),
]
