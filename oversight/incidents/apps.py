from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "oversight.incidents"
    label = "incidents"
