from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    name = "oversight.releases"
    label = "releases"
