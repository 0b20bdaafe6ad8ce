from django.urls import path

from oversight.reviews import views

app_name = "reviews"
urlpatterns = [
    path("", views.review_list, name="list"),
    path("<slug:slug>/", views.review_page, name="agent"),
    path(
        "<slug:slug>/grants/<int:grant_id>/remove/",
        views.review_grant_remove,
        name="grant-remove",
    ),
    path("<slug:slug>/recertify/", views.review_recertify, name="recertify"),
    path("<slug:slug>/retire/", views.agent_retire_view, name="retire"),
]
