from django.urls import path

from oversight.killswitch import views

app_name = "killswitch"
urlpatterns = [
    path("engage/", views.engage, name="engage"),
    path("release/", views.release, name="release"),
    path("scopes/", views.scopes, name="scopes"),
]
