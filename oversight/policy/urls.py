from django.urls import path, re_path

from oversight.policy import views

app_name = "policy"
_KIND = r"(?P<kind>grant|rule|limit)"
urlpatterns = [
    path("", views.policy_page, name="page"),
    path("try/", views.policy_try, name="try"),
    re_path(rf"^{_KIND}/add/$", views.policy_add, name="add"),
    re_path(rf"^{_KIND}/(?P<pk>\d+)/edit/$", views.policy_edit, name="edit"),
    re_path(rf"^{_KIND}/(?P<pk>\d+)/delete/$", views.policy_delete, name="delete"),
]
