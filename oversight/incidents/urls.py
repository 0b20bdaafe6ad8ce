from django.urls import path

from oversight.incidents import views

app_name = "incidents"

urlpatterns = [
    path("", views.incident_list_view, name="list"),
    path("open/", views.incident_open_view, name="open"),
    path("kill-switch/<int:switch_id>/", views.incident_of_switch_view, name="of-switch"),
    path("<int:pk>/", views.incident_detail_view, name="detail"),
    path("<int:pk>/update/", views.incident_update_view, name="update"),
    path("<int:pk>/notes/", views.incident_note_view, name="note"),
    path("<int:pk>/analyse/", views.incident_analyse_view, name="analyse"),
    path("<int:pk>/export.<str:fmt>", views.incident_export_view, name="export"),
]
