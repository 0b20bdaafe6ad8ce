from django.urls import path

from oversight.rewind import views

app_name = "rewind"
urlpatterns = [
    path("actions/<uuid:action_id>/undo/", views.action_undo_view, name="undo"),
]
