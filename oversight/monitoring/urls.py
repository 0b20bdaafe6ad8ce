from django.urls import path

from oversight.monitoring import views

app_name = "monitoring"
urlpatterns = [
    path("", views.alert_list, name="list"),
    path("<int:pk>/", views.alert_detail, name="alert"),
    path("<int:pk>/acknowledge/", views.alert_acknowledge_view, name="acknowledge"),
    path("<int:pk>/resolve/", views.alert_resolve_view, name="resolve"),
]
