from django.urls import path

from oversight.releases import views

app_name = "releases"
urlpatterns = [
    path("", views.release_list_view, name="list"),
    path("compare/", views.release_compare_view, name="compare"),
    path("<int:version>/", views.release_detail_view, name="detail"),
    path("<int:version>/rollback/", views.release_rollback_view, name="rollback"),
]
