from django.urls import path

from oversight.approvals import views

app_name = "approvals"
urlpatterns = [
    path("approvals/", views.queue, name="queue"),
    path("approvals/<uuid:action_id>/vote/", views.vote, name="vote"),
    path("approvals/<uuid:action_id>/", views.queue_item, name="queue_item"),
    path("actions/<uuid:action_id>/", views.action_detail, name="action"),
    path("actions/<uuid:action_id>/outcome/", views.settle, name="settle"),
]
