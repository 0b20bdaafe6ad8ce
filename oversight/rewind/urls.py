from django.urls import path

from oversight.rewind import rewind_views, views

app_name = "rewind"
urlpatterns = [
    path("actions/<uuid:action_id>/undo/", views.action_undo_view, name="undo"),
    path("agents/<slug:slug>/rewind/", rewind_views.rewind_plan_view, name="plan"),
    path("rewinds/<int:pk>/", rewind_views.rewind_detail_view, name="detail"),
    path("rewinds/<int:pk>/<slug:step>/", rewind_views.rewind_step_view, name="step"),
]
